"""Exercise checks leave the learner's random state alone.

A learner who seeds torch, runs a check and then draws random numbers must get the numbers the seed
promised: a check that builds a module or trains a model draws from its own generators, or saves and
restores the global one. This runs each solution notebook's answers through their checks in this
process (the set-up cell without utils.setup(), the answer cells, the check cells; no other cell) and
compares the global stream after every check with the stream the seed gives.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import torch

SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"
# The lessons whose checks were reviewed for this so far; add a lesson's stem when its checks are.
LESSONS = ("04_multi_head_attention", "05_gpt", "06_training_gpt", "13_llms_in_practice")


def kind(cell) -> str:
    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
    return grade_id.rpartition("_")[2] if grade_id else ""


@pytest.mark.parametrize("stem", LESSONS)
def test_checks_leave_the_global_random_stream_alone(stem, capsys):
    cells = [c for c in nbformat.read(SOLUTIONS / f"{stem}.ipynb", as_version=4).cells if c.cell_type == "code"]
    setup = cells[0].source.replace("device = utils.setup()", "device = torch.device('cpu')")
    assert setup != cells[0].source, "the set-up cell no longer calls utils.setup() as expected"
    namespace: dict = {}
    exec(compile(setup, f"{stem}: set-up", "exec"), namespace)
    checked = 0
    for cell in cells[1:]:
        if kind(cell) == "answer":
            exec(compile(cell.source, f"{stem}: answer", "exec"), namespace)
        elif kind(cell) == "check":
            torch.manual_seed(1234)
            promised = torch.rand(4)
            torch.manual_seed(1234)
            exec(compile(cell.source, f"{stem}: check", "exec"), namespace)
            assert torch.equal(torch.rand(4), promised), f"{stem}: `{cell.source}` moved the global random stream"
            checked += 1
    assert checked >= 4 and capsys.readouterr().out.count("✓") == checked
