"""Training on a budget, of seconds or of steps, with one loop for any model that returns (logits, loss, _).

Lesson 13 races an LSTM against the GPT on the same clock, and trains GPTs of several sizes on the same
number of FLOPs. Both need a loop in which the budget is the only thing that differs: one optimizer
(AdamW, weight decay on matrices only), one schedule (warm-up, then a cosine over the budget), the same
random windows. `loss_by_position` then scores each position of held-out windows separately: how much a
model gains from the tokens further back.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .train import get_batch


class RaceResult(NamedTuple):
    steps: int
    seconds: float
    ms_per_step: float
    tokens_per_second: float
    times: list[float]  # seconds since the start, at each logged step
    losses: list[float]  # training loss at those steps (mean of the steps since the last log)


def train_for(model: nn.Module, data: torch.Tensor, seconds: float | None = None, steps: int | None = None,
              batch_size: int = 12, context_length: int = 64, lr: float = 3e-3, min_lr: float = 3e-4,
              warmup_steps: int = 50, seed: int = 0, log_every: int = 25) -> RaceResult:
    """Train with AdamW on random windows of `data` for `seconds` of wall-clock time, or for `steps` steps.

    The learning rate warms up over warmup_steps, then follows a cosine from lr to min_lr over the budget:
    each model gets its whole schedule in the same seconds (or steps), however fast its steps are.
    """
    _check_budget(seconds, steps)
    generator = torch.Generator().manual_seed(seed)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                                  lr=lr, betas=(0.9, 0.99))
    model.train()
    times, losses, pending = [], [], []
    step, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < (seconds or math.inf) and step < (steps or math.inf):
        progress = min(1.0, elapsed / seconds if seconds else step / steps)
        rate = lr * (step + 1) / warmup_steps if step < warmup_steps else \
            min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (lr - min_lr)
        for group in optimizer.param_groups:
            group["lr"] = rate
        x, y = get_batch(data, batch_size, context_length, generator)
        _, loss, _ = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        pending.append(loss.item())
        step += 1
        if step % log_every == 0:
            times.append(time.perf_counter() - started)
            losses.append(sum(pending) / len(pending))
            pending = []
    total = time.perf_counter() - started
    model.eval()
    return RaceResult(step, total, 1000 * total / max(step, 1), step * batch_size * context_length / total,
                      times, losses)


def _check_budget(seconds, steps) -> None:
    if (seconds is None) == (steps is None):
        raise ValueError("give one budget: seconds=... or steps=..., not both and not neither")
    if seconds is not None and not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")


@torch.no_grad()
def loss_by_position(model: nn.Module, data: torch.Tensor, context_length: int, windows: int = 200,
                     seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy at each position 0..context_length-1 over `windows` random windows of data, and its
    standard error: position t is predicted from the t + 1 tokens 0..t of its window."""
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    rows = []
    for start in range(0, windows, 50):
        x, y = get_batch(data, min(50, windows - start), context_length, generator)
        logits, _, _ = model(x)
        rows.append(F.cross_entropy(logits.transpose(1, 2), y, reduction="none"))  # (batch, n)
    model.train(was_training)
    losses = torch.cat(rows)
    return losses.mean(0), losses.std(0) / math.sqrt(len(losses))


def step_time(models: dict[str, nn.Module], data: torch.Tensor, batch_size: int, context_length: int,
              steps: int = 8, rounds: int = 3, seed: int = 0) -> dict[str, float]:
    """Median milliseconds per training step (forward, backward, AdamW) of each model, the models taking
    turns `rounds` times so that a slow minute of the machine hits them all. Copies are trained: the
    models given are left as they were."""
    copies = {name: copy.deepcopy(m).train() for name, m in models.items()}
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-4) for name, m in copies.items()}
    generator = torch.Generator().manual_seed(seed)
    times: dict[str, list[float]] = {name: [] for name in copies}
    for round_ in range(rounds + 1):  # round 0 warms up (allocation, thread start-up) and is not kept
        for name, model in copies.items():
            started = time.perf_counter()
            for _ in range(steps):
                x, y = get_batch(data, batch_size, context_length, generator)
                _, loss, _ = model(x, y)
                optimizers[name].zero_grad(set_to_none=True)
                loss.backward()
                optimizers[name].step()
            if round_:
                times[name].append(1000 * (time.perf_counter() - started) / steps)
    return {name: statistics.median(t) for name, t in times.items()}
