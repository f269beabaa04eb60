"""Checks for the exercises of lesson 11 (today's open models: RMSNorm, RoPE with complex numbers in the
interleaved layout, repeating key/value heads for grouped-query attention, the KV cache of a configuration).

The references come from torch and utils (model, rope, attention), never from the solution notebook; 11.4's
is checked against a cache that a real model fills.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import attention as _attention
from .. import rope as _rope
from ..model import RMSNorm
from .core import Case, Mistake, built_aside, run_cases, seeded_randn
from .hints import exercise
from .rules import CourseFunctionsOff, NoAttribute, NoTorchCall

__all__ = ["check_rms_norm", "check_rope_interleaved", "check_repeat_kv", "check_kv_cache_bytes"]


# --- 11.1 RMSNorm ----------------------------------------------------------------------------------


def _rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


_RMS_FUNCTIONS = tuple(f for f in (getattr(F, "rms_norm", None), getattr(torch, "rms_norm", None)) if f is not None)


@exercise("11.1", "RMSNorm by hand", "easy", 10, hints=(
    "RMSNorm works on each vector on its own, like LayerNorm, but it does not subtract the mean: it divides the "
    "vector by its root mean square (the square root of the mean of its squared entries, with eps added inside "
    "the root), then multiplies by the gain, feature by feature.",
    "Square x, take the mean over the last dim only, keeping that dim (keepdim=True) so that it broadcasts "
    "against x; add eps; take the square root; divide.",
    "x divided by torch.sqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps), times weight.",
))
def check_rms_norm(rms_norm) -> None:
    """Exercise 11.1: RMSNorm over the last dim, with gain `weight` and `eps` inside the root."""
    run_cases(
        "rms_norm",
        rms_norm,
        _rms_norm,
        [
            Case((torch.tensor([3.0, 4.0]), torch.ones(2), 0.0), hint="One vector (3, 4), gain 1, eps 0: the mean "
                 "of the squares is 12.5, so the answer is (3, 4) / sqrt(12.5)."),
            Case((seeded_randn(3, 8, seed=1) * 5 + 3, seeded_randn(8, seed=2), 1e-6),
                 hint="Three vectors whose mean is not 0: each row is divided by its own root mean square, and "
                 "the mean stays in (RMSNorm does not centre)."),
            Case((seeded_randn(2, 4, 6, seed=3), seeded_randn(6, seed=4), 1e-6),
                 hint="x has shape (batch, n, d): the statistic is over the last dim only."),
            Case((torch.zeros(2, 5), seeded_randn(5, seed=5), 1e-6),
                 hint="A vector of zeros: eps inside the root keeps 0 / 0 away, and the answer is 0."),
            Case((seeded_randn(2, 6, seed=6) * 0.3, torch.ones(6), 0.5),
                 hint="A large eps (0.5) on small vectors: it shows whether the eps you are given is used, and "
                 "where."),
        ],
        hint="Each vector divided by sqrt(mean of its squares + eps), then times the gain.",
        atol=1e-5,
        exercise="11.1",
        rules=[NoTorchCall(_RMS_FUNCTIONS, "compute the root mean square yourself (torch.nn.RMSNorm calls "
                           "F.rms_norm too)."),
               NoAttribute(RMSNorm, "forward", "compute it yourself: utils.model.RMSNorm is what the check "
                           "compares with.")],
        mistakes=[
            Mistake(lambda x, w, eps: F.layer_norm(x, (x.shape[-1],), w, None, eps),
                    "the mean was subtracted: that is LayerNorm. RMSNorm divides x itself by its root mean "
                    "square, without centring it."),
            Mistake(lambda x, w, eps: x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps) * w,
                    "eps was added to the root mean square; it belongs inside the square root, added to the "
                    "mean of the squares."),
            Mistake(lambda x, w, eps: x / x.std(-1, keepdim=True).clamp_min(1e-30) * w,
                    "x was divided by its standard deviation, which measures the spread around the mean; "
                    "RMSNorm uses the root mean square of x itself."),
            Mistake(lambda x, w, eps: x * torch.rsqrt(x.pow(2).mean() + eps) * w,
                    "the mean was taken over the whole tensor; each vector (the last dim) is normalised on its own."),
            Mistake(lambda x, w, eps: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps),
                    "the gain was not applied: multiply by weight at the end."),
            Mistake(lambda x, w, eps: x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + eps) * w,
                    "the squares were summed, not averaged: divide by d (take the mean)."),
        ],
    )


# --- 11.2 RoPE with complex numbers, pairs of neighbours ---------------------------------------------


def _interleaved_reference(x, positions, base):
    """RoPE on pairs (0, 1), (2, 3), ...: the half-split apply_rope of utils.rope on x's features
    reordered so that each neighbour pair becomes a (i, i + d/2) pair, then put back."""
    d = x.shape[-1]
    order = torch.cat([torch.arange(0, d, 2), torch.arange(1, d, 2)])  # evens first, then odds
    turned = _rope.apply_rope(x[..., order], positions, base)
    return turned[..., torch.argsort(order)]


def _interleaved_with(layout="neighbours", sign=1.0, exponent=2.0, offset=0):
    """A variant of the reference: for the named mistakes."""
    def rope(x, positions, base):
        d = x.shape[-1]
        theta = base ** (-exponent * torch.arange(d // 2, dtype=torch.float64) / d)
        angle = (positions.double() + offset)[:, None] * theta
        turn = torch.polar(torch.ones_like(angle), sign * angle)
        if layout == "halves":  # pairs (i, i + d/2), as utils.rope
            z = torch.complex(x[..., : d // 2].double(), x[..., d // 2 :].double()) * turn
            return torch.cat([z.real, z.imag], dim=-1).to(x.dtype)
        z = torch.complex(x[..., 0::2].double(), x[..., 1::2].double()) * turn
        return torch.stack([z.real, z.imag], dim=-1).flatten(-2).to(x.dtype)
    return rope


@exercise("11.2", "RoPE as a complex multiplication, on neighbouring pairs", "medium", 20, hints=(
    "Here feature pairs are neighbours, (0, 1), (2, 3), ... (the RoFormer paper's layout and Meta's original "
    "Llama code), not (i, i + d/2) as in the notebook. Read each pair (a, b) as the complex number a + ib: "
    "turning it by an angle is multiplying it by cos + i sin of that angle.",
    "Pair j turns by position * theta_j with theta_j = base ** (-2j / d), j = 0 .. d/2 - 1. Build the complex "
    "numbers from x[..., 0::2] (real parts) and x[..., 1::2] (imaginary parts), an angle table of shape "
    "(n, d/2), multiply, and write real and imaginary parts back next to each other.",
    "torch.complex(x[..., 0::2], x[..., 1::2]) gives the pairs, torch.polar(torch.ones_like(angle), angle) the "
    "turns; after multiplying, torch.stack([z.real, z.imag], dim=-1).flatten(-2) puts every pair back in place.",
))
def check_rope_interleaved(rope_interleaved) -> None:
    """Exercise 11.2: rotary positions on neighbouring pairs, x (..., n, d), positions (n,), base."""
    run_cases(
        "rope_interleaved",
        rope_interleaved,
        _interleaved_reference,
        [
            Case((torch.tensor([[1.0, 0.0]]), torch.tensor([1]), 10000.0),
                 hint="One pair (1, 0) at position 1, with theta_0 = 1: it turns by 1 radian, to (cos 1, sin 1)."),
            Case((seeded_randn(5, 8, seed=1), torch.arange(5), 10000.0),
                 hint="Five positions 0..4, eight features (four pairs of neighbours): position 0 is not turned."),
            Case((seeded_randn(2, 3, 6, 16, seed=2), torch.arange(6), 10000.0),
                 hint="x of shape (batch, heads, n, d): the angles depend on the position (dim -2) and the pair "
                 "only, the same for every batch row and head."),
            Case((seeded_randn(4, 8, seed=3), torch.tensor([7, 8, 9, 10]), 500000.0),
                 hint="Positions 7..10, as after a KV cache of 7 tokens, and Llama 3's base of 500,000: use the "
                 "positions and the base you are given."),
        ],
        hint="Pairs of neighbours (0, 1), (2, 3), ..., each turned by position * base ** (-2j / d).",
        atol=1e-5,
        exercise="11.2",
        rules=[CourseFunctionsOff(_rope, ("apply_rope", "rotate", "rotate_half", "rope_angles", "rope_table"),
                                  "this exercise builds the rotation itself, in another layout.")],
        mistakes=[
            Mistake(_interleaved_with(layout="halves"), "the pairs are (i, i + d/2), the notebook's layout; here "
                    "they are neighbours, (0, 1), (2, 3), ...: take x[..., 0::2] and x[..., 1::2]."),
            Mistake(_interleaved_with(sign=-1.0), "the turn goes the wrong way: multiply by cos + i sin of the "
                    "angle (a positive angle), not by its conjugate."),
            Mistake(_interleaved_with(exponent=1.0), "the frequencies are base ** (-j / d); they are "
                    "base ** (-2j / d), j counting pairs: the slowest pair then turns at about 1 / base."),
            Mistake(_interleaved_with(offset=1), "the positions were counted from 1: use the positions given "
                    "(the first token of a text is at position 0 and is not turned)."),
        ],
    )


# --- 11.3 Repeating key/value heads ----------------------------------------------------------------


@exercise("11.3", "Repeating key/value heads for grouped-query attention", "easy", 10, hints=(
    "With n_heads query heads and h key/value heads, each key/value head serves a group of n_heads / h "
    "consecutive query heads: heads 0 and 1 read key/value head 0, heads 2 and 3 head 1, and so on.",
    "Each key/value head must appear n_heads / h times in a row, along the heads dim (dim 1): repeat each "
    "one in place, rather than tiling the whole tensor (which gives the order 0, 1, 0, 1).",
    "k.repeat_interleave(n_heads // k.shape[1], dim=1) does it; so does k[:, :, None] expanded over a new "
    "group dim and reshaped.",
))
def check_repeat_kv(repeat_kv_heads) -> None:
    """Exercise 11.3: (batch, kv_heads, n, d_head) -> (batch, n_heads, n, d_head), each kv head for its group."""
    run_cases(
        "repeat_kv_heads",
        repeat_kv_heads,
        _attention.repeat_kv,
        [
            Case((torch.arange(2.0).view(1, 2, 1, 1), 4), hint="Two key/value heads holding 0 and 1, four query "
                 "heads: the answer holds 0, 0, 1, 1 along the heads dim."),
            Case((seeded_randn(2, 2, 5, 8, seed=1), 6), hint="Two key/value heads, six query heads: groups of 3."),
            Case((seeded_randn(1, 1, 4, 8, seed=2), 4), hint="One key/value head (multi-query attention): every "
                 "query head reads it."),
            Case((seeded_randn(2, 4, 3, 8, seed=3), 4), hint="As many key/value heads as query heads (multi-head "
                 "attention): nothing to repeat."),
        ],
        hint="Shape (batch, n_heads, n, d_head): each key/value head repeated for its group of query heads.",
        exercise="11.3",
        rules=[CourseFunctionsOff(_attention, ("repeat_kv",), "this exercise writes it.")],
        mistakes=[
            Mistake(lambda k, n: k.repeat(1, n // k.shape[1], 1, 1), "the heads were tiled (0, 1, 0, 1); each "
                    "key/value head serves consecutive query heads (0, 0, 1, 1): repeat each one in place."),
            Mistake(lambda k, n: k.repeat_interleave(n // k.shape[1], dim=2), "the positions were repeated "
                    "(dim 2); it is the heads (dim 1) that are repeated."),
        ],
    )


# --- 11.4 The KV cache of a configuration ----------------------------------------------------------


def _kv_cache_bytes(config, tokens, bytes_per_value=4):
    kv_heads = config.n_kv_head or config.n_head
    return 2 * config.n_layer * kv_heads * (config.n_embd // config.n_head) * tokens * bytes_per_value


def _cache_cases():
    from ..model import GPTConfig

    return [
        Case((GPTConfig(n_layer=1, n_head=2, n_embd=8, n_kv_head=1), 1, 4), hint="One layer, one key/value head "
             "of 4 features, one token, 4 bytes a number: a key and a value, 32 bytes."),
        Case((GPTConfig(n_layer=4, n_head=4, n_embd=96, positions="rope", n_kv_head=2), 64, 4),
             hint="The cpu-5min model with 2 key/value heads, 64 tokens, float32."),
        Case((GPTConfig(n_layer=4, n_head=4, n_embd=96), 10, 4), hint="n_kv_head = 0 means as many key/value heads "
             "as query heads (multi-head attention), not none."),
        Case((GPTConfig(n_layer=32, n_head=32, n_embd=4096, n_kv_head=8, positions="rope"), 8192, 2),
             hint="Llama 3 8B's shape, 8,192 tokens, bfloat16 (2 bytes a number)."),
    ]


@exercise("11.4", "The KV cache of a configuration", "medium", 15, hints=(
    "The cache keeps, for every layer and every token so far, one key and one value per key/value head, each "
    "d_head = n_embd / n_head numbers long. Query heads store nothing.",
    "Count the numbers first: 2 (key and value) x n_layer x key/value heads x d_head x tokens; then the bytes. "
    "In a GPTConfig, n_kv_head = 0 means as many key/value heads as query heads.",
    "2 * config.n_layer * (config.n_kv_head or config.n_head) * (config.n_embd // config.n_head) * tokens * "
    "bytes_per_value.",
))
def check_kv_cache_bytes(kv_cache_bytes) -> None:
    """Exercise 11.4: the bytes a KV cache holds for `tokens` tokens of a GPTConfig. Checked on the formula's
    reference and, for one configuration, on the cache a real model fills."""
    from ..model import GPT, GPTConfig

    config = GPTConfig(vocab_size=10, n_layer=2, n_head=4, n_embd=32, positions="rope", n_kv_head=2)
    model = built_aside(lambda: GPT(config).eval(), seed=0)
    caches = model.new_caches()
    with torch.no_grad():
        model(torch.zeros(1, 5, dtype=torch.long), caches=caches)
    filled = sum(c.k.nbytes + c.v.nbytes for c in caches)
    assert filled == _kv_cache_bytes(config, 5), "the reference formula no longer matches the model's cache"
    run_cases(
        "kv_cache_bytes",
        kv_cache_bytes,
        _kv_cache_bytes,
        [Case((config, 5, 4), hint=f"A real model of this shape, after 5 tokens, holds {filled:,} bytes in its "
              "caches (float32).")] + _cache_cases(),
        hint="2 (keys and values) x layers x key/value heads x d_head x tokens x bytes per number.",
        exercise="11.4",
        mistakes=[
            Mistake(lambda c, t, b=4: _kv_cache_bytes(c, t, b) // 2, "only the keys (or only the values) were "
                    "counted: the cache keeps both, a factor of 2."),
            Mistake(lambda c, t, b=4: 2 * c.n_layer * c.n_head * (c.n_embd // c.n_head) * t * b,
                    "the query heads were counted; the cache holds only the key/value heads (n_kv_head)."),
            Mistake(lambda c, t, b=4: 2 * c.n_layer * c.n_kv_head * (c.n_embd // c.n_head) * t * b,
                    "n_kv_head = 0 was taken as no heads; in GPTConfig it means as many as n_head."),
            Mistake(lambda c, t, b=4: _kv_cache_bytes(c, t, b) // b, "that is the count of numbers; multiply by "
                    "bytes_per_value for bytes."),
            Mistake(lambda c, t, b=4: 2 * c.n_layer * (c.n_kv_head or c.n_head) * c.n_embd * t * b,
                    "each head's key is d_head = n_embd / n_head numbers long, not n_embd."),
        ],
    )
