"""Checks for the exercises of lesson 07 (generation: temperature, a repetition penalty, a KV-cache step,
beam search).

The references come from torch, utils.generation and utils.attention, never from the solution notebook.
"""

from __future__ import annotations

import math

import torch

from ..attention import causal_mask, scaled_dot_product_attention
from ..generation import beam_search as _beam_search
from ..generation import repetition_penalty as _repetition_penalty
from .core import Case, Mistake, difference, run_cases, seeded_randint, seeded_randn
from .hints import exercise

__all__ = ["check_temperature_probs", "check_repetition_penalty", "check_cached_attention", "check_beam_search"]


# --- Exercise 7.1 ----------------------------------------------------------------------------------


def _temperature_reference(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.softmax(logits / temperature, dim=-1)


def _exp_over_sum(scores: torch.Tensor) -> torch.Tensor:
    """A softmax without the shift: exp overflows for large scores."""
    return torch.exp(scores) / torch.exp(scores).sum(-1, keepdim=True)


@exercise("7.1", "Temperature", "easy", 5, hints=(
    "The temperature reshapes the scores before they become probabilities: a small T exaggerates the "
    "differences between logits, a large T shrinks them. Each row is one distribution and sums to 1.",
    "Scale the logits by the temperature first (T = 2 must flatten, so the scores shrink), then turn every "
    "row into probabilities over the vocabulary, the last dim, with a softmax that cannot overflow.",
    "torch.softmax(..., dim=-1) subtracts each row's maximum for you; give it the logits divided by T.",
))
def check_temperature_probs(temperature_probs) -> None:
    """Exercise 7.1: softmax(logits / T) over the last dim, for one row or a batch of rows."""
    three = torch.tensor([2.0, 1.0, 0.0])
    run_cases(
        "temperature_probs",
        temperature_probs,
        _temperature_reference,
        [
            Case((three, 1.0), hint="At T = 1 the temperature changes nothing: this is the plain softmax of the "
                 "logits."),
            Case((three, 0.5), hint="T = 0.5 must sharpen: the top token gets more than at T = 1 (0.867 instead "
                 "of 0.665). The temperature acts on the logits, before they become probabilities."),
            Case((three, 2.0), hint="T = 2 must flatten: every probability moves towards 1/3."),
            Case((seeded_randn(3, 5, seed=1), 0.7), hint="A batch of 3 rows: each row is its own distribution "
                 "over the vocabulary (the last dim) and sums to 1 on its own."),
            Case((torch.tensor([1000.0, 999.0, 0.0]), 0.5), hint="Logits near 1000: exp overflows to inf and "
                 "inf / inf is NaN, unless each row is shifted by its maximum before exp."),
        ],
        hint="Each row of the result is a probability distribution over the vocabulary, reshaped by T.",
        exercise="7.1",
        mistakes=[
            Mistake(lambda z, t: torch.softmax(z, dim=-1) / t, "the probabilities were divided by T after the "
                    "softmax, so they no longer sum to 1: T divides the logits, before the softmax."),
            Mistake(lambda z, t: torch.softmax(z * t, dim=-1), "the logits were multiplied by T: then T = 2 "
                    "sharpens instead of flattening. Divide them by T."),
            Mistake(lambda z, t: torch.softmax(z / t, dim=0), "the softmax ran over the first dim: in a batch "
                    "each row (the last dim) is one distribution."),
            Mistake(lambda z, t: torch.softmax(z, dim=-1) ** (1 / t), "the probabilities were raised to the "
                    "power 1/T but not renormalised: each row must sum to 1 again."),
            Mistake(lambda z, t: _exp_over_sum(z / t), "exp overflowed to inf and inf / inf is NaN: shift each "
                    "row by its maximum before exp (softmax does not change when every score moves by the same "
                    "amount)."),
        ],
    )


# --- Exercise 7.2 ----------------------------------------------------------------------------------


def _seen(logits: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(logits, dtype=torch.bool).scatter(-1, previous, True)


def _divide_all(logits, previous, theta):
    return torch.where(_seen(logits, previous), logits / theta, logits)


def _per_occurrence(logits, previous, theta):
    counts = torch.zeros_like(logits).scatter_add(-1, previous, torch.ones_like(previous, dtype=logits.dtype))
    return torch.where(logits > 0, logits / theta ** counts, logits * theta ** counts)


def _every_row(logits, previous, theta):
    union = _seen(logits, previous).any(dim=0, keepdim=True).expand_as(logits)
    return torch.where(union & (logits > 0), logits / theta, torch.where(union, logits * theta, logits))


def _inverted(logits, previous, theta):
    penalised = torch.where(logits > 0, logits / theta, logits * theta)
    return torch.where(_seen(logits, previous), logits, penalised)


@exercise("7.2", "A repetition penalty", "medium", 15, hints=(
    "Only the tokens a row has already produced change. Mark them first, per row, then lower their "
    "logits; whether lowering means dividing or multiplying depends on the logit's sign.",
    "A bool tensor shaped like the logits, True where the token occurs in that row's previous ids, is the "
    "mark: setting True at the positions that previous names along the last dim builds it in one "
    "operation, and a token that occurs twice is simply marked twice. Then pick, entry by entry, the "
    "penalised logit or the original one.",
    "Tensor.scatter(-1, previous, True) on a False tensor shaped like the logits gives the mark; "
    "torch.where(condition, a, b) picks per entry: once on the sign (divide the positive logits by theta, "
    "multiply the others), once on the mark.",
))
def check_repetition_penalty(repetition_penalty) -> None:
    """Exercise 7.2: CTRL's repetition penalty on (batch, vocab) logits, without Python loops."""
    run_cases(
        "repetition_penalty",
        repetition_penalty,
        _repetition_penalty,
        [
            Case((torch.tensor([[2.0, 1.0, 0.5, 3.0]]), torch.tensor([[0, 3]]), 1.5),
                 hint="Tokens 0 and 3 have appeared and their logits are positive: they are divided by theta. "
                 "The other logits stay exactly as they are."),
            Case((torch.tensor([[2.0, -1.0, 0.5, -3.0, 0.0]]), torch.tensor([[1, 3, 4]]), 2.0),
                 hint="Tokens 1 and 3 have negative logits. Dividing -1 by 2 gives -0.5, which makes the token "
                 "MORE likely; a penalty must lower it, to -2. A logit of 0 stays 0."),
            Case((torch.tensor([[1.0, 2.0, 4.0, -2.0]]), torch.tensor([[2, 2, 2, 0]]), 2.0),
                 hint="Token 2 occurs three times but is penalised once: 4 becomes 2, not 0.5."),
            Case((2 * seeded_randn(3, 10, seed=5), seeded_randint(0, 10, (3, 6), seed=6), 1.3),
                 label="repetition_penalty(logits (3, 10), previous (3, 6), 1.3): a batch of 3 rows",
                 hint="Each row has its own history: a token that appeared in row 0 is penalised in row 0 only."),
            Case((2 * seeded_randn(2, 8, seed=7), seeded_randint(0, 8, (2, 5), seed=8), 0.8),
                 label="repetition_penalty(logits (2, 8), previous (2, 5), 0.8): theta below 1",
                 hint="The same rule with theta = 0.8 makes repeated tokens more likely (a bonus, not a penalty)."),
            Case((seeded_randn(2, 6, seed=9), torch.zeros(2, 0, dtype=torch.long), 1.2),
                 label="repetition_penalty(logits (2, 6), previous (2, 0), 1.2): nothing generated yet",
                 hint="With no previous tokens nothing is penalised: the logits come back unchanged."),
        ],
        hint="Only the logits of tokens that occur in their row's previous ids change, each once.",
        exercise="7.2",
        no_loops="every row and every token at once, with tensor operations",
        mistakes=[
            Mistake(_divide_all, "every repeated token's logit was divided by theta, negative ones too: that moves "
                    "a negative logit towards 0 and makes the token MORE likely. Multiply negative logits by theta."),
            Mistake(_per_occurrence, "a token was penalised once per occurrence: it counts once, however often it "
                    "appeared."),
            Mistake(_every_row, "the tokens of every row were penalised in every row: each row of the batch has its "
                    "own history, previous[b]."),
            Mistake(_inverted, "the tokens that have NOT appeared were penalised, and the repeated ones left alone: "
                    "the mark is the other way round."),
            Mistake(lambda z, p, t: torch.where(_seen(z, p), z - t, z), "theta was subtracted from the logits (that "
                    "is a presence penalty, another rule): divide positive logits by theta, multiply negative ones."),
            Mistake(lambda z, p, t: torch.where(z > 0, z / t, z * t), "every logit was penalised, including tokens "
                    "that never appeared: only the tokens in previous change."),
        ],
    )


# --- Exercise 7.3 ----------------------------------------------------------------------------------


def _cached_attention_reference(q_new, k_cache, v_cache, k_new, v_new):
    k_all = torch.cat([k_cache, k_new], dim=2)
    v_all = torch.cat([v_cache, v_new], dim=2)
    mask = causal_mask(q_new.shape[2], k_all.shape[2])  # the new queries are the last positions
    output, _ = scaled_dot_product_attention(q_new, k_all, v_all, mask)
    return output, k_all, v_all


def _cached_with(order="cache first", mask="bottom-right", scale=True):
    """A cached-attention step with one mistake chosen by the arguments."""

    def cached_attention(q_new, k_cache, v_cache, k_new, v_new):
        first, second = ((k_cache, v_cache), (k_new, v_new)) if order == "cache first" else ((k_new, v_new),
                                                                                             (k_cache, v_cache))
        k_all, v_all = torch.cat([first[0], second[0]], dim=2), torch.cat([first[1], second[1]], dim=2)
        n_q, n_k = q_new.shape[2], k_all.shape[2]
        allowed = {"bottom-right": causal_mask(n_q, n_k), "none": None,
                   "top-left": torch.ones(n_q, n_k, dtype=torch.bool).tril()}[mask]
        factor = 1.0 if scale else math.sqrt(q_new.shape[-1])  # undoes the 1/sqrt(d) scaling
        output, _ = scaled_dot_product_attention(q_new * factor, k_all, v_all, allowed)
        return output, k_all, v_all

    return cached_attention


def _compare_triple(expected, got) -> str | None:
    if not isinstance(got, tuple | list) or len(got) != 3:
        return (
            f"expected a tuple (output, k_all, v_all), got {type(got).__name__}"
            + (f" of length {len(got)}" if isinstance(got, tuple | list) else "")
        )
    for name, e, g in zip(("output", "k_all", "v_all"), expected, got, strict=True):
        why = difference(e, g, rtol=1e-5, atol=1e-5)
        if why:
            return f"{name}: {why}"
    return None


def _step(batch: int, heads: int, cached: int, new: int, d: int, seed: int) -> tuple:
    """(q_new, k_cache, v_cache, k_new, v_new) with shapes (batch, heads, n, d)."""
    q_new = seeded_randn(batch, heads, new, d, seed=seed)
    k_cache = seeded_randn(batch, heads, cached, d, seed=seed + 1)
    v_cache = seeded_randn(batch, heads, cached, d, seed=seed + 2)
    k_new = seeded_randn(batch, heads, new, d, seed=seed + 3)
    v_new = seeded_randn(batch, heads, new, d, seed=seed + 4)
    return q_new, k_cache, v_cache, k_new, v_new


@exercise("7.3", "One attention step with a KV cache", "medium", 20, hints=(
    "The cache is the past: the new keys and values go after it, and the new queries attend to all of it, "
    "past and new, under the causal rule (no query sees a token that comes after it).",
    "The positions run along dim 2 of (batch, heads, n, d_head). The new queries are the LAST n_new of the "
    "n_all positions, so the causal mask is (n_new, n_all) with its triangle in the bottom-right corner; "
    "utils.attention.causal_mask(n_q, n_k) builds exactly that, a square mask or is_causal=True does not.",
    "torch.cat along dim 2, the cache first, for the keys and for the values. The mask comes from "
    "causal_mask(number of new queries, number of keys after appending). scaled_dot_product_attention "
    "returns (output, weights): only the output goes into the tuple, with the two grown caches.",
))
def check_cached_attention(cached_attention) -> None:
    """Exercise 7.3: append the new keys/values to the cache, then attend from the new queries
    (the last positions) to every key, causally."""
    run_cases(
        "cached_attention",
        cached_attention,
        _cached_attention_reference,
        [
            Case(_step(1, 2, 4, 1, 8, seed=10),
                 label="one new token after 4 cached ones: (batch 1, heads 2, d_head 8)",
                 hint="The one new query is the last of 5 positions, so it may attend to all 5 keys. Check that "
                 "the cache comes first and the new token last, along the positions, and that the scores are "
                 f"scaled by sqrt(d_head) = {math.sqrt(8):.3f}."),
            Case(_step(1, 2, 4, 3, 8, seed=20),
                 label="3 new tokens after 4 cached ones",
                 hint="The 3 new queries are positions 4, 5 and 6 of 7: query i may see keys 0 .. 4 + i, but not "
                 "the new tokens after it. A square 3 x 3 causal mask puts the triangle in the wrong corner."),
            Case(_step(2, 1, 0, 3, 4, seed=30),
                 label="an empty cache (0 positions) and a prompt of 3 tokens",
                 hint="An empty cache is the first step, the prompt: plain causal self-attention over the 3 new "
                 "tokens. Concatenating a tensor with 0 positions works."),
            Case(_step(2, 4, 6, 2, 16, seed=40),
                 label="batch 2, heads 4, d_head 16: 2 new tokens after 6 cached ones",
                 hint="Shapes are (batch, heads, n, d_head): the positions are dim 2, for the cache and for the "
                 "mask (n_q = 2, n_k = 8). The output has one row per new query: (2, 4, 2, 16)."),
        ],
        hint="Return (output, k_all, v_all): the cache with the new positions appended, and causal attention of "
        "the new queries over all of it.",
        compare=_compare_triple,
        exercise="7.3",
        mistakes=[
            Mistake(_cached_with(mask="top-left"), "the causal mask is aligned to the top-left corner (as a square "
                    "mask or is_causal=True does): the new queries are the LAST positions, so query i sees every "
                    "cached key and the new ones up to itself."),
            Mistake(_cached_with(mask="none"), "no causal mask: a new query saw the new tokens after it."),
            Mistake(_cached_with(order="new first"), "the new keys and values were put before the cached ones: the "
                    "cache holds the earlier positions, so it comes first."),
            Mistake(_cached_with(scale=False), "the scores were not divided by sqrt(d_head)."),
        ],
    )


# --- Exercise 7.4 ----------------------------------------------------------------------------------


class _FixedModel:
    """A fixed 'language model' for the check: log-probabilities of the next token from the last token and
    from the sum of all the ids so far (so that a beam's whole history matters). Counts its calls."""

    def __init__(self, vocab: int, seed: int, trap: bool = False):
        self.vocab, self.trap, self.calls = vocab, trap, 0
        if not trap:
            self.by_last = 2 * seeded_randn(vocab, vocab, seed=seed, dtype=torch.float64)
            self.by_sum = 2 * seeded_randn(3, vocab, seed=seed + 1, dtype=torch.float64)

    def __call__(self, ids):
        if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype != torch.long:
            got = f"shape {tuple(ids.shape)}, dtype {ids.dtype}" if isinstance(ids, torch.Tensor) else \
                type(ids).__name__
            raise TypeError(f"log_probs takes every beam at once: an int64 tensor (beams, n); got {got}")
        self.calls += 1
        if self.trap:
            return _trap_log_probs(ids)
        return torch.log_softmax(self.by_last[ids[:, -1]] + self.by_sum[ids.sum(-1) % 3], dim=-1)


def _trap_log_probs(ids: torch.Tensor) -> torch.Tensor:
    """Token 0 is the likeliest first token, but nothing after it is likely; token 1 leads to a token of 0.9.
    The three best texts of two tokens (ranked 0.36, 0.216, 0.204) all differ from greedy's second best."""
    if ids.shape[1] == 1:
        return torch.tensor([0.6, 0.4, 1e-9], dtype=torch.float64).log().expand(len(ids), 3)
    table = torch.tensor([[0.36, 0.34, 0.30], [0.9, 0.05, 0.05], [0.1, 0.1, 0.8]], dtype=torch.float64).log()
    return table[ids[:, -1]]


def _searching(search):
    """The check's view of a beam search written as the learner writes it: build the fixed model, run the
    search on it, and report the result together with the number of calls it made."""

    def run(vocab, seed, prompt, steps, beam_width):
        model = _FixedModel(vocab, seed, trap=seed < 0)
        result = search(model, torch.tensor(prompt), steps, beam_width)
        return {"result": result, "calls": model.calls}

    return run


def _compare_search(expected, got) -> str | None:
    if got["calls"] != expected["calls"]:
        return (f"log_probs was called {got['calls']} times for {expected['calls']} steps: call it once per step, "
                "with every beam in one (beams, n) tensor")
    result = got["result"]
    if not isinstance(result, tuple | list) or len(result) != 2:
        return f"expected a tuple (ids, score), got {type(result).__name__}"
    want_ids, want_score = expected["result"]
    ids, score = result
    if isinstance(ids, torch.Tensor) and ids.dim() == 1 and len(ids) < len(want_ids):
        return f"ids has {len(ids)} tokens, expected {len(want_ids)}: return the whole beam, the prompt included"
    why = difference(want_ids, ids)
    if why:
        return f"ids: {why}"
    if isinstance(score, torch.Tensor) or isinstance(score, bool) or not isinstance(score, (int, float)):
        return f"score: expected a Python float, got {type(score).__name__}"
    return None if math.isclose(score, want_score, rel_tol=1e-6, abs_tol=1e-9) else "score: the numbers differ"


def _greedy(log_probs, prompt, steps, beam_width):
    return _beam_search(log_probs, prompt, steps, 1)


def _search_with(rank="total", pick="best", history="whole", score="log"):
    """A beam search with one mistake chosen by the arguments."""

    def search(log_probs, prompt, steps, beam_width):
        beams = prompt[None]
        scores = torch.zeros(len(beams), dtype=torch.float64)
        for _ in range(steps):
            step = log_probs(beams if history == "whole" else beams[:, -1:])
            totals = step + (scores[:, None] if rank == "total" else 0)
            vocab = totals.shape[1]
            best = totals.flatten().topk(min(beam_width, totals.numel()))
            beam, token = best.indices // vocab, best.indices % vocab
            scores = scores[beam] + step[beam, token] if rank != "total" else best.values
            beams = torch.cat([beams[beam], token[:, None]], dim=1)
        chosen = 0 if pick == "best" else -1
        return beams[chosen], float(scores[chosen].exp() if score == "probability" else scores[chosen])

    return search


@exercise("7.4", "Beam search", "hard", 25, hints=(
    "Greedy decoding keeps one text and commits to its likeliest next token. Beam search keeps several "
    "candidate texts (beams) with their scores, the sum of the log-probabilities of the tokens each added, "
    "and at every step keeps the best extensions of all of them together.",
    "One step: ask log_probs for every beam at once, add each beam's score to its row, which gives the score "
    "of every (beam, token) extension in a (beams, vocab) table; keep the beam_width highest of the whole "
    "table, and turn each kept position back into (which beam, which token). Start from the prompt alone.",
    "Flatten the (beams, vocab) table and call .topk(k) on it, with k = min(beam_width, its size); a flat "
    "index i is beam i // vocab and token i % vocab. New beams: the old rows picked by beam, with the token "
    "appended (torch.cat along dim 1). At the end the first beam is the best; return it and float(its score).",
))
def check_beam_search(beam_search) -> None:
    """Exercise 7.4: beam search on a fixed model given as a log-probability function."""
    if not callable(beam_search):
        run_cases("beam_search", beam_search, _beam_search, [], exercise="7.4")  # says "pass the function"
    run_cases(
        "beam_search",
        _searching(beam_search),
        _searching(_beam_search),
        [
            Case((5, 1, [2], 3, 1), label="beam_width 1 (greedy decoding), 3 steps, vocabulary of 5",
                 hint="With one beam, every step keeps the likeliest extension: this is greedy decoding."),
            Case((3, -1, [2], 2, 3), label="beam_width 3, 2 steps, a model whose likeliest first token leads nowhere",
                 hint="Token 0 is the likelier first token (0.6 against 0.4), but after it no token has more "
                 "than 0.36, while token 1 is followed by a token of 0.9: 0.4 x 0.9 = 0.36 beats 0.6 x 0.36 = "
                 "0.216. A beam is ranked by the total score of all the tokens it added."),
            Case((6, 3, [0, 4], 4, 3), label="beam_width 3, 4 steps, a prompt of 2 tokens, vocabulary of 6",
                 hint="Keep the best beam_width extensions of ALL beams together, not the best of each beam. "
                 "log_probs needs every beam whole, prompt included: the model looks at all the ids."),
            Case((3, 5, [1], 3, 5), label="beam_width 5 with a vocabulary of 3: fewer beams than the width at first",
                 hint="After the first step there are only 3 extensions, then 9: keep min(beam_width, the number "
                 "of extensions) of them. Start from the prompt alone, one beam: copies of it would be the same "
                 "text several times."),
            Case((3, 7, [2], 3, 27), label="beam_width 27 = 3 ** 3: every continuation is tried",
                 hint="A beam this wide keeps every continuation, so the result is the most probable of all 27."),
            Case((4, 9, [3, 1], 0, 2), label="0 steps: nothing to add",
                 hint="With no steps the answer is the prompt itself, with score 0.0."),
        ],
        hint="Return (ids, score): the best beam as a 1-d int64 tensor, prompt included, and its total "
        "log-probability as a Python float.",
        compare=_compare_search,
        exercise="7.4",
        mistakes=[Mistake(_searching(search), says) for search, says in [
            (_greedy, "every step kept only the single best extension (greedy decoding): keep the beam_width best "
             "DIFFERENT extensions. (A search that starts from beam_width copies of the prompt does this too: the "
             "copies stay one text; start from one beam.)"),
            (_search_with(rank="last"), "beams were ranked by the log-probability of their newest token alone: a "
             "beam's score is the sum over all the tokens it added, so add each beam's score to its row first."),
            (_search_with(pick="worst"), "the last beam was returned: topk sorts best first, so the first beam is "
             "the best."),
            (_search_with(history="last"), "log_probs was given only the newest token of each beam: pass the whole "
             "beams, prompt included (the model may look at all the ids)."),
            (_search_with(score="probability"), "the score must be the total log-probability (a number <= 0), "
             "not a probability."),
        ]],
    )
