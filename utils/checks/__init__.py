"""Exercise checks: each lesson's checks live in their own module, imported from there, e.g.
`from utils.checks.training import check_lr_at`, then `check_lr_at(my_lr_at)`.

Only the shared machinery (core) and lesson 00's two checks are re-exported here, because lesson 00
introduces checks with the shortest import: `from utils.checks import check_softmax`.
"""

from .core import Case, CheckFailed, difference, run_cases
from .start_here import check_count_characters, check_softmax

__all__ = ["Case", "CheckFailed", "difference", "run_cases", "check_count_characters", "check_softmax"]
