"""The command line every benchmark script shares: --only NAME runs one part, --save also writes what it
prints to benchmarks/results/<script>_<NAME>.txt with the date, cores, threads and load, the file the
lesson guides quote (`<!--bench:bench_gpt_5min-->`, checked by tests/test_quotes.py)."""

from __future__ import annotations

import argparse
import contextlib
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

    def isatty(self):  # libraries ask before colouring what they print
        return False


def main(script: str, description: str, benches: dict, everything=None) -> None:
    """Run the benches chosen on the command line (`everything` without --only: default all of them)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--only", choices=sorted(benches), default=None)
    parser.add_argument("--save", action="store_true", help="also write the output to benchmarks/results/")
    args = parser.parse_args()
    chosen = [args.only] if args.only else list(everything or benches)
    with saving(f"{script}_{args.only or 'all'}") if args.save else contextlib.nullcontext():
        for name in chosen:
            benches[name]()


@contextlib.contextmanager
def saving(name: str):
    """Everything printed inside also goes to benchmarks/results/NAME.txt, after a header with the command,
    the date, cores, torch, threads and load."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.txt"
    script = Path(sys.argv[0]).name
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with path.open("w", encoding="utf-8") as out:
        out.write(f"# python benchmarks/{script} {' '.join(sys.argv[1:])}\n# {datetime.date.today()}, "
                  f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
                  f"load {load:.2f} at the start\n")
        sys.stdout = Tee(sys.__stdout__, out)
        try:
            yield path
        finally:
            sys.stdout = sys.__stdout__
    print(f"written: {path}")
