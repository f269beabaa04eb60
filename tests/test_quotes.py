"""Numbers quoted in prose are tied to the stored outputs they quote (utils/course/quotes.py)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from utils.course import quotes

ROOT = Path(__file__).resolve().parents[1]


def test_every_quoted_number_matches_its_stored_output():
    found = quotes.problems(quotes.all_quotes())
    assert not found, "\n".join(found)


def test_every_lesson_notebook_ties_its_quoted_results():
    """The markers are in use: each lesson notebook after 00 quotes at least one stored result."""
    counts = {p.name: len(quotes.notebook_quotes(p)) for p in sorted((ROOT / "notebooks").glob("0[1-9]_*.ipynb"))}
    assert all(counts.values()), f"notebooks without a single tied number: {[n for n, c in counts.items() if not c]}"


def small_notebook(tmp_path: Path, prose: str, tag: str = "out:acc") -> Path:
    cell = nbformat.v4.new_code_cell("print('test accuracy 88.03% | F1 0.9544 | 1,114 examples')")
    cell.metadata["tags"] = [tag]
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                           text="test accuracy 88.03% | F1 0.9544 | 1,114 examples\n")]
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell(prose)])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("prose, ok", [
    ("It reaches 88.03 %<!--out:acc--> on the test set.", True),
    ("It reaches 88 %<!--out:acc--> on the test set.", True),        # rounded: still what was printed
    ("F1 0.95<!--out:acc-->, on 1,114<!--out:acc--> messages.", True),
    ("It reaches 88.1 %<!--out:acc--> on the test set.", False),     # one altered number fails
    ("It reaches 98.03 %<!--out:acc--> on the test set.", False),
    ("F1 0.954<!--out:acc-->", True),                                 # 0.9544 to three decimals
    ("F1 0.9545<!--out:acc-->", False),
    ("Above: 88.03 %<!--out-->.", True),                              # the code cell above
    ("It reaches 88.03 %<!--out:other-->.", False),                   # no cell has that tag
    ("A marker after no number<!--out:acc-->.", False),
])
def test_a_quote_must_agree_with_the_output_it_names(tmp_path, prose, ok):
    found = quotes.problems(quotes.notebook_quotes(small_notebook(tmp_path, prose)))
    assert (not found) is ok, found


def test_altering_one_quoted_number_in_the_course_fails(tmp_path):
    """Take a real quote from a lesson notebook, change its number, and the check reports it."""
    quote = next(q for q in quotes.all_quotes() if q.cell_index is not None and q.tag)
    nb = nbformat.read(quote.notebook, as_version=4)
    marker = f"<!--out:{quote.tag}-->"
    altered = str(int(float(quote.number.replace(",", ""))) + 7)
    pattern = re.escape(quote.number) + r"([^\d\n]{0,12}" + re.escape(marker) + ")"
    source = nb.cells[quote.cell_index].source
    nb.cells[quote.cell_index].source = re.sub(pattern, altered + r"\1", source, count=1)
    assert nb.cells[quote.cell_index].source != source
    copy = tmp_path / quote.notebook.name
    nbformat.write(nb, copy)
    assert not quotes.problems([q for q in quotes.notebook_quotes(quote.notebook) if q.tag == quote.tag])
    changed = [q for q in quotes.notebook_quotes(copy) if q.tag == quote.tag]
    assert any(f"quotes {altered}," in p for p in quotes.problems(changed))


@pytest.mark.parametrize("line, ok", [
    ("cpu-5min reached 1.529<!--bench:bench_fake--> in 256<!--bench:bench_fake--> s.", True),
    ("cpu-5min reached 1.53<!--bench:bench_fake-->.", True),
    ("cpu-5min reached 1.52<!--bench:bench_fake-->.", False),          # an altered number fails
    ("cpu-5min reached 1.529<!--bench:bench_missing-->.", False),      # no such results file
    ("a guide's 1.529<!--out:tag--> must name its notebook", False),
])
def test_a_guide_can_quote_a_saved_benchmark(tmp_path, monkeypatch, line, ok):
    (tmp_path / "bench_fake.txt").write_text("[cpu-5min] 57.0 ms per step, 256 s wall in all, final val loss 1.5290\n")
    monkeypatch.setattr(quotes, "RESULTS", tmp_path)
    guide = tmp_path / "06_guide.md"
    guide.write_text(f"# guide\n\n{line}\n", encoding="utf-8")
    found = quotes.problems(quotes.guide_quotes(guide))
    assert (not found) is ok, found
