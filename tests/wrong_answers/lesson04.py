"""Wrong answers for lesson 04's checks (multi-head attention)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from utils import attention

from . import WrongAnswer


def _split(x, n_heads):
    batch, n, d_model = x.shape
    return x.view(batch, n, n_heads, d_model // n_heads).transpose(1, 2)


def _merge(x):
    batch, heads, n, d_head = x.shape
    return x.transpose(1, 2).reshape(batch, n, heads * d_head)


def _attention(q, k, v, causal, scale, flip=False):
    scores = q @ k.transpose(-2, -1) / scale
    if causal:
        n = q.shape[-2]
        allowed = torch.ones(n, n, dtype=torch.bool)
        allowed = allowed.triu() if flip else allowed.tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    return scores.softmax(dim=-1) @ v


def _mha(scale="head", causal_ok=True, flip=False, with_w_o=True, split=_split, softmax_dim=-1):
    def multi_head_attention(x, w_qkv, w_o, n_heads, causal=False):
        d_model = x.shape[-1]
        q, k, v = (split(t, n_heads) for t in (x @ w_qkv).split(d_model, dim=-1))
        d = d_model // n_heads if scale == "head" else d_model
        if softmax_dim == -1:
            out = _attention(q, k, v, causal and causal_ok, math.sqrt(d), flip)
        else:
            out = (q @ k.transpose(-2, -1) / math.sqrt(d)).softmax(dim=softmax_dim) @ v
        out = _merge(out)
        return out @ w_o if with_w_o else out
    return multi_head_attention


def _gqa(share="grouped", scale="head", causal_ok=True, flip=False):
    def grouped_query_attention(x, w_q, w_k, w_v, w_o, n_heads, n_kv_heads, causal=False):
        batch, n, d_model = x.shape
        d_head = d_model // n_heads
        q = _split(x @ w_q, n_heads)
        k = (x @ w_k).view(batch, n, n_kv_heads, d_head).transpose(1, 2)
        v = (x @ w_v).view(batch, n, n_kv_heads, d_head).transpose(1, 2)
        group = n_heads // n_kv_heads
        if share == "grouped":
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        elif share == "tiled":
            k, v = k.repeat(1, group, 1, 1), v.repeat(1, group, 1, 1)
        d = d_head if scale == "head" else d_model
        return _merge(_attention(q, k, v, causal and causal_ok, math.sqrt(d), flip)) @ w_o
    return grouped_query_attention


def _gqa_with_torch(x, w_q, w_k, w_v, w_o, n_heads, n_kv_heads, causal=False):
    batch, n, d_model = x.shape
    d_head = d_model // n_heads
    q = _split(x @ w_q, n_heads)
    k = (x @ w_k).view(batch, n, n_kv_heads, d_head).transpose(1, 2)
    v = (x @ w_v).view(batch, n, n_kv_heads, d_head).transpose(1, 2)
    return _merge(F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)) @ w_o


def _mha_with_utils(x, w_qkv, w_o, n_heads, causal=False):
    d_model = x.shape[-1]
    q, k, v = (attention.split_heads(t, n_heads) for t in (x @ w_qkv).split(d_model, dim=-1))
    out, _ = attention.scaled_dot_product_attention(q, k, v, attention.causal_mask(x.shape[1]) if causal else None)
    return attention.merge_heads(out) @ w_o


def _count_by_building(d_model, n_heads, bias=True):
    return sum(p.numel() for p in nn.MultiheadAttention(d_model, n_heads, bias=bias).parameters())


def _split_with_alias(x, n_heads):
    return _imported_split(x, n_heads)


_imported_split = attention.split_heads  # as a notebook's `from utils.attention import split_heads as ...`


WRONG = [
    WrongAnswer("4.1", "reshaped straight to heads",
                lambda x, h: x.reshape(x.shape[0], h, x.shape[1], x.shape[2] // h), "reshaped straight into"),
    WrongAnswer("4.1", "features strided over heads",
                lambda x, h: x.reshape(x.shape[0], x.shape[1], x.shape[2] // h, h).permute(0, 3, 1, 2),
                "every n_heads-th feature"),
    WrongAnswer("4.1", "no transpose", lambda x, h: x.view(x.shape[0], x.shape[1], h, x.shape[2] // h),
                "shape is (1, 1, 2, 4), expected (1, 2, 1, 4)"),
    WrongAnswer("4.1", "the course's split_heads", attention.split_heads, "utils.attention.split_heads"),
    WrongAnswer("4.1", "the course's split_heads under another name", _split_with_alias, "rules out"),
    WrongAnswer("4.2", "no transpose before the reshape",
                lambda x: x.reshape(x.shape[0], x.shape[2], x.shape[1] * x.shape[3]),
                "glues pieces of different tokens"),
    WrongAnswer("4.2", "heads interleaved",
                lambda x: x.permute(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], x.shape[1] * x.shape[3]),
                "interleaved"),
    WrongAnswer("4.2", "view after the transpose",
                lambda x: x.transpose(1, 2).view(x.shape[0], x.shape[2], x.shape[1] * x.shape[3]),
                "raised RuntimeError"),
    WrongAnswer("4.2", "the course's merge_heads", lambda x: attention.merge_heads(x), "rules out"),
    WrongAnswer("4.3", "scaled by sqrt(d_model)", _mha(scale="model"), "divided by sqrt(d_model)"),
    WrongAnswer("4.3", "no w_o", _mha(with_w_o=False), "without the final product with w_o"),
    WrongAnswer("4.3", "causal ignored", _mha(causal_ok=False), "causal=True was ignored"),
    WrongAnswer("4.3", "mask flipped", _mha(flip=True), "the causal mask is flipped"),
    WrongAnswer("4.3", "heads split straight",
                _mha(split=lambda t, h: t.reshape(t.shape[0], h, t.shape[1], t.shape[2] // h)), "mixes tokens"),
    WrongAnswer("4.3", "softmax over the queries", _mha(softmax_dim=-2), "the softmax ran over the queries"),
    WrongAnswer("4.3", "F.scaled_dot_product_attention",
                lambda x, w, w_o, h, causal=False: _merge(F.scaled_dot_product_attention(
                    *(_split(t, h) for t in (x @ w).split(x.shape[-1], dim=-1)), is_causal=causal)) @ w_o,
                "rules out"),
    WrongAnswer("4.3", "the course's attention functions", _mha_with_utils, "rules out"),
    WrongAnswer("4.4", "divided by the heads", lambda d, h, bias=True: 4 * d * d // h + 4 * d * bias,
                "depends on the number of heads"),
    WrongAnswer("4.4", "three matrices", lambda d, h, bias=True: 3 * d * d + 3 * d * bias, "W^O is missing"),
    WrongAnswer("4.4", "biases always", lambda d, h, bias=True: 4 * d * d + 4 * d, "bias=False was ignored"),
    WrongAnswer("4.4", "builds the layer", _count_by_building, "count by formula"),
    WrongAnswer("4.5", "K/V heads tiled", _gqa(share="tiled"), "repeated as a whole stack"),
    WrongAnswer("4.5", "scaled by sqrt(d_model)", _gqa(scale="model"), "divided by sqrt(d_model)"),
    WrongAnswer("4.5", "causal ignored", _gqa(causal_ok=False), "causal=True was ignored"),
    WrongAnswer("4.5", "mask flipped", _gqa(flip=True), "the causal mask is flipped"),
    WrongAnswer("4.5", "no sharing at all", _gqa(share="none"), "raised RuntimeError"),
    WrongAnswer("4.5", "torch's GQA", _gqa_with_torch, "rules out"),
]
