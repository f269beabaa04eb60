"""Exercise checks: `from utils.checks import check_softmax`, then `check_softmax(softmax)`.

Each lesson's checks live in their own module; they are all re-exported here.
"""

from .core import Case, CheckFailed, difference, run_cases
from .start_here import check_count_characters, check_softmax

__all__ = ["Case", "CheckFailed", "difference", "run_cases", "check_count_characters", "check_softmax"]
