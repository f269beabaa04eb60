"""Measure the GPT targets of lessons 05-07 on this machine and print the figures.

    python benchmarks/bench_gpt.py                 # everything (about 15 minutes on 2 idle cores)
    python benchmarks/bench_gpt.py --only kv       # just the KV-cache speed-up (under a minute)
    python benchmarks/bench_gpt.py --only quick    # the cpu-quick preset
    python benchmarks/bench_gpt.py --only 5min     # the cpu-5min preset
    python benchmarks/bench_gpt.py --only step     # our training step against a minimal yardstick
    python benchmarks/bench_gpt.py --only lr       # cpu-quick at nanoGPT's learning rate, 1e-3
    python benchmarks/bench_gpt.py --only muon     # Muon against AdamW, 2,000 steps of the cpu-5min model
    python benchmarks/bench_gpt.py --only baselines  # counting models of Tiny Shakespeare, BPE token count
    python benchmarks/bench_gpt.py --only bf16     # Muon's matrix products in float32 against bfloat16
    python benchmarks/bench_gpt.py --only busy     # one thread against two, with another program computing
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
6. baselines: the cross-entropy of counting models (each character's frequency; the previous
   character's), fitted on the training part, on both parts; the BPE-512 token count of the text.
7. bf16: the matrix products of Muon's orthogonalisation on a cpu-5min-sized matrix, float32 against
   bfloat16 (which PyTorch's own Muon uses), the two taking turns.
8. busy: a cpu-quick training step with 1 and 2 threads, on the idle machine and beside a second
   program computing on 2 threads (what lesson 06's troubleshooting describes).
Run it on an otherwise idle machine: other programs on the same cores distort every timing.
`--save` also writes what it prints to benchmarks/results/, with the date, cores, threads and load:
the lesson guides quote those files (`<!--bench:bench_gpt_5min-->`, checked by tests/test_quotes.py).
"""

from __future__ import annotations

import os
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


BUSY = "import torch\ntorch.set_num_threads(2)\nx = torch.randn(512, 512)\nwhile True:\n    x = torch.tanh(x @ x)\n"


def bench_busy(steps: int = 30, warmup: int = 5) -> None:
    """ms per cpu-quick training step with one and with two threads, on an idle machine and with a second
    program computing on two threads beside it (as a second notebook that trains would)."""
    import subprocess

    torch.manual_seed(0)
    x, y = torch.randint(65, (12, 64)), torch.randint(65, (12, 64))
    model = GPT(GPTConfig())
    optimizer = make_optimizer(model, TrainConfig(**PRESETS["cpu-quick"][1]), torch.device("cpu"))
    before = torch.get_num_threads()

    def ms_per_step(threads: int) -> float:
        torch.set_num_threads(threads)
        for i in range(warmup + steps):
            if i == warmup:
                t0 = time.perf_counter()
            _, loss = model(x, y)[:2]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return 1000 * (time.perf_counter() - t0) / steps

    def heads_run(threads: int, heads_steps: int = 50) -> float:
        """Lesson 04's experiment (16 x 32 matrices), ms per step: its guide's "one thread or two"."""
        from utils import how_many_heads as hx

        torch.manual_seed(0)
        small = hx.HeadsModel(n_heads=4, n_layers=2)
        with hx.torch_threads(threads):
            t0 = time.perf_counter()
            hx.train_heads_model(small, steps=heads_steps, seed=0)
            return 1000 * (time.perf_counter() - t0) / heads_steps

    print(f"\n[busy] ms per training step, {os.cpu_count()} cores; cpu-quick GPT ({steps} steps) and lesson 04's "
          "2-layer, 4-head model (50 steps)", flush=True)
    for label in ("idle machine", "another program on 2 threads"):
        other = subprocess.Popen([sys.executable, "-c", BUSY]) if label != "idle machine" else None
        try:
            if other is not None:
                time.sleep(2)  # let it start computing
            for name, run in (("cpu-quick GPT", ms_per_step), ("lesson 04 model", heads_run)):
                one, two = run(1), run(2)
                print(f"[busy] {label:<29} {name:<16} 1 thread {one:7.1f} ms   2 threads {two:7.1f} ms   "
                      f"(2 threads / 1: {two / one:.1f}x)", flush=True)
        finally:
            if other is not None:
                other.kill()
                other.wait()
    torch.set_num_threads(before)


def bench_baselines() -> None:
    """What a model that only counts scores: the yardsticks lesson 06's guide gives for a loss."""
    trainer = Trainer.from_preset("cpu-quick", device="cpu")
    train_ids, val_ids = trainer.train_data, trainer.val_data
    vocab = trainer.tokenizer.vocab_size
    unigram = torch.bincount(train_ids, minlength=vocab).double()
    log_p = (unigram / unigram.sum()).log()  # every character occurs in the training part
    pairs = torch.zeros(vocab, vocab, dtype=torch.float64)
    pairs.index_put_((train_ids[:-1], train_ids[1:]), torch.ones(len(train_ids) - 1, dtype=torch.float64),
                     accumulate=True)
    log_q = ((pairs + 1) / (pairs + 1).sum(dim=1, keepdim=True)).log()  # add-one: pairs unseen in training
    print(f"\n[baselines] Tiny Shakespeare, {len(train_ids):,} training and {len(val_ids):,} validation "
          f"characters, vocabulary {vocab}; nats per character:")
    for name, ids in (("training part", train_ids), ("validation part", val_ids)):
        bigram = -log_q[ids[:-1], ids[1:]].mean()
        print(f"  {name:<16} unigram {-log_p[ids].mean():.4f}   bigram (add-one) {bigram:.4f}")
    bpe = Trainer.from_preset("cpu-quick", device="cpu", tokenizer="bpe", bpe_vocab_size=512)
    n_tokens = len(bpe.train_data) + len(bpe.val_data)
    n_chars = len(train_ids) + len(val_ids)
    print(f"[baselines] BPE vocabulary 512: {n_tokens:,} tokens for {n_chars:,} characters, "
          f"{n_chars / n_tokens:.2f} characters per token", flush=True)


def bench_bf16(repeats: int = 7, products: int = 50) -> None:
    """The matrix products of Muon's orthogonalisation (X X^T and (X X^T) X for the cpu-5min model's 96 x 384
    matrices), in float32 and in bfloat16, which torch.optim.Muon computes them in."""
    torch.manual_seed(0)
    x32 = torch.randn(96, 384)
    times = {torch.float32: [], torch.bfloat16: []}
    for _ in range(repeats):  # the two take turns, so a change in the machine's load hits both
        for dtype in times:
            x = x32.to(dtype)
            t0 = time.perf_counter()
            for _ in range(products):
                gram = x @ x.mT
                gram @ x
            times[dtype].append((time.perf_counter() - t0) / products)
    median = {dtype: sorted(ts)[len(ts) // 2] for dtype, ts in times.items()}
    print(f"\n[bf16] X X^T and (X X^T) X for X of 96 x 384, {torch.get_num_threads()} threads: float32 "
          f"{1e6 * median[torch.float32]:.0f} us, bfloat16 {1e6 * median[torch.bfloat16]:.0f} us: bfloat16 "
          f"{median[torch.bfloat16] / median[torch.float32]:.0f}x slower", flush=True)


BENCHES = {
    "kv": bench_kv,
    "step": bench_step,
    "quick": lambda: bench_preset("cpu-quick"),
    "lr": lambda: bench_preset("cpu-quick", "cpu-quick at lr 1e-3", lr=1e-3, min_lr=1e-4),
    "5min": lambda: bench_preset("cpu-5min"),
    "muon": bench_muon,
    "baselines": bench_baselines,
    "bf16": bench_bf16,
    "busy": bench_busy,
}
EVERYTHING = ("kv", "step", "quick", "5min")  # what a run without --only measures


def main() -> None:
    saved_output.main("bench_gpt", __doc__.splitlines()[0], BENCHES, EVERYTHING)


if __name__ == "__main__":
    main()
