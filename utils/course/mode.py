"""Quick mode: shrink every long step so the whole course can be tested in minutes.

Set LLM_COURSE_QUICK=1 (CI does) and notebooks train for a few steps on a slice of the data;
leave it unset and they do the real thing. Notebooks ask through these helpers, never by hand.
"""

from __future__ import annotations

import os

QUICK_ENV = "LLM_COURSE_QUICK"


def quick_mode() -> bool:
    """True when $LLM_COURSE_QUICK is set to 1/true/yes/on."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def quick_or_full(quick, full):
    """`quick` in quick mode, `full` otherwise. Example: steps = quick_or_full(20, 2000)."""
    return quick if quick_mode() else full


def mode_name() -> str:
    return "quick mode" if quick_mode() else "full mode"
