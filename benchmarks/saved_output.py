"""The command line every benchmark script shares: --only NAME runs one part, --save also writes what it
prints to benchmarks/results/<script>_<NAME>.txt with the date, cores, threads and load, the file the
lesson guides quote (`<!--bench:bench_gpt_5min-->`, checked by tests/test_quotes.py)."""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


class Tee:
    """Writes to the terminal and to a file at once."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for stream in self.streams:
            stream.write(text)

    def flush(self):
        for stream in self.streams:
            stream.flush()


def main(script: str, description: str, benches: dict, everything=None) -> None:
    """Run the benches chosen on the command line (`everything` without --only: default all of them)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--only", choices=sorted(benches), default=None)
    parser.add_argument("--save", action="store_true", help="also write the output to benchmarks/results/")
    args = parser.parse_args()
    chosen = [args.only] if args.only else list(everything or benches)
    out = None
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{script}_{args.only or 'all'}.txt"
        out = path.open("w", encoding="utf-8")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        out.write(f"# python benchmarks/{script}.py {' '.join(sys.argv[1:])}\n# {datetime.date.today()}, "
                  f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
                  f"load {load:.2f} at the start\n")
        sys.stdout = Tee(sys.__stdout__, out)
    try:
        for name in chosen:
            benches[name]()
    finally:
        if out is not None:
            sys.stdout = sys.__stdout__
            out.close()
            print(f"written: {path}")
