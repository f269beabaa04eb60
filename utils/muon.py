"""Muon: an optimizer that makes every update of a weight matrix "orthogonal" (all directions equal).

AdamW scales each number of a gradient on its own. For a weight matrix that throws information
away: a matrix's gradient is usually dominated by a few directions (a few large singular values),
so a step follows those few directions and barely moves the others. Muon takes the momentum of
the gradient, G = U S V^T, and steps along U V^T instead: the same directions with every singular
value set to 1. Rare directions then learn as fast as common ones.

    momentum   M = beta * M + G                     (G: the gradient of one weight matrix)
    direction  O = orthogonalize(G + beta * M)      (Nesterov: look one step ahead)
    step       W = W - lr * scale * O - lr * weight_decay * W

U V^T without a slow SVD: five Newton-Schulz iterations, X <- a X + (b A + c A^2) X with
A = X X^T, push every singular value of X towards 1 using matrix products only. The coefficients
a, b, c = 3.4445, -4.7750, 2.0315 are the ones Keller Jordan tuned for Muon (2024). We run them
in float32: PyTorch's own torch.optim.Muon runs them in bfloat16, which a CPU without bfloat16
units does much more slowly (15x for these products on the course's machine: benchmarks/bench_gpt.py
--only bf16).

Muon is only for the 2-D weight matrices inside the transformer blocks. Embedding tables, the
output head and LayerNorm gains are not "maps from one space to another" in that sense; they get
AdamW, as in every Muon recipe. This class does both, group by group, so that a trainer keeps one
optimizer (one state to save and resume).

Measured on Tiny Shakespeare (4 layers x 96 dims, 2,000 steps, 2 CPU cores): validation loss
1.649 with Muon against 1.831 with AdamW at the same learning rate schedule.
"""

from __future__ import annotations

import math

import torch

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


@torch.no_grad()
def orthogonalize(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """About U V^T for g = U S V^T: the matrix (or stack of matrices) with its singular values set
    to roughly one (most land between 0.7 and 1.2; an exact 0 stays 0). g: (rows, cols) or
    (batch, rows, cols)."""
    if g.dim() not in (2, 3):
        raise ValueError(f"orthogonalize takes a matrix or a stack of matrices, got shape {tuple(g.shape)}")
    a, b, c = NS_COEFFICIENTS
    x = g.float()
    wide = x.shape[-2] <= x.shape[-1]
    if not wide:  # work with the short side first: X X^T is then the small product
        x = x.mT
    # Dividing by the Frobenius norm puts every singular value at or below 1, where the iteration works.
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        gram = x @ x.mT
        poly = b * gram + c * gram @ gram
        x = a * x + poly @ x
    return x if wide else x.mT


class Muon(torch.optim.Optimizer):
    """Muon for parameter groups with use_muon=True, AdamW for the others.

    Args (defaults for every group; a group may override them):
        lr: learning rate. Muon's steps are scaled by 0.2 * sqrt(max(rows, cols)), which gives them
            the size of a typical AdamW step, so one learning rate (and one schedule) fits both.
        weight_decay: decoupled, as in AdamW: W <- W - lr * weight_decay * W.
        momentum: Muon's momentum (Nesterov).
        betas, eps: AdamW's settings for the use_muon=False groups.
        ns_steps: Newton-Schulz iterations.
    """

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.0, momentum: float = 0.95,
                 betas=(0.9, 0.99), eps: float = 1e-8, ns_steps: int = 5):
        if lr < 0 or weight_decay < 0 or not 0 <= momentum < 1:
            raise ValueError(f"need lr >= 0, weight_decay >= 0 and 0 <= momentum < 1; got lr={lr}, "
                             f"weight_decay={weight_decay}, momentum={momentum}")
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, betas=tuple(betas), eps=eps,
                        ns_steps=ns_steps, use_muon=False)
        super().__init__(params, defaults)
        for group in self.param_groups:
            if group["use_muon"]:
                bad = [tuple(p.shape) for p in group["params"] if p.dim() != 2]
                if bad:
                    raise ValueError(f"Muon groups take 2-D weight matrices only; got shapes {bad}. "
                                     "Put vectors (biases, LayerNorm gains) in a use_muon=False group.")

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["use_muon"]:
                self._muon_step(group)
            else:
                self._adamw_step(group)
        return loss

    def _muon_step(self, group):
        lr, wd, beta = group["lr"], group["weight_decay"], group["momentum"]
        # Matrices of one shape are orthogonalized together: one batched product instead of many
        # small ones is what makes this affordable on a CPU.
        by_shape: dict[tuple, list] = {}
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "momentum" not in state:
                state["momentum"] = torch.zeros_like(p)
            m = state["momentum"]
            m.mul_(beta).add_(p.grad)
            by_shape.setdefault(tuple(p.shape), []).append((p, p.grad + beta * m))
        for shape, items in by_shape.items():
            directions = orthogonalize(torch.stack([d for _, d in items]), group["ns_steps"])
            scale = 0.2 * math.sqrt(max(shape))
            for (p, _), o in zip(items, directions, strict=True):
                p.mul_(1 - lr * wd)
                p.add_(o.to(p.dtype), alpha=-lr * scale)

    def _adamw_step(self, group):
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "step" not in state:
                state["step"] = torch.tensor(0.0)
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            state["step"] += 1
            t = state["step"].item()
            state["exp_avg"].lerp_(p.grad, 1 - beta1)
            state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            # Adam's running means start at 0; dividing by (1 - beta^t) removes that early bias.
            denom = (state["exp_avg_sq"] / (1 - beta2 ** t)).sqrt_().add_(eps)
            p.mul_(1 - lr * wd)
            p.addcdiv_(state["exp_avg"], denom, value=-lr / (1 - beta1 ** t))
