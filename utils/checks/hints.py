"""Each exercise's number, title, difficulty, time, and its hints in tiers, shown on request.

A check's failure message diagnoses: which case failed, expected against got, the likely mistake.
It never shows the answer. A learner who is still stuck asks for more, one tier at a time:

    from utils.checks import hint
    hint("5.2")       # the first hint; call again for the next, each a little more direct
    hint("5.2", 3)    # the third hint directly

The first tier points at the idea, the middle ones at the steps, the last comes closest to code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

DIFFICULTIES = ("easy", "medium", "hard")

# The lesson number before the dot names the module of utils.checks that holds its exercises.
LESSON_MODULES = {
    "0": "start_here", "1": "tokenization", "2": "embeddings", "3": "attention", "4": "multi_head",
    "5": "gpt", "6": "training", "7": "generation", "8": "bert", "9": "reading_attention", "10": "translation",
    "11": "modern", "12": "assistant", "13": "practice",
}


@dataclass(frozen=True)
class Exercise:
    number: str             # "5.2": lesson 05, exercise 2
    title: str              # as the exercise's heading says it
    difficulty: str         # one of DIFFICULTIES
    minutes: int            # the time a learner should plan for
    hints: tuple[str, ...]  # tier 1 first


_EXERCISES: dict[str, Exercise] = {}
_next_tier: dict[str, int] = {}


def exercise(number: str, title: str, difficulty: str, minutes: int, hints: tuple[str, ...] | list[str]):
    """Decorator for a check function: registers its exercise, so that hint(number) can find it."""
    _check_exercise_fields(number, title, difficulty, minutes, hints)

    def register(check: Callable) -> Callable:
        _EXERCISES[number] = Exercise(number, title, difficulty, minutes, tuple(hints))
        check.exercise = _EXERCISES[number]
        return check

    return register


def _check_exercise_fields(number, title, difficulty, minutes, hints) -> None:
    lesson, _, index = number.partition(".")
    if lesson not in LESSON_MODULES or not index.isdigit():
        raise ValueError(f"an exercise number looks like '5.2' (a lesson number, then its index), got {number!r}")
    if number in _EXERCISES:
        raise ValueError(f"exercise {number} is registered twice")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"exercise {number}: difficulty must be one of {DIFFICULTIES}, got {difficulty!r}")
    if not isinstance(minutes, int) or minutes <= 0:
        raise ValueError(f"exercise {number}: minutes must be a positive whole number, got {minutes!r}")
    if not title or not hints or not all(isinstance(h, str) and h.strip() for h in hints):
        raise ValueError(f"exercise {number}: give a title and at least one non-empty hint")


def all_exercises() -> dict[str, Exercise]:
    """Every exercise of the course by number, in lesson order (imports every lesson's check module)."""
    for module in LESSON_MODULES.values():
        importlib.import_module(f"{__package__}.{module}")
    return dict(sorted(_EXERCISES.items(), key=lambda item: tuple(int(p) for p in item[0].split("."))))


def find_exercise(number: str) -> Exercise:
    number = str(number).strip()
    lesson = number.partition(".")[0]
    if lesson in LESSON_MODULES:
        importlib.import_module(f"{__package__}.{LESSON_MODULES[lesson]}")
    if number not in _EXERCISES:
        known = ", ".join(n for n in all_exercises() if n.partition(".")[0] == lesson) or "none"
        raise ValueError(f"there is no exercise {number!r}; lesson {lesson}'s exercises are: {known}. "
                         "Use the number in the exercise's heading, e.g. hint(\"5.2\").")
    return _EXERCISES[number]


def hint_text(number: str, tier: int | None = None) -> str:
    """The text hint() prints; without `tier`, the next tier for this exercise (and it moves on)."""
    found = find_exercise(number)
    count = len(found.hints)
    if tier is None:
        tier = _next_tier.get(found.number, 1)
        _next_tier[found.number] = min(tier + 1, count)
    elif isinstance(tier, bool) or not isinstance(tier, int) or not 1 <= tier <= count:
        raise ValueError(f"exercise {found.number} has hints 1 to {count}; got tier {tier!r}")
    text = f"Hint {tier} of {count} for exercise {found.number} ({found.title}):\n  {found.hints[tier - 1]}"
    if tier < count:
        text += f"\n(Still stuck? Call hint({found.number!r}) again for the next one.)"
    else:
        text += "\n(That was the last hint. The teacher's copy has the full solution.)"
    return text


def hint(number: str, tier: int | None = None) -> None:
    """Print a hint for exercise `number`, e.g. hint("5.2"): the next tier each call, or tier `tier`."""
    print(hint_text(number, tier))
