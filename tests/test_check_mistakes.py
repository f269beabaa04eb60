"""Every exercise check against named wrong answers (tests/wrong_answers/), and the exercise
registry against the notebooks: each wrong answer fails with its intended diagnosis, no failure
message or first hint shows the solution's code, and every exercise heading matches its record."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import nbformat
import pytest
from wrong_answers import WrongAnswer

from utils.checks import CheckFailed
from utils.checks.hints import LESSON_MODULES, all_exercises, hint_text

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "notebooks" / "solutions"


def wrong_answers() -> list[WrongAnswer]:
    found = []
    for lesson in sorted(LESSON_MODULES, key=int):
        path = Path(__file__).parent / "wrong_answers" / f"lesson{int(lesson):02d}.py"
        if path.exists():
            found += importlib.import_module(f"wrong_answers.{path.stem}").WRONG
    return found


def check_of(number: str):
    """The check function registered for an exercise number."""
    module = importlib.import_module(f"utils.checks.{LESSON_MODULES[number.partition('.')[0]]}")
    checks = [f for f in vars(module).values() if getattr(f, "exercise", None) and f.exercise.number == number]
    assert len(checks) == 1, f"exercise {number}: {len(checks)} check functions registered"
    return checks[0]


def squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def solution_lines(number: str) -> list[str]:
    """The solution's code lines for an exercise (without comments), squeezed; short ones are left out
    because `return x` may well appear in a hint without giving anything away."""
    lesson, index = number.split(".")
    lines = []
    for path in SOLUTIONS.glob(f"{int(lesson):02d}_*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == f"ex{lesson}_{index}_answer":
                inside = cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
                lines += [squeezed(line.split("#")[0]) for line in inside.splitlines()]
    return [line for line in lines if len(line) >= 14]


WRONG = wrong_answers()


@pytest.mark.parametrize("wrong", WRONG, ids=lambda w: f"{w.exercise} {w.name}")
def test_a_named_wrong_answer_fails_with_its_diagnosis(wrong: WrongAnswer):
    with pytest.raises(CheckFailed) as info:
        check_of(wrong.exercise)(wrong.answer)
    message = str(info.value)
    assert wrong.says in message, f"expected the diagnosis {wrong.says!r}, got:\n{message}"
    assert f"hint({wrong.exercise!r})" in message, "every failure points to the exercise's further hints"
    leaked = [line for line in solution_lines(wrong.exercise) if line in squeezed(message)]
    assert not leaked, f"the failure message shows the solution's code: {leaked}"


def test_every_exercise_has_named_wrong_answers_and_a_first_hint_that_does_not_give_it_away():
    exercises = all_exercises()
    tested = {w.exercise for w in WRONG}
    assert not set(exercises) - tested, f"no named wrong answers for {sorted(set(exercises) - tested)}"
    for number in exercises:
        first = hint_text(number, 1)
        leaked = [line for line in solution_lines(number) if line in squeezed(first)]
        assert not leaked, f"exercise {number}'s first hint shows the solution's code: {leaked}"


def test_the_leak_test_can_see_a_leak():
    lines = solution_lines("0.2")
    assert lines and any(line in squeezed("Hint: e = torch.exp(x - x.max())") for line in lines)


HEADING = re.compile(r"^## Exercise (\d+\.\d+) · (.+) \((easy|medium|hard), (\d+) min\)\s*$", re.M)


def test_every_exercise_heading_matches_its_record_and_every_check_is_registered():
    exercises = all_exercises()
    seen = {}
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            for number, title, difficulty, minutes in HEADING.findall(cell.source):
                seen[number] = (title, difficulty, int(minutes))
            for call in re.findall(r"^(check_\w+)\(", cell.source, re.M):
                lesson = path.name[:2].lstrip("0") or "0"
                module = importlib.import_module(f"utils.checks.{LESSON_MODULES[lesson]}")
                assert getattr(getattr(module, call), "exercise", None), f"{path.name}: {call} is not registered"
    assert set(seen) == set(exercises), f"headings {sorted(seen)} against records {sorted(exercises)}"
    for number, (title, difficulty, minutes) in seen.items():
        record = exercises[number]
        assert (record.title, record.difficulty, record.minutes) == (title, difficulty, minutes), (
            f"exercise {number}: the heading says {(title, difficulty, minutes)}, the record "
            f"{(record.title, record.difficulty, record.minutes)}")


def test_every_lesson_guide_lists_its_exercises_as_the_records_say():
    """Guide tables read `| 5.1 LayerNorm by hand | easy | 10 min | what it asks |`, from the records."""
    for number, record in all_exercises().items():
        lesson = int(number.partition(".")[0])
        guide = next((ROOT / "lessons").glob(f"{lesson:02d}_*.md")).read_text(encoding="utf-8")
        row = f"| {number} {record.title} | {record.difficulty} | {record.minutes} min |"
        assert row in guide, f"lessons/{lesson:02d}_*.md has no exercise row starting {row!r}"


def test_every_lesson_notebook_lists_its_exercises_as_the_records_say():
    """The Exercises section of notebooks/NN_*.ipynb names each exercise, its difficulty and time."""
    for number, record in all_exercises().items():
        lesson = int(number.partition(".")[0])
        notebook = next((ROOT / "notebooks").glob(f"{lesson:02d}_*.ipynb"))
        text = "\n".join(c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "markdown")
        line = f"- **{number} {record.title}** ({record.difficulty}, {record.minutes} min)"
        assert line in text, f"{notebook.name} does not list exercise {number} as {line!r}"
