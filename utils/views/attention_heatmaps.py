"""An interactive look at attention heads: pick a row of tokens, a layer and a head, see the weights.

Everything is drawn here with matplotlib inside an ipywidgets Output, so it works offline and
needs no JavaScript beyond what Jupyter already has.

    explorer = AttentionExplorer(model, rows, marks=how_many_heads.rule_positions)
    explorer          # the last line of a cell shows it

`model(x, need_weights=True)` must return (logits, [weights of each layer]) with weights of shape
(batch, heads, n, n), as utils.how_many_heads.HeadsModel does.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
import numpy as np
import torch

Marks = tuple[list[int], list[int]]  # for each query i: the position of rule 1 and of rule 2


def draw_attention(ax, weights, tokens: list[int], marks: Marks | None = None, title: str = "") -> None:
    """Heat map of one head's weights (n_q, n_k) on `ax`: row i = query position i, column j = key j.

    marks = (first, second) draws a circle at (i, first[i]) and a cross at (i, second[i]): where
    the two rules of the toy task would look. Ticks read "position:token".
    """
    weights = np.asarray(weights)
    n_q, n_k = weights.shape
    image = ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0)
    labels = [f"{j}:{t}" for j, t in enumerate(tokens)]
    ax.set_xticks(range(n_k), labels[:n_k], rotation=90, fontsize=7)
    ax.set_yticks(range(n_q), labels[:n_q], fontsize=7)
    ax.set_xlabel("key  (position:token)")
    ax.set_ylabel("query  (position:token)")
    if marks is not None:
        first, second = marks
        rows = list(range(n_q))
        ax.scatter(first[:n_q], rows, s=60, facecolors="none", edgecolors="#ff7f0e", linewidths=1.5,
                   label="position x[i] points to")
        ax.scatter(second[:n_q], rows, s=40, marker="x", color="#1f77b4", linewidths=1.5, label="previous position")
    if title:
        ax.set_title(title)
    return image


class AttentionExplorer(widgets.VBox):
    """Three dropdowns (row, layer, head) and the chosen head's attention as a heat map.

    `shown` holds the weights currently drawn (numpy, n x n) and `caption` the text under the
    picture, so that code (and tests) can see what the learner sees.
    """

    def __init__(
        self,
        model,
        rows: dict[str, list[int]],
        marks: Callable[[list[int]], Marks] | None = None,
        describe: Callable[[np.ndarray, list[int], torch.Tensor], str] | None = None,
    ):
        if not rows:
            raise ValueError("give at least one row of tokens to explore")
        self.model, self.rows, self.marks, self.describe = model, rows, marks, describe
        self._cache: dict[str, tuple[list[np.ndarray], torch.Tensor]] = {}
        first_row = self._weights(next(iter(rows)))[0]
        n_layers, n_heads = len(first_row), first_row[0].shape[0]
        self.row_choice = widgets.Dropdown(options=list(rows), description="row")
        self.layer_choice = widgets.Dropdown(options=[(f"layer {i}", i) for i in range(n_layers)],
                                             description="layer")
        self.head_choice = widgets.Dropdown(options=[(f"head {h}", h) for h in range(n_heads)], description="head")
        self.picture = widgets.Output()
        self.text = widgets.HTML()
        self.shown: np.ndarray | None = None
        self.caption = ""
        for choice in (self.row_choice, self.layer_choice, self.head_choice):
            choice.observe(self._update, names="value")
        super().__init__([widgets.HBox([self.row_choice, self.layer_choice, self.head_choice]), self.picture,
                          self.text])
        self._update()

    def _weights(self, name: str) -> tuple[list[np.ndarray], torch.Tensor]:
        """Every layer's weights for one row, computed once: ([layer] -> (heads, n, n), logits)."""
        if name not in self._cache:
            x = torch.as_tensor(self.rows[name]).view(1, -1)
            with torch.no_grad():
                logits, weights = self.model(x, need_weights=True)
            self._cache[name] = ([w[0].numpy() for w in weights], logits[0])
        return self._cache[name]

    def _update(self, change=None) -> None:
        import matplotlib.pyplot as plt
        from IPython import get_ipython
        from IPython.display import clear_output

        name, layer, head = self.row_choice.value, self.layer_choice.value, self.head_choice.value
        weights, logits = self._weights(name)
        row = self.rows[name]
        self.shown = weights[layer][head]
        self.caption = self.describe(self.shown, row, logits) if self.describe else ""
        with self.picture:
            if get_ipython() is not None:  # outside Jupyter there is nothing to clear
                clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(5.6, 5.2))
            draw_attention(ax, self.shown, row, self.marks(row) if self.marks else None,
                           title=f"{name}\nlayer {layer}, head {head}")
            if self.marks:
                ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8)
            fig.tight_layout()
            plt.show()
            plt.close(fig)
        self.text.value = self.caption
