"""Both sides of every exercise: solutions pass their checks, blank student copies fail them,
and the committed student copies are exactly what the generator makes from the solutions."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from utils.course import make_exercises

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))


def is_check_cell(cell) -> bool:
    return cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade", False)


@pytest.fixture(scope="module")
def kernel():
    """One kernel for all the blank copies a test worker runs: starting a kernel and importing torch are about
    3 of the 5 seconds a copy takes. Each copy starts with `%reset -f` and a move to its own folder, so it
    sees none of the previous copy's names; imported modules stay loaded, as in a learner's own kernel."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")
    client.stop_channels()
    yield manager
    manager.shutdown_kernel(now=True)


def execute_in(manager, path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    fresh = nbformat.v4.new_code_cell(f"%reset -f\nimport os\nos.chdir({str(path.parent)!r})")
    nb.cells.insert(0, fresh)
    NotebookClient(nb, km=manager, timeout=600, allow_errors=True).execute()
    assert not errors(nb.cells[0]), f"{path.name}: the kernel could not be reset: {errors(nb.cells[0])}"
    nb.cells.pop(0)
    return nb


def errors(cell) -> list:
    return [o for o in cell.outputs if o.output_type == "error"]


def test_there_are_exercises():
    assert SOLUTIONS, "no solution notebooks found"
    for path in SOLUTIONS:
        nb = nbformat.read(path, as_version=4)
        assert any(is_check_cell(c) for c in nb.cells), f"{path.name} has no check cell"


def test_student_copies_are_up_to_date():
    stale = make_exercises.build(check_only=True)
    assert not stale, f"out of date: {stale}; run `python -m utils.course.make_exercises`"


def test_student_copy_holds_no_solution():
    for path in SOLUTIONS:
        student = make_exercises.EXERCISES / path.name
        text = student.read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in text and "solution-only" not in text
        assert "raise NotImplementedError()" in text


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_passes_every_check(path):
    """Every solution's check cells store their success line, and nbval (strict) proves it on each run.

    nbval executes the solution notebooks (they are under notebooks/) and compares every check cell's
    output with the stored one, so a solution that stopped passing fails there. This test makes sure
    that comparison covers the checks: each check cell stores a "✓" line, no cell stores an error, and
    no check cell hides its output from nbval.
    """
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not errors(cell), f"{path.name}: a cell stores an error: {cell.source[:80]!r}"
    checks = [c for c in nb.cells if is_check_cell(c)]
    for cell in checks:
        printed = "".join(o.get("text", "") for o in cell.outputs)
        assert "✓" in printed, f"{path.name}: check stores no success line (re-run it): {cell.source!r}"
        assert not any(marker in cell.source for marker in ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP")), (
            f"{path.name}: a check cell must be compared by nbval: {cell.source!r}")


def test_nbval_runs_the_solutions():
    """The guarantee above holds only while nbval collects notebooks/solutions: keep it so."""
    import tomllib

    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "notebooks" in options["testpaths"]
    assert "notebooks/solutions" not in options["addopts"] and "--ignore=notebooks/exercises" in options["addopts"]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_blank_student_copy_fails_every_check(path, kernel):
    nb = execute_in(kernel, make_exercises.EXERCISES / path.name)
    checks = [c for c in nb.cells if is_check_cell(c)]
    assert checks
    for cell in checks:
        found = errors(cell)
        assert found, f"{path.name}: check cell passed on the blank copy: {cell.source!r}"
        # It must be the check saying "not done", not a NameError or a crash elsewhere.
        assert found[0].ename == "CheckFailed", f"{path.name}: {found[0].ename}: {found[0].evalue}"


def test_generator_never_overwrites_a_learners_run_copy(tmp_path, monkeypatch):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    exercises.mkdir()
    monkeypatch.setattr(make_exercises, "SOLUTIONS", solutions)
    monkeypatch.setattr(make_exercises, "EXERCISES", exercises)
    with pytest.raises(SystemExit, match="No solution notebooks"):
        make_exercises.build()
    (solutions / "x.ipynb").write_text((ROOT / "notebooks/solutions" / SOLUTIONS[0].name).read_text())
    assert make_exercises.build() == [exercises / "x.ipynb"]
    worked = nbformat.read(exercises / "x.ipynb", as_version=4)
    worked.cells[-1].source += "\n# my notes"
    for cell in worked.cells:
        if cell.cell_type == "code":
            cell.execution_count = 1
    nbformat.write(worked, exercises / "x.ipynb")
    with pytest.raises(SystemExit, match="may hold a learner's answers"):
        make_exercises.build()
    assert "# my notes" in (exercises / "x.ipynb").read_text()
    make_exercises.build(force=True)
    assert "# my notes" not in (exercises / "x.ipynb").read_text()
