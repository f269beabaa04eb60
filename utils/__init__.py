"""The course library: one module per idea.

Notebooks start with

    import utils
    device = utils.setup()

which seeds every random generator, picks the device and prints one line saying what runs.
"""

from __future__ import annotations

import platform

from .course.device import get_device
from .course.mode import mode_name, quick_mode, quick_or_full
from .course.seeding import set_seed

__all__ = ["setup", "get_device", "set_seed", "quick_mode", "quick_or_full", "mode_name", "versions"]


def versions() -> dict[str, str]:
    """Versions of the pieces the course depends on (missing ones say so)."""
    import importlib.metadata as md

    found = {"python": platform.python_version()}
    for package in ("torch", "transformers", "jupyterlab"):
        try:
            found[package] = md.version(package)
        except md.PackageNotFoundError:
            found[package] = "not installed"
    return found


def setup(seed: int = 0, device: str | None = None, quiet: bool = False):
    """Seed, choose the device and print one line: versions, device, quick or full mode.

    Returns the torch.device that the notebook should use.
    """
    set_seed(seed)
    chosen = get_device(device)
    if not quiet:
        v = versions()
        print(
            f"Python {v['python']} | torch {v['torch']} | device {chosen} | {mode_name()} | seed {seed}"
        )
    return chosen
