"""A small GPT: a decoder-only transformer, built from the pieces of lessons 02-04.

    tokens -> token embedding + position embedding
           -> n_layer x Block(x):  x = x + attention(LayerNorm(x))     (causal, multi-head)
                                   x = x + MLP(LayerNorm(x))
           -> LayerNorm -> linear head (sharing its weights with the token embedding) -> logits

Pre-LayerNorm blocks (the norm comes before each sub-layer, as in GPT-2) keep the residual path
clean, which makes deep stacks train without warm-up tricks. `generate` lives in utils.generation.

Lesson 11's switches turn pieces of this GPT-2 into their successors in today's open models (Llama,
Qwen, Mistral): `norm="rmsnorm"` (RMSNorm for every LayerNorm), `mlp="swiglu"` (a gated MLP),
`positions="rope"` (rotary positions in attention instead of a learned table), `n_kv_head` (grouped-
query attention) and `qk_norm`. The defaults are GPT-2's, so older checkpoints load unchanged.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .attention import KVCache, MultiHeadAttention
from .embeddings import check_token_ids


def check_field_types(settings) -> None:
    """Every field of a settings dataclass holds the type it declares (int, float, bool or str).

    "32" or 2.5 where an int belongs, or True where a number belongs, would otherwise slip through
    and fail much later, far from the mistake (a JSON file edited by hand, a typo in a call).
    """
    accept = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
              "bool": lambda v: isinstance(v, bool),
              "str": lambda v: isinstance(v, str)}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if f.type in accept and not accept[f.type](value):
            raise TypeError(f"{type(settings).__name__}.{f.name} must be {'an' if f.type == 'int' else 'a'} "
                            f"{f.type}, got {value!r} ({type(value).__name__})")


class SettingsFile:
    """JSON for a settings dataclass (a model's shape): to_dict / from_dict, save / load. A misspelt field
    in a file is refused with the known ones listed, never dropped silently."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; known fields: {sorted(known)}")
        return cls(**values)

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path):
        return cls.from_dict(json.loads(Path(path).read_text()))


NORMS = ("layernorm", "rmsnorm")
MLPS = ("gelu", "swiglu")
POSITIONS = ("learned", "rope")
MODERN_FIELDS = ("norm", "mlp", "positions", "rope_base", "n_kv_head", "qk_norm", "mlp_hidden", "norm_eps")  # lesson 11


@dataclass
class GPTConfig(SettingsFile):
    """The shape of a GPT: GPT(config) builds one. A checkpoint keeps it as JSON (to_dict, save / load).

    Fields:
        vocab_size: number of distinct tokens; ids are 0 .. vocab_size-1 (65 characters in Tiny
            Shakespeare with the character tokenizer).
        context_length: the most tokens the model can look at at once: the rows of the position
            table, and the longest input forward accepts.
        n_layer: number of transformer blocks stacked on top of each other.
        n_head: attention heads per block; must divide n_embd.
        n_embd: d_model, the width of every token vector in the residual stream.
        dropout: probability of zeroing an activation while training (embeddings, attention
            weights, residual branches); 0 turns it off. Must be in [0, 1).
        bias: biases in the Linear and LayerNorm layers (GPT-2 had them; they barely help). RMSNorm
            has none either way.
        tie_weights: the output head reuses the token embedding matrix.
        norm: "layernorm" (GPT-2) or "rmsnorm" (Llama and most open models since): see RMSNorm.
        mlp: "gelu" (GPT-2: widen 4x, GELU, back) or "swiglu" (Llama: a SiLU gate times a second
            projection, hidden size about 8/3 of n_embd so the parameters stay about the same): see SwiGLU.
        positions: "learned" (GPT-2: a table of context_length vectors added to the tokens) or "rope"
            (rotary positions applied to queries and keys, utils.rope; no table).
        rope_base: RoPE's base (10,000 in Llama 2, 500,000 in Llama 3); unused with learned positions.
        n_kv_head: key/value heads per block; 0 = n_head (multi-head attention); a divisor of n_head
            = grouped-query attention (1 = multi-query). Fewer heads, a smaller KV cache.
        qk_norm: RMSNorm on each query and key head before the scores (Qwen 3).
        mlp_hidden: the MLP's hidden width; 0 = the usual rule (4 n_embd for GELU, swiglu_hidden for
            SwiGLU). Real models set it (Llama 3 8B: 14,336 for 4,096).
        norm_eps: the eps of every norm; 0 = the layer's usual one (1e-5 for LayerNorm, 1e-6 for RMSNorm).
    """

    vocab_size: int = 65
    context_length: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False
    tie_weights: bool = True
    norm: str = "layernorm"
    mlp: str = "gelu"
    positions: str = "learned"
    rope_base: float = 10000.0
    n_kv_head: int = 0
    qk_norm: bool = False
    mlp_hidden: int = 0
    norm_eps: float = 0.0

    def __repr__(self) -> str:
        # lesson 11's switches are shown only when set, so a GPT-2 configuration prints as it always did
        shown = [f for f in fields(self) if f.name not in MODERN_FIELDS or getattr(self, f.name) != f.default]
        return f"GPTConfig({', '.join(f'{f.name}={getattr(self, f.name)!r}' for f in shown)})"

    def __post_init__(self):
        check_field_types(self)
        for name in ("vocab_size", "context_length", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) <= 0:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {getattr(self, name)}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"n_embd={self.n_embd} must be divisible by n_head={self.n_head} (each head gets "
                f"n_embd / n_head features)"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        _check_choice("norm", self.norm, NORMS)
        _check_choice("mlp", self.mlp, MLPS)
        _check_choice("positions", self.positions, POSITIONS)
        if self.n_kv_head < 0 or (self.n_kv_head and self.n_head % self.n_kv_head):
            raise ValueError(f"GPTConfig.n_kv_head must be 0 (as many as n_head) or a divisor of n_head={self.n_head}, "
                             f"got {self.n_kv_head}")
        if self.mlp_hidden < 0 or self.norm_eps < 0:
            raise ValueError(f"GPTConfig.mlp_hidden and norm_eps must be >= 0 (0 = the usual value), got "
                             f"{self.mlp_hidden} and {self.norm_eps}")
        if self.positions == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError(f"rotary positions turn pairs of features: n_embd / n_head must be even, "
                             f"got {self.n_embd} / {self.n_head}")


def _check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"GPTConfig.{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")



class RMSNorm(nn.Module):
    """RMSNorm (Zhang & Sennrich 2019): y = x / sqrt(mean(x^2) + eps) * weight, over the last dimension.

    LayerNorm without the mean: it rescales each vector to a root-mean-square of 1 but does not
    centre it, and has a gain but no bias. One statistic fewer to compute, and in practice it trains
    as well. Equal to torch.nn.RMSNorm and to Llama's LlamaRMSNorm (tests/test_modern.py).
    """

    def __init__(self, n_embd: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(n_embd))

    def forward(self, x):
        # computed in float32 whatever the input's dtype, as Llama does: squares of half-precision
        # numbers overflow
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


def norm_layer(config) -> nn.Module:
    """The normalisation config.norm names, over n_embd features."""
    if config.norm == "rmsnorm":
        return RMSNorm(config.n_embd, eps=config.norm_eps or 1e-6)
    return nn.LayerNorm(config.n_embd, eps=config.norm_eps or 1e-5, bias=config.bias)


def swiglu_hidden(n_embd: int, multiple_of: int = 32) -> int:
    """SwiGLU's hidden size: 8/3 of n_embd (its three matrices then hold about as many numbers as a
    4x GELU MLP's two), rounded up to a multiple of `multiple_of` (Llama rounds to 256; 32 suits our
    small widths)."""
    return multiple_of * math.ceil(8 * n_embd / 3 / multiple_of)


class SwiGLU(nn.Module):
    """The gated MLP of Llama (Shazeer 2020): proj(SiLU(gate(x)) * up(x)). Each token on its own.

    SiLU(z) = z * sigmoid(z). The gate decides, feature by feature, how much of `up`'s output passes.
    Equal to Llama's LlamaMLP with the same weights (gate_proj, up_proj, down_proj; tests/test_modern.py).
    """

    def __init__(self, config):
        super().__init__()
        hidden = config.mlp_hidden or swiglu_hidden(config.n_embd)
        self.gate = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.up = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.proj(F.silu(self.gate(x)) * self.up(x)))


def mlp_layer(config) -> nn.Module:
    """The MLP config.mlp names."""
    return SwiGLU(config) if config.mlp == "swiglu" else MLP(config)


class MLP(nn.Module):
    """Position-wise feed-forward network: widen 4x, GELU, project back. Each token on its own."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        # lesson 11's mlp_hidden when set (the translation Transformer's config has no such field)
        hidden = getattr(config, "mlp_hidden", 0) or 4 * config.n_embd
        self.fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """One transformer block: tokens talk to each other (attention), then each thinks alone (MLP)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln1 = norm_layer(config)
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, bias=config.bias,
                                       dropout=config.dropout, causal=True,
                                       n_kv_heads=config.n_kv_head or None, qk_norm=config.qk_norm,
                                       norm_eps=config.norm_eps or 1e-6,
                                       rope_base=config.rope_base if config.positions == "rope" else None)
        self.ln2 = norm_layer(config)
        self.mlp = mlp_layer(config)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, need_weights: bool = False, cache: KVCache | None = None):
        h = self.ln1(x)
        if need_weights:
            a, weights = self.attn(h, need_weights=True, cache=cache)
        else:
            a, weights = self.attn(h, cache=cache), None
        x = x + self.resid_dropout(a)  # the residual: attention adds to x rather than replacing it
        x = x + self.mlp(self.ln2(x))
        return x, weights


class GPT(nn.Module):
    """A decoder-only transformer language model: token ids (batch, n) -> next-token logits.

    The diagram at the top of this module is the whole forward pass. Logits at position t score
    every token of the vocabulary as the one that follows tokens 0..t; the causal attention masks
    make sure position t never sees a later token.

    Attributes (the parts a lesson takes apart):
        config: the GPTConfig it was built from.
        tok_emb: nn.Embedding(vocab_size, n_embd), the token table.
        pos_emb: nn.Embedding(context_length, n_embd), one learned vector per position.
        drop: dropout on the summed embeddings.
        blocks: nn.ModuleList of n_layer Blocks.
        ln_f: the final LayerNorm.
        head: nn.Linear(n_embd, vocab_size) to the logits; its weight is tok_emb.weight when
            config.tie_weights is True.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.n_embd)
        # learned positions: one vector per position; rotary ones live in the attention layers instead
        self.pos_emb = nn.Embedding(config.context_length, config.n_embd) if config.positions == "learned" else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = norm_layer(config)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            # The same matrix maps token -> vector and vector -> token scores: fewer parameters,
            # and rare tokens get their input and output vectors trained together.
            self.head.weight = self.tok_emb.weight
        self.apply(self._init_weights)
        # GPT-2's scaled init: each residual branch's last layer is shrunk by 1/sqrt(2 * n_layer) so
        # that the sum of 2 * n_layer branches keeps the residual stream's variance steady.
        for name, p in self.named_parameters():
            if name.endswith(("attn.out_proj.weight", "mlp.proj.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self, non_embedding: bool = False) -> int:
        """Parameters counted once each (a tied matrix counts once). non_embedding leaves out the
        position embedding (and the token embedding, unless it is tied to the head)."""
        n = sum(p.numel() for p in self.parameters())  # .parameters() yields shared tensors once
        if non_embedding:
            n -= self.pos_emb.weight.numel() if self.pos_emb is not None else 0
            if not self.config.tie_weights:  # untied, the token table is a pure lookup: leave it out too
                n -= self.tok_emb.weight.numel()
        return n

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        need_weights: bool = False,
        caches: list[KVCache] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor] | None]:
        """Next-token logits for token ids, and the loss when the right answers are given.

        Args:
            idx: token ids (batch, n), an integer tensor, n <= context_length.
            targets: optional ids (batch, n): targets[b, t] is the token that follows idx[b, t]
                (usually idx shifted by one).
            need_weights: also return each layer's attention weights (using the hand-written
                attention path).
            caches: one KVCache per layer (new_caches()), so that generation feeds only the new
                tokens: their positions continue after what the caches already hold.

        Returns:
            (logits, loss, weights):
            logits (batch, n, vocab_size), unnormalised scores for the next token at each position;
            loss, the mean cross-entropy of logits against targets (a scalar), or None without targets;
            weights, a list with one (batch, heads, n, n_k) tensor per layer, or None unless
            need_weights (n_k = n without a cache).
        """
        past = len(caches[0]) if caches else 0
        self._check_ids(idx, past)
        n = idx.shape[1]
        pos = torch.arange(past, past + n, device=idx.device)
        x = self.tok_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb(pos)
        x = self.drop(x)
        all_weights = []
        for i, block in enumerate(self.blocks):
            x, weights = block(x, need_weights=need_weights, cache=caches[i] if caches else None)
            all_weights.append(weights)
        logits = self.head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss, (all_weights if need_weights else None)

    def new_caches(self) -> list[KVCache]:
        return [KVCache() for _ in self.blocks]

    def _check_ids(self, idx: torch.Tensor, past: int = 0) -> None:
        if not isinstance(idx, torch.Tensor) or idx.dim() != 2 or idx.dtype not in (torch.long, torch.int):
            shape = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise ValueError(f"token ids must be an integer tensor of shape (batch, n), got {shape}")
        n = idx.shape[1]
        if n == 0:
            raise ValueError("the input is empty: give at least one token id")
        if past + n > self.config.context_length:
            raise ValueError(
                f"sequence of {past + n} tokens is longer than the model's context "
                f"context_length={self.config.context_length}. Crop it to the last {self.config.context_length} tokens "
                f"(idx[:, -{self.config.context_length}:]); utils.generation.generate does this for you."
            )
        check_token_ids(idx, self.config.vocab_size)
