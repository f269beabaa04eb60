"""On PYTHONPATH during `python3 course.py test`, so that every Python process of a test run (notebook
kernels, JupyterLab, the command lines) refuses connections that would leave this machine.

utils/course/offline.py is loaded by its path: importing the `utils` package here would import torch
into every Python process that starts.
"""

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "course_offline", Path(__file__).resolve().parents[2] / "utils" / "course" / "offline.py")
_offline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_offline)
_offline.block_network()
