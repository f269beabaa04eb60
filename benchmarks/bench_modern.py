"""Lesson 11: what each of today's pieces buys a small GPT on a laptop, measured on Tiny Shakespeare.

    python benchmarks/bench_modern.py --only ablation --save   # each piece alone and all together (about 45 min)
    python benchmarks/bench_modern.py --only 5min --save       # cpu-5min against cpu-5min-modern
    python benchmarks/bench_modern.py --only sweep --save      # the search for the new cpu-5min (about 25 min)
    python benchmarks/bench_modern.py --only shapes --save     # batch size, context length, lower lr (about 22 min)
    python benchmarks/bench_modern.py --only seed --save       # GPT-2 against all four again, seed 1 (about 11 min)
    python benchmarks/bench_modern.py --only wide --save       # the same race at 128 dimensions (about 11 min)
    python benchmarks/bench_modern.py --only calibrate         # just the ms per step of every configuration

1. ablation: the GPT-2 model of the `cpu-5min-gpt2` preset (4 layers, 4 heads, 96 dims, context 64, Muon
   at 6e-3), then the same with one piece changed (RMSNorm, SwiGLU, RoPE, QK-norm, 2 or 1 key/value
   heads), then the pieces together. Every configuration gets the same *wall-clock* budget (BUDGET_S of
   training): its time per step is measured first, the configurations taking turns, and its step count is
   set so that it fills the budget; then all the runs train side by side, a slice of each in turn, so that
   a change in the machine's speed falls on all of them alike. Printed per configuration: parameters,
   steps, seconds, the final validation loss on 200 batches, the KV cache's bytes per token (measured on a
   cache), and for rotary positions the loss on windows 4x the training context, stretch by stretch of 64
   positions (with causal attention, positions 0-127 of those windows are what a 2x window gives; learned
   positions have no vectors past 64, so for them only the first stretch is defined). The curves go to a
   JSON file beside the text (results/bench_modern_ablation.json), which notebook 11 draws.
2. 5min: the `cpu-5min` preset (GPT-2's pieces, 4,500 steps) against `cpu-5min-modern` (the four pieces,
   5,250 steps, what fits 5 minutes), each run to its own step count, the two taking turns; a sample from each.
3. sweep: as 1, for the candidates of the new `cpu-5min` (higher learning rates, subsets of the pieces).
3b. shapes: the four pieces with batch 24, with context 128 (batch 6: the same tokens a step), with lr 4e-3.
4. seed: the first and the last row of 1 again with seed 1 (other initial weights and batches).
5. wide: GPT-2 against the four pieces at 128 dimensions (cpu-quick's width), as 1.
6. calibrate: only the first phase of 1.
Run it on an otherwise idle machine.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import saved_output  # noqa: E402  (benchmarks/, beside this script)

from utils.model import GPT  # noqa: E402
from utils.train import Trainer, get_batch  # noqa: E402

BUDGET_S = 300.0  # training seconds per configuration: the "5 minutes" of the preset
BASE = "cpu-5min-gpt2"  # the GPT-2 model every row starts from
ABLATION = [
    # (label, the settings that differ from GPT-2's)
    ("GPT-2 (LayerNorm, GELU, learned positions)", {}),
    ("RMSNorm", dict(norm="rmsnorm")),
    ("SwiGLU", dict(mlp="swiglu")),
    ("RoPE", dict(positions="rope")),
    ("QK-norm", dict(qk_norm=True)),
    ("GQA, 2 key/value heads", dict(n_kv_head=2)),
    ("MQA, 1 key/value head", dict(n_kv_head=1)),
    ("all four: RMSNorm + SwiGLU + RoPE + QK-norm",
     dict(norm="rmsnorm", mlp="swiglu", positions="rope", qk_norm=True)),
]
LONG = 4  # the evaluation window for rotary positions, as a multiple of the preset's training context (64)
LONG_BATCHES = 25


def trainer_for(overrides: dict, **settings) -> Trainer:
    return Trainer.from_preset(BASE, device="cpu", **overrides, **settings)


def calibrate(configs, steps: int = 30, rounds: int = 5, warmup: int = 10) -> list[float]:
    """Seconds per training step of each configuration, measured in turns (median of the rounds)."""
    trainers = [trainer_for(o, eval_interval=10**6) for _, o in configs]
    for t in trainers:
        t.fit(steps=warmup, progress=False)
    times = [[] for _ in trainers]
    for _ in range(rounds):
        for i, t in enumerate(trainers):
            start = time.perf_counter()
            t.fit(steps=steps, progress=False)
            times[i].append((time.perf_counter() - start) / steps)
    return [sorted(ts)[len(ts) // 2] for ts in times]


def bench_calibrate() -> list[float]:
    per_step = calibrate(ABLATION)
    print(f"\n[calibrate] ms per training step, the configurations taking turns ({torch.get_num_threads()} threads):")
    for (label, _), s in zip(ABLATION, per_step, strict=True):
        print(f"  {label:<46} {1000 * s:6.1f} ms", flush=True)
    return per_step


def kv_bytes_per_token(model: GPT, n: int = 32) -> float:
    """Bytes the KV cache holds per token of the sequence, measured on a real cache after n tokens."""
    caches = model.new_caches()
    with torch.no_grad():
        model(torch.zeros(1, n, dtype=torch.long), caches=caches)
    held = sum(c.k.numel() * c.k.element_size() + c.v.numel() * c.v.element_size() for c in caches)
    return held / n


@torch.no_grad()
def loss_by_stretch(trainer: Trainer, length: int = 256, stretch: int = 64) -> list[float]:
    """The model evaluated on windows of `length` positions: the mean loss over each `stretch` of positions
    (for a model trained on 64, the first is what training saw). Only for rotary positions, which have no
    table to run out of: the same weights load into a model with a longer context."""
    cfg = trainer.model_config
    long_cfg = replace(cfg, context_length=length)
    model = GPT(long_cfg)
    model.load_state_dict(trainer.model.state_dict())
    model.eval()
    gen = torch.Generator().manual_seed(12345)
    total = torch.zeros(length)
    for _ in range(LONG_BATCHES):
        x, y = get_batch(trainer.val_data, trainer.train_config.batch_size, length, gen)
        logits = model(x)[0]
        total += F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(0)
    per_position = total / LONG_BATCHES
    return [per_position[i:i + stretch].mean().item() for i in range(0, length, stretch)]


def train_in_turns(trainers: list[Trainer], slices: int = 20) -> None:
    """Train every trainer to its max_steps, a 1/slices share of each in turn."""
    while any(t.step < t.train_config.max_steps for t in trainers):
        for t in trainers:
            if t.step < t.train_config.max_steps:
                t.fit(steps=math.ceil(t.train_config.max_steps / slices), progress=False)


def bench_ablation() -> None:
    race(ABLATION, "ablation", "vs GPT-2")


def race(configs, name: str, versus: str) -> None:
    """Every configuration trained for about BUDGET_S seconds, all in turns; a table, and the curves as JSON."""
    per_step = calibrate(configs)
    print(f"\n[calibrate] ms per training step, the configurations taking turns ({torch.get_num_threads()} threads):")
    for (label, _), s in zip(configs, per_step, strict=True):
        print(f"  {label:<46} {1000 * s:6.1f} ms", flush=True)
    trainers = []
    for (_, overrides), s in zip(configs, per_step, strict=True):
        steps = int(BUDGET_S / s)
        trainers.append(trainer_for(overrides, max_steps=steps, eval_interval=max(1, steps // 10)))
    print(f"\n[{name}] each configuration trains for about {BUDGET_S:.0f} s (its steps set from its time per "
          "step above), all of them in turns; validation loss at the end on 200 batches", flush=True)
    wall = time.perf_counter()
    train_in_turns(trainers)
    print(f"[{name}] {time.perf_counter() - wall:.0f} s of wall clock for all of them", flush=True)
    base_val = trainers[0].history.eval_val[-1]
    print(f"  {'configuration':<46} {'params':>8} {'steps':>6} {'seconds':>7} {'val loss':>8} {versus:>8} "
          f"{'KV bytes/token':>14}  loss at positions 0-63 / 64-127 / 128-191 / 192-255")
    rows = []
    for (label, overrides), t in zip(configs, trainers, strict=True):
        h = t.history
        val = h.eval_val[-1]
        kv = kv_bytes_per_token(t.model)
        stretches = loss_by_stretch(t, LONG * 64) if t.model_config.positions == "rope" else None
        long = " / ".join(f"{v:.3f}" for v in stretches) if stretches else "(learned positions: 0-63 only)"
        print(f"  {label:<46} {t.model.num_parameters():>8,} {t.step:>6} {h.seconds:>7.0f} {val:>8.4f} "
              f"{val - base_val:>+8.4f} {kv:>14,.0f}  {long}", flush=True)
        rows.append(dict(label=label, settings=overrides, parameters=t.model.num_parameters(), steps=t.step,
                         seconds=h.seconds, val=val, kv_bytes_per_token=kv, eval_steps=h.eval_steps,
                         eval_val=h.eval_val, stretches=stretches))
    path = saved_output.RESULTS / f"bench_modern_{name}.json"
    path.write_text(json.dumps({"budget_s": BUDGET_S, "base": BASE, "rows": rows}, indent=1) + "\n")
    print(f"[{name}] curves written to benchmarks/results/{path.name}")


MODERN = dict(norm="rmsnorm", mlp="swiglu", positions="rope", qk_norm=True)
SWEEP = [  # the search for the new cpu-5min: learning rates and subsets of the pieces, at the same budget
    ("all four, lr 1e-2", dict(MODERN, lr=1e-2, min_lr=1e-3)),
    ("all four, lr 1.5e-2", dict(MODERN, lr=1.5e-2, min_lr=1.5e-3)),
    ("RMSNorm + RoPE, lr 1e-2", dict(norm="rmsnorm", positions="rope", lr=1e-2, min_lr=1e-3)),
    ("RMSNorm + RoPE + QK-norm, lr 1e-2", dict(norm="rmsnorm", positions="rope", qk_norm=True, lr=1e-2,
                                                min_lr=1e-3)),
]


def bench_sweep() -> None:
    race(SWEEP, "sweep", "vs first")


SHAPES = [  # the second search: the same four pieces, other batch shapes and a lower learning rate
    ("all four (the cpu-5min-modern recipe)", dict(MODERN)),
    ("all four, batch 24", dict(MODERN, batch_size=24)),
    ("all four, context 128, batch 6", dict(MODERN, context_length=128, batch_size=6)),
    ("all four, lr 4e-3", dict(MODERN, lr=4e-3, min_lr=4e-4)),
]


def bench_shapes() -> None:
    """Batch size, context length and a lower learning rate for the four pieces: the last search for 1.50.

    With context 128 the validation loss averages over 128 positions, so part of any gain is the longer
    context itself (later positions see more text), not better training; the stretch columns split it.
    """
    race(SHAPES, "shapes", "vs first")


def bench_wide() -> None:
    """The same race at 128 dimensions (cpu-quick's width), GPT-2 against the four pieces: a lead for 1.50."""
    race([("GPT-2, 128 dims", dict(n_embd=128)), ("all four, 128 dims", dict(MODERN, n_embd=128))],
         "wide", "vs GPT-2")


def bench_seed() -> None:
    """GPT-2 against all four pieces again, with another seed (other initial weights, other batches)."""
    race([(label + ", seed 1", dict(overrides, seed=1)) for label, overrides in (ABLATION[0], ABLATION[-1])],
         "seed", "vs GPT-2")


def bench_5min() -> None:
    from utils.generation import generate

    presets = ("cpu-5min", "cpu-5min-modern")
    trainers = [Trainer.from_preset(p, device="cpu") for p in presets]
    print(f"\n[5min] {' against '.join(presets)}: each to its own steps, taking turns, "
          f"{torch.get_num_threads()} threads", flush=True)
    train_in_turns(trainers)
    for name, t in zip(presets, trainers, strict=True):
        h = t.history
        print(f"[5min] {name:<14} {t.model.num_parameters():,} parameters, {t.step} steps, {h.seconds:.0f} s "
              f"({1000 * h.seconds / t.step:.1f} ms a step, evaluations included), "
              f"final val loss {h.eval_val[-1]:.4f} (200 batches)", flush=True)
    for name, t in zip(presets, trainers, strict=True):
        torch.manual_seed(0)
        start = torch.tensor([t.tokenizer.encode("ROMEO:")])
        out = generate(t.model, start, 300, temperature=0.8)
        print(f"\n[5min] {name}, a sample at temperature 0.8:\n{t.tokenizer.decode(out[0].tolist())}", flush=True)


BENCHES = {"ablation": bench_ablation, "sweep": bench_sweep, "shapes": bench_shapes, "seed": bench_seed,
           "wide": bench_wide, "5min": bench_5min, "calibrate": bench_calibrate}


def main() -> None:
    saved_output.main("bench_modern", __doc__.splitlines()[0], BENCHES, ["ablation", "5min"])


if __name__ == "__main__":
    main()
