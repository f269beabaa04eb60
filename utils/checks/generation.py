"""Checks for the exercises of lesson 07 (generation: temperature, top-p, a KV-cache step).

The references come from torch, utils.generation and utils.attention, never from the solution notebook.
"""

from __future__ import annotations

import math

import torch

from ..attention import causal_mask, scaled_dot_product_attention
from ..generation import top_p_filter
from .core import Case, difference, run_cases, seeded_randn

__all__ = ["check_temperature_probs", "check_top_p", "check_cached_attention"]


def _temperature_reference(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.softmax(logits / temperature, dim=-1)


def check_temperature_probs(temperature_probs) -> None:
    """Exercise 7.1: softmax(logits / T) over the last dim, for one row or a batch of rows."""
    three = torch.tensor([2.0, 1.0, 0.0])
    run_cases(
        "temperature_probs",
        temperature_probs,
        _temperature_reference,
        [
            Case((three, 1.0), hint="At T = 1 this is the plain softmax of the logits over the last dim."),
            Case(
                (three, 0.5),
                hint="T = 0.5 sharpens: the top token should get more than at T = 1 (0.867 instead of 0.665). "
                "Divide the logits by T BEFORE the softmax, softmax(logits / T); dividing the probabilities "
                "after it gives numbers that do not sum to 1.",
            ),
            Case(
                (three, 2.0),
                hint="T = 2 flattens: the probabilities move towards 1/3 each. Divide by T, do not multiply.",
            ),
            Case(
                (seeded_randn(3, 5, seed=1), 0.7),
                hint="A batch of 3 rows: each row is its own distribution, so the softmax runs over the last "
                "dim (dim=-1) and every row sums to 1.",
            ),
            Case(
                (torch.tensor([1000.0, 999.0, 0.0]), 0.5),
                hint="Large logits: exp(2000) overflows to inf and inf / inf is NaN. Subtract each row's "
                "maximum before exp, or use torch.softmax, which does it for you.",
            ),
        ],
        hint="probs = torch.softmax(logits / T, dim=-1).",
    )


def _compare_filtered(expected: torch.Tensor, got) -> str | None:
    """Say which tokens were kept (finite logits) when they differ, then whether kept logits changed."""
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(expected.shape):
        return difference(expected, got)
    got = got.detach().cpu().double()
    if torch.isnan(got).any():
        return "the result contains NaN"
    want_keep, got_keep = torch.isfinite(expected), torch.isfinite(got)
    if not torch.equal(want_keep, got_keep):
        rows_want, rows_got = want_keep.reshape(-1, want_keep.shape[-1]), got_keep.reshape(-1, got_keep.shape[-1])
        row = int((rows_want != rows_got).any(dim=-1).nonzero()[0])
        where = f"row {row}: " if rows_want.shape[0] > 1 else ""
        message = (f"{where}keeps the tokens at positions {rows_got[row].nonzero().flatten().tolist()}, "
                   f"expected {rows_want[row].nonzero().flatten().tolist()}")
        if (torch.isfinite(got) & (got < -1e4)).any():
            message += "; removed tokens must be float('-inf'), not a large negative number"
        elif got.min() >= 0 and got.max() <= 1:
            message += "; this looks like probabilities: return the logits, with -inf for removed tokens"
        return message
    why = difference(expected[want_keep], got[want_keep])
    if why:
        return f"the right tokens are kept, but their logits changed ({why}): return them exactly as given"
    return None


def check_top_p(top_p) -> None:
    """Exercise 7.2: nucleus filtering of logits (..., vocab): removed tokens become -inf."""
    # Probabilities in vocabulary order, not sorted, so that sorting (and un-sorting) matters.
    five = torch.tensor([0.10, 0.50, 0.05, 0.20, 0.15]).log()
    sure = torch.tensor([0.03, 0.90, 0.07]).log()
    run_cases(
        "top_p",
        top_p,
        top_p_filter,
        [
            Case(
                (five, 0.8),
                hint="Sorted, the probabilities are 0.5, 0.2, 0.15, 0.1, 0.05. 0.5 + 0.2 = 0.7 is not yet 0.8, "
                "so the token that crosses p (0.15) stays: keep 3 tokens. A token stays when the mass of the "
                "tokens BEFORE it (more likely than it) is below p. Return logits, not probabilities.",
            ),
            Case(
                (sure, 0.5),
                hint="The most likely token always stays, even when its probability alone (0.9) is more than p; "
                "otherwise nothing would be left to sample from.",
            ),
            Case(
                (seeded_randn(1, 6, seed=2), 1.0),
                hint="p = 1 keeps every token. Compare the mass before each token with p (strictly below p "
                "stays): a cumulative sum that ends at 0.9999999 or 1.0000001 then cannot remove the last one.",
            ),
            Case(
                (2 * seeded_randn(3, 10, seed=3), 0.9),
                hint="Each row on its own, along the last dim: sort with dim=-1, cumsum with dim=-1, then put "
                "the decision back in vocabulary order (e.g. scatter it with the indices the sort returned). "
                "The result must not be sorted.",
            ),
            Case(
                (torch.tensor([13.0, 11.0, 12.0, 10.0, 9.0]), 0.6),
                hint="The input is logits, not probabilities: turn them into probabilities with a softmax "
                "(over the last dim) before adding them up.",
            ),
        ],
        hint="Return a tensor shaped like logits: the kept tokens' logits unchanged, the removed ones "
        "float('-inf'). Sort the probabilities in descending order, mass_before = cumsum - probs, "
        "remove where mass_before >= p, and map that back to the original order.",
        compare=_compare_filtered,
    )


def _cached_attention_reference(q_new, k_cache, v_cache, k_new, v_new):
    k_all = torch.cat([k_cache, k_new], dim=2)
    v_all = torch.cat([v_cache, v_new], dim=2)
    mask = causal_mask(q_new.shape[2], k_all.shape[2])  # the new queries are the last positions
    output, _ = scaled_dot_product_attention(q_new, k_all, v_all, mask)
    return output, k_all, v_all


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


def check_cached_attention(cached_attention) -> None:
    """Exercise 7.3: append the new keys/values to the cache, then attend from the new queries
    (the last positions) to every key, causally."""
    run_cases(
        "cached_attention",
        cached_attention,
        _cached_attention_reference,
        [
            Case(
                _step(1, 2, 4, 1, 8, seed=10),
                label="one new token after 4 cached ones: (batch 1, heads 2, d_head 8)",
                hint="Append along dim 2 (the positions), old ones first: torch.cat([k_cache, k_new], dim=2), "
                "and the same for v. The one new query is the last position, so it may attend to all 5 keys "
                "(a top-left causal mask, as is_causal=True gives, would leave it only key 0). Scale the "
                f"scores by sqrt(d_head) = sqrt(8) = {math.sqrt(8):.3f}.",
            ),
            Case(
                _step(1, 2, 4, 3, 8, seed=20),
                label="3 new tokens after 4 cached ones",
                hint="The 3 new queries are positions 4, 5 and 6 of 7: query i may see keys 0 .. 4 + i, not the "
                "new tokens after it. Use utils.attention.causal_mask(n_q, n_k), which puts the queries at "
                "the end. A square causal_mask(3), or F.scaled_dot_product_attention(..., is_causal=True), "
                "aligns the triangle to the top-left, which is wrong here.",
            ),
            Case(
                _step(2, 1, 0, 3, 4, seed=30),
                label="an empty cache (0 positions) and a prompt of 3 tokens",
                hint="An empty cache is the first step, the prompt: this is plain causal self-attention over the "
                "3 new tokens. torch.cat works with a tensor of 0 positions.",
            ),
            Case(
                _step(2, 4, 6, 2, 16, seed=40),
                label="batch 2, heads 4, d_head 16: 2 new tokens after 6 cached ones",
                hint="Shapes are (batch, heads, n, d_head): the positions are dim 2, for the cache and for the "
                "mask (n_q = 2, n_k = 8). The output has one row per new query: (2, 4, 2, 16).",
            ),
        ],
        hint="k_all = cat([k_cache, k_new], dim=2); v_all likewise; output = attention of q_new over k_all, v_all "
        "with causal_mask(n_new, n_all); return (output, k_all, v_all).",
        compare=_compare_triple,
    )
