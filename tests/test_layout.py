"""The library's layout (issue 12): idea modules at the top of utils/, the course's machinery in
utils/course/, pictures in utils/views/, checks in utils/checks/; every guide names its code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDES = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.md"))
MACHINERY = {"device", "mode", "seeding", "environment", "make_exercises", "run_notebooks", "cli", "offline"}
PICTURES = {"attention_lines", "attention_heatmaps", "tokens", "diagrams", "how_many_heads_plots"}


def modules(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}


def test_machinery_and_pictures_live_apart_from_the_ideas():
    top = modules(ROOT / "utils")
    assert not top & MACHINERY, f"course machinery at the top of utils/: {sorted(top & MACHINERY)}"
    assert not top & PICTURES, f"pictures at the top of utils/: {sorted(top & PICTURES)}"
    assert MACHINERY <= modules(ROOT / "utils" / "course")
    assert PICTURES <= modules(ROOT / "utils" / "views")
    assert {p.name for p in (ROOT / "utils").iterdir() if p.is_dir() and not p.name.startswith("__")} == {
        "course", "views", "checks"}


def test_idea_modules_never_import_views_or_checks():
    """The model code knows no screen and no checks (a view may use an idea, never the other way)."""
    for path in (ROOT / "utils").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        found = re.findall(r"^\s*from \.(views|checks)\b", text, flags=re.M)
        assert not found, f"utils/{path.name} imports from .{found[0]}"


@pytest.mark.parametrize("guide", GUIDES, ids=lambda p: p.stem)
def test_every_guide_names_its_code_and_the_files_exist(guide):
    head = guide.read_text(encoding="utf-8").split("\n## ")[0]
    code = [line for line in head.split("\n\n")[-1].split("\n")]
    text = " ".join(code)
    assert text.startswith("Code:") or "\nCode:" in head, f"{guide.name}: no 'Code:' line before the first section"
    named = re.findall(r"`((?:utils|benchmarks)/[\w/]+\.py)`", head)
    assert named, f"{guide.name}: the Code: line names no module"
    missing = [n for n in named if not (ROOT / n).is_file()]
    assert not missing, f"{guide.name} names modules that do not exist: {missing}"
