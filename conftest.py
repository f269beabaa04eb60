"""Test-run settings that hold for the whole suite: unit tests and notebooks alike.

Offline: this process and every Python process it starts (notebook kernels, JupyterLab, the command
lines, through tests/offline/sitecustomize.py on PYTHONPATH) refuse connections that leave this machine
(utils/course/offline.py). tests/test_offline.py shows the refusal.

Parallel runs (pytest-xdist, `-n 2 --dist loadgroup`): the cells of one notebook must run in one kernel,
in order, so every notebook is one group. Lesson 06 saves the model that 07 and 09 load
(runs/lesson06-quick), so those three share a group and run one after the other; the browser tests
share one JupyterLab server, so they are one group too.
"""

import os
from pathlib import Path

import pytest

from utils.course.offline import block_network

OFFLINE = Path(__file__).resolve().parent / "tests" / "offline"
os.environ["PYTHONPATH"] = os.pathsep.join([str(OFFLINE), *filter(None, [os.environ.get("PYTHONPATH")])])
block_network()

SHARED_RUN = {"06_training_gpt.ipynb", "07_generation.ipynb", "09_reading_attention.ipynb"}


def group_of(item) -> str | None:
    path = Path(str(item.fspath))
    if path.suffix == ".ipynb":
        if path.name in SHARED_RUN and path.parent.name == "notebooks":
            return "lesson06-run"
        return str(path.relative_to(Path(__file__).parent))
    if path.name == "test_browser.py":
        return "browser"
    return None


def pytest_collection_modifyitems(items):
    for item in items:
        group = group_of(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
