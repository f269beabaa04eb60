"""Checks for the exercises of lesson 03 (scaled dot-product attention and masks).

The references come from torch and utils.attention, never from the solution notebook.
"""

from __future__ import annotations

import math

import torch

from ..attention import causal_mask as _causal_mask
from ..attention import padding_mask as _padding_mask
from ..attention import scaled_dot_product_attention
from .core import Case, difference, run_cases, seeded_randn

__all__ = [
    "check_scaled_scores",
    "check_attention",
    "check_causal_mask",
    "check_padding_mask_from_lengths",
    "check_combined_mask",
]


def _scaled_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return torch.einsum("...qd,...kd->...qk", q, k) / math.sqrt(q.shape[-1])


def check_scaled_scores(scaled_scores) -> None:
    """Exercise 3.1: the scores q k^T / sqrt(d_k), for any leading (batch, heads) dims."""
    run_cases(
        "scaled_scores",
        scaled_scores,
        _scaled_scores,
        [
            Case(
                (torch.tensor([[2.0, 0.0, 2.0, 0.0]]), torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])),
                hint="d_k = 4 here: q.k0 = 4 and q.k1 = 0, divided by sqrt(4) = 2 gives [[2, 0]].",
            ),
            Case(
                (seeded_randn(2, 8, seed=1), seeded_randn(5, 8, seed=2)),
                hint="n_q = 2 queries and n_k = 5 keys give a (2, 5) score matrix: row i holds query i's "
                "score for every key. Divide by sqrt(d_k) = sqrt(8), not by d_k.",
            ),
            Case(
                (seeded_randn(3, 4, 6, seed=3), seeded_randn(3, 5, 6, seed=4)),
                hint="With a batch dim, transpose only the last two dims of k: k.transpose(-2, -1). "
                "k.T would reverse every dim.",
            ),
            Case((seeded_randn(2, 2, 3, 16, seed=5), seeded_randn(2, 2, 3, 16, seed=6))),
            Case(
                (seeded_randn(4, 1, seed=7), seeded_randn(3, 1, seed=8)),
                hint="d_k is the size of the LAST dim (q.shape[-1]); with d_k = 1 nothing is divided.",
            ),
        ],
        hint="scores = q @ k.transpose(-2, -1) / math.sqrt(d_k), with d_k = q.shape[-1].",
        atol=1e-5,
    )


def _compare_pair(expected, got) -> str | None:
    if not isinstance(got, tuple | list):
        return f"expected a pair (output, weights), got {type(got).__name__}"
    if len(got) != 2:
        return f"expected a pair (output, weights), got a {type(got).__name__} of length {len(got)}"
    for name, e, g in zip(("output", "weights"), expected, got, strict=True):
        why = difference(e, g, rtol=1e-5, atol=1e-5)
        if why:
            return f"{name}: {why}"
    return None


def check_attention(attention) -> None:
    """Exercise 3.2: softmax(q k^T / sqrt(d_k)) v with an optional bool mask, returning (output, weights)."""
    q3 = torch.tensor([[2.0, 0.0, 2.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    k3 = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
    v3 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    causal4 = torch.ones(4, 4, dtype=torch.bool).tril()
    keep = torch.tensor([[True, True, True, True, True], [True, True, True, False, False]])
    run_cases(
        "attention",
        attention,
        scaled_dot_product_attention,
        [
            Case(
                (q3, k3, v3),
                hint="The worked example of the notebook: scaled scores [[2, 0, 1], [0, 1, 1], [0, 0, 0]], "
                "softmax over each row (dim=-1), then weights @ v. Return (output, weights).",
            ),
            Case(
                (seeded_randn(2, 3, 4, seed=1), seeded_randn(2, 5, 4, seed=2), seeded_randn(2, 5, 7, seed=3)),
                hint="3 queries, 5 keys, d_v = 7: weights (2, 3, 5), output (2, 3, 7). Softmax runs over the "
                "keys, the last dim; transpose only the last two dims of k.",
            ),
            Case(
                (seeded_randn(4, 3, seed=4), seeded_randn(4, 3, seed=5), seeded_randn(4, 2, seed=6), causal4),
                hint="Where mask is False the weight must be exactly 0: set those scores to float('-inf') "
                "before the softmax (scores.masked_fill(~mask, float('-inf'))). True = may attend.",
            ),
            Case(
                (seeded_randn(2, 5, 8, seed=7), seeded_randn(2, 5, 8, seed=8), seeded_randn(2, 5, 8, seed=9),
                 keep[:, None, :]),
                hint="A mask of shape (batch, 1, n_k) broadcasts over the queries: the same keys are blocked "
                "for every query of a sequence.",
            ),
            Case(
                (30 * seeded_randn(3, 16, seed=10), 30 * seeded_randn(3, 16, seed=11), seeded_randn(3, 2, seed=12)),
                hint="Large scores: exp overflows to inf unless you subtract each row's max first. "
                "torch.softmax(scores, dim=-1) does that for you.",
            ),
        ],
        hint="scores = q @ k.transpose(-2, -1) / math.sqrt(d_k); blocked scores -> -inf; "
        "weights = scores.softmax(dim=-1); return weights @ v, weights.",
        compare=_compare_pair,
    )


def check_causal_mask(causal_mask) -> None:
    """Exercise 3.3: the (n, n) bool mask where query i may attend to keys 0..i."""
    run_cases(
        "causal_mask",
        causal_mask,
        _causal_mask,
        [
            Case((1,), hint="One token may attend to itself: [[True]]. The mask must be a bool tensor."),
            Case(
                (3,),
                hint="Row i is query i, column j is key j; query i may see keys j <= i: the LOWER triangle "
                "and the diagonal are True (torch.tril), the upper triangle False.",
            ),
            Case((6,)),
        ],
        hint="torch.ones(n, n, dtype=torch.bool).tril() keeps j <= i. Return bools, not 0/1 numbers.",
    )


def _padding_mask_from_lengths(lengths: torch.Tensor, n: int) -> torch.Tensor:
    return _padding_mask(lengths, n)[:, 0, 0, :]


def check_padding_mask_from_lengths(padding_mask_from_lengths) -> None:
    """Exercise 3.4: (batch, n) bool mask, True for the first lengths[b] positions of sequence b."""
    run_cases(
        "padding_mask_from_lengths",
        padding_mask_from_lengths,
        _padding_mask_from_lengths,
        [
            Case(
                (torch.tensor([3, 1, 2]), 3),
                hint="Sequence b is real in positions 0 .. lengths[b]-1: [3, 1, 2] with n = 3 gives rows "
                "[T, T, T], [T, F, F], [T, T, F]. The mask must be a bool tensor of shape (batch, n).",
            ),
            Case(
                (torch.tensor([2, 4]), 6),
                hint="n can be longer than every length (the batch was padded to a fixed size): the shape "
                "comes from n, not from lengths.max().",
            ),
            Case((torch.tensor([0, 2]), 2), hint="A length of 0 gives a row of all False."),
            Case((torch.tensor([5]), 5)),
        ],
        hint="Compare positions with lengths: torch.arange(n) < lengths[:, None] broadcasts (n,) against "
        "(batch, 1) to (batch, n).",
    )


def _combined_mask(lengths: torch.Tensor, n: int) -> torch.Tensor:
    return _causal_mask(n) & _padding_mask(lengths, n)[:, 0]  # (n, n) & (batch, 1, n) -> (batch, n, n)


def check_combined_mask(combined_mask) -> None:
    """Exercise 3.5: causal and padding together, (batch, n, n) with True = may attend."""
    run_cases(
        "combined_mask",
        combined_mask,
        _combined_mask,
        [
            Case(
                (torch.tensor([3]), 3),
                hint="With no padding the combined mask is just the causal mask, with a batch dim: (1, 3, 3).",
            ),
            Case(
                (torch.tensor([4, 2]), 4),
                hint="Query i of sequence b may attend to key j when j <= i AND key j is a real token "
                "(j < lengths[b]): combine the two masks with & (logical and), not | (or), and let padding block "
                "keys (columns), not queries (rows): padding[:, None, :].",
            ),
            Case(
                (torch.tensor([1, 3, 2]), 5),
                hint="Shapes: the causal mask is (n, n) and the padding mask (batch, n) must become "
                "(batch, 1, n) so that it blocks the same keys for every query: padding[:, None, :].",
            ),
        ],
        hint="causal (n, n) & padding (batch, n)[:, None, :] broadcasts to (batch, n, n).",
    )
