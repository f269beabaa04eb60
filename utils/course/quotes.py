"""Numbers that prose quotes from a stored run, tied to the output they quote (for maintainers).

In a notebook's markdown, a quoted result carries an invisible marker right after it:

    The fine-tuned model reaches 88.03 %<!--out:sst2-results--> on the test set.

`out:NAME` names the code cell tagged `out:NAME` in the same notebook; a bare `<!--out-->` means
the nearest code cell above the markdown cell. A lesson guide names the notebook by its number:
`<!--out:08#sst2-results-->`. A benchmark's saved output is named by its file in
benchmarks/results/: `1.529<!--bench:bench_gpt_5min-->` (written by `--save`). The number just
before the marker must appear in that cell's stored output (or that file), to the precision quoted:
"88 %" and "88.03 %" both quote a printed 88.03, "88.1 %" does not.
The notebooks and their solution notebooks, every markdown file in lessons/ (the Chinese guides in lessons/zh/
included) and the READMEs are read.
`python -m utils.course.quotes` lists every quote that no longer matches.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!--\s*(?:out(?::(?:(\d\d)#)?([\w.-]+))?|bench:([\w.-]+))\s*-->")
RESULTS = ROOT / "benchmarks" / "results"
# The number a marker quotes: the last one before it on its line ("1,260 s", "4.8x", "-0.31").
QUOTED = re.compile(r"(-?\d[\d,]*(?:\.\d+)?)[^\d\n]{0,12}$")
PRINTED = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Quote:
    where: str          # "notebooks/08_bert_finetuning.ipynb, cell 38"
    number: str         # as quoted, e.g. "88.03"
    notebook: Path      # the notebook whose output it quotes
    tag: str | None     # the cell's tag, or None for "the code cell above"
    cell_index: int | None  # the markdown cell's position, for tag None
    results: Path | None = None  # a benchmark's saved output, instead of a notebook cell


def cell_output_text(cell) -> str:
    """What a code cell printed or displayed as text (images and HTML-only output left out)."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif "data" in output and "text/plain" in output["data"]:
            parts.append(output["data"]["text/plain"])
    return "".join(parts)


def quotes_in(text: str, where: str, notebook: Path | None, cell_index: int | None = None) -> list[Quote]:
    found = []
    for marker in MARKER.finditer(text):
        line_start = text.rfind("\n", 0, marker.start()) + 1
        number = QUOTED.search(MARKER.sub("", text[line_start:marker.start()]))
        lesson, tag, bench = marker.group(1), marker.group(2), marker.group(3)
        target = notebook
        if lesson is not None:
            target = next((ROOT / "notebooks").glob(f"{lesson}_*.ipynb"), ROOT / "notebooks" / f"{lesson}_missing")
        results = RESULTS / f"{bench}.txt" if bench else None
        found.append(Quote(where, number.group(1) if number else "", target, tag, cell_index, results))
    return found


def printed_numbers(text: str) -> list[str]:
    return [m.group(0).replace(",", "") for m in PRINTED.finditer(text)]


def agrees(quoted: str, printed: str) -> bool:
    """True when `printed`, rounded to the decimals of `quoted`, is `quoted` (commas ignored; the sign
    too, since prose says it in words: "fell by 0.31" quotes a printed -0.31)."""
    try:
        want = abs(Decimal(quoted.replace(",", "")))
        value = abs(Decimal(printed))
    except InvalidOperation:
        return False
    step = Decimal(1).scaleb(want.as_tuple().exponent)
    return value.quantize(step, rounding=ROUND_HALF_UP) == want


def source_cell(nb, quote: Quote):
    """The code cell a quote points at, or an error message."""
    if quote.tag is None:
        if quote.cell_index is None:
            return None, "a guide must name the cell: <!--out:NN#tag-->"
        above = [c for c in nb.cells[: quote.cell_index] if c.cell_type == "code"]
        return (above[-1], None) if above else (None, "no code cell above this markdown cell")
    tagged = [c for c in nb.cells if c.cell_type == "code" and f"out:{quote.tag}" in c.metadata.get("tags", [])]
    if len(tagged) != 1:
        return None, f"{len(tagged)} code cells are tagged out:{quote.tag} in {quote.notebook.name}"
    return tagged[0], None


def problems(quotes: list[Quote]) -> list[str]:
    found, cache = [], {}
    for quote in quotes:
        if not quote.number:
            found.append(f"{quote.where}: a marker with no number just before it")
            continue
        if quote.results is not None:
            if not quote.results.is_file():
                found.append(f"{quote.where}: no benchmark results {_shown(quote.results)}")
            elif not any(agrees(quote.number, p) for p in printed_numbers(quote.results.read_text(encoding="utf-8"))):
                found.append(f"{quote.where}: quotes {quote.number}, which {_shown(quote.results)} does not print")
            continue
        if quote.notebook is None:
            found.append(f"{quote.where}: a guide must name the notebook: <!--out:NN#tag-->")
            continue
        if not quote.notebook.is_file():
            found.append(f"{quote.where}: no notebook {quote.notebook.name}")
            continue
        nb = cache.setdefault(quote.notebook, nbformat.read(quote.notebook, as_version=4))
        cell, error = source_cell(nb, quote)
        if error:
            found.append(f"{quote.where}: {error}")
            continue
        printed = printed_numbers(cell_output_text(cell))
        if not any(agrees(quote.number, p) for p in printed):
            shown = ", ".join(printed[:12]) or "no numbers"
            found.append(f"{quote.where}: quotes {quote.number}, but the cell's stored output prints {shown}")
    return found


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def notebook_quotes(path: Path) -> list[Quote]:
    nb = nbformat.read(path, as_version=4)
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            found += quotes_in(cell.source, f"{_shown(path)}, cell {i}", path, i)
    return found


def guide_quotes(path: Path) -> list[Quote]:
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        found += quotes_in(line, f"{_shown(path)}, line {number}", None)
    return found


def all_quotes(root: Path = ROOT) -> list[Quote]:
    found = []
    for path in [*sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")),
                 *sorted((root / "notebooks" / "solutions").glob("[0-9][0-9]_*.ipynb"))]:
        found += notebook_quotes(path)
    for path in [*sorted((root / "lessons").glob("**/*.md")), *sorted(root.glob("README*.md"))]:  # the translations too
        if path.exists():
            found += guide_quotes(path)
    return found


def main() -> None:
    quotes = all_quotes()
    found = problems(quotes)
    for line in found:
        print(line)
    print(f"{len(quotes)} quoted numbers, {len(found)} that do not match their stored output")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
