"""Checks for the exercises of lesson 03 (scaled dot-product attention and masks).

The references come from torch and utils.attention, never from the solution notebook.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import attention as ua
from ..attention import causal_mask as _causal_mask
from ..attention import padding_mask as _padding_mask
from ..attention import scaled_dot_product_attention
from .core import Case, Mistake, difference, run_cases, seeded_randn
from .hints import exercise
from .rules import CourseFunctionsOff, NoTorchCall

__all__ = [
    "check_scaled_scores",
    "check_attention",
    "check_causal_mask",
    "check_padding_mask_from_lengths",
    "check_combined_mask",
    "check_safe_attention",
]


# --- 3.1 -------------------------------------------------------------------------------------------


def _scaled_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return torch.einsum("...qd,...kd->...qk", q, k) / math.sqrt(q.shape[-1])


def _dots(q, k):
    return torch.einsum("...qd,...kd->...qk", q, k)


@exercise("3.1", "Scaled scores", "easy", 5, hints=(
    "Entry [i, j] is the dot product of query i with key j, made smaller by a factor that depends only "
    "on the length d_k of the vectors, so that the scores keep a spread of about 1 whatever d_k is.",
    "One matrix product of the queries with the keys turned on their side gives every dot product at "
    "once. Turn only the last two dims of k (the leading batch and head dims stay where they are), and "
    "divide by the square root of d_k, the size of the last dim.",
    "k.transpose(-2, -1) swaps just the last two dims; q @ that is (..., n_q, n_k); math.sqrt of "
    "q.shape[-1] is the divisor.",
))
def check_scaled_scores(scaled_scores) -> None:
    """Exercise 3.1: the scores q k^T / sqrt(d_k), for any leading (batch, heads) dims."""
    run_cases(
        "scaled_scores",
        scaled_scores,
        _scaled_scores,
        [
            Case(
                (torch.tensor([[2.0, 0.0, 2.0, 0.0]]), torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])),
                hint="d_k = 4 here: the dot products are 4 and 0, and sqrt(4) = 2.",
            ),
            Case(
                (seeded_randn(2, 8, seed=1), seeded_randn(5, 8, seed=2)),
                hint="n_q = 2 queries and n_k = 5 keys give a (2, 5) score matrix: row i holds query i's "
                "score for every key.",
            ),
            Case(
                (seeded_randn(3, 4, 6, seed=3), seeded_randn(3, 5, 6, seed=4)),
                hint="With a batch dim, only the last two dims of k may swap; .T would reverse every dim.",
            ),
            Case((seeded_randn(2, 2, 3, 16, seed=5), seeded_randn(2, 2, 3, 16, seed=6))),
            Case(
                (seeded_randn(4, 1, seed=7), seeded_randn(3, 1, seed=8)),
                hint="d_k is the size of the LAST dim; with d_k = 1 the square root is 1.",
            ),
        ],
        hint="Entry [..., i, j] is the dot product of query i and key j, divided by the square root of d_k.",
        atol=1e-5,
        exercise="3.1",
        mistakes=[
            Mistake(_dots, "the dot products were not scaled: divide them by the square root of d_k."),
            Mistake(lambda q, k: _dots(q, k) / q.shape[-1], "the scores were divided by d_k; the divisor is its "
                    "square root, which keeps their variance at 1."),
            Mistake(lambda q, k: _dots(q, k) * math.sqrt(q.shape[-1]), "the scores were multiplied by the square "
                    "root of d_k; they are divided by it."),
            Mistake(lambda q, k: _dots(q, k) / math.sqrt(k.shape[-2]), "the scores were scaled by the number of "
                    "keys; d_k is the size of the last dim of q and k."),
            Mistake(lambda q, k: _scaled_scores(k, q), "queries and keys swapped places: row i must be query i, "
                    "column j key j, so the result is (..., n_q, n_k)."),
        ],
    )


# --- 3.2 -------------------------------------------------------------------------------------------


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


def _attention_with(softmax=lambda s: s.softmax(dim=-1), fill=float("-inf"), scale=True, invert=False):
    """Attention as a learner might write it, with the softmax, the fill value of blocked scores, the
    scaling or the meaning of the mask changed."""

    def attention(q, k, v, mask=None):
        scores = _dots(q, k) / (math.sqrt(q.shape[-1]) if scale else 1.0)
        if mask is not None:
            scores = scores.masked_fill(mask if invert else ~mask, fill)
        weights = softmax(scores)
        return weights @ v, weights

    return attention


def _zeroed_after_softmax(q, k, v, mask=None):
    weights = _scaled_scores(q, k).softmax(dim=-1)
    if mask is not None:
        weights = weights * mask
    return weights @ v, weights


def _weights_first(q, k, v, mask=None):
    output, weights = scaled_dot_product_attention(q, k, v, mask)
    return weights, output


_NO_FUSED = "write the formula yourself (the check compares with utils.attention)."
_FUSED = NoTorchCall((F.scaled_dot_product_attention,), _NO_FUSED)


@exercise("3.2", "Attention from the formula", "medium", 15, hints=(
    "Three steps: the scaled scores of exercise 3.1, a softmax over each row of scores (over the keys) so "
    "that every query's weights are >= 0 and sum to 1, then each output is the weighted average of the "
    "value rows. A blocked key must get a weight of exactly 0.",
    "Block keys before the softmax, not after: give their scores a value whose exp is exactly 0, so the "
    "other weights still sum to 1. True in the mask means 'may attend'. For the softmax itself, torch's "
    "softmax over the last dim is stable for large scores. Return the pair (output, weights).",
    "scores.masked_fill(where blocked, float('-inf')), with 'where blocked' the negation of the mask (~); "
    "then .softmax(dim=-1), and the output is weights @ v.",
))
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
                hint="The worked example of the notebook: scaled scores [[2, 0, 1], [0, 1, 1], [0, 0, 0]], a "
                "softmax over each row, then the weighted average of the values. Return (output, weights).",
            ),
            Case(
                (seeded_randn(2, 3, 4, seed=1), seeded_randn(2, 5, 4, seed=2), seeded_randn(2, 5, 7, seed=3)),
                hint="3 queries, 5 keys, d_v = 7: weights (2, 3, 5), output (2, 3, 7). The softmax runs over "
                "the keys, the last dim.",
            ),
            Case(
                (seeded_randn(4, 3, seed=4), seeded_randn(4, 3, seed=5), seeded_randn(4, 2, seed=6), causal4),
                hint="Where the mask is False the weight must be exactly 0, and each row must still sum to 1 "
                "over the keys that are allowed: block the scores before the softmax. True = may attend.",
            ),
            Case(
                (seeded_randn(2, 5, 8, seed=7), seeded_randn(2, 5, 8, seed=8), seeded_randn(2, 5, 8, seed=9),
                 keep[:, None, :]),
                hint="A mask of shape (batch, 1, n_k) broadcasts over the queries: the same keys are blocked "
                "for every query of a sequence.",
            ),
            Case(
                (30 * seeded_randn(3, 16, seed=10), 30 * seeded_randn(3, 16, seed=11), seeded_randn(3, 2, seed=12)),
                hint="Large scores: a softmax written as exp over sum overflows to inf unless each row is "
                "shifted by its largest score first (exercise 0.2).",
            ),
        ],
        hint="The weights are the softmax of the scaled scores over the keys; the output mixes the values.",
        compare=_compare_pair,
        exercise="3.2",
        rules=[CourseFunctionsOff(ua, ("scaled_dot_product_attention",), _NO_FUSED), _FUSED],
        mistakes=[
            Mistake(_attention_with(scale=False), "the scores were not divided by the square root of d_k."),
            Mistake(_attention_with(softmax=lambda s: s.softmax(dim=-2)), "the softmax ran over the queries "
                    "(dim -2): each query's weights over the keys, the last dim, must sum to 1."),
            Mistake(_attention_with(softmax=lambda s: s.exp() / s.exp().sum(-1, keepdim=True)), "the softmax "
                    "overflowed: exp of a large score is inf. Shift each row by its largest score first, or use "
                    "torch's softmax, which does."),
            Mistake(_attention_with(invert=True), "the mask was read the wrong way round: True means 'may "
                    "attend', and the keys where it is False are the ones to block."),
            Mistake(_attention_with(fill=0.0), "blocked scores were set to 0, and exp(0) = 1 still gives them "
                    "weight: their scores must become -inf, whose exp is exactly 0."),
            Mistake(_zeroed_after_softmax, "the blocked weights were zeroed after the softmax, so the rows no "
                    "longer sum to 1: block the scores before the softmax."),
            Mistake(lambda q, k, v, mask=None: scaled_dot_product_attention(q, k, v), "the mask was ignored: "
                    "where it is False the weight must be 0."),
            Mistake(_weights_first, "the pair is in the wrong order: return (output, weights)."),
        ],
    )


# --- 3.3 -------------------------------------------------------------------------------------------


@exercise("3.3", "The causal mask", "easy", 5, hints=(
    "Row i is query i, column j is key j. A token may look at itself and at the tokens before it, never "
    "at a later one: True on and below the diagonal, False above it.",
    "Start from an (n, n) tensor of True and keep its lower triangle, the diagonal included; the result "
    "must be a bool tensor, not 0/1 numbers.",
    "torch.ones with dtype=torch.bool, then .tril(): the lower triangle with the diagonal.",
))
def check_causal_mask(causal_mask) -> None:
    """Exercise 3.3: the (n, n) bool mask where query i may attend to keys 0..i."""
    run_cases(
        "causal_mask",
        causal_mask,
        _causal_mask,
        [
            Case((2,), hint="Query 0 may see only key 0, query 1 keys 0 and 1. The mask must be a bool tensor."),
            Case((1,), hint="One token may attend to itself: a 1 x 1 mask that is True."),
            Case(
                (3,),
                hint="Row i is query i, column j is key j; query i may see keys j <= i: the lower triangle "
                "and the diagonal are True, the upper triangle False.",
            ),
            Case((6,)),
        ],
        hint="True where key j is at or before query i (j <= i), False after it.",
        exercise="3.3",
        mistakes=[
            Mistake(lambda n: torch.ones(n, n, dtype=torch.bool).triu(), "the UPPER triangle: that lets each "
                    "token see the future. Row i (a query) may see columns j <= i."),
            Mistake(lambda n: torch.ones(n, n, dtype=torch.bool).tril(-1), "the diagonal is False: a token may "
                    "attend to itself (j = i)."),
            Mistake(lambda n: torch.ones(n, n, dtype=torch.bool).triu(1), "True and False are swapped: True "
                    "means 'may attend'; the blocked future is False."),
            Mistake(lambda n: torch.ones(n, n).tril(), "a mask of numbers: it must be a bool tensor "
                    "(dtype=torch.bool), True = may attend."),
        ],
        rules=[CourseFunctionsOff(ua, ("causal_mask",), "build the mask yourself.")],
    )


# --- 3.4 -------------------------------------------------------------------------------------------


def _padding_mask_from_lengths(lengths: torch.Tensor, n: int) -> torch.Tensor:
    return _padding_mask(lengths, n)[:, 0, 0, :]


@exercise("3.4", "A padding mask from lengths", "easy", 10, hints=(
    "Position j of sequence b is a real token exactly when j is smaller than that sequence's length: "
    "compare every position with every length at once.",
    "Make a row of the positions 0 .. n-1 and a column of the lengths (batch, 1); comparing the two "
    "broadcasts to (batch, n) and gives bools directly. The shape comes from n, not from the lengths.",
    "torch.arange(n) compared with < against lengths[:, None].",
))
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
                "comes from n, not from the longest length.",
            ),
            Case((torch.tensor([0, 2]), 2), hint="A length of 0 gives a row of all False."),
            Case((torch.tensor([5]), 5)),
        ],
        hint="Row b is True at positions 0 .. lengths[b]-1 and False from lengths[b] on.",
        exercise="3.4",
        no_loops="comparing a row of positions with a column of lengths gives the whole mask at once",
        mistakes=[
            Mistake(lambda lengths, n: torch.arange(n) <= lengths[:, None], "one position too many is True: "
                    "a sequence of length L is real at positions 0 .. L-1, so position L is padding."),
            Mistake(lambda lengths, n: torch.arange(n) >= lengths[:, None], "True and False are swapped: True "
                    "marks the real tokens, False the padding."),
            Mistake(lambda lengths, n: torch.arange(n)[:, None] < lengths, "rows and columns are swapped: row "
                    "b is sequence b, so the shape is (batch, n)."),
            Mistake(lambda lengths, n: (torch.arange(n) < lengths[:, None]).long(), "a mask of numbers: it must "
                    "be a bool tensor, True = real token."),
        ],
        rules=[CourseFunctionsOff(ua, ("padding_mask",), "build the mask yourself.")],
    )


# --- 3.5 -------------------------------------------------------------------------------------------


def _combined_mask(attention_mask: torch.Tensor, n_q: int) -> torch.Tensor:
    # (n_q, n_k) causal, aligned to the last n_q positions, & (batch, 1, n_k) padding -> (batch, n_q, n_k)
    return _causal_mask(n_q, attention_mask.shape[-1]) & _padding_mask(attention_mask)[:, 0]


def _top_left(attention_mask, n_q):
    n_k = attention_mask.shape[-1]
    return torch.ones(n_q, n_k, dtype=torch.bool).tril() & attention_mask.bool()[:, None, :]


def _padding_on_rows_too(attention_mask, n_q):
    real = attention_mask.bool()
    return _combined_mask(attention_mask, n_q) & real[:, -n_q:, None]


def _or(attention_mask, n_q):
    return _causal_mask(n_q, attention_mask.shape[-1]) | attention_mask.bool()[:, None, :]


def _from_lengths(attention_mask, n_q):
    n_k = attention_mask.shape[-1]
    real = torch.arange(n_k) < attention_mask.sum(-1)[:, None]
    return _causal_mask(n_q, n_k) & real[:, None, :]


@exercise("3.5", "Causal and padding in one mask", "medium", 15, hints=(
    "Query i may attend to key j when two things hold at once: key j is a real token of its sequence, "
    "and key j does not come after the query. The second needs the query's position, which is not i "
    "when there are fewer queries than keys: the queries are the last n_q positions.",
    "Build the causal part for the queries' positions: it is the last n_q rows of the full (n_k, n_k) "
    "causal mask, your causal_mask(n_k). The padding part comes from attention_mask as bools and must "
    "block keys, the last dim, for every query: give it a query dim of size 1. Combine the two with a "
    "logical and.",
    "The last n_q rows of a mask are the slice [-n_q:]; .bool() turns the 0s and 1s into bools, and "
    "indexing with [:, None, :] inserts the query dim; & broadcasts (n_q, n_k) against (batch, 1, n_k).",
))
def check_combined_mask(combined_mask) -> None:
    """Exercise 3.5: causal and padding together, for left or right padding and fewer queries than keys."""
    run_cases(
        "combined_mask",
        combined_mask,
        _combined_mask,
        [
            Case(
                (torch.tensor([[1, 1, 1]]), 3),
                hint="With no padding and n_q = n_k the combined mask is just the causal mask, with a batch dim: "
                "(1, 3, 3).",
            ),
            Case(
                (torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]), 4),
                hint="Right padding: in sequence 1 keys 2 and 3 are padding and are blocked for every query. "
                "Padding blocks keys (columns), not queries (rows), and both conditions must hold (and, not or).",
            ),
            Case(
                (torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]]), 4),
                hint="Left padding: sequence 0 starts with two padding tokens. Read the real tokens from the 0s "
                "and 1s themselves; counting them as a length assumes padding on the right. (Queries 0 and 1 of "
                "sequence 0 may attend to no key at all: exercise 3.6 deals with that.)",
            ),
            Case(
                (torch.tensor([[1, 1, 1, 1, 1]]), 1),
                hint="One query, the newest token, at position 4 of 5: it may attend to every key 0..4. The "
                "queries are the LAST n_q positions, so the causal triangle is anchored at the bottom right.",
            ),
            Case(
                (torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]]), 2),
                hint="Two queries at positions 2 and 3 of 4, with left padding in sequence 0: shape "
                "(2, 2, 4), and query i sits at position n_k - n_q + i.",
            ),
            Case((torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1]]).bool(), 3),
                 hint="The attention mask may come as bools too: True = real token."),
        ],
        hint="[b, i, j] is True when key j is a real token of sequence b and is not after query i, which "
        "sits at position n_k - n_q + i.",
        exercise="3.5",
        no_loops="comparisons and & build the whole (batch, n_q, n_k) mask at once",
        mistakes=[
            Mistake(_top_left, "the causal triangle is anchored at the top left, so query i sees keys 0..i (what "
                    "is_causal=True of F.scaled_dot_product_attention does with fewer queries than keys); query i "
                    "sits at position n_k - n_q + i and may see every key up to there."),
            Mistake(_or, "the two masks were combined with or: a key must be real AND not in the future."),
            Mistake(_from_lengths, "the padding was taken to be on the right (from the number of real tokens): "
                    "read it from the mask's own 0s and 1s, which may put it on the left."),
            Mistake(_padding_on_rows_too, "padding also blocked whole rows (its queries): only keys (columns) "
                    "are blocked; the output at a padding position is ignored later anyway."),
            Mistake(lambda attention_mask, n_q: _combined_mask(attention_mask, n_q).long(), "a mask of numbers: it "
                    "must be a bool tensor, True = may attend."),
        ],
        rules=[CourseFunctionsOff(ua, ("causal_mask", "padding_mask"),
                                  "combine your own masks from exercises 3.3 and 3.4.")],
    )


# --- 3.6 -------------------------------------------------------------------------------------------


def _filled_with_a_large_negative(q, k, v, mask=None):
    return _attention_with(fill=-1e9)(q, k, v, mask)


def _zeros_only_in_the_output(q, k, v, mask=None):
    output, weights = _attention_with()(q, k, v, mask)
    return output.nan_to_num(0.0), weights


@exercise("3.6", "Attention when a query may see nothing", "medium", 15, hints=(
    "With left padding and a causal mask, a padding query at the start may attend to no key at all. "
    "All its scores are -inf, and the softmax of a row of -inf is 0/0: NaN, which then spreads to "
    "every token of the sequence in the next layer. Such a row must come out as weights 0 and output 0.",
    "Compute as in exercise 3.2, then repair the rows whose mask has no True at all: find them (any() "
    "over the keys), and make their weights 0 before they mix the values. Every other row must stay "
    "exactly as it was.",
    "mask.any(dim=-1, keepdim=True) is False on the empty rows; weights.masked_fill(~that, 0.0) or "
    "torch.nan_to_num(weights, nan=0.0) clears them; the output is weights @ v of the repaired weights.",
))
def check_safe_attention(safe_attention) -> None:
    """Exercise 3.6: attention whose rows with no allowed key give weights 0 and output 0, never NaN."""
    left = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]]).bool()
    left_causal = torch.ones(4, 4, dtype=torch.bool).tril() & left[:, None, :]  # queries 0, 1 of row 0 see nothing
    nothing = torch.zeros(3, 5, dtype=torch.bool)
    run_cases(
        "safe_attention",
        safe_attention,
        scaled_dot_product_attention,
        [
            Case(
                (seeded_randn(4, 3, seed=30), seeded_randn(4, 3, seed=31), seeded_randn(4, 2, seed=32),
                 torch.ones(4, 4, dtype=torch.bool).tril()),
                hint="A causal mask leaves every query at least one key (itself): the result is exactly that of "
                "exercise 3.2.",
            ),
            Case(
                (seeded_randn(4, 3, seed=33), seeded_randn(4, 3, seed=34), seeded_randn(4, 2, seed=35)),
                hint="No mask (None): plain attention, as in exercise 3.2.",
            ),
            Case(
                (seeded_randn(2, 4, 3, seed=36), seeded_randn(2, 4, 3, seed=37), seeded_randn(2, 4, 2, seed=38),
                 left_causal),
                label="safe_attention(<q, k, v (2, 4, 3)>, <left padding & causal: queries 0 and 1 of sequence 0 "
                "may attend to no key>)",
                hint="Queries 0 and 1 of sequence 0 have no allowed key: their weights and outputs must be 0. "
                "Every other row is ordinary masked attention.",
            ),
            Case(
                (seeded_randn(3, 4, seed=39), seeded_randn(5, 4, seed=40), seeded_randn(5, 2, seed=41), nothing),
                hint="Every key blocked for every query: all weights 0, all outputs 0.",
            ),
            Case(
                (seeded_randn(2, 2, 4, 8, seed=42), seeded_randn(2, 2, 4, 8, seed=43),
                 seeded_randn(2, 2, 4, 8, seed=44), left_causal[:, None]),
                label="safe_attention(<q, k, v (2, 2, 4, 8): 2 heads>, <the same mask (2, 1, 4, 4)>)",
                hint="The mask broadcasts over the heads dim: find the empty rows on the mask as it is, and let "
                "broadcasting carry them to every head.",
            ),
            Case(
                (30 * seeded_randn(2, 4, 16, seed=45), 30 * seeded_randn(2, 4, 16, seed=46),
                 seeded_randn(2, 4, 2, seed=47), left_causal),
                label="safe_attention(<large scores>, <the left padding & causal mask>)",
            ),
        ],
        hint="A query whose mask row holds no True gets weights 0 and output 0; every other query is ordinary "
        "masked attention.",
        compare=_compare_pair,
        exercise="3.6",
        rules=[CourseFunctionsOff(ua, ("scaled_dot_product_attention",), _NO_FUSED), _FUSED],
        mistakes=[
            Mistake(_attention_with(), "a query with no allowed key has only -inf scores, and softmax turns them "
                    "into 0/0 = NaN: give such rows weights 0 (and so an output of 0)."),
            Mistake(_filled_with_a_large_negative, "blocked scores were set to a large negative number instead of "
                    "-inf: a row with every key blocked then gets equal weights on blocked keys instead of 0."),
            Mistake(_zeros_only_in_the_output, "the output was repaired but the weights still hold NaN: clear the "
                    "weights of the empty rows, and the output follows."),
        ],
    )
