"""Build the student copies in notebooks/exercises/ from the solutions in notebooks/solutions/.

    python -m utils.course.make_exercises           # write every student copy
    python -m utils.course.make_exercises --check   # exit 1 if a committed copy is out of date

The solution notebooks are the source of truth. In them, the answer sits between
`### BEGIN SOLUTION` and `### END SOLUTION` inside a cell whose nbgrader metadata says
`"solution": true`; nbgrader's own ClearSolutions preprocessor replaces it with
`raise NotImplementedError()`, so a teacher can also run the solutions through nbgrader itself.
Cells tagged `solution-only` (notes for the teacher) are dropped, and all outputs are cleared.
Never edit a student copy by hand: edit the solution and run this again.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearMetadataPreprocessor, ClearOutputPreprocessor
from nbgrader.preprocessors import ClearSolutions

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "notebooks" / "solutions"
EXERCISES = ROOT / "notebooks" / "exercises"
SOLUTION_ONLY_TAG = "solution-only"


def student_copy(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return the student version of a solution notebook (the input is not changed)."""
    nb = nbformat.from_dict(solution)  # a deep copy
    nb.cells = [c for c in nb.cells if SOLUTION_ONLY_TAG not in c.get("metadata", {}).get("tags", [])]
    resources: dict = {}
    clear = ClearSolutions(enforce_metadata=True)
    clear.log.setLevel(logging.ERROR)
    nb, resources = clear.preprocess(nb, resources)
    nb, resources = ClearOutputPreprocessor().preprocess(nb, resources)
    # Keep nbgrader's cell metadata and tags; drop run-time noise such as execution timings.
    keep = ClearMetadataPreprocessor(preserve_cell_metadata_mask={"nbgrader", "tags", "editable", "deletable"},
                                     preserve_nb_metadata_mask={"kernelspec", "language_info"})
    nb, resources = keep.preprocess(nb, resources)
    # language_info gains the exact Python version when a solution is run; keep only the name so
    # that running a solution notebook does not make its student copy look out of date.
    nb.metadata["language_info"] = {"name": nb.metadata.get("language_info", {}).get("name", "python")}
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def has_learner_work(path: Path) -> bool:
    """A student copy that has been run (execution counts or outputs) probably holds someone's answers."""
    nb = nbformat.read(path, as_version=4)
    return any(c.cell_type == "code" and (c.get("execution_count") or c.get("outputs")) for c in nb.cells)


def build(check_only: bool = False, force: bool = False) -> list[Path]:
    """Write (or with check_only, compare) every student copy; return the paths that differ.

    Refuses to overwrite a student copy that has been run (a learner's work) unless force=True, and
    refuses to run at all without solution notebooks (e.g. in a copy of the course given to learners).
    """
    if not any(SOLUTIONS.glob("*.ipynb")):
        raise SystemExit(f"No solution notebooks in {SOLUTIONS}: nothing to generate from (this looks like a "
                         "learner's copy of the course; the student notebooks are already in notebooks/exercises).")
    stale = []
    EXERCISES.mkdir(parents=True, exist_ok=True)
    for source in sorted(SOLUTIONS.glob("*.ipynb")):
        text = render(student_copy(nbformat.read(source, as_version=4)))
        target = EXERCISES / source.name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            stale.append(target)
            if not check_only:
                if target.exists() and has_learner_work(target) and not force:
                    raise SystemExit(f"{target} has been run and may hold a learner's answers; not overwritten. "
                                     "Save it elsewhere, or pass --force to replace it.")
                target.write_text(text, encoding="utf-8")
    orphans = sorted(set(p.name for p in EXERCISES.glob("*.ipynb")) - set(p.name for p in SOLUTIONS.glob("*.ipynb")))
    for name in orphans:
        stale.append(EXERCISES / name)
        if not check_only:
            (EXERCISES / name).unlink()
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report student copies that are out of date")
    parser.add_argument("--force", action="store_true", help="overwrite student copies even if they have been run")
    args = parser.parse_args(argv)
    stale = build(check_only=args.check, force=args.force)
    for path in stale:
        verb = "out of date" if args.check else "written"
        print(f"{verb}: {path.relative_to(ROOT)}")
    if args.check and stale:
        print("Run `python -m utils.course.make_exercises` and commit the result.")
        return 1
    if not stale:
        print("All student copies are up to date.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
