"""Checks for the exercises of notebook 04 (multi-head attention).

The references are built from PyTorch itself (view/transpose/reshape and torch.nn.MultiheadAttention),
independently of the solution notebook.
"""

from __future__ import annotations

import torch
from torch import nn

from .core import Case, run_cases, seeded_randn

# --- 4.1 split heads -----------------------------------------------------------------------------


def _split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    batch, n, d_model = x.shape
    return x.reshape(batch, n, n_heads, d_model // n_heads).permute(0, 2, 1, 3)


def check_split_heads(split_heads) -> None:
    """Exercise 4.1: (batch, n, d_model) -> (batch, heads, n, d_head)."""
    run_cases(
        "split_heads",
        split_heads,
        _split_heads,
        [
            Case((torch.arange(8.0).view(1, 1, 8), 2),
                 hint="One token of 8 features, 2 heads: head 0 gets features 0-3, head 1 features 4-7. "
                 "The result has shape (1, 2, 1, 4)."),
            Case((torch.arange(24.0).view(1, 3, 8), 2),
                 hint="With several tokens, reshaping straight to (batch, heads, n, d_head) mixes tokens "
                 "together. First view as (batch, n, heads, d_head), then swap the n and heads dims."),
            Case((seeded_randn(2, 5, 12, seed=1), 3),
                 hint="Work out d_head from x.shape and n_heads; do not hard-code it."),
            Case((seeded_randn(2, 4, 6, seed=2), 1), hint="One head: (batch, 1, n, d_model), the same numbers."),
            Case((seeded_randn(1, 3, 6, seed=3), 6), hint="As many heads as features: d_head = 1."),
        ],
        hint="x.view(batch, n, n_heads, d_head).transpose(...) of the right two dims.",
    )


# --- 4.2 merge heads -----------------------------------------------------------------------------


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    batch, heads, n, d_head = x.shape
    return x.permute(0, 2, 1, 3).reshape(batch, n, heads * d_head)


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
                 hint="Bring the tokens back in front of the heads (transpose dims 1 and 2) before "
                 "flattening; reshaping (batch, heads, n, d_head) directly glues different tokens together."),
            Case((seeded_randn(2, 3, 5, 4, seed=4),),
                 hint="Batch of 2, 3 heads, 5 tokens, d_head 4: shape (2, 5, 12)."),
            Case((seeded_randn(2, 1, 3, 5, seed=5),),
                 hint="One head: the result is that head's numbers, shape (2, 3, 5)."),
        ],
        hint="x.transpose(1, 2) then .reshape(batch, n, heads * d_head).",
    )


# --- 4.3 multi-head attention from weight matrices ------------------------------------------------


def _multi_head_attention(x, w_qkv, w_o, n_heads, causal=False):
    d_model = x.shape[-1]
    mha = nn.MultiheadAttention(d_model, n_heads, bias=False, batch_first=True, dtype=x.dtype)
    with torch.no_grad():
        # PyTorch stores weights for y = x @ W.T; the exercise's matrices are used as y = x @ W.
        mha.in_proj_weight.copy_(w_qkv.T)
        mha.out_proj.weight.copy_(w_o.T)
        n = x.shape[1]
        blocked = torch.ones(n, n, dtype=torch.bool).triu(1) if causal else None  # PyTorch: True = blocked
        out, _ = mha(x, x, x, attn_mask=blocked, need_weights=False)
    return out


def _mha_case(batch, n, d_model, n_heads, causal, seed, hint=""):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n, d_model, generator=g, dtype=torch.float64)
    w_qkv = torch.randn(d_model, 3 * d_model, generator=g, dtype=torch.float64) / d_model**0.5
    w_o = torch.randn(d_model, d_model, generator=g, dtype=torch.float64) / d_model**0.5
    label = (f"multi_head_attention(x of shape {tuple(x.shape)}, w_qkv {tuple(w_qkv.shape)}, "
             f"w_o {tuple(w_o.shape)}, n_heads={n_heads}, causal={causal})")
    return Case((x, w_qkv, w_o, n_heads), {"causal": causal}, hint=hint, label=label)


def check_multi_head_attention(multi_head_attention) -> None:
    """Exercise 4.3: the forward pass of multi-head self-attention from a fused W_qkv and W^O."""
    run_cases(
        "multi_head_attention",
        multi_head_attention,
        _multi_head_attention,
        [
            _mha_case(1, 3, 4, 1, False, 0,
                      hint="One head is plain attention: q, k, v = the three d_model-wide column blocks of "
                      "x @ w_qkv; softmax(q k^T / sqrt(d_head)) v; then @ w_o."),
            _mha_case(1, 4, 8, 2, False, 1,
                      hint="With 2 heads each head scores with its own d_head = d_model / n_heads features, and "
                      "divides by sqrt(d_head), not sqrt(d_model). Split q, k, v into heads before the softmax."),
            _mha_case(2, 5, 12, 3, False, 2,
                      hint="A batch of 2 and 3 heads: split and merge must keep tokens and heads apart (view as "
                      "(batch, n, heads, d_head), then transpose)."),
            _mha_case(2, 5, 8, 4, True, 3,
                      hint="causal=True: query i may only attend to keys 0..i. Set the scores of later keys to "
                      "-inf before the softmax (torch.ones(n, n, dtype=torch.bool).tril() is True where allowed)."),
            _mha_case(1, 6, 16, 16, True, 4, hint="As many heads as features: d_head = 1, still the same steps."),
        ],
        hint="q, k, v = (x @ w_qkv).split(d_model, dim=-1); split each into heads; attention per head "
        "(batched); merge the heads; multiply by w_o.",
        rtol=1e-6,
        atol=1e-8,
    )


# --- 4.4 parameter count --------------------------------------------------------------------------


def _mha_parameter_count(d_model: int, n_heads: int, bias: bool = True) -> int:
    mha = nn.MultiheadAttention(d_model, n_heads, bias=bias, device="meta")  # meta: no memory used
    return sum(p.numel() for p in mha.parameters())


def check_mha_parameter_count(mha_parameter_count) -> None:
    """Exercise 4.4: the number of parameters of one multi-head attention layer, by formula."""
    run_cases(
        "mha_parameter_count",
        mha_parameter_count,
        _mha_parameter_count,
        [
            Case((4, 1), hint="d_model = 4, one head: four 4x4 matrices (W^Q, W^K, W^V, W^O) and four biases of 4."),
            Case((32, 4), hint="Count the matrices and the bias vectors; which of them depend on the heads?"),
            Case((32, 8), hint="Same width, more heads: the heads share out the same d_model columns, so "
                 "nothing about the size changes."),
            Case((768, 12), hint="GPT-2 small's attention layer: d_model = 768, 12 heads."),
            Case((64, 4), {"bias": False}, hint="bias=False: only the four d_model x d_model matrices are left."),
        ],
        hint="Each of W^Q, W^K, W^V and W^O is d_model x d_model, each bias has d_model entries; "
        "the number of heads does not appear.",
    )
