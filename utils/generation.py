"""Turning a trained GPT's next-token scores into text: greedy, temperature, top-k, top-p, a
repetition penalty, and beam search.

Every strategy is the same loop: run the model, take the logits of the last position, turn them
into a choice of next token, append it, repeat. They differ only in how the choice is made.
Beam search runs the same loop on several candidate texts at once and keeps the `beam_width`
most probable ones.
"""

from __future__ import annotations

from collections.abc import Callable

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


def repetition_penalty(logits: torch.Tensor, previous: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty (Keskar et al. 2019), in the form most libraries apply it.

    Every token that occurs in `previous` has its logit divided by `penalty` if it is positive and
    multiplied by it if it is negative, so that penalty > 1 always makes the token less likely
    (and penalty < 1 more likely). A token counts once, however often it occurs.

    logits: (..., vocab); previous: the ids so far, (..., n) with the same leading dims (n may be 0).
    Returns a new tensor shaped like logits.
    """
    _check_repetition_args(logits, previous, penalty)
    seen = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, previous, True)
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def beam_search(
    log_probs: Callable[[torch.Tensor], torch.Tensor], prompt: torch.Tensor, steps: int, beam_width: int
) -> tuple[torch.Tensor, float]:
    """The continuation of `prompt` by `steps` tokens that beam search finds, and its log-probability.

    A beam is a candidate text with a score, the sum of the log-probabilities of its new tokens. At
    each step every beam is extended by every token of the vocabulary, and the `beam_width`
    extensions with the highest scores become the new beams. beam_width=1 is greedy decoding; a
    width of vocab ** steps tries every continuation. No end-of-text token: every beam grows by
    exactly `steps` tokens.

    log_probs: a function from ids (beams, n) to next-token log-probabilities (beams, vocab), e.g.
        next_token_log_probs(model); it is called once per step, with every beam at once.
    prompt: the ids to continue, shape (n,).
    Returns (ids, score): the best beam, shape (n + steps,), and its score as a float.
    """
    _check_beam_args(prompt, steps, beam_width)
    beams = prompt[None]  # (1, n): the search starts from one beam, the prompt
    scores = torch.zeros(1)
    for _ in range(steps):
        totals = scores[:, None] + log_probs(beams)  # (beams, vocab): each beam extended by each token
        vocab = totals.shape[-1]
        best = totals.flatten().topk(min(beam_width, totals.numel()))  # sorted, best first
        beams = torch.cat([beams[best.indices // vocab], (best.indices % vocab)[:, None]], dim=1)
        scores = best.values
    return beams[0], float(scores[0])


def next_token_log_probs(model) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function beam_search needs, for our GPT: ids (beams, n) -> log-probabilities (beams, vocab)
    of the token after each beam (the model reads at most its last context_length tokens)."""

    @torch.no_grad()
    def log_probs(ids: torch.Tensor) -> torch.Tensor:
        logits, _, _ = model(ids[:, -model.config.context_length:])
        return F.log_softmax(logits[:, -1, :], dim=-1)

    return log_probs


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


def _check_repetition_args(logits: torch.Tensor, previous: torch.Tensor, penalty: float) -> None:
    if not (isinstance(penalty, (int, float)) and not isinstance(penalty, bool) and 0 < penalty < float("inf")):
        raise ValueError(f"the repetition penalty must be a positive number (1 = no penalty, 1.2 is usual), got "
                         f"{penalty!r}")
    if not isinstance(previous, torch.Tensor) or previous.dtype not in (torch.long, torch.int):
        raise TypeError("previous must be a tensor of token ids (int64), the text so far: (..., n)")
    if previous.shape[:-1] != logits.shape[:-1]:
        raise ValueError(f"previous has shape {tuple(previous.shape)} but logits {tuple(logits.shape)}: they need "
                         "the same leading dims, one row of ids for each row of logits")
    if previous.numel() and (int(previous.min()) < 0 or int(previous.max()) >= logits.shape[-1]):
        raise ValueError(f"the ids in previous must lie in 0..{logits.shape[-1] - 1}, the vocabulary of the logits")


def _check_beam_args(prompt: torch.Tensor, steps: int, beam_width: int) -> None:
    if not isinstance(prompt, torch.Tensor) or prompt.dim() != 1 or prompt.dtype not in (torch.long, torch.int):
        raise ValueError("the prompt must be a 1-d tensor of token ids, e.g. torch.tensor(tok.encode('ROMEO:'))")
    for name, value, least in (("steps", steps, 0), ("beam_width", beam_width, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")


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
