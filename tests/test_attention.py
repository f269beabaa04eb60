"""Tests for utils/attention.py: the hand-written attention against PyTorch's, and its errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from utils.attention import (
    MultiHeadAttention,
    causal_mask,
    merge_heads,
    padding_mask,
    scaled_dot_product_attention,
    split_heads,
)

# float64 makes hand-written and fused results agree to ~1e-12, so any real difference shows.
DT = torch.float64
TOL = dict(atol=1e-10, rtol=1e-10)


def qkv(batch=2, heads=3, n_q=5, n_k=5, d_k=4, d_v=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, heads, n_q, d_k, generator=g, dtype=DT)
    k = torch.randn(batch, heads, n_k, d_k, generator=g, dtype=DT)
    v = torch.randn(batch, heads, n_k, d_v, generator=g, dtype=DT)
    return q, k, v


def make_mha(d_model=12, n_heads=3, seed=0, **kwargs):
    torch.manual_seed(seed)
    return MultiHeadAttention(d_model, n_heads, **kwargs).to(DT).eval()


def tokens(batch=2, n=5, d_model=12, seed=1):
    return torch.randn(batch, n, d_model, generator=torch.Generator().manual_seed(seed), dtype=DT)


# --- a worked example with numbers you can check on paper -------------------------------------------------


def test_worked_example_three_tokens():
    # d_k = 4, so the scores are divided by sqrt(4) = 2. The query points along the first key only:
    # scores = [2, 0, 0] / 2 = [1, 0, 0], weights = [e, 1, 1] / (e + 2).
    q = torch.tensor([[2.0, 0.0, 0.0, 0.0]])
    k = torch.eye(3, 4)  # three keys: unit vectors along the first three axes
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    out, w = scaled_dot_product_attention(q, k, v)
    e = math.e
    assert w.tolist()[0] == pytest.approx([e / (e + 2), 1 / (e + 2), 1 / (e + 2)], abs=1e-6)
    assert w.tolist()[0] == pytest.approx([0.5761, 0.2119, 0.2119], abs=1e-4)
    # Output = 0.5761 * v0 + 0.2119 * v1 + 0.2119 * v2.
    assert out.tolist()[0] == pytest.approx([0.5761, 0.2119], abs=1e-4)


def test_worked_example_causal_equal_scores_is_a_running_mean():
    # All-zero queries give equal scores, so each token averages the values it may see:
    # token 0 sees v0, token 1 averages v0, v1, token 2 averages all three.
    q = torch.zeros(3, 2)
    k = torch.randn(3, 2)
    v = torch.tensor([[3.0], [6.0], [9.0]])
    out, w = scaled_dot_product_attention(q, k, v, mask=causal_mask(3))
    torch.testing.assert_close(w, torch.tensor([[1, 0, 0], [1 / 2, 1 / 2, 0], [1 / 3, 1 / 3, 1 / 3]]))
    assert out.squeeze(-1).tolist() == pytest.approx([3.0, 4.5, 6.0])


# --- hand-written attention vs PyTorch's ---------------------------------------------------------------


def test_matches_pytorch_without_mask():
    q, k, v = qkv(n_q=4, n_k=7)
    out, _ = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), **TOL)


def test_matches_pytorch_causal():
    q, k, v = qkv()
    out, _ = scaled_dot_product_attention(q, k, v, mask=causal_mask(5))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), **TOL)


def test_matches_pytorch_padding_and_causal():
    q, k, v = qkv()
    pad = padding_mask([5, 3])  # (2, 1, 1, 5)
    for mask in (pad, pad & causal_mask(5)):
        out, _ = scaled_dot_product_attention(q, k, v, mask=mask)
        torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **TOL)


def test_weights_rows_sum_to_one_and_masked_are_exactly_zero():
    q, k, v = qkv()
    mask = padding_mask([5, 2]) & causal_mask(5)
    _, w = scaled_dot_product_attention(q, k, v, mask=mask)
    assert w.shape == (2, 3, 5, 5)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 5, dtype=DT), **TOL)
    assert (w[~mask.expand_as(w)] == 0).all()
    assert (w[mask.expand_as(w)] > 0).all()


def test_fully_masked_rows_give_zeros_not_nan_like_pytorch():
    q, k, v = qkv()
    q.requires_grad_(True)
    mask = causal_mask(5).clone()
    mask[2] = False  # query 2 may attend to nothing
    out, w = scaled_dot_product_attention(q, k, v, mask=mask)
    assert (w[..., 2, :] == 0).all() and (out[..., 2, :] == 0).all()
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), **TOL)
    out.sum().backward()
    assert torch.isfinite(q.grad).all()


def test_kv_cache_causal_mask_gives_the_last_rows_of_full_attention():
    q, k, v = qkv(n_q=6, n_k=6)
    full, _ = scaled_dot_product_attention(q, k, v, mask=causal_mask(6))
    last, _ = scaled_dot_product_attention(q[..., -2:, :], k, v, mask=causal_mask(2, 6))
    torch.testing.assert_close(last, full[..., -2:, :], **TOL)


def test_pytorch_is_causal_is_top_left_aligned_when_lengths_differ():
    # Why MultiHeadAttention passes an explicit mask instead of is_causal=True when n_q != n_k.
    q, k, v = qkv(n_q=2, n_k=6)
    top_left = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    explicit = F.scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(2, 6, dtype=torch.bool).tril())
    torch.testing.assert_close(top_left, explicit, **TOL)
    assert not torch.equal(causal_mask(2, 6), torch.ones(2, 6, dtype=torch.bool).tril())


def test_dropout_module_is_applied_but_returned_weights_are_before_dropout():
    q, k, v = qkv()
    drop = nn.Dropout(0.5).train()
    out, w = scaled_dot_product_attention(q, k, v, dropout=drop)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 5, dtype=DT), **TOL)
    assert not torch.allclose(out, scaled_dot_product_attention(q, k, v)[0])
    out_eval, _ = scaled_dot_product_attention(q, k, v, dropout=drop.eval())
    torch.testing.assert_close(out_eval, scaled_dot_product_attention(q, k, v)[0], **TOL)


# --- masks ------------------------------------------------------------------------------------------------


def test_causal_mask_values():
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert causal_mask(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]
    assert torch.equal(causal_mask(2, 5), causal_mask(5)[-2:])
    assert causal_mask(4).dtype == torch.bool


def test_padding_mask_from_lengths_and_from_attention_mask():
    m = padding_mask(torch.tensor([3, 1]), n=4)
    assert m.shape == (2, 1, 1, 4) and m.dtype == torch.bool
    assert m[:, 0, 0].tolist() == [[True, True, True, False], [True, False, False, False]]
    assert padding_mask([3, 1]).shape == (2, 1, 1, 3)  # n defaults to the longest
    left_padded = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert padding_mask(left_padded)[:, 0, 0].tolist() == [[False, True, True], [True, True, True]]


# --- heads ------------------------------------------------------------------------------------------------


def test_split_and_merge_heads_are_inverses():
    x = tokens(batch=2, n=5, d_model=12)
    h = split_heads(x, 3)
    assert h.shape == (2, 3, 5, 4)
    torch.testing.assert_close(h[:, 1], x[..., 4:8])  # head 1 holds features 4..7
    torch.testing.assert_close(merge_heads(h), x)


# --- MultiHeadAttention ---------------------------------------------------------------------------------


def by_hand(mha, x, kv, mask):
    """Each head computed separately from mha's weights, then concatenated and projected."""
    heads = []
    d = mha.d_head
    for h in range(mha.n_heads):
        rows = slice(h * d, (h + 1) * d)
        q = x @ mha.q_proj.weight[rows].T + mha.q_proj.bias[rows]
        k = kv @ mha.k_proj.weight[rows].T + mha.k_proj.bias[rows]
        v = kv @ mha.v_proj.weight[rows].T + mha.v_proj.bias[rows]
        scores = q @ k.transpose(-2, -1) / math.sqrt(d)
        scores = scores.masked_fill(~mask, float("-inf"))
        heads.append(scores.softmax(-1) @ v)
    return mha.out_proj(torch.cat(heads, dim=-1))


@pytest.mark.parametrize("causal", [False, True])
def test_mha_equals_a_loop_over_single_heads(causal):
    mha = make_mha(causal=causal)
    x = tokens()
    pad = padding_mask([5, 4])[:, 0]  # (batch, 1, n_k): per-head loop has no heads dim
    mask = pad & causal_mask(5) if causal else pad
    with torch.no_grad():
        out, w = mha(x, mask=padding_mask([5, 4]), need_weights=True)
        torch.testing.assert_close(out, by_hand(mha, x, x, mask), **TOL)
    assert w.shape == (2, 3, 5, 5)


def test_mha_cross_attention_equals_loop_over_single_heads():
    mha = make_mha()
    x, memory = tokens(n=3), tokens(n=6, seed=2)
    with torch.no_grad():
        out = mha(x, kv=memory, use_fused=False)
        torch.testing.assert_close(out, by_hand(mha, x, memory, torch.ones(3, 6, dtype=torch.bool)), **TOL)
    assert out.shape == (2, 3, 12)


def torch_pair(bias=True):
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(12, 3, bias=bias, batch_first=True).to(DT).eval()
    with torch.no_grad():  # PyTorch initialises biases to 0; make them count
        for p in theirs.parameters():
            p.add_(0.1 * torch.randn_like(p))
    mine = MultiHeadAttention(12, 3, bias=bias).to(DT).eval().load_from_torch(theirs)
    return mine, theirs


@pytest.mark.parametrize("bias", [True, False])
def test_mha_matches_torch_multihead_attention(bias):
    mine, theirs = torch_pair(bias)
    x = tokens()
    with torch.no_grad():
        out, w = mine(x, need_weights=True)
        ref, ref_w = theirs(x, x, x, average_attn_weights=False)
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(w, ref_w, **TOL)


def test_mha_matches_torch_with_causal_and_key_padding_masks():
    mine, theirs = torch_pair()
    x = tokens()
    lengths = [5, 3]
    # PyTorch's nn.MultiheadAttention: True = blocked, so both masks are inverted.
    torch_causal = ~causal_mask(5)
    torch_padding = ~padding_mask(lengths)[:, 0, 0]  # (batch, n_k)
    mine.causal = True
    with torch.no_grad():
        for use_fused in (False, True):
            out = mine(x, mask=padding_mask(lengths), use_fused=use_fused)
            ref, _ = theirs(x, x, x, attn_mask=torch_causal, key_padding_mask=torch_padding)
            torch.testing.assert_close(out, ref, **TOL)
        _, w = mine(x, mask=padding_mask(lengths), need_weights=True)
        _, ref_w = theirs(
            x, x, x, attn_mask=torch_causal, key_padding_mask=torch_padding, average_attn_weights=False
        )
    torch.testing.assert_close(w, ref_w, **TOL)


def test_mha_cross_attention_matches_torch():
    mine, theirs = torch_pair()
    x, memory = tokens(n=3), tokens(n=6, seed=2)
    with torch.no_grad():
        out = mine(x, kv=memory)
        ref, _ = theirs(x, memory, memory)
    torch.testing.assert_close(out, ref, **TOL)


@pytest.mark.parametrize(
    "causal, n_q, n_k, mask",
    [
        (False, 5, 5, None),
        (True, 5, 5, None),  # fused path uses is_causal=True
        (True, 5, 5, padding_mask([5, 2])),
        (False, 3, 6, padding_mask([6, 4])),  # cross-attention
        (True, 2, 6, None),  # queries are the last 2 of 6 positions (KV cache)
        (False, 5, 5, causal_mask(5)),  # a 2-D (n_q, n_k) mask
    ],
)
def test_fused_path_equals_hand_path(causal, n_q, n_k, mask):
    mha = make_mha(causal=causal)
    x = tokens(n=n_q)
    kv = None if n_q == n_k else tokens(n=n_k, seed=2)
    with torch.no_grad():
        fused = mha(x, kv=kv, mask=mask)
        hand = mha(x, kv=kv, mask=mask, use_fused=False)
        with_weights, w = mha(x, kv=kv, mask=mask, need_weights=True)
    torch.testing.assert_close(fused, hand, **TOL)
    torch.testing.assert_close(with_weights, hand, **TOL)
    assert w.shape == (2, 3, n_q, n_k)


def test_mha_float32_and_backward():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, causal=True, dropout=0.1)
    x = torch.randn(2, 7, 16, requires_grad=True)
    mha(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in mha.parameters())


# --- clear errors ---------------------------------------------------------------------------------------


def test_attention_errors():
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"same last dim d_k.*d_k=4.*d_k=5"):
        scaled_dot_product_attention(q, torch.randn(2, 3, 5, 5, dtype=DT), v)
    with pytest.raises(ValueError, match=r"same length n_k.*n_k=5.*n_k=4"):
        scaled_dot_product_attention(q, k, v[..., :4, :])
    with pytest.raises(ValueError, match=r"at least 2 dims"):
        scaled_dot_product_attention(torch.randn(4), torch.randn(4), torch.randn(4))
    with pytest.raises(ValueError, match=r"not broadcastable.*\(2, 3, 5, 5\)"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"not broadcastable"):  # would grow the scores, not fit them
        scaled_dot_product_attention(q, k, v, mask=torch.ones(7, 2, 3, 5, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"bool tensor.*mask.bool\(\)"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(5, 5))
    with pytest.raises(TypeError, match=r"nn.Dropout"):
        scaled_dot_product_attention(q, k, v, dropout=0.1)


def test_mask_helper_errors():
    with pytest.raises(ValueError, match=r"n_q <= n_k"):
        causal_mask(5, 3)
    with pytest.raises(TypeError, match=r"device="):
        causal_mask(5, "cpu")
    with pytest.raises(ValueError, match=r"only 0 \(padding\) and 1"):
        padding_mask(torch.tensor([[0, 2, 1]]))
    with pytest.raises(ValueError, match=r"lengths must lie in 0..n=3"):
        padding_mask([4, 1], n=3)
    with pytest.raises(ValueError, match=r"shape \(1, 1, 3\)"):
        padding_mask(torch.ones(1, 1, 3))


def test_mha_errors():
    with pytest.raises(ValueError, match=r"d_model=10 is not divisible by n_heads=3.*\[1, 2, 5, 10\]"):
        MultiHeadAttention(10, 3)
    mha = make_mha()
    with pytest.raises(ValueError, match=r"x must have shape \(batch, n, d_model=12\), got \(5, 12\)"):
        mha(torch.randn(5, 12, dtype=DT))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, n, d_model=12\), got \(2, 5, 8\)"):
        mha(torch.randn(2, 5, 8, dtype=DT))
    with pytest.raises(ValueError, match=r"kv must have shape"):
        mha(tokens(), kv=torch.randn(2, 5, 8, dtype=DT))
    with pytest.raises(ValueError, match=r"same batch size"):
        mha(tokens(), kv=tokens(batch=3))
    for bad in (torch.ones(4, 5, dtype=torch.bool), torch.ones(2, 5, 5, dtype=torch.bool)):
        for use_fused in (True, False):
            with pytest.raises(ValueError, match=r"does not broadcast to \(batch, heads, n_q, n_k\)"):
                mha(tokens(), mask=bad, use_fused=use_fused)
    with pytest.raises(ValueError, match=r"mask\[:, None\]"):
        mha(tokens(), mask=torch.ones(2, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"embed_dim=8"):
        mha.load_from_torch(nn.MultiheadAttention(8, 2))
