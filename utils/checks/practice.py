"""Checks for the exercises of lesson 13 (LLMs in practice: the days a training run takes, the bytes of a KV cache,
WEAT's effect size, int8 weights with a scale per row, the expected calibration error).

The references come from utils (costs, weat, quantization, calibration), never from the solution notebook; the
course's own functions are switched off while the learner's answer runs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .. import calibration as _calibration
from .. import costs as _costs
from .. import quantization as _quant
from .. import weat as _weat
from .core import Case, Mistake, difference, run_cases, seeded_randn
from .hints import exercise
from .rules import CourseFunctionsOff, NoTorchCall

__all__ = ["check_training_days", "check_kv_cache_bytes", "check_weat_effect_size", "check_quantize_rows",
           "check_expected_calibration_error"]


def _one_number(value) -> float | None:
    """value as a float if it is one number (Python, NumPy, or a one-element tensor), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype != torch.bool:
        return float(value.item())
    return None


def _close_number(rel_tol: float, abs_tol: float = 0.0):
    """A compare for answers that are one number: None when close enough, else why not (with the ratio, which
    names a missing factor without showing any code)."""
    def compare(expected, got) -> str | None:
        want, value = _one_number(expected), _one_number(got)
        if value is None:
            return f"expected one number, got {type(got).__name__}"
        if want is None:
            return "not comparable"
        if math.isnan(value):
            return "the result is NaN"
        if math.isclose(value, want, rel_tol=rel_tol, abs_tol=abs_tol):
            return None
        if want and value and math.isfinite(value):
            return f"{value / want:.4g} times the expected value"
        return "the numbers differ"
    return compare


# --- 13.1 the days a training run takes ------------------------------------------------------------------


def _training_days(n_params, tokens, devices, peak_flops, mfu):
    flops = _costs.training_flops(n_params, tokens)
    return _costs.run_cost(flops, devices, peak_flops, mfu).seconds / _costs.SECONDS_PER_DAY


def _days_with(flops_per_token_per_param=6.0, use_mfu=True, use_devices=True, per=86_400.0, mfu_times=False):
    """A variant of the reference, for the named mistakes."""
    def days(n_params, tokens, devices, peak_flops, mfu):
        rate = (devices if use_devices else 1) * peak_flops
        flops = flops_per_token_per_param * n_params * tokens
        if mfu_times:
            return flops * mfu / rate / per
        return flops / (rate * (mfu if use_mfu else 1.0)) / per
    return days


@exercise("13.1", "Training compute and days", "easy", 10, hints=(
    "Two steps: how many FLOPs the whole run needs (each training token costs a forward and a backward pass "
    "through every weight), then how many FLOPs the machines really do per second: not their peak, only the "
    "share of it the model uses, and all of them together.",
    "C = 6 N D FLOPs (2N forward, 4N backward per token). The run does devices x peak_flops x mfu FLOPs a "
    "second, so it takes C / (that) seconds; a day has 86,400 seconds.",
    "6 * n_params * tokens / (devices * peak_flops * mfu) gives seconds; divide by 86_400 for days.",
))
def check_training_days(training_days) -> None:
    """Exercise 13.1: days of wall-clock time to train n_params weights on `tokens` tokens, from C = 6ND."""
    run_cases(
        "training_days",
        training_days,
        _training_days,
        [
            Case((174.6e9, 300e9, 1000, 125e12, 0.3), hint="GPT-3: 174.6 billion weights, 300 billion tokens, "
                 "1,000 V100s at a peak of 125 TFLOP/s each, 30% of it used: about 97 days."),
            Case((124e6, 10e9, 8, 312e12, 0.4), hint="GPT-2 small (124 million weights) on 10 billion tokens, "
                 "8 A100s at 312 TFLOP/s and 40% MFU: about two hours, a small fraction of a day."),
            Case((1e6, 1e9, 1, 1e12, 1.0), hint="A million weights, a billion tokens, one device at 1 TFLOP/s, "
                 "every FLOP used (mfu 1): 6e15 FLOPs, 6,000 seconds."),
            Case((70e9, 1.4e12, 1024, 275e12, 0.5), hint="Chinchilla's size (70 billion weights, 1.4 trillion "
                 "tokens) on 1,024 chips of 275 TFLOP/s at 50% MFU: about 48 days."),
        ],
        hint="6 x weights x tokens FLOPs, at devices x peak x mfu FLOPs a second, counted in days.",
        compare=_close_number(rel_tol=1e-6),
        exercise="13.1",
        rules=[CourseFunctionsOff(_costs, ("training_flops", "inference_flops", "run_cost"),
                                  "compute C = 6ND and the time it takes yourself.")],
        mistakes=[
            Mistake(_days_with(flops_per_token_per_param=2.0), "that counts 2N FLOPs a token, the forward pass "
                    "alone (inference); training also runs the backward pass, 4N more: 6N a token."),
            Mistake(_days_with(use_mfu=False), "mfu was left out: the devices reach only that share of their "
                    "peak, so the run takes longer than at peak."),
            Mistake(_days_with(mfu_times=True), "the FLOPs were multiplied by mfu; mfu shrinks the speed "
                    "(FLOP/s), so it divides the FLOPs, with the devices and their peak."),
            Mistake(_days_with(use_devices=False), "that is the time on one device: `devices` of them share the "
                    "work, each doing peak x mfu FLOPs a second."),
            Mistake(_days_with(per=1.0), "that is seconds; a day has 86,400 of them."),
            Mistake(_days_with(per=3600.0), "that is hours; divide by 24 more for days."),
        ],
    )


# --- 13.2 the bytes of a KV cache ------------------------------------------------------------------------


def _cache_bytes(n_layer, n_kv_heads, head_dim, tokens, bytes_per_number=2, batch=1):
    return _costs.kv_cache_bytes(n_layer, n_kv_heads, head_dim, tokens, bytes_per_number, batch)


@exercise("13.2", "KV-cache bytes", "easy", 10, hints=(
    "While it writes, a decoder keeps, in every layer and for every token so far, what attention needs to look "
    "back at that token: its key and its value, one of each per key/value head (query heads keep nothing). "
    "Count those numbers, then their bytes, then the sequences in the batch.",
    "Each key and each value is head_dim numbers. Multiply: 2 (key and value) x layers x key/value heads x "
    "head_dim x tokens numbers for one sequence; times bytes_per_number; times batch.",
    "2 * n_layer * n_kv_heads * head_dim * tokens * bytes_per_number * batch, with the defaults "
    "bytes_per_number=2 and batch=1 in the signature.",
))
def check_kv_cache_bytes(kv_cache_bytes) -> None:
    """Exercise 13.2: the bytes of the keys and values a decoder keeps for `tokens` tokens of `batch` sequences."""
    run_cases(
        "kv_cache_bytes",
        kv_cache_bytes,
        _cache_bytes,
        [
            Case((1, 1, 4, 1, 4, 1), hint="One layer, one key/value head of 4 numbers, one token, 4 bytes a "
                 "number (float32): a key and a value, 8 numbers, 32 bytes."),
            Case((32, 32, 128, 4096, 2, 1), hint="Llama 2 7B (32 layers, 32 key/value heads of 128, float16) at its "
                 "full 4,096 tokens: 2 GiB, 2,147,483,648 bytes."),
            Case((32, 8, 128, 4096), hint="Llama 3 8B (8 key/value heads), 4,096 tokens, with the defaults "
                 "bytes_per_number=2 and batch=1: 512 MiB."),
            Case((4, 2, 24, 64, 4, 8), hint="A small model (4 layers, 2 key/value heads of 24) on 64 tokens in "
                 "float32, for a batch of 8 sequences: each sequence has its own cache."),
            Case((32, 8, 128, 32768, 1, 2), hint="8 key/value heads, 32,768 tokens, an int8 cache (1 byte a "
                 "number), 2 sequences: 8 GiB."),
        ],
        hint="2 (keys and values) x layers x key/value heads x head_dim x tokens x bytes a number x batch.",
        compare=_close_number(rel_tol=1e-12),
        exercise="13.2",
        rules=[CourseFunctionsOff(_costs, ("kv_cache_bytes", "measured_cache_bytes"),
                                  "count the cache's bytes yourself.")],
        mistakes=[
            Mistake(lambda L, G, d, T, b=2, n=1: L * G * d * T * b * n, "only the keys (or only the values) were "
                    "counted: the cache keeps both, a factor of 2."),
            Mistake(lambda L, G, d, T, b=2, n=1: 2 * L * G * d * T * b, "the batch was left out: every sequence in "
                    "the batch keeps a cache of its own."),
            Mistake(lambda L, G, d, T, b=2, n=1: 2 * L * G * d * T * n, "that is the count of numbers; multiply by "
                    "bytes_per_number for bytes."),
            Mistake(lambda L, G, d, T, b=2, n=1: 8 * 2 * L * G * d * T * b * n, "that counts bits (8 a byte); the "
                    "answer is in bytes."),
            Mistake(lambda L, G, d, T, b=2, n=1: 2 * L * G * d * T * T * b * n, "tokens counted twice: the cache "
                    "grows with each token (linearly); it is the attention scores of a whole sequence that grow "
                    "with its square."),
            Mistake(lambda L, G, d, T, b=2, n=1: 2 * L * G * d * T * b * n / 2**30, "that is in GiB; return the "
                    "bytes themselves (a whole number)."),
        ],
    )


# --- 13.3 WEAT's effect size -----------------------------------------------------------------------------


def _weat_reference(x, y, a, b):
    return _weat.effect_size(x, y, a, b)


def _weat_with(normalise="all", spread="both", unbiased=False, attribute="mean", target="mean", sign=1.0):
    """A variant of WEAT's d, for the named mistakes."""
    def effect(x, y, a, b):
        x, y, a, b = (t.double() for t in (x, y, a, b))
        if normalise == "all":
            x, y, a, b = (F.normalize(t, dim=1) for t in (x, y, a, b))
        elif normalise == "targets":
            x, y = F.normalize(x, dim=1), F.normalize(y, dim=1)

        def s(w):
            if attribute == "sum":
                return (w @ a.T).sum(1) - (w @ b.T).sum(1)
            return (w @ a.T).mean(1) - (w @ b.T).mean(1)

        sx, sy = s(x), s(y)
        top = sx.sum() - sy.sum() if target == "sum" else sx.mean() - sy.mean()
        pool = torch.cat([sx, sy]) if spread == "both" else sx
        return (sign * top / pool.std(unbiased=unbiased)).item()
    return effect


def _weat_case(seed, n, n_a, n_b, d, planted=0.0, scale=1.0, hint=""):
    """Target sets x, y of n vectors and attribute sets a, b, with lengths that differ from row to row (so that
    cosines and dot products differ); `planted` moves X towards A and Y towards B along one direction."""
    vectors = seeded_randn(2 * n + n_a + n_b, d, seed=seed)
    lengths = 0.5 + 4.5 * seeded_randn(2 * n + n_a + n_b, 1, seed=seed + 100).abs()
    direction = F.normalize(seeded_randn(d, seed=seed + 200), dim=0) * planted
    x, y, a, b = torch.split(vectors, [n, n, n_a, n_b])
    x, y, a, b = x + direction, y - direction, a + 2 * direction, b - 2 * direction
    x, y, a, b = (t * s * scale for t, s in zip((x, y, a, b), torch.split(lengths, [n, n, n_a, n_b]), strict=True))
    return Case((x, y, a, b), hint=hint)


@exercise("13.3", "WEAT effect size", "medium", 15, hints=(
    "WEAT's d is an effect size, like Cohen's d: how much nearer the X words are to A than to B, minus the same "
    "for the Y words, in units of how much that nearness varies over all the target words. Nearness is the "
    "cosine, which ignores a vector's length.",
    "For each target vector w: s(w) = (mean cosine of w with the A vectors) - (mean cosine with the B vectors). "
    "d = (mean of s over X - mean of s over Y) / (standard deviation of s over X and Y together). That "
    "deviation is the population one, dividing by the count, not by the count - 1.",
    "Normalise every row (F.normalize(t, dim=1)); then the cosines are matrix products, s = (w @ a.T).mean(1) - "
    "(w @ b.T).mean(1), and the spread is torch.cat([sx, sy]).std(unbiased=False).",
))
def check_weat_effect_size(weat_effect_size) -> None:
    """Exercise 13.3: WEAT's effect size d for target vectors x, y and attribute vectors a, b (rows are vectors)."""
    run_cases(
        "weat_effect_size",
        weat_effect_size,
        _weat_reference,
        [
            Case((torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[0.0, 1.0], [-1.0, 1.0]]),
                  torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])),
                 hint="Flat vectors, A = (1, 0) and B = (0, 1): s of the four targets is 1, 0, -1 and -1.414 (the "
                 "cosines of (1, 1) are 0.707 each); d = 1.825."),
            _weat_case(1, 4, 5, 3, 16, hint="Random vectors of different lengths, 5 vectors in A and 3 in B: "
                       "cosines divide by both lengths, and the means weigh each set by its own size."),
            _weat_case(2, 6, 4, 4, 32, planted=3.0, hint="X planted near A and Y near B: a large effect, close "
                       "to its bound of 2."),
            _weat_case(3, 1, 3, 2, 8, planted=1.0, hint="One vector in X and one in Y: the spread of the two s "
                       "values is half their gap, so |d| is exactly 2."),
            _weat_case(4, 8, 6, 9, 24, scale=100.0, hint="Long vectors (lengths in the hundreds), 8 targets a "
                       "set: only the directions count."),
        ],
        hint="s(w) = mean cos(w, A) - mean cos(w, B); d = (mean s over X - mean s over Y) / population std of s "
             "over X and Y.",
        compare=_close_number(rel_tol=1e-4, abs_tol=1e-6),
        exercise="13.3",
        rules=[CourseFunctionsOff(_weat, ("association", "effect_size", "p_value"),
                                  "compute the cosines and d from the formula.")],
        mistakes=[
            Mistake(_weat_with(unbiased=True), "that is the sample standard deviation (dividing by n - 1); WEAT's "
                    "d uses the population one (dividing by n), which keeps |d| <= 2."),
            Mistake(_weat_with(normalise="none"), "those are dot products, which grow with the vectors' lengths; "
                    "WEAT uses cosines: normalise every vector (targets and attributes) first."),
            Mistake(_weat_with(normalise="targets"), "only the target vectors were normalised; a cosine divides "
                    "by the lengths of both vectors, so normalise the attribute vectors too."),
            Mistake(_weat_with(spread="x"), "the spread was taken over X alone; d divides by the standard "
                    "deviation of s over all the target vectors, X and Y together."),
            Mistake(_weat_with(attribute="sum"), "s(w) summed the cosines over A and over B; take their means, so "
                    "that sets of different sizes weigh the same."),
            Mistake(_weat_with(target="sum"), "the numerator summed s over X and over Y; it is the difference of "
                    "their means."),
            Mistake(_weat_with(sign=-1.0), "the sign is flipped: d is X's mean association minus Y's, with s = "
                    "cosines with A minus cosines with B."),
        ],
    )


# --- 13.4 int8 weights, a scale per row ------------------------------------------------------------------


class _Quantized(tuple):
    """The reference's (q, scale), carrying the weight it came from so that the check can measure the error."""

    weight: torch.Tensor

    def __new__(cls, q, scale, weight):
        made = super().__new__(cls, (q, scale))
        made.weight = weight
        return made


def _quantize_reference(weight):
    q, scale = _quant.quantize_int8(weight)
    return _Quantized(q, scale, weight)


def _quantized_difference(expected, got) -> str | None:
    """None when got is the reference's (q, scale), else why not: its form first (int8, a scale a row, no NaN,
    q in -127..127), then the rounding bound, then the values. Rounding a near-tie either way is accepted.
    Against a named mistake's result (a plain pair) the two must simply be the same."""
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"expected a pair (q, scale), got {_kind(got)}"
    if not isinstance(expected, _Quantized):
        return difference(tuple(expected), tuple(got), rtol=1e-6, atol=0.0)
    q_ref, scale_ref = expected
    q, scale = got
    for name, value in (("q", q), ("scale", scale)):
        if not isinstance(value, torch.Tensor):
            return f"{name} is {_kind(value)}, expected a torch.Tensor"
    if q.shape != q_ref.shape:
        return f"q has shape {tuple(q.shape)}, expected {tuple(q_ref.shape)}: one integer per weight"
    if q.dtype != torch.int8:
        return f"q's dtype is {q.dtype}; store it as torch.int8, one byte a weight"
    if scale.shape != scale_ref.shape:
        return f"scale has shape {tuple(scale.shape)}, expected {tuple(scale_ref.shape)}: one number per row"
    if not scale.is_floating_point():
        return f"scale's dtype is {scale.dtype}, expected a float tensor"
    if not torch.isfinite(scale).all():
        return f"scale holds inf or NaN (row {_first(~torch.isfinite(scale))})"
    if (scale <= 0).any():
        row = _first(scale <= 0)
        return f"row {row}'s scale is {scale[row].item():.3g}; every scale must be positive"
    if (q == -128).any():
        return "q holds -128; symmetric int8 uses -127 .. 127, so that q and -q both exist"
    weight = expected.weight.double()
    error = (weight - q.double() * scale.double()[:, None]).abs()
    half = scale.double()[:, None] / 2
    off = (error > half * (1 + 1e-5) + 1e-12).any(dim=1)
    if off.any():
        row = _first(off)
        return (f"in row {row}, scale * q is up to {error[row].max().item():.3g} away from the weight, more than "
                f"half a step (scale / 2 = {half[row, 0].item():.3g})")
    steps = (weight / scale_ref.double()[:, None]).abs()
    near_tie = ((steps - steps.floor()) - 0.5).abs() < 1e-3
    gap = (q.long() - q_ref.long()).abs()
    differ = (gap > 0) & ~(near_tie & (gap == 1))
    if differ.any():
        return f"{int(differ.sum())} of the {q.numel()} integers in q differ from the expected ones"
    used = (q_ref != 0).any(dim=1)  # an all-zero row may have any positive scale
    if not torch.allclose(scale[used].double(), scale_ref[used].double(), rtol=1e-6, atol=0.0):
        return "the scales differ"
    return None


def _kind(value) -> str:
    return f"a tuple of {len(value)}" if isinstance(value, (tuple, list)) else type(value).__name__


def _first(flags: torch.Tensor) -> int:
    return int(flags.nonzero()[0, 0])


def _quantize_with(scale_of, steps=127, rounding=torch.round, low=-127, high=127, per_column=False):
    """A variant of the reference: `scale_of(weight)` gives the row scales (before dividing by `steps`)."""
    def quantize(weight):
        scale = scale_of(weight).float() / steps
        spread = scale[None, :] if per_column else scale[:, None]
        q = rounding(weight.float() / spread).clamp(low, high).to(torch.int8)
        return q, scale
    return quantize


def _guarded(scale):
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def _row_absmax(w):
    return _guarded(w.abs().amax(dim=1))


def _per_tensor(w):
    return _guarded(w.abs().max()).expand(w.shape[0]).clone()


def _unguarded(w):
    """A row of zeros divided by a scale of 0: NaN, which the cast to int8 turns into some integer."""
    scale = w.abs().amax(dim=1).float() / 127
    return torch.round(w.float() / scale[:, None]).nan_to_num(0.0).clamp(-127, 127).to(torch.int8), scale


def _quantize_cases():
    rows = seeded_randn(8, 16, seed=1) * 0.02 * torch.arange(1, 9.0)[:, None]
    zero = seeded_randn(4, 8, seed=3)
    zero[2] = 0.0
    outlier = seeded_randn(3, 32, seed=4) * 0.02
    outlier[1, 5] = 5.0
    return [
        Case((torch.tensor([[0.4, -1.0, 0.25], [2.0, 0.1, -0.3]]),), hint="Row 0's largest magnitude is 1.0, so "
             "its step is 1/127; row 1's is 2.0, so its step is 2/127."),
        Case((rows,), hint="8 rows whose sizes grow from row to row: each row gets its own scale."),
        Case((seeded_randn(6, 6, seed=2),), hint="A square matrix: one scale per row (the largest magnitude "
             "along dim 1), not per column."),
        Case((zero,), hint="Row 2 is all zeros: its largest magnitude is 0, so dividing by it gives NaN. Give such "
             "a row any positive scale (1 will do); its q is all 0."),
        Case((outlier,), hint="Row 1 holds one outlier (5.0) among weights of about 0.02: the outlier sets that "
             "row's step, and the other weights of the row round to a few levels. The bound still holds."),
    ]


@exercise("13.4", "int8 quantise and dequantise", "medium", 15, hints=(
    "Each row gets one step size, chosen so that the row's largest weight, in magnitude, lands exactly on the "
    "largest integer allowed (127); every weight is then stored as the nearest whole number of steps. "
    "Multiplying back by the step undoes it, up to half a step.",
    "scale of a row = (largest |weight| in the row) / 127, one number per row, shape (rows,). q = the weights "
    "divided by their row's scale, rounded to the nearest integer, kept in -127..127 and stored as torch.int8. "
    "A row of zeros has a largest magnitude of 0: replace its scale by 1 before dividing.",
    "scale = weight.abs().amax(dim=1) / 127, with torch.where(scale > 0, scale, 1); q = torch.round(weight / "
    "scale[:, None]).clamp(-127, 127).to(torch.int8); return q, scale.",
))
def check_quantize_rows(quantize_rows) -> None:
    """Exercise 13.4: absmax int8 quantisation with one scale per row: weight (rows, cols) -> (q int8, scale)."""
    run_cases(
        "quantize_rows",
        quantize_rows,
        _quantize_reference,
        _quantize_cases(),
        hint="scale = each row's largest |weight| / 127 (1 for a row of zeros); q = round(weight / scale), int8.",
        compare=_quantized_difference,
        exercise="13.4",
        rules=[CourseFunctionsOff(_quant, ("quantize_int8", "dequantize_int8", "error_bound", "quantize_linears",
                                           "Int8Linear"), "round the weights to int8 yourself."),
               NoTorchCall((torch.quantize_per_channel, torch.quantize_per_tensor),
                           "round the weights to int8 yourself, with your own scales.")],
        mistakes=[
            Mistake(_quantize_with(_per_tensor), "one scale for the whole matrix (per tensor): every row must "
                    "have its own, from its own largest magnitude, or the rows of small weights lose precision."),
            Mistake(_quantize_with(lambda w: _guarded(w.abs().amax(dim=0)), per_column=True),
                    "the scales are per column (dim 0); absmax here gives one scale per row, the largest "
                    "magnitude along dim 1."),
            Mistake(_quantize_with(_row_absmax, steps=128, low=-128), "the step was max / 128: the largest weight "
                    "then needs q = 128, which int8 cannot hold. Divide by 127, so that q stays in -127..127."),
            Mistake(_quantize_with(_row_absmax, steps=128), "the step was max / 128; it is max / 127, so that "
                    "the row's largest magnitude becomes exactly 127."),
            Mistake(_quantize_with(_row_absmax, steps=255, low=-128), "the step was max / 255: 255 steps fit an "
                    "unsigned byte (0..255); a signed int8 goes from -127 to 127, so divide by 127."),
            Mistake(_quantize_with(_row_absmax, steps=255), "the step was max / 255: 255 steps fit an unsigned "
                    "byte (0..255); a signed int8 goes from -127 to 127, so divide by 127."),
            Mistake(_quantize_with(_row_absmax, rounding=torch.trunc), "the quotients were truncated (a cast to "
                    "int8 cuts off the fraction); round them to the nearest integer, so that the error is at most "
                    "half a step."),
            Mistake(_quantize_with(_row_absmax, rounding=torch.floor), "the quotients were floored; round them "
                    "to the nearest integer, so that the error is at most half a step."),
            Mistake(_quantize_with(lambda w: _guarded(w.amax(dim=1))), "the scale came from the row's largest "
                    "value, not its largest magnitude: a negative weight can be the biggest one. Take abs() first."),
            Mistake(_unguarded, "a row of zeros got a scale of 0, so its q came from 0 / 0 = NaN (the cast to "
                    "int8 hides it). Give such a row a positive scale, e.g. 1."),
        ],
    )


# --- 13.5 the expected calibration error -----------------------------------------------------------------


def _ece_reference(confidence, correct, bins=15):
    return _calibration.expected_calibration_error(confidence, correct, bins)


def _ece_with(weighted=True, empty_bins=False, signed=False, fixed_bins=None, own_top_bin=False, one_bin=False):
    """A variant of the ECE, for the named mistakes."""
    def ece(confidence, correct, bins=15):
        bins = fixed_bins or bins
        conf = torch.as_tensor(confidence, dtype=torch.float64).flatten()
        right = torch.as_tensor(correct, dtype=torch.float64).flatten()
        if one_bin:
            return abs(right.mean().item() - conf.mean().item())
        which = (conf * bins).long()
        slots = bins + 1 if own_top_bin else bins
        which = which if own_top_bin else which.clamp(max=bins - 1)
        counts = torch.bincount(which, minlength=slots).double()
        gap = (torch.zeros(slots, dtype=torch.float64).index_add_(0, which, right)
               - torch.zeros(slots, dtype=torch.float64).index_add_(0, which, conf)) / counts.clamp(min=1)
        gap = gap if signed else gap.abs()
        if empty_bins:
            return (gap.sum() / slots).item()
        used = counts > 0
        if not weighted:
            return gap[used].mean().item()
        return ((counts[used] / counts.sum()) * gap[used]).sum().item()
    return ece


def _ece_cases():
    generator = torch.Generator().manual_seed(1)
    confidence = torch.rand(200, generator=generator, dtype=torch.float64)
    correct = torch.rand(200, generator=generator, dtype=torch.float64) < confidence**2  # over-confident
    spread = torch.rand(60, generator=generator, dtype=torch.float64) * 0.5 + 0.5
    spread_right = torch.rand(60, generator=generator, dtype=torch.float64) < spread - 0.2
    return [
        Case((torch.tensor([0.95, 0.95, 0.95, 0.95, 0.35, 0.35], dtype=torch.float64),
              torch.tensor([True, False, True, False, True, True]), 10),
             hint="Two of 10 bins hold answers: 0.95 (4 answers, half right: a gap of 0.45) and 0.35 (2 answers, "
             "both right: a gap of 0.65). Weighted by their shares, 4/6 and 2/6: ECE = 0.517."),
        Case((confidence, correct, 15), hint="200 answers of an over-confident model, 15 bins (Guo et al.'s "
             "number)."),
        Case((torch.tensor([1.0, 1.0, 0.95, 0.45, 0.3], dtype=torch.float64),
              torch.tensor([True, False, True, True, False]), 10),
             hint="A confidence of exactly 1.0 belongs to the last bin, [0.9, 1.0], with the 0.95."),
        Case((spread, spread_right), hint="bins not given: the default is 15. Confidences between 0.5 and 1."),
        Case((spread, spread_right, 5), hint="The same answers in 5 bins: use the `bins` you are given."),
        Case((torch.tensor([0.25] * 4 + [0.75] * 4, dtype=torch.float64),
              torch.tensor([True, False, False, False, True, True, True, False]), 10),
             hint="Perfectly calibrated: a quarter right at 0.25, three quarters at 0.75. ECE = 0."),
    ]


@exercise("13.5", "ECE from confidences", "medium", 15, hints=(
    "Sort the answers by confidence into equal-width bins over [0, 1]. In each bin compare how often the "
    "model was right with how sure it said it was; the ECE is the average of those gaps, each bin counting as "
    "much as the share of answers it holds.",
    "Bin m holds the confidences in [m / M, (m + 1) / M); a confidence of exactly 1 goes into the last bin. For "
    "each non-empty bin: |share right - mean confidence| times (answers in the bin / all answers); add them up.",
    "which = (confidence * bins).long().clamp(max=bins - 1); for each m with (which == m).any(): weight = "
    "(which == m).double().mean(), gap = (correct[which == m].double().mean() - confidence[which == m].mean())"
    ".abs().",
))
def check_expected_calibration_error(expected_calibration_error) -> None:
    """Exercise 13.5: the expected calibration error of answers given with `confidence`, right where `correct`."""
    run_cases(
        "expected_calibration_error",
        expected_calibration_error,
        _ece_reference,
        _ece_cases(),
        hint="Equal-width bins; the ECE adds |share right - mean confidence| of each bin, weighted by its share of "
             "the answers.",
        compare=_close_number(rel_tol=1e-6, abs_tol=1e-9),
        exercise="13.5",
        rules=[CourseFunctionsOff(_calibration, ("reliability", "expected_calibration_error"),
                                  "bin the answers and average the gaps yourself.")],
        mistakes=[
            Mistake(_ece_with(weighted=False), "every bin counted the same; weigh each bin's gap by its share of "
                    "the answers (|B_m| / n)."),
            Mistake(_ece_with(empty_bins=True), "the gaps were averaged over all the bins, empty ones included; "
                    "weigh each bin's gap by its share of the answers, so an empty bin adds nothing."),
            Mistake(_ece_with(one_bin=True), "that is the gap between the overall accuracy and the mean "
                    "confidence, one bin for everything: a model too sure in one bin and too shy in another then "
                    "looks calibrated. Bin the answers by confidence first."),
            Mistake(_ece_with(signed=True), "the gaps were added with their signs, so over- and under-confident "
                    "bins cancel; take each bin's absolute gap."),
            Mistake(_ece_with(fixed_bins=15), "15 bins were used whatever `bins` says."),
            Mistake(_ece_with(own_top_bin=True), "a confidence of exactly 1.0 got a bin of its own (index bins); it "
                    "belongs to the last bin, [1 - 1/M, 1]."),
        ],
    )
