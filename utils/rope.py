"""Rotary position embedding (RoPE, Su et al. 2021): positions as rotations of queries and keys.

GPT-2 adds a learned vector per position to each token. RoPE adds nothing: it rotates each query and
key by an angle proportional to its position, pair of features by pair of features,

    (x_i, x_{i + d/2})  ->  (x_i cos(p theta_i) - x_{i + d/2} sin(p theta_i),
                             x_{i + d/2} cos(p theta_i) + x_i sin(p theta_i)),
    theta_i = base^(-2i / d),   i = 0 .. d/2 - 1,

so that the score of a query at position m with a key at position n, q_m . k_n, depends on the two
positions only through m - n: a rotation by m theta against one by n theta is a rotation by
(m - n) theta. The first pairs turn fast (theta_0 = 1 radian a position), the last ones slowly.
Pairs are (i, i + d/2), the layout of Llama's Hugging Face code (`rotate_half`), so our weights and
theirs mean the same thing.
"""

from __future__ import annotations

from functools import lru_cache

import torch


def rope_frequencies(d_head: int, base: float = 10000.0) -> torch.Tensor:
    """theta_i = base^(-2i / d_head) for i = 0 .. d_head/2 - 1: each pair's angle per position (radians)."""
    _check_rope_args(d_head, base)
    return base ** (-torch.arange(0, d_head, 2, dtype=torch.float64) / d_head)


def rope_angles(positions: torch.Tensor, d_head: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of position * theta_i, each (n, d_head): the d_head/2 angles written twice, once for
    each member of a pair (i and i + d_head/2). Computed in float64, returned in float32."""
    angles = positions.to(torch.float64)[:, None] * rope_frequencies(d_head, base)[None, :]  # (n, d/2)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().float(), angles.sin().float()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x_first_half, x_second_half) -> (-x_second_half, x_first_half): the 90-degree turn of every pair."""
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


def apply_rope(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotate queries or keys x (..., n, d_head) by their positions (n,) (integers: 0, 1, ... or, after
    a KV cache of p tokens, p, p + 1, ...)."""
    if x.dim() < 2 or x.shape[-2] != positions.shape[0]:
        raise ValueError(f"x must be (..., n, d_head) with n = len(positions) = {positions.shape[0]}, "
                         f"got shape {tuple(x.shape)}")
    cos, sin = rope_angles(positions, x.shape[-1], base)
    return rotate(x, cos, sin)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (..., n, d_head) turned by the angles whose cos and sin (n, d_head) rope_angles gives."""
    cos, sin = cos.to(device=x.device, dtype=x.dtype), sin.to(device=x.device, dtype=x.dtype)
    return x * cos + rotate_half(x) * sin


@lru_cache(maxsize=64)
def rope_table(start: int, n: int, d_head: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """rope_angles for positions start .. start + n - 1, kept: an attention layer asks for the same
    positions at every step of training (0 .. n - 1), for its queries and its keys alike, so the
    angles are computed once, not twice a layer a step (measured on the cpu-5min model's queries, forward
    and backward: 0.27 ms a rotation instead of 0.35)."""
    return rope_angles(torch.arange(start, start + n), d_head, base)


def _check_rope_args(d_head: int, base: float) -> None:
    if not isinstance(d_head, int) or d_head <= 0 or d_head % 2:
        raise ValueError(f"RoPE rotates pairs of features: d_head must be a positive even number, got {d_head}")
    if not base > 1:
        raise ValueError(f"the RoPE base must be greater than 1 (10,000 in Llama 2, 500,000 in Llama 3), got {base}")
