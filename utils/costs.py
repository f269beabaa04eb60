"""What a language model costs: FLOPs per token, time, energy and money, and the KV cache's memory.

Lesson 13's arithmetic, each rule a function so the notebook and the exercises share one version:

    training FLOPs      C = 6 N D           (N parameters, D tokens: 2N forward, 4N backward per token)
    inference FLOPs     2 N per token       (one multiply and one add per weight)
    time                C / (devices * peak FLOP/s * MFU)
    energy              devices * watts * time        (times the data centre's PUE, if given)
    money               devices * price per device-hour * hours
    KV cache bytes      2 * layers * kv_heads * head_dim * tokens * bytes_per_number   (K and V)

Figures for hardware the course does not have (a V100's peak, its power) are inputs, never defaults:
the caller states them, so every result says what it assumed.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import torch

SECONDS_PER_DAY = 86_400
PETAFLOP_S_DAY = 1e15 * SECONDS_PER_DAY  # 8.64e19 FLOPs, the unit of Brown et al. (2020)


def _check_positive(**values) -> None:
    for name, value in values.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")


def training_flops(n_params: float, tokens: float) -> float:
    """About 6 N FLOPs per training token: 2N for the forward pass, 4N for the backward pass (one product
    for the gradient of the input, one for the gradient of the weights). Attention's own term is left out."""
    _check_positive(n_params=n_params, tokens=tokens)
    return 6.0 * n_params * tokens


def inference_flops(n_params: float, tokens: float = 1) -> float:
    """About 2 N FLOPs per token read or written: the forward pass alone."""
    _check_positive(n_params=n_params, tokens=tokens)
    return 2.0 * n_params * tokens


def attention_share(n_embd: int, context_length: int) -> float:
    """Kaplan et al.'s attention term over the weights' term, n_ctx / (12 d), for N = 12 n_layer d^2."""
    _check_positive(n_embd=n_embd, context_length=context_length)
    return context_length / (12 * n_embd)


class RunCost(NamedTuple):
    seconds: float  # wall-clock time of the run
    device_hours: float
    energy_kwh: float
    money: float  # in the currency of price_per_device_hour


def run_cost(flops: float, devices: int, peak_flops: float, mfu: float, watts: float = 0.0,
             price_per_device_hour: float = 0.0, pue: float = 1.0) -> RunCost:
    """Time, device-hours, energy and money of `flops` FLOPs on `devices` devices of `peak_flops` FLOP/s each,
    of which the model uses the share `mfu` (model FLOPs utilisation)."""
    _check_positive(flops=flops, devices=devices, peak_flops=peak_flops, pue=pue)
    if not 0 < mfu <= 1:
        raise ValueError(f"mfu is a share of the peak, in (0, 1], got {mfu!r}")
    seconds = flops / (devices * peak_flops * mfu)
    device_hours = devices * seconds / 3600
    return RunCost(seconds, device_hours, device_hours * watts * pue / 1000, device_hours * price_per_device_hour)


def kv_cache_bytes(n_layer: int, n_kv_heads: int, head_dim: int, tokens: int, bytes_per_number: int = 2,
                   batch: int = 1) -> int:
    """Bytes of the keys and values a decoder keeps: 2 (K and V) x layers x kv heads x head size x tokens."""
    for name, value in dict(n_layer=n_layer, n_kv_heads=n_kv_heads, head_dim=head_dim, tokens=tokens,
                            bytes_per_number=bytes_per_number, batch=batch).items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return 2 * n_layer * n_kv_heads * head_dim * tokens * bytes_per_number * batch


def measured_cache_bytes(caches) -> int:
    """Bytes held by a model's real KV caches (a list of utils.attention.KVCache, one per layer)."""
    return sum(t.numel() * t.element_size() for cache in caches for t in (cache.k, cache.v) if t is not None)


def matmul_flops_per_second(size: int = 1024, repeats: int = 5, dtype=torch.float32) -> float:
    """The best of `repeats` timings of one (size x size) @ (size x size) product, in FLOP/s: the
    machine's practical peak for dense float work (2 size^3 FLOPs a product)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b  # warm-up: the first call pays for allocation and thread start-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best
