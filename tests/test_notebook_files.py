"""What the committed notebooks may store: nothing that needs the internet to show, and no other
project's JavaScript (bertviz's views are drawn by JS it fetches online; their cells are tagged
online-only and stored without outputs)."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from utils.course.run_notebooks import ONLINE_ONLY_TAG, clear_online_only, main

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("**/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
# Signs of a view that loads its code from the internet, or of bertviz's own script inlined.
FORBIDDEN = ['<script src="http', "<script src='http", "require.config(", "bertviz-", "@fileoverview"]


def stored_problems(nb) -> list[str]:
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        uses_bertviz = "bertviz" in cell.source and "import" not in cell.source.splitlines()[-1]
        if uses_bertviz and ONLINE_ONLY_TAG not in cell.metadata.get("tags", []):
            problems.append(f"cell {i} calls bertviz but is not tagged {ONLINE_ONLY_TAG!r}")
        text = json.dumps(cell.get("outputs", []))
        problems += [f"cell {i} stores {marker!r} in its output" for marker in FORBIDDEN if marker in text]
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT / "notebooks")))
def test_no_stored_output_needs_the_internet_or_holds_third_party_js(path):
    assert stored_problems(nbformat.read(path, as_version=4)) == []


def bertviz_notebook(stored_output: bool, tagged: bool):
    cell = nbformat.v4.new_code_cell("from bertviz import head_view\nhead_view(attention, tokens)")
    if tagged:
        cell.metadata["tags"] = [ONLINE_ONLY_TAG]
    if stored_output:
        cell.outputs = [nbformat.v4.new_output("display_data", data={
            "text/html": '<script src="https://example.org/require.min.js"></script><div id="bertviz-1"></div>'})]
    return nbformat.v4.new_notebook(cells=[cell])


def test_the_check_finds_a_stored_bertviz_view_and_clearing_fixes_it():
    nb = bertviz_notebook(stored_output=True, tagged=False)
    problems = stored_problems(nb)
    assert any("not tagged" in p for p in problems) and any("bertviz-" in p for p in problems)
    nb = bertviz_notebook(stored_output=True, tagged=True)
    assert stored_problems(nb) and clear_online_only(nb) == 1
    assert stored_problems(nb) == [] and nb.cells[0].outputs == []


def test_clear_only_rewrites_the_file(tmp_path):
    path = tmp_path / "x.ipynb"
    nbformat.write(bertviz_notebook(stored_output=True, tagged=True), path)
    main(["--clear-only", str(path)])
    assert nbformat.read(path, as_version=4).cells[0].outputs == []


def test_a_missing_notebook_is_named(tmp_path):
    with pytest.raises(SystemExit, match="no such notebook: .*nope.ipynb"):
        main([str(tmp_path / "nope.ipynb")])
