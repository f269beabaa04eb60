"""Turning a trained GPT's next-token scores into text: greedy, temperature, top-k, top-p.

Every strategy is the same loop: run the model, take the logits of the last position, turn them
into a choice of next token, append it, repeat. They differ only in how the choice is made.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits in each row and set the rest to -inf (probability 0)."""
    _check_top_k(k)
    k = min(k, logits.size(-1))
    kth_largest = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of tokens whose probabilities add up to at least p.

    The most likely token is always kept, so p close to 0 becomes greedy decoding.
    """
    _check_top_p(p)
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    probs = F.softmax(sorted_logits, dim=-1)
    # Probability mass of the tokens strictly before each one: a token is kept while that mass is < p.
    mass_before = torch.cumsum(probs, dim=-1) - probs
    remove_sorted = mass_before >= p
    remove = remove_sorted.scatter(-1, order, remove_sorted)  # back to vocabulary order
    return logits.masked_fill(remove, float("-inf"))


def next_token(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Choose the next token from last-position logits (batch, vocab) -> ids (batch, 1).

    temperature=0 means greedy (always the most likely token). Otherwise the logits are divided by
    the temperature (<1 sharpens, >1 flattens), optionally filtered by top-k and/or top-p, and a
    token is sampled from the resulting distribution.
    """
    _check_temperature(temperature)
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


@torch.no_grad()
def generate(
    model,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
    crop_prompt: bool = True,
) -> torch.Tensor:
    """Append max_new_tokens tokens to idx (batch, n) and return (batch, n + max_new_tokens).

    idx may also be one prompt as a list of ids (tok.encode's output) or a 1-D tensor.

    With use_cache, each step feeds only the newest token and reuses the keys and values of all
    earlier ones (utils.attention.KVCache); the output is the same as without the cache.
    The model sees at most context_length tokens: a longer prompt is cropped to its last context_length
    tokens (crop_prompt=True) or refused with a clear error; when the text outgrows the context
    during generation, the window slides (and the cache is rebuilt for the new window).
    """
    idx = _as_prompt(idx, model)
    _check_generate_args(model, idx, max_new_tokens, crop_prompt)
    context_length = model.config.context_length
    was_training = model.training
    model.eval()
    try:
        out = idx
        caches = None
        for _ in range(max_new_tokens):
            if use_cache:
                if caches is None or len(caches[0]) >= context_length:
                    # (Re)start: feed the whole (cropped) window once to fill the caches.
                    caches = model.new_caches()
                    logits, _, _ = model(out[:, -context_length:], caches=caches)
                else:
                    logits, _, _ = model(out[:, -1:], caches=caches)
            else:
                logits, _, _ = model(out[:, -context_length:])
            new = next_token(logits[:, -1, :], temperature, top_k, top_p, generator)
            out = torch.cat([out, new], dim=1)
    finally:  # also when something above raises: the model is left as it was found
        model.train(was_training)
    return out


# --- Input checks ------------------------------------------------------------------------------


def _check_top_k(k: int) -> None:
    if k <= 0:
        raise ValueError(f"top_k must be a positive integer, got {k}")


def _check_top_p(p: float) -> None:
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {p}")


def _check_temperature(temperature: float) -> None:
    if not temperature >= 0:  # written so that NaN fails too
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")


def _as_prompt(idx, model) -> torch.Tensor:
    """The prompt as a (batch, n) tensor on the model's device: a list of ids (tok.encode's output) is
    one prompt, a list of equally long lists is a batch, a 1-D tensor is one prompt."""
    if isinstance(idx, (list, tuple)):
        rows = [idx] if not idx or not isinstance(idx[0], (list, tuple)) else list(idx)
        if any(not all(isinstance(t, int) and not isinstance(t, bool) for t in row) for row in rows):
            raise TypeError("the prompt must be token ids (ints), e.g. generate(model, tok.encode('ROMEO:'), 100)")
        if len({len(row) for row in rows}) > 1:
            raise ValueError("the prompts of a batch must have the same length; generate them one at a time")
        device = next(model.parameters()).device
        return torch.tensor(rows, dtype=torch.long, device=device)
    if not isinstance(idx, torch.Tensor):
        raise TypeError(f"the prompt must be token ids: a list from tok.encode(...) or a tensor, got "
                        f"{type(idx).__name__}")
    return idx[None] if idx.dim() == 1 else idx  # a single prompt without its batch dim


def _check_generate_args(model, idx: torch.Tensor, max_new_tokens: int, crop_prompt: bool) -> None:
    if idx.dim() != 2 or idx.shape[1] == 0:
        raise ValueError(f"the prompt must be token ids of shape (batch, n) with n >= 1, got {tuple(idx.shape)}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    context_length = model.config.context_length
    if idx.shape[1] > context_length and not crop_prompt:
        raise ValueError(
            f"the prompt has {idx.shape[1]} tokens but the model's context is context_length={context_length}; "
            "shorten it or pass crop_prompt=True to keep only its last context_length tokens"
        )
