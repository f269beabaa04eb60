"""Measure what a learner's set-up and CI's test run cost, on a fresh clone of this repository.

    python benchmarks/bench_setup.py --only setup          # clone, `course.py setup`: seconds and disk (3-5 min)
    python benchmarks/bench_setup.py --only ci             # the same, then `.ci/run` as CI runs it (10 min)
    python benchmarks/bench_setup.py --only ci --save      # also write benchmarks/results/bench_setup_ci.txt

The clone is of the committed HEAD (uncommitted changes are not in it), in a temporary folder that is
removed afterwards. pip's cache is the user's, as on a learner's second course; the package index is
reached for everything not cached. `.ci/run` must stay under 10 minutes in all (README, "Tests").
Run it on an otherwise idle machine: the test suite's two workers take both cores.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import saved_output  # noqa: E402  (benchmarks/, beside this script)

ROOT = Path(__file__).resolve().parents[1]
CI_BUDGET_S = 600


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def timed(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[float, str]:
    """Seconds the command took, and what it printed; a failure stops the benchmark."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    return seconds, done.stdout + done.stderr


def outside_env() -> dict:
    """The environment without an active virtual environment."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    if "VIRTUAL_ENV" in os.environ:
        bin_dir = str(Path(os.environ["VIRTUAL_ENV"]) / "bin")
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != bin_dir)
    return env


def fresh_setup(work: Path) -> Path:
    """Clone HEAD into `work`, run set-up there; print its time and the environment's size."""
    clone = work / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True,
                          check=True).stdout.strip()
    # The system's python3, as a learner runs it (the script itself may run in a course environment).
    seconds, _ = timed(["python3", "course.py", "setup"], clone, env=outside_env())
    size = folder_size(clone / ".venv")
    print(f"\n[setup] fresh clone of {head}: `python3 course.py setup` {seconds:.0f} s "
          f"({seconds / 60:.1f} min); .venv/ {size / 2**30:.2f} GiB on disk", flush=True)
    return clone


def bench_setup() -> None:
    with tempfile.TemporaryDirectory() as work:
        fresh_setup(Path(work))


def bench_ci() -> None:
    with tempfile.TemporaryDirectory() as work:
        t0 = time.perf_counter()
        clone = fresh_setup(Path(work))
        tests, printed = timed(["bash", ".ci/run"], clone, env=dict(outside_env(), CI="true"))
        total = time.perf_counter() - t0
        summary = [line for line in printed.splitlines() if " passed" in line and " in " in line]
        print(f"[ci] pytest: {summary[-1].strip(' =') if summary else 'no summary line found'}")
        print(f"[ci] `.ci/run` after set-up {tests:.0f} s; set-up and tests {total:.0f} s in all "
              f"({total / 60:.1f} min, budget {CI_BUDGET_S // 60} min: {'within' if total < CI_BUDGET_S else 'OVER'})",
              flush=True)
        shutil.rmtree(clone, ignore_errors=True)


BENCHES = {"setup": bench_setup, "ci": bench_ci}


def main() -> None:
    saved_output.main("bench_setup", __doc__.splitlines()[0], BENCHES, everything=("setup",))


if __name__ == "__main__":
    main()
