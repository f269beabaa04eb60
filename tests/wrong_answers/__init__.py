"""Named wrong answers for every exercise check, one module per lesson (lesson00.py ... lesson09.py).

Each module defines WRONG: a list of WrongAnswer. tests/test_check_mistakes.py feeds each to its
exercise's check and asserts that the check fails with the diagnosis named here, so a check that
lets a known mistake through, or mislabels it, fails the test suite.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class WrongAnswer:
    exercise: str       # "5.2"
    name: str           # what the mistake is, as a test id: "subtracts the min"
    answer: Callable    # the wrong function, as a learner would pass it to the check
    says: str           # a fragment that the check's failure message must contain
