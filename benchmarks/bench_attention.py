"""Hand-written attention vs PyTorch's fused F.scaled_dot_product_attention: time and peak memory.

Run:  python benchmarks/bench_attention.py

Setting: batch 1, 8 heads, d_head 64, float32, CPU, no mask, no autograd; n = 128 .. 4096 tokens.

Time: median wall-clock time of 2 to 20 calls (as many as fit in half a second) after one warm-up call.
Peak memory: the most memory torch's CPU allocator held at once during one call, above what it held
when the call started. It is read from torch.profiler (profile_memory=True), which records every
allocation and free with the running total ("Total Allocated"); the inputs, allocated before, are
not counted. For scale, the table also shows the size of one materialised n x n weight matrix for all
heads, 8 * n * n * 4 bytes: the hand-written version holds a few of those at once (scores, scaled
scores, weights), the fused one computes softmax block by block and never holds the whole matrix.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Silence the profiler's own log lines (it prints two to stderr per profiled call) before torch loads.
os.environ.setdefault("KINETO_LOG_LEVEL", "6")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing
from utils.attention import scaled_dot_product_attention  # noqa: E402

BATCH, HEADS, D_HEAD = 1, 8, 64
LENGTHS = [128, 256, 512, 1024, 2048, 4096]
MiB = 2**20


def hand(q, k, v):
    return scaled_dot_product_attention(q, k, v)[0]


def fused(q, k, v):
    return F.scaled_dot_product_attention(q, k, v)


def median_seconds(fn, *args, budget_s: float = 0.5, max_calls: int = 20) -> float:
    """Median time of fn(*args) over at least 2 calls, more while they fit in budget_s."""
    fn(*args)  # warm-up: first calls pay for thread pools and caches
    times: list[float] = []
    while len(times) < 2 or (sum(times) < budget_s and len(times) < max_calls):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_bytes(fn, *args) -> int:
    """Peak bytes torch's CPU allocator held during fn(*args), above its level at the start."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(*args)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trace.json")
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    memory = [e["args"] for e in events if e.get("name") == "[memory]" and e["args"].get("Device Type") == 0]
    if not memory:
        return 0
    memory.sort(key=lambda a: a["Ev Idx"])
    at_start = memory[0]["Total Allocated"] - memory[0]["Bytes"]
    return max(a["Total Allocated"] for a in memory) - at_start


def main() -> None:
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, float32")
    print(f"batch {BATCH}, heads {HEADS}, d_head {D_HEAD}; peak memory from torch.profiler, see docstring\n")
    header = (
        f"{'n':>5} | {'hand ms':>9} | {'fused ms':>9} | {'speed-up':>8} | "
        f"{'hand peak MiB':>13} | {'fused peak MiB':>14} | {'n x n weights MiB':>17} | {'max |diff|':>10}"
    )
    print(header)
    print("-" * len(header))
    total = time.perf_counter()
    with torch.inference_mode():
        for n in LENGTHS:
            q, k, v = (torch.randn(BATCH, HEADS, n, D_HEAD) for _ in range(3))
            diff = (hand(q, k, v) - fused(q, k, v)).abs().max().item()
            t_hand = median_seconds(hand, q, k, v)
            t_fused = median_seconds(fused, q, k, v)
            m_hand = peak_bytes(hand, q, k, v)
            m_fused = peak_bytes(fused, q, k, v)
            weights = BATCH * HEADS * n * n * 4
            print(
                f"{n:>5} | {t_hand * 1e3:>9.2f} | {t_fused * 1e3:>9.2f} | {t_hand / t_fused:>7.1f}x | "
                f"{m_hand / MiB:>13.1f} | {m_fused / MiB:>14.1f} | {weights / MiB:>17.1f} | {diff:>10.1e}"
            )
    print(f"\ntotal {time.perf_counter() - total:.1f} s")


if __name__ == "__main__":
    main()
