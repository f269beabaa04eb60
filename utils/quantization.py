"""int8 weights: absmax quantisation per row, and a GPT whose linear layers keep their weights in int8.

    s_r = max_j |W_rj| / 127          one scale per row (per output feature)
    q_rj = round(W_rj / s_r)          an integer in -127 .. 127
    W^_rj = s_r q_rj                  |W_rj - W^_rj| <= s_r / 2  (rounding moves by at most half a step)

`Int8Linear` stores q (1 byte a weight) and s (4 bytes a row) and dequantises on the fly: it saves memory,
not arithmetic. PyTorch's `torch.ao.quantization.quantize_dynamic` is the reference the notebook measures
beside it: it quantises the activations too and multiplies in int8.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

QMAX = 127  # symmetric: -127 .. 127, so that q and -q are both representable


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(q, scale): int8 q of weight's shape and one float32 scale per row, weight ~ scale[:, None] * q."""
    _check_matrix(weight)
    scale = weight.abs().amax(dim=1).float() / QMAX
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero row: any scale gives q = 0
    q = torch.round(weight.float() / scale[:, None]).clamp(-QMAX, QMAX).to(torch.int8)
    return q, scale


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The float32 weights that q and its row scales stand for."""
    return q.float() * scale[:, None]


def error_bound(weight: torch.Tensor) -> torch.Tensor:
    """The largest error rounding can make in each row: half a step, max_j |W_rj| / 254."""
    _check_matrix(weight)
    return weight.abs().amax(dim=1) / (2 * QMAX)


def _check_matrix(weight) -> None:
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or not weight.is_floating_point():
        shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"quantize a 2-D float weight matrix (out_features, in_features), got {shape}")
    if not torch.isfinite(weight).all():
        raise ValueError("the weights hold inf or nan: quantise a trained model's finite weights")


class Int8Linear(nn.Module):
    """nn.Linear with int8 weights and a float32 scale per output feature; computes in float32."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        q, scale = quantize_int8(linear.weight.detach())
        self.register_buffer("q", q)
        self.register_buffer("scale", scale)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, dequantize_int8(self.q, self.scale), self.bias)


def quantize_linears(model: nn.Module) -> nn.Module:
    """A copy of model with every nn.Linear replaced by an Int8Linear. A head tied to the token table
    gets its own int8 copy (the table itself, a lookup, stays float32)."""
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, Int8Linear(child))
    return model


def weight_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer, a shared tensor counted once. For torch.ao's dynamically
    quantised linears, whose packed weights are neither, their int8 weights and scales are added."""
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()
    for module in model.modules():
        packed = getattr(module, "_packed_params", None)
        if packed is not None and hasattr(module, "weight") and callable(module.weight):
            w = module.weight()  # a quantised tensor: int8 values, per-tensor or per-channel scales
            total += w.numel() + 8 * (w.q_per_channel_scales().numel() if w.qscheme() in
                                      (torch.per_channel_affine, torch.per_channel_symmetric) else 1)
            if module.bias() is not None:
                total += module.bias().numel() * 4
    return total
