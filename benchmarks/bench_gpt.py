"""Measure the GPT targets of lessons 05-07 on this machine and print the figures.

    python benchmarks/bench_gpt.py                 # everything (about 15 minutes on 2 idle cores)
    python benchmarks/bench_gpt.py --only kv       # just the KV-cache speed-up (under a minute)
    python benchmarks/bench_gpt.py --only quick    # the cpu-quick preset
    python benchmarks/bench_gpt.py --only 5min     # the cpu-5min preset
    python benchmarks/bench_gpt.py --only step     # our training step against a minimal yardstick
    python benchmarks/bench_gpt.py --only lr       # cpu-quick at nanoGPT's learning rate, 1e-3
    python benchmarks/bench_gpt.py --only muon     # Muon against AdamW, 2,000 steps of the cpu-5min model
    python benchmarks/bench_gpt.py --only 5min --save   # also write benchmarks/results/bench_gpt_5min.txt

1. cpu-quick (nanoGPT's CPU recipe): milliseconds per training step and the final validation loss
   (200 batches). nanoGPT's own code on this 2-core machine: about 35 ms per step, val loss 1.87.
   Machines and their load vary, so the step is also timed against a yardstick on the spot
   (`--only step`): a minimal GPT of the same shape written the way nanoGPT writes it (one fused
   q/k/v matmul, no checks, no hooks) with AdamW set up as nanoGPT does on a CPU, against our model
   with the optimizer our trainer builds, on the same batch, the two taking turns step by step.
2. cpu-5min: the validation loss reached and the wall-clock time (Muon, 96 dims, 4,500 steps).
3. lr: cpu-quick at 1e-3 (nanoGPT's rate) instead of the preset's 2e-3, the rest unchanged.
4. muon: the cpu-5min model (96 dims) for 2,000 steps with AdamW at 3e-3 and with Muon at 3e-3,
   6e-3 and 1.2e-2: the comparison behind cpu-5min's optimizer and learning rate.
5. KV cache: tokens per second generating 500 new tokens with and without the cache, greedy, on
   a model of the cpu-quick width with a context long enough to hold them (1,024).
Run it on an otherwise idle machine: other programs on the same cores distort every timing.
`--save` also writes what it prints to benchmarks/results/, with the date, cores, threads and load:
the lesson guides quote those files (`<!--bench:bench_gpt_5min-->`, checked by tests/test_quotes.py).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import saved_output  # noqa: E402  (benchmarks/, beside this script)

from utils.generation import generate  # noqa: E402
from utils.model import GPT, GPTConfig  # noqa: E402
from utils.train import PRESETS, TrainConfig, Trainer, make_optimizer  # noqa: E402


def bench_preset(name: str, label: str | None = None, **overrides) -> None:
    label = label or name
    trainer = Trainer.from_preset(name, device="cpu", **overrides)
    cfg = trainer.train_config
    print(f"\n[{label}] {trainer.model.num_parameters():,} parameters, {cfg.max_steps} steps, {cfg.optimizer} "
          f"at lr {cfg.lr:g}, {torch.get_num_threads()} threads", flush=True)
    wall = time.perf_counter()
    trainer.fit(progress=False, callback=lambda t, losses: print(
        f"  step {t.step:5d}  val {losses['val']:.4f}  ({time.perf_counter() - wall:.0f} s)", flush=True))
    wall = time.perf_counter() - wall
    h = trainer.history
    print(f"[{label}] {1000 * h.seconds / trainer.step:.1f} ms per step (evaluations included), "
          f"{wall:.0f} s wall in all, final val loss {h.eval_val[-1]:.4f} (200 batches)", flush=True)


class _YardstickBlock(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d, bias=False), nn.LayerNorm(d, bias=False)
        self.qkv, self.out = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
        self.fc, self.proj = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = (t.view(b, n, self.heads, d // self.heads).transpose(1, 2)
                   for t in self.qkv(self.ln1(x)).split(d, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, n, d)
        x = x + self.out(y)
        return x + self.proj(F.gelu(self.fc(self.ln2(x))))


class Yardstick(nn.Module):
    """The cpu-quick GPT stripped to the bone, for timing only (same shapes, same FLOPs)."""

    def __init__(self, vocab: int = 65, context: int = 64, layers: int = 4, heads: int = 4, d: int = 128):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(context, d)
        self.blocks = nn.Sequential(*[_YardstickBlock(d, heads) for _ in range(layers)])
        self.ln, self.head = nn.LayerNorm(d, bias=False), nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight

    def forward(self, idx, targets):
        logits = self.head(self.ln(self.blocks(self.tok(idx) + self.pos(torch.arange(idx.shape[1])))))
        return None, F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def bench_step(steps: int = 600, warmup: int = 20) -> None:
    """ms per training step (forward, backward, clipping, optimizer) of our GPT and of the yardstick.

    The two take turns step by step, so that a change in the machine's speed (which on a shared machine
    can move by a third within a minute) hits both alike; the ratio is what to read."""
    torch.manual_seed(0)
    x, y = torch.randint(65, (12, 64)), torch.randint(65, (12, 64))
    models = {"utils.model.GPT": GPT(GPTConfig()), "yardstick": Yardstick()}
    optimizers = {
        # ours as the trainer builds it for cpu-quick (AdamW, fused kernel on the CPU) ...
        "utils.model.GPT": make_optimizer(models["utils.model.GPT"], TrainConfig(**PRESETS["cpu-quick"][1]),
                                          torch.device("cpu")),
        # ... and AdamW as nanoGPT sets it up on a CPU (the fused kernel only on CUDA)
        "yardstick": torch.optim.AdamW(models["yardstick"].parameters(), lr=1e-3, betas=(0.9, 0.99), fused=False),
    }
    seconds = dict.fromkeys(models, 0.0)
    for i in range(warmup + steps):  # the first steps warm up allocators and caches
        for name, model in models.items():
            t0 = time.perf_counter()
            _, loss = model(x, y)[:2]
            optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizers[name].step()
            if i >= warmup:
                seconds[name] += time.perf_counter() - t0
    ours, yardstick = (1000 * seconds[k] / steps for k in models)
    print(f"\n[step] cpu-quick shapes, {torch.get_num_threads()} threads, {steps} steps each, taking turns: "
          f"ours {ours:.1f} ms, yardstick {yardstick:.1f} ms, ratio {ours / yardstick:.2f}", flush=True)


@torch.no_grad()
def bench_kv(n_new: int = 500, repeats: int = 3) -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, context_length=1024, n_layer=4, n_head=4, n_embd=128)).eval()
    start = torch.zeros(1, 1, dtype=torch.long)
    rates = {}
    for use_cache in (True, False):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = generate(model, start, n_new, temperature=0, use_cache=use_cache)
            times.append(time.perf_counter() - t0)
        rates[use_cache] = n_new / sorted(times)[len(times) // 2]  # median
        assert out.shape[1] == n_new + 1
    same = torch.equal(generate(model, start, 100, temperature=0, use_cache=True),
                       generate(model, start, 100, temperature=0, use_cache=False))
    print(f"\n[kv cache] {n_new} new tokens, 4 layers x 128 dims, context 1024: "
          f"with cache {rates[True]:.0f} tokens/s, without {rates[False]:.0f} tokens/s, "
          f"speed-up {rates[True] / rates[False]:.1f}x; identical output: {same}", flush=True)


def bench_muon() -> None:
    """The cpu-5min model for 2,000 steps: AdamW, then Muon at three learning rates."""
    short = dict(max_steps=2000, eval_interval=1000)
    bench_preset("cpu-5min", "adamw 3e-3", optimizer="adamw", lr=3e-3, min_lr=3e-4, **short)
    for lr in (3e-3, 6e-3, 1.2e-2):
        bench_preset("cpu-5min", f"muon {lr:g}", optimizer="muon", lr=lr, min_lr=lr / 10, **short)


BENCHES = {
    "kv": bench_kv,
    "step": bench_step,
    "quick": lambda: bench_preset("cpu-quick"),
    "lr": lambda: bench_preset("cpu-quick", "cpu-quick at lr 1e-3", lr=1e-3, min_lr=1e-4),
    "5min": lambda: bench_preset("cpu-5min"),
    "muon": bench_muon,
}
EVERYTHING = ("kv", "step", "quick", "5min")  # what a run without --only measures


def main() -> None:
    saved_output.main("bench_gpt", __doc__.splitlines()[0], BENCHES, EVERYTHING)


if __name__ == "__main__":
    main()
