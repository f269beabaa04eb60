"""Cross-attention in the offline attention views: queries (left) and keys (right) are two different
token lists, e.g. the Chinese characters a translation model writes looking at the English source.

The square case (self-attention, no key_tokens) must draw exactly what it drew before key_tokens
existed; the cross case one line per (head, query, key) weight that is drawn at all, with both lists'
labels, and clear errors when a list does not fit the weights.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import uuid
from pathlib import Path
from unittest import mock

import pytest
import torch

from utils.views import attention_lines
from utils.views.attention_lines import MIN_WEIGHT, head_view, head_view_html, model_view, model_view_html

ZH = ["我", "爱", "<s>", "猫", "&"]                         # 5 queries (target), two needing escapes
EN = ["▁I", "▁love", '"cats"', "<unk>", "▁and", "▁dogs", "\n", "."]  # 8 keys (source)
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # a name in the markup, never fetched


def weights(heads: int, n_q: int, n_k: int, layers: int = 2, batch: bool = True, seed: int = 0):
    """Weights well above MIN_WEIGHT or well below it, and two at its edge: one on it (drawn), one under."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(layers):
        w = 0.05 + 0.9 * torch.rand(heads, n_q, n_k, generator=g)
        w[torch.rand(heads, n_q, n_k, generator=g) < 0.4] = 0.002
        w[0, 0, 0], w[0, 0, 1] = MIN_WEIGHT, MIN_WEIGHT - 0.001
        out.append(w[None] if batch else w)
    return out


def kept(w) -> bool:
    """Whether the head view draws a line for weight w (it rounds to 3 digits, then keeps >= MIN_WEIGHT)."""
    return round(float(w), 3) >= MIN_WEIGHT


def drawn(page: str) -> list[tuple[int, int, int, str]]:
    """(head, query, key, d) for every detailed line of a head view."""
    return [(int(h), int(q), int(k), d) for d, q, k, h in
            re.findall(r'<path d="([^"]+)"[^>]*? data-q="(\d+)" data-k="(\d+)" data-h="(\d+)">', page)]


def column(page: str, side: str) -> list[str]:
    """The label texts of one column, top to bottom, as they stand in the HTML (escaped)."""
    found = re.findall(rf'<text x="[\d.]+" y="([\d.]+)"[^>]*data-side="{side}" data-i="(\d+)">([^<]*)</text>', page)
    assert [int(i) for _, i, _ in found] == list(range(len(found)))
    ys = [float(y) for y, _, _ in found]
    assert ys == sorted(ys)
    return [t for _, _, t in found]


def fixed_uid(fn, *args, **kwargs) -> str:
    with mock.patch.object(attention_lines.uuid, "uuid4", return_value=uuid.UUID(int=0)):
        return fn(*args, **kwargs)


# --- the square case is untouched --------------------------------------------------------------------------

def test_square_head_view_is_drawn_as_before():
    """Properties of the HTML made before key_tokens existed: its size, headings, one line per weight."""
    attn, tokens = weights(3, 6, 6), ["The", " cat", "<s>", "&", "\n", "."]
    page = head_view_html(attn, tokens, layer=1)
    assert '<svg class="av-svg" width="418" height="158" ' in page  # 28 + 6 * 20 + 10
    assert ('<text x="110" y="14" text-anchor="end" fill="#666">query</text>'
            '<text x="308" y="14" fill="#666">key</text>') in page
    labels = [html.escape(attention_lines._label(t)) for t in tokens]
    assert column(page, "q") == labels and column(page, "k") == labels
    expected = {(h, q, k) for h in range(3) for q in range(6) for k in range(6) if kept(attn[1][0, h, q, k])}
    assert len(drawn(page)) == page.count("<path ") == len(expected)
    assert {(h, q, k) for h, q, k, _ in drawn(page)} == expected
    assert '"n": 6, "dy": 20, "top": 28, "x0": 118, "x1": 300' in page


def test_key_tokens_equal_to_tokens_on_square_weights_draw_the_same():
    attn, tokens = weights(2, 4, 4), list("abcd")
    for fn, kwargs in [(head_view_html, {"layer": 1, "heads": [1]}), (model_view_html, {"cell": 90})]:
        plain = fixed_uid(fn, attn, tokens, **kwargs)
        cross = fixed_uid(fn, attn, tokens, key_tokens=list(tokens), **kwargs)
        assert plain == cross, fn.__name__
    # Apart from its id, a head view is the same from call to call.
    a, b = head_view_html(attn, tokens), head_view_html(attn, tokens)
    assert a != b and re.sub(r"av[0-9a-f]{10}", "ID", a) == re.sub(r"av[0-9a-f]{10}", "ID", b)


def test_square_model_view_caption_and_lines():
    attn, tokens = weights(2, 5, 5, layers=3), list("vwxyz")
    page = model_view_html(attn, tokens)
    assert "every layer and head (5 tokens: v w x y z)" in page
    assert page.count("<path ") == sum(int((a >= 0.05).sum()) for a in attn)


# --- the cross case ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_q, n_k", [(5, 8), (8, 5)], ids=["more keys", "more queries"])
def test_cross_head_view_draws_one_line_per_weight_from_query_to_key(n_q, n_k):
    attn = weights(4, n_q, n_k)
    queries, keys = (ZH, EN) if n_q < n_k else (EN, ZH)
    page = head_view_html(attn, queries, layer=1, key_tokens=keys)
    expected = {(h, q, k) for h in range(4) for q in range(n_q) for k in range(n_k)
                if kept(attn[1][0, h, q, k])}
    lines = drawn(page)
    assert len(lines) == page.count("<path ") == len(expected)
    assert {(h, q, k) for h, q, k, _ in lines} == expected
    assert (0, 0, 0) in expected and (0, 0, 1) not in expected  # a weight of exactly MIN_WEIGHT is drawn
    # Queries start on the left at their own row, keys end on the right at theirs (x0 = 118, x1 = 300).
    for _, q, k, d in lines:
        assert d == f"M118,{28 + 20 * q:.1f}L300,{28 + 20 * k:.1f}"
    # The SVG is as tall as the longer column, and both columns carry their own labels.
    assert f'width="418" height="{28 + 20 * max(n_q, n_k) + 10}" ' in page
    assert column(page, "q") == [html.escape(attention_lines._label(t)) for t in queries]
    assert column(page, "k") == [html.escape(attention_lines._label(t)) for t in keys]


def test_cross_labels_are_escaped():
    page = head_view_html(weights(2, 5, 8), ZH, key_tokens=EN)
    for text in ["&lt;s&gt;", "&amp;", "&quot;cats&quot;", "&lt;unk&gt;", "↵", "我", "▁love"]:
        assert f">{text}</text>" in page, text
    assert "<s>" not in page and "<unk>" not in page and '"cats"' not in page


def test_cross_payload_and_script_keep_both_columns_apart():
    """The script redraws from the payload's weights (n_q rows of n_k) and hovers by data-side/data-i."""
    attn = weights(3, 5, 8)
    page = head_view_html(attn, ZH, key_tokens=EN)
    payload = json.loads(re.search(r'class="av-data">(.*?)</script>', page).group(1))
    assert len(payload["weights"][0][0]) == 5 and {len(row) for row in payload["weights"][0][0]} == {8}
    assert page.count('data-side="q"') == 5 and page.count('data-side="k"') == 8
    assert 'p.dataset.q == i : p.dataset.k == i' in page


def test_column_titles_are_shown_escaped_and_make_room():
    page = head_view_html(weights(2, 5, 8), ZH, key_tokens=EN, left_title="Chinese (queries) <zh>",
                          right_title="English (keys)")
    assert '<text x="176" y="14" text-anchor="end" fill="#666">Chinese (queries) &lt;zh&gt;</text>' in page
    assert '<text x="374" y="14" fill="#666">English (keys)</text>' in page
    assert 'M184,' in page  # the lines start after the wider label space (176 + 8)


def test_cross_model_view_draws_every_layer_and_names_both_lists():
    attn = weights(3, 5, 8, layers=2)
    page = model_view_html(attn, ZH, key_tokens=EN)
    assert page.count("<path ") == sum(int((a >= 0.05).sum()) for a in attn)
    caption = re.search(r"<b>(.*?)</b>", page).group(1)
    assert caption == html.escape("every layer and head (5 queries: 我 爱 <s> 猫 &; 8 keys: "
                                  "▁I ▁love \"cats\" <unk> ▁and ▁dogs ↵ .)")
    # The longer column (8 keys) fills the square; the 5 queries keep its spacing, at the top.
    ys = {float(y) for y in re.findall(r'<path d="M[\d.]+,([\d.]+)L', page)}
    dy = (120 - 12) / 7
    assert ys <= {round(18 + layer * 120 + 6 + q * dy, 1) for layer in range(2) for q in range(5)}


def test_three_dimensional_layers_and_the_notebook_wrappers():
    attn = weights(2, 5, 8, batch=False)
    assert head_view(attn, ZH, key_tokens=EN, left_title="zh").data.count('data-side="k"') == 8
    assert "8 keys" in model_view(attn, ZH, key_tokens=EN).data
    assert len(drawn(head_view_html(attn[0], ZH, key_tokens=EN))) == sum(map(kept, attn[0].flatten()))


def test_batch_index_picks_the_text():
    attn = [torch.cat([a, torch.full_like(a, 0.001)]) for a in weights(2, 5, 8)]  # text 1: nothing to draw
    assert len(drawn(head_view_html(attn, ZH, key_tokens=EN, batch_index=0))) > 0
    assert len(drawn(head_view_html(attn, ZH, key_tokens=EN, batch_index=1))) == 0


@pytest.mark.parametrize("fn", [head_view_html, model_view_html])
def test_views_reference_no_url(fn):
    page = fn(weights(2, 5, 8), ZH, key_tokens=EN)
    assert SVG_NAMESPACE in page  # the one address allowed: the xmlns (and the script's svgNS)
    rest = page.replace(SVG_NAMESPACE, "")
    assert not re.search(r"https?:|//[a-z]|\bsrc=|@import|url\(", rest, flags=re.I)


# --- errors ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", [head_view_html, model_view_html])
def test_wrong_lengths_say_which_list_and_the_shape(fn):
    attn = weights(4, 7, 9)
    with pytest.raises(ValueError, match=re.escape(
            "12 key_tokens were given but the attention has 9 keys (weights of shape (4, 7, 9))")):
        fn(attn, list("abcdefg"), key_tokens=[str(i) for i in range(12)])
    with pytest.raises(ValueError, match=re.escape(
            "6 tokens were given but the attention has 7 queries (weights of shape (4, 7, 9)); tokens label "
            "the queries (left), key_tokens the keys (right)")):
        fn(attn, list("abcdef"), key_tokens=list("abcdefghi"))
    with pytest.raises(ValueError, match="are the two lists swapped"):
        fn(attn, list("abcdefghi"), key_tokens=list("abcdefg"))


@pytest.mark.parametrize("fn", [head_view_html, model_view_html])
def test_non_square_weights_without_key_tokens_ask_for_them(fn):
    with pytest.raises(ValueError, match=re.escape("layer 0: the attention weights of shape (1, 4, 7, 9) are not "
                                                   "square (7 queries, 9 keys): for cross-attention pass key_tokens")):
        fn(weights(4, 7, 9), list("abcdefg"))
    # The square case keeps its own message.
    with pytest.raises(ValueError, match="3 tokens were given but the attention covers 4 positions"):
        fn(weights(2, 4, 4), list("abc"))


def test_layers_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match=re.escape("every layer must have the same shape (heads, n_q, n_k)")):
        head_view_html(weights(2, 5, 8, layers=1) + weights(2, 5, 7, layers=1), ZH, key_tokens=EN)


# --- in a browser: hovering either column focuses its own lines ---------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_hover_in_a_browser_focuses_a_query_or_a_key():
    """The page runs offline (every request is refused); a query shows its lines to keys, a key those into it."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    attn = weights(3, 5, 8)
    page_html = head_view_html(attn, ZH, key_tokens=EN, layer=0)
    w = attn[0][0]
    requests = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.route("**/*", lambda route: (requests.append(route.request.url), route.abort()))
            page.set_content(f"<html><body>{page_html}</body></html>")
            view = page.locator(".llm-attention-view")

            def visible() -> set[tuple[int, int, int]]:
                return {tuple(v) for v in view.locator(".av-lines path").evaluate_all(
                    "ps => ps.filter(p => p.style.display !== 'none')"
                    ".map(p => [+p.dataset.h, +p.dataset.q, +p.dataset.k])")}

            everything = visible()
            assert len(everything) == sum(map(kept, w.flatten()))
            view.locator('.av-tokens text[data-side="q"][data-i="4"]').hover()
            assert visible() == {(h, 4, k) for h in range(3) for k in range(8) if kept(w[h, 4, k])}
            view.locator('.av-tokens text[data-side="k"][data-i="7"]').hover()
            assert visible() == {(h, q, 7) for h in range(3) for q in range(5) if kept(w[h, q, 7])}
            page.mouse.move(1, 1)
            assert visible() == everything
            # Another layer redraws from the payload with the same geometry: still n_q x n_k.
            view.locator("select.av-layer").select_option("1")
            layer1 = {(h, q, k) for h in range(3) for q in range(5) for k in range(8)
                      if kept(attn[1][0, h, q, k])}
            assert visible() == layer1
            view.locator('.av-tokens text[data-side="k"][data-i="0"]').hover()
            assert visible() == {(h, q, k) for h, q, k in layer1 if k == 0}
        finally:
            browser.close()
    assert requests == []
