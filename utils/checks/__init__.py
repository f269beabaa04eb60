"""Exercise checks, one module per lesson; each notebook imports its checks from its lesson's module:

    00 start_here    01 tokenization   02 embeddings   03 attention          04 multi_head
    05 gpt           06 training       07 generation   08 bert               09 reading_attention
    10 translation   11 modern

e.g. `from utils.checks.training import check_lr_at`, then `check_lr_at(my_lr_at)`.

This package itself re-exports only lesson 00's two checks, because lesson 00 introduces checks
with the shortest import (`from utils.checks import check_softmax`), `hint` (the next hint of an
exercise: `hint("5.2")`), and core's Case, CheckFailed, Mistake, difference and run_cases, for
writing a check or catching its failure.
"""

from .core import Case, CheckFailed, Mistake, difference, run_cases
from .hints import hint
from .start_here import check_count_characters, check_softmax

__all__ = ["Case", "CheckFailed", "Mistake", "difference", "run_cases", "hint", "check_count_characters",
           "check_softmax"]
