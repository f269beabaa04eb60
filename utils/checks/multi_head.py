"""Checks for the exercises of notebook 04 (multi-head attention).

The references are built from PyTorch itself (view/transpose/reshape, torch.nn.MultiheadAttention and
F.scaled_dot_product_attention), independently of the solution notebook. The notebook asks for plain
tensor operations, so the course's own attention functions are switched off while an answer runs
(rules.CourseFunctionsOff).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import attention
from .core import Case, Mistake, built_aside, run_cases, seeded_randn
from .hints import exercise
from .rules import CourseFunctionsOff, NoAttribute, NoTorchCall

__all__ = ["check_split_heads", "check_merge_heads", "check_multi_head_attention", "check_mha_parameter_count",
           "check_grouped_query_attention"]


_ATTENTION_OFF = CourseFunctionsOff(
    attention, ("scaled_dot_product_attention", "split_heads", "merge_heads", "causal_mask", "MultiHeadAttention"),
    "write it with plain tensor operations (view, transpose, reshape, @, softmax); the point is to build it.")
_TORCH_ATTENTION = NoTorchCall(
    (F.scaled_dot_product_attention, F.multi_head_attention_forward),
    "the attention itself is the exercise: compute the scores, the softmax and the mixing yourself.")
_NO_MODULE = NoAttribute(nn.Module, "__init__", "count by formula: building a module (and counting its "
                         "parameters) is what the check does, not the exercise.")


# --- 4.1 split heads -----------------------------------------------------------------------------


def _split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    batch, n, d_model = x.shape
    return x.reshape(batch, n, n_heads, d_model // n_heads).permute(0, 2, 1, 3)


def _split_straight(x, n_heads):
    batch, n, d_model = x.shape
    return x.reshape(batch, n_heads, n, d_model // n_heads)


def _split_strided(x, n_heads):
    batch, n, d_model = x.shape
    return x.reshape(batch, n, d_model // n_heads, n_heads).permute(0, 3, 1, 2)


_STRAIGHT = ("the features were reshaped straight into (batch, heads, n, d_head). That fills the new shape in "
             "memory order, running through token 0's features first, so a 'head' holds pieces of several "
             "tokens: the shape is right, the numbers are not.")
_STRIDED = ("each head got every n_heads-th feature (0, h, 2h, ...) instead of a block of d_head consecutive "
            "ones: the last dim was cut as (d_head, heads) instead of (heads, d_head).")


@exercise("4.1", "Split heads", "easy", 10, hints=(
    "Each head gets a block of d_head consecutive features of every token. Two moves do it: cut the last "
    "dim into (heads, d_head), then bring the heads dim in front of the tokens, so that each head holds "
    "a whole little sequence.",
    "Work out d_head from x.shape and n_heads. The cut must keep batch and n where they are, which gives "
    "(batch, n, heads, d_head); then swap dims 1 and 2. Reshaping directly to (batch, heads, n, d_head) "
    "has the right shape and the wrong numbers (notebook 04, section 2).",
    "x.view(batch, n, n_heads, d_head) makes the cut; one transpose of two dims then puts the heads first.",
))
def check_split_heads(split_heads) -> None:
    """Exercise 4.1: (batch, n, d_model) -> (batch, heads, n, d_head)."""
    run_cases(
        "split_heads",
        split_heads,
        _split_heads,
        [
            Case((torch.arange(8.0).view(1, 1, 8), 2),
                 hint="One token of 8 features, 2 heads: head 0 gets features 0-3, head 1 features 4-7, and "
                 "the result has shape (1, 2, 1, 4)."),
            Case((torch.arange(24.0).view(1, 3, 8), 2),
                 hint="Several tokens: each head must hold whole tokens, three rows of 4 features each, one "
                 "per token. Check which token each row of head 0 comes from."),
            Case((seeded_randn(2, 5, 12, seed=1), 3),
                 hint="Batch 2, 3 heads of 4 features: d_head has to come from x.shape and n_heads, not from "
                 "the earlier cases."),
            Case((seeded_randn(2, 4, 6, seed=2), 1), hint="One head: the same numbers, shape (batch, 1, n, d_model)."),
            Case((seeded_randn(1, 3, 6, seed=3), 6), hint="As many heads as features: d_head = 1."),
        ],
        hint="Head h must hold features h*d_head to (h+1)*d_head - 1 of every token, token by token.",
        exercise="4.1",
        rules=[_ATTENTION_OFF],
        mistakes=[Mistake(_split_straight, _STRAIGHT), Mistake(_split_strided, _STRIDED)],
    )


# --- 4.2 merge heads -----------------------------------------------------------------------------


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    batch, heads, n, d_head = x.shape
    return x.permute(0, 2, 1, 3).reshape(batch, n, heads * d_head)


def _merge_straight(x):
    batch, heads, n, d_head = x.shape
    return x.reshape(batch, n, heads * d_head)


def _merge_strided(x):
    batch, heads, n, d_head = x.shape
    return x.permute(0, 2, 3, 1).reshape(batch, n, heads * d_head)


@exercise("4.2", "Merge heads", "easy", 10, hints=(
    "Merging undoes split_heads: the tokens have to come back in front of the heads before each token's "
    "head pieces are glued into one vector.",
    "First swap the heads and n dims, giving (batch, n, heads, d_head); then join the last two dims. "
    "After a transpose the numbers are no longer in memory order, so use an operation that copies when "
    "it must (notebook 04, section 3).",
    "One transpose of dims 1 and 2, then a reshape to (batch, n, heads * d_head); .view refuses to work after "
    "a transpose.",
))
def check_merge_heads(merge_heads) -> None:
    """Exercise 4.2: (batch, heads, n, d_head) -> (batch, n, heads * d_head), the inverse of split."""
    run_cases(
        "merge_heads",
        merge_heads,
        _merge_heads,
        [
            Case((torch.arange(8.0).view(1, 2, 1, 4),),
                 hint="One token, two heads of 4: the result is that token's 8 features, head 0's first."),
            Case((torch.arange(24.0).view(1, 2, 3, 4),),
                 hint="Three tokens: each output row must be one token, its head 0 features then its head 1 "
                 "features. If `.view` raised here, the tensor was not in memory order after the transpose."),
            Case((seeded_randn(2, 3, 5, 4, seed=4),),
                 hint="Batch of 2, 3 heads, 5 tokens, d_head 4: shape (2, 5, 12)."),
            Case((seeded_randn(2, 1, 3, 5, seed=5),), hint="One head: that head's numbers, shape (2, 3, 5)."),
        ],
        hint="Each output row is one token: head 0's d_head features, then head 1's, and so on.",
        exercise="4.2",
        rules=[_ATTENTION_OFF],
        mistakes=[
            Mistake(_merge_straight, "the heads were reshaped away without bringing the tokens back in front "
                    "first: each output row glues pieces of different tokens together."),
            Mistake(_merge_strided, "the features of the heads were interleaved (head 0's first feature, head "
                    "1's first feature, ...) instead of placed one head after the other."),
        ],
    )


# --- 4.3 multi-head attention from weight matrices ------------------------------------------------


def _multi_head_attention(x, w_qkv, w_o, n_heads, causal=False):
    d_model = x.shape[-1]
    mha = built_aside(lambda: nn.MultiheadAttention(d_model, n_heads, bias=False, batch_first=True, dtype=x.dtype))
    with torch.no_grad():
        # PyTorch stores weights for y = x @ W.T; the exercise's matrices are used as y = x @ W.
        mha.in_proj_weight.copy_(w_qkv.T)
        mha.out_proj.weight.copy_(w_o.T)
        n = x.shape[1]
        blocked = torch.ones(n, n, dtype=torch.bool).triu(1) if causal else None  # PyTorch: True = blocked
        out, _ = mha(x, x, x, attn_mask=blocked, need_weights=False)
    return out


def _attend(q, k, v, scale, causal, reverse=False, softmax_dim=-1):
    """Attention per head from (batch, heads, n, d) tensors, for the known mistakes below."""
    scores = q @ k.transpose(-2, -1) / scale
    if causal:
        n = q.shape[-2]
        allowed = torch.ones(n, n, dtype=torch.bool).triu() if reverse else torch.ones(n, n, dtype=torch.bool).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    return scores.softmax(dim=softmax_dim) @ v


def _mha_variant(scale_by_model=False, mask="right", w_o=True, split=_split_heads, softmax_dim=-1):
    def answer(x, w_qkv, w_out, n_heads, causal=False):
        d_model = x.shape[-1]
        q, k, v = (split(t, n_heads) for t in (x @ w_qkv).split(d_model, dim=-1))
        scale = (d_model if scale_by_model else d_model // n_heads) ** 0.5
        out = _attend(q, k, v, scale, causal and mask != "none", reverse=mask == "reversed", softmax_dim=softmax_dim)
        return _merge_heads(out) @ w_out if w_o else _merge_heads(out)
    return answer


def _mha_case(batch, n, d_model, n_heads, causal, seed, hint=""):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n, d_model, generator=g, dtype=torch.float64)
    w_qkv = torch.randn(d_model, 3 * d_model, generator=g, dtype=torch.float64) / d_model**0.5
    w_o = torch.randn(d_model, d_model, generator=g, dtype=torch.float64) / d_model**0.5
    label = (f"multi_head_attention(x of shape {tuple(x.shape)}, w_qkv {tuple(w_qkv.shape)}, "
             f"w_o {tuple(w_o.shape)}, n_heads={n_heads}, causal={causal})")
    return Case((x, w_qkv, w_o, n_heads), {"causal": causal}, hint=hint, label=label)


@exercise("4.3", "Multi-head attention from weight matrices", "medium", 25, hints=(
    "Project once, then treat the heads as one more batch dim: every head runs lesson 03's attention on "
    "its own d_head features, all heads in the same matrix products, and W^O mixes their results.",
    "Steps: x @ w_qkv holds Q, K and V side by side (each d_model wide, in that order); cut them apart; "
    "split each into heads (4.1); scores = q k^T over the last two dims, divided by sqrt(d_head); with "
    "causal=True, keys after the query get -inf before the softmax; softmax over the keys; times v; merge "
    "(4.2); times w_o.",
    "(x @ w_qkv).split(d_model, dim=-1) gives q, k, v. The scores are q @ k.transpose(-2, -1) / "
    "math.sqrt(d_head); a bool mask torch.ones(n, n, dtype=torch.bool).tril() is True where a key is allowed, "
    "and scores.masked_fill(~allowed, float('-inf')) blocks the rest.",
))
def check_multi_head_attention(multi_head_attention) -> None:
    """Exercise 4.3: the forward pass of multi-head self-attention from a fused W_qkv and W^O."""
    run_cases(
        "multi_head_attention",
        multi_head_attention,
        _multi_head_attention,
        [
            _mha_case(1, 3, 4, 1, False, 0,
                      hint="One head is lesson 03's attention on the full width: this case tests the projection "
                      "(Q, K, V in that order, each d_model columns of x @ w_qkv) and the final product with w_o."),
            _mha_case(1, 4, 8, 2, False, 1,
                      hint="Two heads: each head scores with its own d_head = d_model / n_heads features and is "
                      "scaled by its own width, and the heads are split before the softmax."),
            _mha_case(2, 5, 12, 3, False, 2,
                      hint="A batch of 2 and 3 heads: splitting and merging must keep tokens and heads apart."),
            _mha_case(2, 5, 8, 4, True, 3,
                      hint="causal=True: query i may attend to keys 0..i only, so every later key must get "
                      "weight exactly 0 (a score of -inf before the softmax)."),
            _mha_case(1, 6, 16, 16, True, 4, hint="As many heads as features: d_head = 1, still the same steps."),
        ],
        hint="Compare the steps with the statement: projection, split, scaled scores, mask, softmax over the "
        "keys, mixing, merge, W^O.",
        rtol=1e-6,
        atol=1e-8,
        exercise="4.3",
        rules=[_ATTENTION_OFF, _TORCH_ATTENTION],
        mistakes=[
            Mistake(_mha_variant(scale_by_model=True), "the scores were divided by sqrt(d_model); each head's "
                    "dot products have d_head terms, so the scale is sqrt(d_head)."),
            Mistake(_mha_variant(w_o=False), "the merged heads were returned without the final product with w_o."),
            Mistake(_mha_variant(mask="none"), "causal=True was ignored: every query also saw the keys after it."),
            Mistake(_mha_variant(mask="reversed"), "the causal mask is flipped: it let each query see the keys "
                    "after it and blocked the ones before."),
            Mistake(_mha_variant(split=_split_straight), "q, k and v were cut into heads by reshaping straight to "
                    "(batch, heads, n, d_head), which mixes tokens (see exercise 4.1)."),
            Mistake(_mha_variant(softmax_dim=-2), "the softmax ran over the queries: each query's weights over "
                    "the keys must add up to 1, so normalise along the keys, the last dim of the scores."),
        ],
    )


# --- 4.4 parameter count --------------------------------------------------------------------------


def _mha_parameter_count(d_model: int, n_heads: int, bias: bool = True) -> int:
    mha = nn.MultiheadAttention(d_model, n_heads, bias=bias, device="meta")  # meta: no memory used
    return sum(p.numel() for p in mha.parameters())


@exercise("4.4", "Parameter count", "easy", 5, hints=(
    "List the layer's weights: four projection matrices (W^Q, W^K, W^V, W^O) and, with bias=True, one bias "
    "vector each. Then ask which of their sizes depend on the number of heads.",
    "Each matrix maps d_model numbers to d_model numbers; each bias has one entry per output. Heads only "
    "cut the same columns into pieces (notebook 04, section 7), so n_heads never enters the count.",
    "Four matrices of d_model * d_model, plus 4 * d_model when bias is True.",
))
def check_mha_parameter_count(mha_parameter_count) -> None:
    """Exercise 4.4: the number of parameters of one multi-head attention layer, by formula."""
    run_cases(
        "mha_parameter_count",
        mha_parameter_count,
        _mha_parameter_count,
        [
            Case((4, 1), hint="d_model = 4, one head: four 4 x 4 matrices and four biases of 4 entries."),
            Case((32, 4), hint="Count the matrices and the bias vectors, and check that each is counted once."),
            Case((32, 8), hint="The same width with more heads: the heads share out the same d_model columns, so "
                 "the count is the same as with 4 heads."),
            Case((768, 12), hint="GPT-2 small's attention layer: d_model = 768, 12 heads."),
            Case((64, 4), {"bias": False}, hint="bias=False: only the four matrices are left."),
        ],
        hint="Count four projection matrices and, only when bias is True, their four bias vectors.",
        exercise="4.4",
        rules=[_NO_MODULE],
        mistakes=[
            Mistake(lambda d, h, bias=True: 4 * d * d // h + (4 * d if bias else 0),
                    "the count depends on the number of heads: the heads cut the same d_model columns into "
                    "pieces, they do not add or remove any."),
            Mistake(lambda d, h, bias=True: 3 * d * d + (3 * d if bias else 0),
                    "W^O is missing: the layer has four projections, W^Q, W^K, W^V and the output W^O."),
            Mistake(lambda d, h, bias=True: 4 * d * d, "the biases are missing (bias=True gives each of the four "
                    "projections a bias vector of d_model entries)."),
            Mistake(lambda d, h, bias=True: 4 * d * d + 4 * d, "bias=False was ignored: without biases only the "
                    "four matrices count."),
        ],
    )


# --- 4.5 grouped-query attention ----------------------------------------------------------------------


def _gqa_reference(x, w_q, w_k, w_v, w_o, n_heads, n_kv_heads, causal=False):
    batch, n, d_model = x.shape
    d_head = d_model // n_heads

    def heads(t, count):
        return t.view(batch, n, count, d_head).transpose(1, 2)

    q, k, v = heads(x @ w_q, n_heads), heads(x @ w_k, n_kv_heads), heads(x @ w_v, n_kv_heads)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)  # torch's own GQA
    return out.transpose(1, 2).reshape(batch, n, d_model) @ w_o


def _gqa_variant(share="grouped", scale_by_model=False, mask="right"):
    def answer(x, w_q, w_k, w_v, w_o, n_heads, n_kv_heads, causal=False):
        batch, n, d_model = x.shape
        d_head = d_model // n_heads
        q = _split_heads(x @ w_q, n_heads)
        k, v = (t.reshape(batch, n, n_kv_heads, d_head).transpose(1, 2) for t in (x @ w_k, x @ w_v))
        group = n_heads // n_kv_heads
        if share == "grouped":
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        else:  # query head h paired with K/V head h % n_kv_heads
            k, v = k.repeat(1, group, 1, 1), v.repeat(1, group, 1, 1)
        scale = (d_model if scale_by_model else d_head) ** 0.5
        out = _attend(q, k, v, scale, causal and mask != "none", reverse=mask == "reversed")
        return _merge_heads(out) @ w_o
    return answer


def _gqa_case(batch, n, d_model, n_heads, n_kv_heads, causal, seed, hint=""):
    g = torch.Generator().manual_seed(seed)
    d_kv = n_kv_heads * (d_model // n_heads)

    def rand(*shape, scale=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * scale

    x = rand(batch, n, d_model)
    w_q, w_o = rand(d_model, d_model, scale=d_model**-0.5), rand(d_model, d_model, scale=d_model**-0.5)
    w_k, w_v = rand(d_model, d_kv, scale=d_model**-0.5), rand(d_model, d_kv, scale=d_model**-0.5)
    label = (f"grouped_query_attention(x of shape {tuple(x.shape)}, w_k and w_v {tuple(w_k.shape)}, "
             f"n_heads={n_heads}, n_kv_heads={n_kv_heads}, causal={causal})")
    return Case((x, w_q, w_k, w_v, w_o, n_heads, n_kv_heads), {"causal": causal}, hint=hint, label=label)


@exercise("4.5", "Grouped-query attention", "hard", 25, hints=(
    "Only the keys and values are fewer: n_kv_heads of them, each shared by a group of n_heads / n_kv_heads "
    "consecutive query heads. Once every query head has its K/V head next to it, the rest is 4.3's attention.",
    "Split q into n_heads heads and k, v into n_kv_heads heads of the same d_head. Then make the K/V heads "
    "line up with the query heads: K/V head 0 serves query heads 0 .. group-1, K/V head 1 the next group, and "
    "so on. Repeating the whole stack of K/V heads instead pairs them in turn (0, 1, 0, 1), which is wrong.",
    "k.repeat_interleave(n_heads // n_kv_heads, dim=1) (and the same for v) turns (batch, n_kv_heads, n, d_head) "
    "into (batch, n_heads, n, d_head) in the right order; scale the scores by sqrt(d_head).",
))
def check_grouped_query_attention(grouped_query_attention) -> None:
    """Exercise 4.5: attention where groups of query heads share one key/value head (GQA, MQA)."""
    run_cases(
        "grouped_query_attention",
        grouped_query_attention,
        _gqa_reference,
        [
            _gqa_case(1, 4, 8, 2, 2, False, 10,
                      hint="n_kv_heads = n_heads: no sharing at all, this is ordinary multi-head attention with "
                      "separate W^Q, W^K, W^V."),
            _gqa_case(2, 5, 8, 4, 1, False, 11,
                      hint="n_kv_heads = 1 (multi-query attention): all four query heads read the same single "
                      "key/value head."),
            _gqa_case(1, 5, 16, 4, 2, False, 12,
                      hint="4 query heads and 2 K/V heads: query heads 0 and 1 share K/V head 0, heads 2 and 3 "
                      "share K/V head 1. Pairing them in turn (0, 1, 0, 1) gives other numbers."),
            _gqa_case(2, 6, 12, 6, 3, True, 13,
                      hint="causal=True with groups of 2: query i may attend to keys 0..i only."),
            _gqa_case(1, 7, 16, 8, 2, True, 14, hint="8 query heads in 2 groups of 4, causal."),
        ],
        hint="Each query head must attend with the K/V head of its own group, scaled by its own width.",
        rtol=1e-6,
        atol=1e-8,
        exercise="4.5",
        rules=[_ATTENTION_OFF, _TORCH_ATTENTION],
        mistakes=[
            Mistake(_gqa_variant(share="tiled"), "the K/V heads were repeated as a whole stack, so query head h "
                    "got K/V head h % n_kv_heads. GQA shares each K/V head with a group of consecutive query "
                    "heads: head h uses K/V head h // (n_heads // n_kv_heads)."),
            Mistake(_gqa_variant(scale_by_model=True), "the scores were divided by sqrt(d_model); each head's dot "
                    "products have d_head terms, so the scale is sqrt(d_head)."),
            Mistake(_gqa_variant(mask="none"), "causal=True was ignored: every query also saw the keys after it."),
            Mistake(_gqa_variant(mask="reversed"), "the causal mask is flipped: it let each query see the keys "
                    "after it and blocked the ones before."),
        ],
    )
