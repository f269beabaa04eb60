"""nbgrader, run as a teacher runs it: the numbered steps of "Using nbgrader" in lessons/README.md.

The test reads the steps' code blocks out of the README and runs them with bash, in a temporary
home folder, with the course environment's bin/ first on PATH (what `source .venv/bin/activate`
does), so that the README and the procedure cannot drift apart: a step that is wrong in the README
fails here. Each block is run as written, with two substitutions: the course folder for the
README's `COURSE=/path/to/llm-course`, and each graded lesson for the README's example lesson.

Learners, per lesson:
- `blank`: the release copy from `nbgrader generate_assignment`, unchanged; must score 0;
- `solved`: the release copy with the solution notebook's answers typed into its answer cells;
  must score full marks, one point per check cell;
- `solved_exercise_copy` (lesson 00 only): the committed student copy from notebooks/exercises/ with
  the same answers; must score like `solved` (the README says the exercise copies grade the same
  way as the release copies).

One course, one `autograde` per lesson for every learner, one `export`. Every nbgrader command is a
new Python process that spends seconds importing, so the whole file is one xdist unit
(conftest.scope_of) and the course is built once, by a module-scoped fixture.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "lessons" / "README.md"
EXAMPLE = "00_start_here"  # the lesson the README's commands name
LESSONS = ("00_start_here", "02_embeddings")  # the quickest to grade (measured), 2 and 3 check cells
EXERCISE_COPY_LESSON = EXAMPLE  # one is enough: every exercise copy comes from the same generator
COURSE_ID = "llm_class"
FEEDBACK = "nbgrader generate_feedback"  # the one README command not run: it grades nothing


def readme_steps() -> dict[int, dict]:
    """The numbered steps of the README's "Using nbgrader" section: {number: {"text", "blocks"}},
    where blocks is a list of (language, code) in order."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^### Using nbgrader\n(.*?)(?=^### )", text, re.S | re.M)
    assert section, "lessons/README.md has no '### Using nbgrader' section"
    steps: dict[int, dict] = {}
    current = None
    fence = None  # (language, indent, lines) while inside a code block
    for line in section.group(1).splitlines():
        if fence is not None:
            if line.strip() == "```":
                if current is not None:
                    current["blocks"].append((fence[0], "\n".join(fence[2])))
                fence = None
            else:
                fence[2].append(line[fence[1]:] if line[:fence[1]].strip() == "" else line)
            continue
        opening = re.match(r"^(\s*)```(\w*)\s*$", line)
        if opening:
            fence = (opening.group(2), len(opening.group(1)), [])
            continue
        numbered = re.match(r"^(\d+)\. ", line)
        if numbered:
            current = steps.setdefault(int(numbered.group(1)), {"text": "", "blocks": []})
        if current is not None:
            current["text"] += line + "\n"
    return steps


def prose(step: dict) -> str:
    """A step's text with its line breaks and indentation made single spaces."""
    return " ".join(step["text"].split())


def one_block(step: dict, language: str) -> str:
    blocks = [code for lang, code in step["blocks"] if lang == language]
    assert len(blocks) == 1, f"expected one {language} block in README step:\n{step['text']}"
    return blocks[0]


def for_lesson(code: str, lesson: str) -> str:
    return code.replace(EXAMPLE, lesson)


def bash(script: str, cwd: Path, env: dict) -> None:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    output = (done.stdout + done.stderr)[-4000:]
    assert done.returncode == 0, f"README commands failed:\n{script}\n--- output (end):\n{output}"


def read_nb(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def nbgrader_meta(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def check_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code" and nbgrader_meta(c).get("grade")]


def text(value) -> str:
    """A notebook's multi-line string, stored as a string or as a list of lines."""
    return "".join(value) if isinstance(value, list) else value


def source(cell: dict) -> str:
    return text(cell["source"])


def solved_copy(release: dict, solution: dict) -> dict:
    """The release copy with each answer cell's code taken from the solution notebook, as a learner
    who found the answers would type them (without nbgrader's markers)."""
    answers = {nbgrader_meta(c)["grade_id"]: source(c) for c in solution["cells"] if nbgrader_meta(c).get("solution")}
    nb = json.loads(json.dumps(release))
    filled = 0
    for cell in nb["cells"]:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if nbgrader_meta(cell).get("solution") and grade_id in answers:
            lines = [ln for ln in answers[grade_id].splitlines()
                     if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
            cell["source"] = "\n".join(lines)
            filled += 1
    assert filled == len(answers), f"the release copy lacks answer cells: {filled} of {len(answers)} filled"
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """Run the README's steps 1-6 for LESSONS; return what the tests look at."""
    steps = readme_steps()
    assert sorted(steps) == [1, 2, 3, 4, 5, 6], f"README steps found: {sorted(steps)}"
    home = tmp_path_factory.mktemp("teacher")
    venv_bin = Path(sys.executable).parent
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        PATH=os.pathsep.join([str(venv_bin), env.get("PATH", "")]),
        VIRTUAL_ENV=str(venv_bin.parent),
        # The notebooks' `import utils` finds this course, and the network stays blocked
        # (the root conftest put tests/offline on PYTHONPATH).
        PYTHONPATH=os.pathsep.join([*filter(None, [env.get("PYTHONPATH")]), str(ROOT)]),
        LLM_COURSE_QUICK="1", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
    )
    for tool in ("nbgrader", "jupyter"):
        found = shutil.which(tool, path=env["PATH"])
        assert found and Path(found).parent == venv_bin, f"{tool} is not the course environment's: {found}"

    # Step 1: quickstart, remove the example assignment (the block starts with `cd ~`).
    bash(one_block(steps[1], "bash"), cwd=home, env=env)
    folder = home / COURSE_ID
    assert (folder / "nbgrader_config.py").is_file(), "step 1 made no course folder"

    # Step 2: the time limit per cell, added to nbgrader_config.py.
    timeout = one_block(steps[2], "python")
    assert "Add to `nbgrader_config.py`" in prose(steps[2])
    with (folder / "nbgrader_config.py").open("a", encoding="utf-8") as config:
        config.write("\n" + timeout + "\n")

    # Steps 3 and 4, per lesson: copy the solution without its solution-only cell, generate the release copy.
    copy = one_block(steps[3], "bash")
    placeholder = "COURSE=/path/to/llm-course"
    assert re.search(rf"^{placeholder}$", copy, re.M), f"step 3 no longer sets {placeholder}"
    copy = copy.replace(placeholder, "COURSE=" + shlex.quote(str(ROOT)))
    generate = one_block(steps[4], "bash")
    assert EXAMPLE in generate
    solutions = sorted((ROOT / "notebooks" / "solutions").iterdir())
    bash("\n".join(for_lesson(copy, lesson) + "\n" + for_lesson(generate, lesson) for lesson in LESSONS),
         cwd=folder, env=env)
    assert sorted((ROOT / "notebooks" / "solutions").iterdir()) == solutions, "step 3 wrote into the course"
    assert sorted(p.name for p in (folder / "source").iterdir()) == sorted([*LESSONS, "header.ipynb"]), (
        "source/ should hold the header and the lessons only (step 1 removes the example ps1)")

    # Step 5: the learners' work in submitted/<student_id>/<assignment>/.
    assert "`submitted/<student_id>/<assignment>/`" in prose(steps[5])
    assert f"`submitted/alice/{EXAMPLE}/{EXAMPLE}.ipynb`" in prose(steps[5])
    for lesson in LESSONS:
        release = folder / "release" / lesson / f"{lesson}.ipynb"
        solution = read_nb(ROOT / "notebooks" / "solutions" / f"{lesson}.ipynb")
        submissions = {
            "blank": release.read_text(encoding="utf-8"),
            "solved": json.dumps(solved_copy(read_nb(release), solution), indent=1),
        }
        if lesson == EXERCISE_COPY_LESSON:
            exercise = read_nb(ROOT / "notebooks" / "exercises" / f"{lesson}.ipynb")
            submissions["solved_exercise_copy"] = json.dumps(solved_copy(exercise, solution), indent=1)
        for student, notebook in submissions.items():
            target = folder / "submitted" / student / lesson
            target.mkdir(parents=True)
            (target / f"{lesson}.ipynb").write_text(notebook, encoding="utf-8")

    # Step 6: autograde each lesson, then export (generate_feedback is left out: it only renders HTML).
    lines = one_block(steps[6], "bash").splitlines()
    assert sum(line.startswith(FEEDBACK) for line in lines) == 1
    assert any(line.startswith(f"nbgrader autograde {EXAMPLE}") for line in lines)
    assert any(line.startswith("nbgrader export") for line in lines)
    run = []
    for line in lines:
        if line.startswith(FEEDBACK):
            continue
        run += [for_lesson(line, lesson) for lesson in LESSONS] if EXAMPLE in line else [line]
    bash("\n".join(run), cwd=folder, env=env)

    with (folder / "grades.csv").open(newline="", encoding="utf-8") as f:
        grades = {(row["assignment"], row["student_id"]): row for row in csv.DictReader(f)}
    return {"home": home, "folder": folder, "grades": grades, "steps": steps}


def expected_points(lesson: str) -> int:
    cells = check_cells(read_nb(ROOT / "notebooks" / "solutions" / f"{lesson}.ipynb"))
    assert cells and all(nbgrader_meta(c).get("points") == 1 for c in cells)
    return len(cells)


def graded(course, student: str, lesson: str) -> tuple[float, float]:
    row = course["grades"][(lesson, student)]
    return float(row["score"]), float(row["max_score"])


def autograded_checks(course, student: str, lesson: str) -> list[dict]:
    nb = read_nb(course["folder"] / "autograded" / student / lesson / f"{lesson}.ipynb")
    return check_cells(nb)


def assert_all_checks_pass(course, student: str, lesson: str) -> None:
    checks = autograded_checks(course, student, lesson)
    assert len(checks) == expected_points(lesson)
    for cell in checks:
        printed = "".join(text(o.get("text", "")) for o in cell.get("outputs", []))
        assert not errors(cell) and "✓" in printed, source(cell)


def errors(cell: dict) -> list[dict]:
    return [o for o in cell.get("outputs", []) if o["output_type"] == "error"]


def test_export_has_a_row_per_learner_and_assignment(course):
    students = {"blank", "solved", "solved_exercise_copy"}
    assert set(course["grades"]) == {(lesson, s) for lesson in LESSONS for s in students}
    # Work not handed in (the exercise-copy learner did only lesson 00) is exported as 0, as the README says.
    for lesson in LESSONS:
        if lesson != EXERCISE_COPY_LESSON:
            assert graded(course, "solved_exercise_copy", lesson) == (0, expected_points(lesson))
    assert "with 0 for work not handed in" in prose(course["steps"][6])


@pytest.mark.parametrize("lesson", LESSONS)
def test_blank_submission_scores_zero(course, lesson):
    assert graded(course, "blank", lesson) == (0, expected_points(lesson))
    checks = autograded_checks(course, "blank", lesson)
    assert len(checks) == expected_points(lesson)
    for cell in checks:
        # Zero because each check said "not written yet", not because the notebook could not run.
        assert [e["ename"] for e in errors(cell)] == ["CheckFailed"], source(cell)


@pytest.mark.parametrize("lesson", LESSONS)
def test_solved_submission_scores_full_marks(course, lesson):
    assert graded(course, "solved", lesson) == (expected_points(lesson), expected_points(lesson))
    assert_all_checks_pass(course, "solved", lesson)


def test_exercise_copy_grades_like_the_release_copy(course):
    """A learner who worked in notebooks/exercises/ and hands that notebook in gets the same points."""
    lesson = EXERCISE_COPY_LESSON
    assert graded(course, "solved_exercise_copy", lesson) == graded(course, "solved", lesson)
    assert_all_checks_pass(course, "solved_exercise_copy", lesson)


def test_release_copy_holds_no_answer_and_no_teacher_note(course):
    for lesson in LESSONS:
        release = (course["folder"] / "release" / lesson / f"{lesson}.ipynb").read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in release and "raise NotImplementedError()" in release
        assert "solution-only" not in release and "Solution copy" not in release, "step 3 kept the teacher's note"


def test_readme_describes_what_nbgrader_did(course):
    steps = course["steps"]
    # Step 1: the example header notebook is added to every assignment.
    assert "source/header.ipynb" in prose(steps[1])
    release = read_nb(course["folder"] / "release" / EXAMPLE / f"{EXAMPLE}.ipynb")
    assert any(source(c).startswith("NAME = ") for c in release["cells"][:3]), "no header cells in the release copy"
    # Step 1: quickstart writes the example's gradebook into the folder it was run from.
    assert "in the folder it was run from, here `~/gradebook.db`" in prose(steps[1])
    db = sqlite3.connect(course["home"] / "gradebook.db")
    try:
        assert db.execute("SELECT name FROM assignment").fetchall() == [("ps1",)]
    finally:
        db.close()
    # Step 6 states lesson 00's scores.
    n = expected_points(EXAMPLE)
    assert f"A blank notebook scores 0 of {n} on lesson 00; a correct one {n} of {n}." in prose(steps[6])
