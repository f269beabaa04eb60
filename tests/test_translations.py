"""The Chinese edition cannot drift from the English one silently: each translated guide (lessons/zh/) and
README.zh-CN.md has its English twin's structure (as many headings at each level, the same display and inline
maths, the same code blocks, the same links to notebooks, the same quote markers) and links to it, and the
twin links back."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ZH = ROOT / "lessons" / "zh"
PAIRS = [(ROOT / "README.md", ROOT / "README.zh-CN.md"), (ROOT / "lessons" / "README.md", ZH / "README.md")]
PAIRS += [(path, ZH / path.name) for path in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.md"))]
TRANSLATED = [(en, zh) for en, zh in PAIRS if zh.exists()]

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
INLINE = re.compile(r"(?<![\\$])\$(?!\$)([^$\n]+?)\$")
LINK = re.compile(r"\]\(([^)\s]+)\)")
MARKER = re.compile(r"<!--\s*(?:out|bench)[^>]*-->")


def structure(text: str, path: Path) -> dict:
    """What a translation must keep: headings per level, maths, code, notebook links, quote markers."""
    code = FENCE.findall(text)
    prose = FENCE.sub("", text)
    headings = Counter(len(m.group(1)) for m in re.finditer(r"^(#{1,6}) ", prose, re.M))
    display = DISPLAY.findall(prose)
    inline = Counter(m.strip() for m in INLINE.findall(DISPLAY.sub("", prose)))
    notebooks = Counter()
    root = next(p for p in path.parents if (p / "lessons").is_dir())  # the course folder the file is in
    for target in LINK.findall(prose):
        if "://" in target or target.startswith("#"):
            continue
        resolved = (path.parent / target.split("#")[0]).resolve()
        if "notebooks" in resolved.parts:
            notebooks[resolved.relative_to(root.resolve()).as_posix()] += 1
    return {"headings per level": dict(headings), "display maths": [d.strip() for d in display],
            "inline maths": inline, "code blocks": code, "links to notebooks": notebooks,
            "quote markers": Counter(re.sub(r"\s+", "", m) for m in MARKER.findall(prose))}


def differences(english: Path, chinese: Path) -> list[str]:
    en, zh = structure(english.read_text(encoding="utf-8"), english), structure(chinese.read_text(encoding="utf-8"),
                                                                                chinese)
    found = []
    for key in en:
        if en[key] != zh[key]:
            if isinstance(en[key], Counter):
                missing, extra = en[key] - zh[key], zh[key] - en[key]
                found.append(f"{key}: missing {dict(missing)}, not in the English {dict(extra)}")
            else:
                found.append(f"{key}: English {en[key]!r:.300}, Chinese {zh[key]!r:.300}")
    return found


def links_to(path: Path, other: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    return any((path.parent / t.split("#")[0]).resolve() == other.resolve() for t in LINK.findall(text))


def test_every_english_guide_has_a_chinese_twin():
    missing = [zh.relative_to(ROOT).as_posix() for _, zh in PAIRS if not zh.exists()]
    assert not missing, f"translate these too (lessons/zh/glossary.md has the terms): {missing}"


def test_the_glossary_has_the_terms():
    glossary = (ZH / "glossary.md").read_text(encoding="utf-8")
    rows = [line for line in glossary.splitlines() if line.startswith("| ") and not line.startswith("| English")]
    assert len(rows) >= 80, f"the glossary has {len(rows)} terms"


@pytest.mark.parametrize("english, chinese", TRANSLATED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_a_translation_keeps_its_twins_structure(english, chinese):
    found = differences(english, chinese)
    assert not found, f"{chinese.relative_to(ROOT)} differs from {english.relative_to(ROOT)}:\n" + "\n".join(found)


@pytest.mark.parametrize("english, chinese", TRANSLATED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_twins_link_to_each_other(english, chinese):
    assert links_to(chinese, english), f"{chinese.relative_to(ROOT)} does not link to its English twin"
    assert links_to(english, chinese), f"{english.relative_to(ROOT)} does not link to its Chinese twin"


def test_the_structure_check_sees_a_removed_heading_a_changed_formula_and_a_lost_marker(tmp_path):
    english = ROOT / "lessons" / "13_llms_in_practice.md"
    text = english.read_text(encoding="utf-8")
    copy = tmp_path / "lessons" / "zh" / english.name
    copy.parent.mkdir(parents=True)
    copy.write_text(text.replace("../", "../../"), encoding="utf-8")  # one folder deeper, links adjusted
    assert differences(english, copy) == []
    for broken, what in ((text.replace("\n## FAQ\n", "\n", 1), "headings per level"),
                         (text.replace("6ND", "6NT", 1), "maths"),
                         (text.replace("<!--out:13#race-->", "", 1), "quote markers")):
        copy.write_text(broken.replace("../", "../../"), encoding="utf-8")
        assert any(what in d for d in differences(english, copy)), what
