"""Wrong answers for lesson 11's checks (RMSNorm, RoPE on neighbouring pairs, repeat_kv, the KV cache)."""

import torch
import torch.nn.functional as F

from utils.checks.modern import _interleaved_with, _kv_cache_bytes
from utils.model import RMSNorm
from utils.rope import apply_rope

from . import WrongAnswer


def _rms_module(x, weight, eps):
    norm = RMSNorm(x.shape[-1], eps=eps)
    with torch.no_grad():
        norm.weight.copy_(weight)
    return norm(x)


WRONG = [
    WrongAnswer("11.1", "LayerNorm", lambda x, w, eps: F.layer_norm(x, (x.shape[-1],), w, None, eps),
                "that is LayerNorm"),
    WrongAnswer("11.1", "eps outside the root",
                lambda x, w, eps: x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps) * w, "inside the square root"),
    WrongAnswer("11.1", "standard deviation", lambda x, w, eps: x / x.std(-1, keepdim=True) * w, "standard deviation"),
    WrongAnswer("11.1", "mean over everything", lambda x, w, eps: x * torch.rsqrt(x.pow(2).mean() + eps) * w,
                "whole tensor"),
    WrongAnswer("11.1", "no gain", lambda x, w, eps: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps),
                "gain was not applied"),
    WrongAnswer("11.1", "sum of squares", lambda x, w, eps: x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + eps) * w,
                "summed, not averaged"),
    WrongAnswer("11.1", "calls F.rms_norm", lambda x, w, eps: F.rms_norm(x, (x.shape[-1],), w, eps), "F.rms_norm"),
    WrongAnswer("11.1", "uses the course's RMSNorm", _rms_module, "RMSNorm.forward"),
    WrongAnswer("11.2", "the notebook's half-split pairs", _interleaved_with(layout="halves"), "neighbours"),
    WrongAnswer("11.2", "turns backwards", _interleaved_with(sign=-1.0), "wrong way"),
    WrongAnswer("11.2", "frequencies base^(-j/d)", _interleaved_with(exponent=1.0), "base ** (-2j / d)"),
    WrongAnswer("11.2", "positions from 1", _interleaved_with(offset=1), "counted from 1"),
    WrongAnswer("11.2", "calls apply_rope on reordered features",
                lambda x, p, b: apply_rope(x, p, b), "apply_rope"),
    WrongAnswer("11.3", "tiles the heads", lambda k, n: k.repeat(1, n // k.shape[1], 1, 1), "tiled"),
    WrongAnswer("11.3", "repeats positions", lambda k, n: k.repeat_interleave(n // k.shape[1], dim=2), "positions"),
    WrongAnswer("11.3", "every head reads the first", lambda k, n: k[:, :1].expand(-1, n, -1, -1), "Hint"),
    WrongAnswer("11.4", "keys only", lambda c, t, b=4: _kv_cache_bytes(c, t, b) // 2, "factor of 2"),
    WrongAnswer("11.4", "query heads", lambda c, t, b=4: 2 * c.n_layer * c.n_head * (c.n_embd // c.n_head) * t * b,
                "only the key/value heads"),
    WrongAnswer("11.4", "n_kv_head 0 as none",
                lambda c, t, b=4: 2 * c.n_layer * c.n_kv_head * (c.n_embd // c.n_head) * t * b, "as many as n_head"),
    WrongAnswer("11.4", "numbers, not bytes", lambda c, t, b=4: _kv_cache_bytes(c, t, b) // b, "bytes_per_value"),
    WrongAnswer("11.4", "n_embd per head",
                lambda c, t, b=4: 2 * c.n_layer * (c.n_kv_head or c.n_head) * c.n_embd * t * b, "d_head"),
]
