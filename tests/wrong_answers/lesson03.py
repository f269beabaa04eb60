"""Wrong answers for lesson 03's checks, written as a learner might write them."""

import math

import torch
import torch.nn.functional as F

import utils.attention as ua
from utils.attention import causal_mask, padding_mask

from . import WrongAnswer

# --- 3.1 scaled_scores -------------------------------------------------------------------------


def not_scaled(q, k):
    return q @ k.transpose(-2, -1)


def over_d_k(q, k):
    return q @ k.transpose(-2, -1) / q.shape[-1]


def times_the_root(q, k):
    return q @ k.transpose(-2, -1) * math.sqrt(q.shape[-1])


def over_the_number_of_keys(q, k):
    return q @ k.transpose(-2, -1) / math.sqrt(k.shape[-2])


def keys_against_queries(q, k):
    return k @ q.transpose(-2, -1) / math.sqrt(q.shape[-1])


def transposes_every_dim(q, k):
    reversed_k = k.permute(*reversed(range(k.dim())))  # what k.T does: every dim reversed
    return q @ reversed_k / math.sqrt(q.shape[-1])


# --- 3.2 attention -----------------------------------------------------------------------------


def _scores(q, k):
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


def ignores_the_mask(q, k, v, mask=None):
    weights = _scores(q, k).softmax(dim=-1)
    return weights @ v, weights


def blocks_where_true(q, k, v, mask=None):
    scores = _scores(q, k)
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def fills_zero(q, k, v, mask=None):
    scores = _scores(q, k)
    if mask is not None:
        scores = scores.masked_fill(~mask, 0.0)
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def zeroes_after_the_softmax(q, k, v, mask=None):
    weights = _scores(q, k).softmax(dim=-1)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights


def softmax_over_the_queries(q, k, v, mask=None):
    scores = _scores(q, k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-2)
    return weights @ v, weights


def exp_over_sum(q, k, v, mask=None):
    scores = _scores(q, k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    e = scores.exp()
    weights = e / e.sum(dim=-1, keepdim=True)
    return weights @ v, weights


def only_the_output(q, k, v, mask=None):
    return ignores_the_mask(q, k, v, mask)[0]


def weights_then_output(q, k, v, mask=None):
    output, weights = blocks_where_true(q, k, v, None if mask is None else ~mask)
    return weights, output


def the_fused_kernel(q, k, v, mask=None):
    output = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return output, None


# --- 3.3 causal_mask ---------------------------------------------------------------------------


WRONG_33 = [
    ("upper triangle", lambda n: torch.triu(torch.ones(n, n, dtype=torch.bool)), "the UPPER triangle"),
    ("no diagonal", lambda n: torch.tril(torch.ones(n, n, dtype=torch.bool), diagonal=-1), "the diagonal is False"),
    ("True = blocked", lambda n: ~torch.tril(torch.ones(n, n, dtype=torch.bool)), "True and False are swapped"),
    ("float mask", lambda n: torch.tril(torch.ones(n, n)), "a mask of numbers"),
    ("int mask", lambda n: torch.tril(torch.ones(n, n, dtype=torch.int64)), "expected torch.bool"),
    ("utils.attention", lambda n: ua.causal_mask(n), "rules out"),
    ("imported by name", lambda n: causal_mask(n), "your code used utils.attention.causal_mask"),
]


# --- 3.4 padding_mask_from_lengths -------------------------------------------------------------


def one_too_many(lengths, n):
    return torch.arange(n) <= lengths[:, None]


def true_at_padding(lengths, n):
    return torch.arange(n) >= lengths[:, None]


def positions_down_the_rows(lengths, n):
    return torch.arange(n)[:, None] < lengths[None, :]


def as_integers(lengths, n):
    return (torch.arange(n) < lengths[:, None]).int()


def up_to_the_longest(lengths, n):
    return torch.arange(int(lengths.max())) < lengths[:, None]


def row_by_row(lengths, n):
    return torch.stack([torch.arange(n) < length for length in lengths])


# --- 3.5 combined_mask -------------------------------------------------------------------------


def _tril(n_q, n_k, diagonal=0):
    return torch.ones(n_q, n_k, dtype=torch.bool).tril(diagonal)


def top_left_triangle(attention_mask, n_q):
    return _tril(n_q, attention_mask.shape[1]) & attention_mask.bool()[:, None, :]


def first_rows_of_the_triangle(attention_mask, n_q):
    n_k = attention_mask.shape[1]
    return _tril(n_k, n_k)[:n_q] & attention_mask.bool()[:, None, :]


def either_mask(attention_mask, n_q):
    n_k = attention_mask.shape[1]
    return _tril(n_q, n_k, n_k - n_q) | attention_mask.bool()[:, None, :]


def lengths_from_the_mask(attention_mask, n_q):
    n_k = attention_mask.shape[1]
    real = torch.arange(n_k) < attention_mask.sum(dim=1, keepdim=True)
    return _tril(n_q, n_k, n_k - n_q) & real[:, None, :]


def blocks_padding_queries(attention_mask, n_q):
    n_k = attention_mask.shape[1]
    real = attention_mask.bool()
    return _tril(n_q, n_k, n_k - n_q) & real[:, None, :] & real[:, n_k - n_q:, None]


def integer_mask(attention_mask, n_q):
    n_k = attention_mask.shape[1]
    return _tril(n_q, n_k, n_k - n_q).long() * attention_mask[:, None, :].long()


def keeps_the_integers(attention_mask, n_q):
    n_k = attention_mask.shape[1]
    return _tril(n_q, n_k, n_k - n_q) & attention_mask[:, None, :]


# --- 3.6 safe_attention ------------------------------------------------------------------------


def plain_attention(q, k, v, mask=None):
    scores = _scores(q, k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def large_negative(q, k, v, mask=None):
    scores = _scores(q, k)
    if mask is not None:
        scores = scores.masked_fill(~mask, -1e9)
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def repairs_the_output_only(q, k, v, mask=None):
    output, weights = plain_attention(q, k, v, mask)
    return torch.nan_to_num(output), weights


def repairs_along_the_queries(q, k, v, mask=None):
    """Looks for empty rows along the wrong dim (the queries)."""
    output, weights = plain_attention(q, k, v, mask)
    if mask is None:
        return output, weights
    weights = weights.masked_fill(~mask.any(dim=-2, keepdim=True), 0.0)
    return weights @ v, weights


def through_utils(q, k, v, mask=None):
    return ua.scaled_dot_product_attention(q, k, v, mask)


WRONG = [
    WrongAnswer("3.1", "not scaled", not_scaled, "were not scaled"),
    WrongAnswer("3.1", "over d_k", over_d_k, "divided by d_k"),
    WrongAnswer("3.1", "times the root", times_the_root, "multiplied by the square root"),
    WrongAnswer("3.1", "number of keys", over_the_number_of_keys, "scaled by the number of keys"),
    WrongAnswer("3.1", "keys against queries", keys_against_queries, "queries and keys swapped places"),
    WrongAnswer("3.1", "k.T", transposes_every_dim, ".T would reverse every dim"),
    WrongAnswer("3.2", "mask ignored", ignores_the_mask, "the mask was ignored"),
    WrongAnswer("3.2", "True = blocked", blocks_where_true, "read the wrong way round"),
    WrongAnswer("3.2", "fills 0", fills_zero, "blocked scores were set to 0"),
    WrongAnswer("3.2", "zeroes after softmax", zeroes_after_the_softmax, "zeroed after the softmax"),
    WrongAnswer("3.2", "softmax over queries", softmax_over_the_queries, "the softmax ran over the queries"),
    WrongAnswer("3.2", "exp over sum", exp_over_sum, "the softmax overflowed"),
    WrongAnswer("3.2", "only the output", only_the_output, "expected a pair (output, weights)"),
    WrongAnswer("3.2", "weights first", weights_then_output, "the pair is in the wrong order"),
    WrongAnswer("3.2", "the fused kernel", the_fused_kernel, "rules out"),
    WrongAnswer("3.2", "utils.attention", through_utils, "rules out"),
    *[WrongAnswer("3.3", name, answer, says) for name, answer, says in WRONG_33],
    WrongAnswer("3.4", "one too many", one_too_many, "one position too many"),
    WrongAnswer("3.4", "True at padding", true_at_padding, "True and False are swapped"),
    WrongAnswer("3.4", "rows and columns", positions_down_the_rows, "rows and columns are swapped"),
    WrongAnswer("3.4", "integers", as_integers, "expected torch.bool"),
    WrongAnswer("3.4", "up to the longest", up_to_the_longest, "not from the longest length"),
    WrongAnswer("3.4", "a loop", row_by_row, "rules out Python loops"),
    WrongAnswer("3.4", "utils.attention", lambda lengths, n: ua.padding_mask(lengths, n)[:, 0, 0], "rules out"),
    WrongAnswer("3.4", "imported by name", lambda lengths, n: padding_mask(lengths, n)[:, 0, 0], "rules out"),
    WrongAnswer("3.5", "top-left triangle", top_left_triangle, "anchored at the top left"),
    WrongAnswer("3.5", "first rows of the triangle", first_rows_of_the_triangle, "anchored at the top left"),
    WrongAnswer("3.5", "or", either_mask, "combined with or"),
    WrongAnswer("3.5", "lengths from the mask", lengths_from_the_mask, "taken to be on the right"),
    WrongAnswer("3.5", "padding queries blocked", blocks_padding_queries, "also blocked whole rows"),
    WrongAnswer("3.5", "integer mask", integer_mask, "a mask of numbers"),
    WrongAnswer("3.5", "keeps the integers", keeps_the_integers, "expected torch.bool"),
    WrongAnswer("3.5", "utils.attention", lambda attention_mask, n_q: ua.causal_mask(n_q, attention_mask.shape[1])
                & ua.padding_mask(attention_mask)[:, 0], "rules out"),
    WrongAnswer("3.6", "plain attention", plain_attention, "0/0 = NaN"),
    WrongAnswer("3.6", "a large negative number", large_negative, "a large negative number instead of -inf"),
    WrongAnswer("3.6", "output repaired only", repairs_the_output_only, "the weights still hold NaN"),
    WrongAnswer("3.6", "empty rows along the wrong dim", repairs_along_the_queries,
                "their weights and outputs must be 0"),
    WrongAnswer("3.6", "utils.attention", through_utils, "rules out"),
    WrongAnswer("3.6", "the fused kernel", the_fused_kernel, "rules out"),
]
