"""Test-run settings that hold for the whole suite: unit tests and notebooks alike.

Offline: this process and every Python process it starts (notebook kernels, JupyterLab, the command
lines, through tests/offline/sitecustomize.py on PYTHONPATH) refuse connections that leave this machine
(utils/course/offline.py). tests/test_offline.py shows the refusal.

Parallel runs (pytest-xdist, `-n 2`): the cells of one notebook must run in one kernel,
in order, so every notebook is one work unit. Lesson 06 saves the model that 07 and 09 load
(runs/lesson06-quick), so those three share a unit and run one after the other; the browser tests
share one JupyterLab server, so they are one unit too, and so are the nbgrader tests, which share one
nbgrader course.
"""

import os
from pathlib import Path

from utils.course.offline import block_network

OFFLINE = Path(__file__).resolve().parent / "tests" / "offline"
os.environ["PYTHONPATH"] = os.pathsep.join([str(OFFLINE), *filter(None, [os.environ.get("PYTHONPATH")])])
block_network()

SHARED_RUN = {"06_training_gpt.ipynb", "07_generation.ipynb", "09_reading_attention.ipynb"}


def scope_of(nodeid: str) -> str:
    """The work unit a test belongs to: tests of one unit run on one worker, in collection order."""
    path = nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        name = path.rsplit("/", 1)[-1]
        if name in SHARED_RUN and path.startswith("notebooks/") and path.count("/") == 1:
            return "lesson06-run"  # 06 saves runs/lesson06-quick, which 07 and 09 load
        return path  # a notebook's cells share one kernel
    if path.endswith("test_browser.py"):
        return "browser"  # one JupyterLab server for all its tests
    if path.endswith("test_nbgrader.py"):
        return "nbgrader"  # one nbgrader course, built once, for all its tests
    return nodeid  # any other test may run anywhere


def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist (-n 2) with the units of scope_of. (Its own `loadgroup` mode cannot be used: it
    renames tests through an attribute that pytest 9 no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class CourseScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return CourseScheduling(config, log)
