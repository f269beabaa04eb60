"""Attention views that work offline: a head view and a model view, drawn as self-written SVG.

    from utils.views.attention_lines import head_view, model_view
    head_view(attentions, tokens)     # tokens on two sides, lines weighted by attention
    model_view(attentions, tokens)    # a grid of every layer and head
    head_view(cross, target_tokens, key_tokens=source_tokens)   # cross-attention: two token lists

`attentions` is what the models of this course return: a list or tuple with one tensor per layer,
each (batch, heads, n, n) (or (heads, n, n)). Our GPT gives it with `need_weights=True`, a Hugging
Face BERT with `output_attentions=True` (loaded with eager attention).

Cross-attention (a translation model's decoder looking at its encoder) has n_q queries and n_k keys,
each layer (batch, heads, n_q, n_k): then `tokens` label the queries (left) and `key_tokens` the keys
(right). Without key_tokens the weights must be square, so that a forgotten key_tokens is an error
and not a picture with the wrong words on one side.

Why not only bertviz? bertviz loads its JavaScript libraries from the internet each time it draws,
so in an offline classroom it shows an empty box. These views are plain HTML: the picture itself is
SVG computed in Python, so it shows wherever HTML does (JupyterLab, a notebook reopened later, an
exported HTML file, GitHub's preview). A short script of our own adds the interaction (choose layer
and head, hover over a token to see only its lines) where the page runs scripts.
"""

from __future__ import annotations

import html
import json
import uuid

import torch

from ..head_scores import per_layer

# One colour per head (cycled), readable on white.
HEAD_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a"]
MIN_WEIGHT = 0.01  # lines fainter than this are not drawn (they would be invisible anyway)


def _as_array(attentions, batch_index: int = 0, cross: bool = False) -> tuple[list, tuple[int, int, int]]:
    """attentions -> (nested list [layer][head][query][key] of floats rounded to 3 digits,
    the shape (heads, n_q, n_k) of one layer). cross=False asks for square weights (self-attention)."""
    if isinstance(attentions, torch.Tensor):
        attentions = [attentions]
    if cross:
        layers = per_layer(attentions, batch_index, square=False)
    else:
        _require_square(attentions)
        layers = per_layer(attentions, batch_index)
    layers = [a.float() for a in layers]
    shape = tuple(layers[0].shape)
    return [[[[round(float(w), 3) for w in row] for row in head] for head in layer] for layer in layers], shape


def _require_square(attentions) -> None:
    """per_layer would reject non-square weights too, but could not say that key_tokens is the cure."""
    for i, a in enumerate(attentions):
        shape = tuple(getattr(a, "shape", ()))
        if len(shape) in (3, 4) and shape[-2] != shape[-1]:
            raise ValueError(f"layer {i}: the attention weights of shape {shape} are not square ({shape[-2]} "
                             f"queries, {shape[-1]} keys): for cross-attention pass key_tokens=[...] to label "
                             "the keys, and tokens for the queries")


def _check_tokens(tokens, n: int) -> list[str]:
    tokens = [str(t) for t in tokens]
    if len(tokens) != n:
        raise ValueError(f"{len(tokens)} tokens were given but the attention covers {n} positions")
    return tokens


def _check_cross_tokens(tokens, key_tokens, shape: tuple[int, int, int]) -> tuple[list[str], list[str]]:
    """Both lists as strings; the error names the list that is wrong, since either may be."""
    tokens, key_tokens = [str(t) for t in tokens], [str(t) for t in key_tokens]
    _, n_q, n_k = shape
    if n_q != n_k and (len(tokens), len(key_tokens)) == (n_k, n_q):
        raise ValueError(f"{len(tokens)} tokens and {len(key_tokens)} key_tokens were given but the attention has "
                         f"{n_q} queries and {n_k} keys (weights of shape {shape}): are the two lists swapped? "
                         "tokens label the queries (left), key_tokens the keys (right)")
    if len(tokens) != n_q:
        raise ValueError(f"{len(tokens)} tokens were given but the attention has {n_q} queries (weights of shape "
                         f"{shape}); tokens label the queries (left), key_tokens the keys (right)")
    if len(key_tokens) != n_k:
        raise ValueError(f"{len(key_tokens)} key_tokens were given but the attention has {n_k} keys (weights of "
                         f"shape {shape})")
    return tokens, key_tokens


def _token_lists(attentions, tokens, key_tokens, batch_index: int):
    """(data, n_q, n_k, query labels, key labels); without key_tokens the queries are also the keys."""
    data, shape = _as_array(attentions, batch_index, cross=key_tokens is not None)
    if key_tokens is None:
        tokens = _check_tokens(tokens, shape[-1])
        return data, shape[1], shape[2], tokens, tokens
    return data, shape[1], shape[2], *_check_cross_tokens(tokens, key_tokens, shape)


def _label(token: str) -> str:
    return token.replace("\n", "↵").replace(" ", "·") if token.strip() == "" or "\n" in token else token


def _lines_svg(weights, heads, x0, x1, y, dy, width_scale=3.0, min_weight=MIN_WEIGHT, detail=True) -> str:
    """SVG <path>s from every query (left, x0) to every key (right, x1), one colour per head.

    detail adds the data attributes the script uses and a tooltip per line; the model view leaves
    them out to stay small.
    """
    parts = []
    for h in heads:
        colour = HEAD_COLOURS[h % len(HEAD_COLOURS)]
        for q, row in enumerate(weights[h]):
            for k, w in enumerate(row):
                if w < min_weight:
                    continue
                line = (f'<path d="M{x0:.0f},{y + q * dy:.1f}L{x1:.0f},{y + k * dy:.1f}" stroke="{colour}" '
                        f'stroke-width="{max(0.5, width_scale * w):.1f}" stroke-opacity="{min(1.0, 0.15 + w):.2f}"')
                if detail:
                    line += (f' data-q="{q}" data-k="{k}" data-h="{h}"><title>head {h}: {q} → {k}: {w:.3f}</title>'
                             "</path>")
                else:
                    line += "/>"
                parts.append(line)
    return "".join(parts)


def head_view_html(attentions, tokens, layer: int = 0, heads=None, batch_index: int = 0, title: str = "", *,
                   key_tokens=None, left_title: str = "query", right_title: str = "key") -> str:
    """The head view as one HTML string (SVG drawn for `layer` and `heads`; a script adds the controls).

    key_tokens: the keys' labels for cross-attention (weights (heads, len(tokens), len(key_tokens)));
    left_title and right_title head the two columns.
    """
    data, n_q, n_k, tokens, key_tokens = _token_lists(attentions, tokens, key_tokens, batch_index)
    n_layers, n_heads = len(data), len(data[0])
    if not 0 <= layer < n_layers:
        raise ValueError(f"layer must be in 0..{n_layers - 1}, got {layer}")
    heads = list(range(n_heads)) if heads is None else [heads] if isinstance(heads, int) else list(heads)
    if any(not 0 <= h < n_heads for h in heads):
        raise ValueError(f"heads must be in 0..{n_heads - 1}, got {heads}")
    uid = "av" + uuid.uuid4().hex[:10]
    # A column heading such as "Chinese (queries)" is wider than "query": widen the label space for it
    # (the default 110 px is kept, so a view without such headings is drawn as before).
    dy, top, text_w = 20, 28, max(110, 8 * max(len(left_title), len(right_title)))
    height = top + max(n_q, n_k) * dy + 10  # the longer column sets the height
    x0, x1 = text_w + 8, text_w + 190
    width = x1 + text_w + 8
    # data-i is a query's index on the left and a key's on the right: the script's hover compares it
    # with a line's data-q or data-k, so each column focuses its own lines.
    left = "".join(f'<text x="{text_w}" y="{top + i * dy + 4}" text-anchor="end" data-side="q" data-i="{i}">'
                   f"{html.escape(_label(t))}</text>" for i, t in enumerate(tokens))
    right = "".join(f'<text x="{x1 + 8}" y="{top + i * dy + 4}" data-side="k" data-i="{i}">{html.escape(_label(t))}'
                    "</text>" for i, t in enumerate(key_tokens))
    lines = _lines_svg(data[layer], heads, x0, x1, top, dy)
    headings = (f'<text x="{text_w}" y="14" text-anchor="end" fill="#666">{html.escape(left_title)}</text>'
                f'<text x="{x1 + 8}" y="14" fill="#666">{html.escape(right_title)}</text>')
    layer_opts = "".join(f'<option value="{i}"{" selected" if i == layer else ""}>{i}</option>'
                         for i in range(n_layers))
    swatches = "".join(
        f'<label style="margin-right:6px;color:{HEAD_COLOURS[h % len(HEAD_COLOURS)]}">'
        f'<input type="checkbox" data-head="{h}"{" checked" if h in heads else ""}> {h}</label>'
        for h in range(n_heads))
    payload = json.dumps({"weights": data, "n": n_q, "dy": dy, "top": top, "x0": x0, "x1": x1,
                          "colours": HEAD_COLOURS, "min": MIN_WEIGHT})
    caption = html.escape(title) if title else "attention: each token on the left looks at the tokens on the right"
    return f"""<div id="{uid}" class="llm-attention-view head-view" style="font-family:sans-serif;font-size:13px">
<div style="margin-bottom:4px"><b>{caption}</b></div>
<div class="av-controls" style="margin-bottom:4px">layer <select class="av-layer">{layer_opts}</select>
 &nbsp; heads {swatches}</div>
<svg class="av-svg" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" fill="none"
 style="font-family:monospace;font-size:13px">
{headings}
<g fill="#000">
</g><g class="av-lines">{lines}</g><g class="av-tokens" fill="#000" style="cursor:pointer">{left}{right}</g></svg>
<div class="av-note" style="color:#666">Hover over a token to see only its lines. Layer {layer}, heads
{", ".join(map(str, heads))} shown.</div>
<script type="application/json" class="av-data">{payload}</script>
<script>{_HEAD_VIEW_JS.replace("__UID__", uid)}</script>
</div>"""


# Self-written: redraws the lines for the chosen layer and heads, and focuses a hovered token.
_HEAD_VIEW_JS = """
(function () {
  var root = document.getElementById("__UID__");
  if (!root || root.dataset.ready) { return; }
  root.dataset.ready = "1";
  var d = JSON.parse(root.querySelector(".av-data").textContent);
  var svgNS = "http://www.w3.org/2000/svg";
  var group = root.querySelector(".av-lines");
  var layerSelect = root.querySelector(".av-layer");
  var boxes = root.querySelectorAll("input[data-head]");
  var note = root.querySelector(".av-note");
  function draw() {
    var layer = parseInt(layerSelect.value, 10);
    var heads = [];
    boxes.forEach(function (b) { if (b.checked) { heads.push(parseInt(b.dataset.head, 10)); } });
    while (group.firstChild) { group.removeChild(group.firstChild); }
    heads.forEach(function (h) {
      var colour = d.colours[h % d.colours.length];
      d.weights[layer][h].forEach(function (row, q) {
        row.forEach(function (w, k) {
          if (w < d.min) { return; }
          var p = document.createElementNS(svgNS, "path");
          p.setAttribute("d", "M" + d.x0 + "," + (d.top + q * d.dy) + " L" + d.x1 + "," + (d.top + k * d.dy));
          p.setAttribute("stroke", colour);
          p.setAttribute("stroke-width", Math.max(0.5, 3 * w).toFixed(2));
          p.setAttribute("stroke-opacity", Math.min(1, 0.15 + w).toFixed(2));
          p.setAttribute("fill", "none");
          p.dataset.q = q; p.dataset.k = k; p.dataset.h = h;
          var t = document.createElementNS(svgNS, "title");
          t.textContent = "head " + h + ": " + q + " \\u2192 " + k + ": " + w.toFixed(3);
          p.appendChild(t);
          group.appendChild(p);
        });
      });
    });
    note.textContent = "Layer " + layer + ", heads " + (heads.length ? heads.join(", ") : "none") +
      " shown. Hover over a token to see only its lines.";
    root.dataset.layer = layer;
  }
  function focus(side, i) {
    group.querySelectorAll("path").forEach(function (p) {
      var hit = side === null || (side === "q" ? p.dataset.q == i : p.dataset.k == i);
      p.style.display = hit ? "" : "none";
    });
  }
  root.querySelectorAll(".av-tokens text").forEach(function (t) {
    t.addEventListener("mouseenter", function () { focus(t.dataset.side, t.dataset.i); t.style.fontWeight = "bold"; });
    t.addEventListener("mouseleave", function () { focus(null, null); t.style.fontWeight = ""; });
  });
  layerSelect.addEventListener("change", draw);
  boxes.forEach(function (b) { b.addEventListener("change", draw); });
})();
"""


def model_view_html(attentions, tokens, batch_index: int = 0, cell: int = 120, title: str = "", *,
                    key_tokens=None) -> str:
    """A grid of small head views: one row per layer, one column per head. Pure SVG, no script.

    key_tokens: the keys' labels for cross-attention, as in head_view_html.
    """
    data, n_q, n_k, tokens, key_tokens = _token_lists(attentions, tokens, key_tokens, batch_index)
    n_layers, n_heads = len(data), len(data[0])
    pad, label_w = 6, 44
    # One spacing for both columns, set by the longer one (as in the head view): the shorter column
    # stays at the top instead of being stretched, so a line's slope still reads as in the head view.
    dy = (cell - 2 * pad) / max(1, max(n_q, n_k) - 1)
    width, height = label_w + n_heads * cell, 18 + n_layers * cell
    parts = []
    for h in range(n_heads):
        parts.append(f'<text x="{label_w + h * cell + cell / 2}" y="13" text-anchor="middle" fill="#444">'
                     f"head {h}</text>")
    for layer in range(n_layers):
        y0 = 18 + layer * cell
        parts.append(f'<text x="4" y="{y0 + cell / 2}" fill="#444">L{layer}</text>')
        for h in range(n_heads):
            x = label_w + h * cell
            parts.append(f'<rect x="{x + 2}" y="{y0 + 2}" width="{cell - 4}" height="{cell - 4}" fill="#fafafa" '
                         f'stroke="#ddd"><title>layer {layer}, head {h}</title></rect>')
            parts.append(_lines_svg(data[layer], [h], x + pad + 8, x + cell - pad - 8, y0 + pad, dy,
                                    width_scale=1.5, min_weight=0.05, detail=False))

    def shown(labels):
        return " ".join(_label(t) for t in labels[:12]) + (" …" if len(labels) > 12 else "")

    if key_tokens == tokens:  # self-attention (or the same words on both sides): one list
        about = f"{n_q} tokens: {shown(tokens)}"
    else:
        about = f"{n_q} queries: {shown(tokens)}; {n_k} keys: {shown(key_tokens)}"
    caption = html.escape(title or f"every layer and head ({about})")
    svg = (f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" fill="none">'
           f'{"".join(parts)}</svg>')
    return (f'<div class="llm-attention-view model-view" style="font-family:sans-serif;font-size:12px">'
            f"<div><b>{caption}</b></div>{svg}"
            f'<div style="color:#666">Rows are layers, columns heads; in each square the tokens run top to '
            f"bottom, queries on the left, keys on the right. Thicker, darker lines carry more weight.</div></div>")


def head_view(attentions, tokens, layer: int = 0, heads=None, batch_index: int = 0, title: str = "", *,
              key_tokens=None, left_title: str = "query", right_title: str = "key"):
    """Show the head view in a notebook (returns the IPython HTML object); key_tokens for cross-attention."""
    from IPython.display import HTML

    return HTML(head_view_html(attentions, tokens, layer, heads, batch_index, title, key_tokens=key_tokens,
                               left_title=left_title, right_title=right_title))


def model_view(attentions, tokens, batch_index: int = 0, cell: int = 120, title: str = "", *, key_tokens=None):
    """Show the model view in a notebook (returns the IPython HTML object); key_tokens for cross-attention."""
    from IPython.display import HTML

    return HTML(model_view_html(attentions, tokens, batch_index, cell, title, key_tokens=key_tokens))
