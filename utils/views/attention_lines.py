"""Attention views that work offline: a head view and a model view, drawn as self-written SVG.

    from utils.views.attention_lines import head_view, model_view
    head_view(attentions, tokens)     # tokens on two sides, lines weighted by attention
    model_view(attentions, tokens)    # a grid of every layer and head

`attentions` is what the models of this course return: a list or tuple with one tensor per layer,
each (batch, heads, n, n) (or (heads, n, n)). Our GPT gives it with `need_weights=True`, a Hugging
Face BERT with `output_attentions=True` (loaded with eager attention).

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


def _as_array(attentions, batch_index: int = 0) -> list:
    """attentions -> nested list [layer][head][query][key] of floats rounded to 3 digits."""
    if isinstance(attentions, torch.Tensor):
        attentions = [attentions]
    layers = [a.float() for a in per_layer(attentions, batch_index)]
    n = layers[0].shape[-1]
    return [[[[round(float(w), 3) for w in row] for row in head] for head in layer] for layer in layers], n


def _check_tokens(tokens, n: int) -> list[str]:
    tokens = [str(t) for t in tokens]
    if len(tokens) != n:
        raise ValueError(f"{len(tokens)} tokens were given but the attention covers {n} positions")
    return tokens


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


def head_view_html(attentions, tokens, layer: int = 0, heads=None, batch_index: int = 0, title: str = "") -> str:
    """The head view as one HTML string (SVG drawn for `layer` and `heads`; a script adds the controls)."""
    data, n = _as_array(attentions, batch_index)
    tokens = _check_tokens(tokens, n)
    n_layers, n_heads = len(data), len(data[0])
    if not 0 <= layer < n_layers:
        raise ValueError(f"layer must be in 0..{n_layers - 1}, got {layer}")
    heads = list(range(n_heads)) if heads is None else [heads] if isinstance(heads, int) else list(heads)
    if any(not 0 <= h < n_heads for h in heads):
        raise ValueError(f"heads must be in 0..{n_heads - 1}, got {heads}")
    uid = "av" + uuid.uuid4().hex[:10]
    dy, top, text_w = 20, 28, 110
    height = top + n * dy + 10
    x0, x1 = text_w + 8, text_w + 190
    width = x1 + text_w + 8
    labels = [html.escape(_label(t)) for t in tokens]
    left = "".join(f'<text x="{text_w}" y="{top + i * dy + 4}" text-anchor="end" data-side="q" data-i="{i}">'
                   f"{t}</text>" for i, t in enumerate(labels))
    right = "".join(f'<text x="{x1 + 8}" y="{top + i * dy + 4}" data-side="k" data-i="{i}">{t}</text>'
                    for i, t in enumerate(labels))
    lines = _lines_svg(data[layer], heads, x0, x1, top, dy)
    layer_opts = "".join(f'<option value="{i}"{" selected" if i == layer else ""}>{i}</option>'
                         for i in range(n_layers))
    swatches = "".join(
        f'<label style="margin-right:6px;color:{HEAD_COLOURS[h % len(HEAD_COLOURS)]}">'
        f'<input type="checkbox" data-head="{h}"{" checked" if h in heads else ""}> {h}</label>'
        for h in range(n_heads))
    payload = json.dumps({"weights": data, "n": n, "dy": dy, "top": top, "x0": x0, "x1": x1,
                          "colours": HEAD_COLOURS, "min": MIN_WEIGHT})
    caption = html.escape(title) if title else "attention: each token on the left looks at the tokens on the right"
    return f"""<div id="{uid}" class="llm-attention-view head-view" style="font-family:sans-serif;font-size:13px">
<div style="margin-bottom:4px"><b>{caption}</b></div>
<div class="av-controls" style="margin-bottom:4px">layer <select class="av-layer">{layer_opts}</select>
 &nbsp; heads {swatches}</div>
<svg class="av-svg" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" fill="none"
 style="font-family:monospace;font-size:13px">
<text x="{text_w}" y="14" text-anchor="end" fill="#666">query</text><text x="{x1 + 8}" y="14" fill="#666">key</text>
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


def model_view_html(attentions, tokens, batch_index: int = 0, cell: int = 120, title: str = "") -> str:
    """A grid of small head views: one row per layer, one column per head. Pure SVG, no script."""
    data, n = _as_array(attentions, batch_index)
    tokens = _check_tokens(tokens, n)
    n_layers, n_heads = len(data), len(data[0])
    pad, label_w = 6, 44
    dy = (cell - 2 * pad) / max(1, n - 1)
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
    shown = " ".join(_label(t) for t in tokens[:12]) + (" …" if n > 12 else "")
    caption = html.escape(title or f"every layer and head ({n} tokens: {shown})")
    svg = (f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" fill="none">'
           f'{"".join(parts)}</svg>')
    return (f'<div class="llm-attention-view model-view" style="font-family:sans-serif;font-size:12px">'
            f"<div><b>{caption}</b></div>{svg}"
            f'<div style="color:#666">Rows are layers, columns heads; in each square the tokens run top to '
            f"bottom, queries on the left, keys on the right. Thicker, darker lines carry more weight.</div></div>")


def head_view(attentions, tokens, layer: int = 0, heads=None, batch_index: int = 0, title: str = ""):
    """Show the head view in a notebook (returns the IPython HTML object)."""
    from IPython.display import HTML

    return HTML(head_view_html(attentions, tokens, layer, heads, batch_index, title))


def model_view(attentions, tokens, batch_index: int = 0, cell: int = 120, title: str = ""):
    """Show the model view in a notebook (returns the IPython HTML object)."""
    from IPython.display import HTML

    return HTML(model_view_html(attentions, tokens, batch_index, cell, title))
