"""Token ids to vectors, and where each token sits: token embeddings plus position encodings.

A model sees a token id as a row of a learned table (the token embedding). Attention treats its
input as a set, so the position of each token is added as a second vector:

    x[b, t] = token_table[ids[b, t]] + position_vector(t)

Two kinds of position vector are in use:

    learned     a second table, one trainable row per position 0 .. context_length-1 (GPT-2, BERT)
    sinusoidal  a fixed formula (Vaswani et al. 2017), nothing to train:
                    P[t, 2i]   = sin(t / base^(2i/d))
                    P[t, 2i+1] = cos(t / base^(2i/d))        base = 10000

Contents:
    sinusoidal_positions       the (n, d) table of the formula above
    TokenAndPositionEmbedding  the nn.Module a transformer starts with
    check_token_ids            the error for ids outside 0 .. vocab_size-1 (a table has no such row)
"""

from __future__ import annotations

import math
import operator

import torch
from torch import nn

__all__ = ["sinusoidal_positions", "TokenAndPositionEmbedding", "check_token_ids"]

KINDS = ("learned", "sinusoidal")


def sinusoidal_positions(
    n: int, d: int, base: float = 10000.0, *, device: torch.device | str | None = None
) -> torch.Tensor:
    """The sinusoidal position table P of shape (n, d), float32.

    Column pair (2i, 2i+1) is a sine and a cosine of the same frequency 1 / base^(2i/d): the first
    pair turns once every 2*pi positions, the last nearly base times more slowly. Row t is the
    vector added to the token at position t; P[0] = [0, 1, 0, 1, ...].

    d must be even (every frequency comes as a sine-cosine pair).
    """
    n, d = _check_table_size(n, d, base)
    # Work in float64 and round once at the end: t * frequency reaches thousands of radians, where
    # float32 arguments would already be off in the third decimal of sin and cos.
    position = torch.arange(n, dtype=torch.float64, device=device)[:, None]  # (n, 1)
    two_i = torch.arange(0, d, 2, dtype=torch.float64, device=device)  # (d/2,) = 0, 2, 4, ...
    frequency = torch.exp(-math.log(base) * two_i / d)  # 1 / base^(2i/d)
    angle = position * frequency  # (n, d/2)
    table = torch.empty(n, d, dtype=torch.float64, device=device)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle)
    return table.float()


class TokenAndPositionEmbedding(nn.Module):
    """Token ids (batch, n) -> vectors (batch, n, d_model): token embedding + position vector.

    Args:
        vocab_size: number of token ids; valid ids are 0 .. vocab_size-1.
        d_model: size of each vector.
        context_length: the longest sequence the module accepts (the context length).
        kind: "learned" (a trainable nn.Embedding of context_length rows, as in GPT-2) or "sinusoidal"
            (the fixed table of sinusoidal_positions, stored as a buffer, not trained).

    Attributes:
        token: nn.Embedding(vocab_size, d_model), the token table.
        position: nn.Embedding(context_length, d_model) for kind="learned"; None for "sinusoidal".

    Both tables keep nn.Embedding's default initialisation, N(0, 1); a model may re-initialise them
    (GPT-2 uses N(0, 0.02^2)).
    """

    def __init__(self, vocab_size: int, d_model: int, context_length: int, kind: str = "learned"):
        super().__init__()
        _check_sizes(vocab_size, d_model, context_length, kind)
        self.vocab_size, self.d_model, self.context_length, self.kind = vocab_size, d_model, context_length, kind
        self.token = nn.Embedding(vocab_size, d_model)
        if kind == "learned":
            self.position: nn.Embedding | None = nn.Embedding(context_length, d_model)
        else:
            self.position = None
            # A buffer moves with .to(device) but is not a parameter; not saved, as it is a formula.
            self.register_buffer("sinusoid", sinusoidal_positions(context_length, d_model), persistent=False)

    def extra_repr(self) -> str:
        return (f"vocab_size={self.vocab_size}, d_model={self.d_model}, context_length={self.context_length}, "
                f"kind={self.kind!r}")

    def positions(self, n: int, start: int = 0) -> torch.Tensor:
        """The position vectors of positions start .. start+n-1, shape (n, d_model)."""
        _check_positions_fit(start, n, self.context_length)
        if self.position is not None:
            index = torch.arange(start, start + n, device=self.position.weight.device)
            return self.position(index)
        return self.sinusoid[start : start + n]

    def forward(self, ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Vectors for token ids of shape (batch, n) or (n,); the output adds a last dim d_model.

        start: the position of the first token (0 normally; the number of tokens already seen when
        a model generates with a KV cache).
        """
        _check_ids(ids, self.vocab_size)
        n = ids.shape[-1]
        # (..., n, d_model) + (n, d_model): broadcasting adds the same position vectors to every sequence.
        return self.token(ids) + self.positions(n, start)


# --- Input checks ------------------------------------------------------------------------------


def check_token_ids(ids: torch.Tensor, vocab_size: int) -> None:
    """Raise a ValueError unless every id lies in 0 .. vocab_size-1, the rows a token table has.

    An id outside that range would fail deep inside nn.Embedding (an index error on the CPU, a
    device-side assert on a GPU) without saying which ids were wrong.
    """
    if ids.numel():
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= vocab_size:
            raise ValueError(
                f"token ids must lie in 0..{vocab_size - 1} (vocab_size={vocab_size}); "
                f"got ids from {low} to {high}. Was the text encoded with a different tokenizer?"
            )


def _check_table_size(n, d, base: float) -> tuple[int, int]:
    """n and d as ints, with n >= 0, d even and positive, base > 1."""
    try:
        n, d = operator.index(n), operator.index(d)
    except TypeError:
        raise TypeError(f"n and d must be ints, got n={n!r}, d={d!r}") from None
    if n < 0:
        raise ValueError(f"n (the number of positions) must be >= 0, got {n}")
    if d <= 0 or d % 2:
        raise ValueError(f"d must be a positive even number (sine and cosine come in pairs), got {d}")
    if base <= 1:
        raise ValueError(f"base must be > 1, got {base}")
    return n, d


def _check_sizes(vocab_size: int, d_model: int, context_length: int, kind: str) -> None:
    for name, value in (("vocab_size", vocab_size), ("d_model", d_model), ("context_length", context_length)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "sinusoidal" and d_model % 2:
        raise ValueError(f"sinusoidal positions need an even d_model, got {d_model}")


def _check_positions_fit(start: int, n: int, context_length: int) -> None:
    if start < 0 or start + n > context_length:
        raise ValueError(
            f"positions {start}..{start + n - 1} do not fit in context_length={context_length}: this module "
            f"was built for sequences of at most {context_length} tokens. Cut the input to the last "
            f"{context_length} tokens, or build the module with a larger context_length."
        )


def _check_ids(ids: torch.Tensor, vocab_size: int) -> None:
    """ids must be an integer tensor (batch, n) or (n,) of ids in 0 .. vocab_size-1."""
    if not isinstance(ids, torch.Tensor) or ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        kind = ids.dtype if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise TypeError(f"ids must be an integer tensor (e.g. torch.long) of token ids, got {kind}")
    if ids.dim() not in (1, 2):
        raise ValueError(f"ids must have shape (batch, n) or (n,), got {tuple(ids.shape)}")
    check_token_ids(ids, vocab_size)
