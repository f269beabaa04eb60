"""Run course notebooks top to bottom in full mode and store their outputs (for maintainers).

    python -m utils.course.run_notebooks notebooks/08_bert_finetuning.ipynb [more.ipynb ...]
    python -m utils.course.run_notebooks --clear-only notebooks/07_generation.ipynb

Each notebook runs in a fresh `llm-course` kernel with quick mode off and the network libraries
told to stay offline, exactly what a learner gets; the outputs are written back into the file.
Then the outputs of cells tagged `online-only` are removed: those cells draw with JavaScript that a
package fetches from the internet (bertviz), so a stored copy would show an empty box offline and
would put another project's JavaScript into this repository. Last, if a solutions notebook was run,
the student copies are regenerated (utils.course.make_exercises).

Each run is recorded in the notebook's metadata (`llm_course.run`): the mode, the computing time
(the cells' execution times added up, which the notebook's header and lessons/README.md quote as
"M of them computing"), the five slowest cells, the wall time, the cores and torch threads, and the
machine's load when it started, since a busy machine makes every number slower.

On a busy machine set OMP_NUM_THREADS=1: two torch threads competing with other programs for two
cores can be many times slower than one.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

ONLINE_ONLY_TAG = "online-only"
KERNEL_NAME = "llm-course"


def clear_online_only(nb) -> int:
    """Empty the outputs of the cells tagged online-only; returns how many cells were cleared."""
    cleared = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and ONLINE_ONLY_TAG in cell.get("metadata", {}).get("tags", []):
            if cell.outputs:
                cleared += 1
            cell.outputs = []
    return cleared


def run_notebook(path: Path, timeout: int = 3600) -> float:
    """Execute one notebook in place (full mode), record the run; returns the seconds it took."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    os.environ.pop("LLM_COURSE_QUICK", None)  # full mode: the stored outputs are those of a real run
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL_NAME, record_timing=True,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    wall = time.perf_counter() - started
    nb.metadata["llm_course"] = {"run": run_record(nb, wall, load)}
    clear_online_only(nb)
    nbformat.write(nb, path)
    return wall


def cell_seconds(nb) -> dict[int, float]:
    """Each code cell's execution time, by its position in the notebook, from the timestamps nbclient
    records, which are removed: they change on every run and say nothing to a reader."""
    seconds = {}
    for index, cell in enumerate(nb.cells):
        timing = cell.metadata.pop("execution", None)
        if cell.cell_type == "code" and timing:
            began = timing.get("iopub.execute_input") or timing.get("shell.execute_reply.started")
            ended = timing.get("shell.execute_reply")
            if began and ended:
                seconds[index] = (_timestamp(ended) - _timestamp(began)).total_seconds()
    return seconds


def _timestamp(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def cpu_model() -> str:
    """The processor's name as the system reports it (Linux: /proc/cpuinfo), else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def run_record(nb, wall: float, load: float | None) -> dict:
    """The record of one run. computing_seconds is the cells' times added up; slowest_cells names the
    five cells that took longest ([position, seconds]), where to look first to make a lesson faster."""
    seconds = cell_seconds(nb)
    slowest = sorted(seconds.items(), key=lambda item: -item[1])[:5]
    return {
        "mode": "full",
        "computing_seconds": round(sum(seconds.values()), 1),
        "slowest_cells": [[index, round(s, 1)] for index, s in slowest],
        "wall_seconds": round(wall, 1),
        "cpu_cores": os.cpu_count(),
        "cpu": cpu_model(),  # a small model's training can round differently on another processor
        "torch_threads": os.environ.get("OMP_NUM_THREADS", "default"),
        "load_at_start": None if load is None else round(load, 2),
        "date": datetime.date.today().isoformat(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--clear-only", action="store_true",
                        help="do not run anything; only remove the outputs of cells tagged online-only")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        raise SystemExit(f"no such notebook: {', '.join(missing)}")
    for path in args.notebooks:
        if args.clear_only:
            import nbformat

            nb = nbformat.read(path, as_version=4)
            print(f"{path}: cleared {clear_online_only(nb)} online-only output(s)", flush=True)
            nbformat.write(nb, path)
        else:
            print(f"{path}: running in full mode ...", flush=True)
            print(f"{path}: done in {run_notebook(path):.0f} s", flush=True)
    if not args.clear_only and any("solutions" in p.parts for p in args.notebooks):
        from . import make_exercises

        make_exercises.main([])


if __name__ == "__main__":
    main(sys.argv[1:])
