"""Boxes and arrows: the block diagrams of lesson 05, drawn with matplotlib.

    draw_block_and_gpt()   one pre-LayerNorm block on the left, the whole GPT on the right

The primitives (box, arrow, line, plus) take an Axes and data coordinates, so a learner can draw
another architecture with them (a post-LN block, an encoder-decoder).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

NORM, ATTN, MLP, EMBEDDING, BLOCK = "#fde9b6", "#cfe3f7", "#d5ecd4", "#f3d1dc", "#e4e4e4"


def box(ax, x, y, label, color, w=3.6, h=0.8):
    """A rounded box of width w and height h centred on (x, y), with a label."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05,rounding_size=0.15",
                                facecolor=color, edgecolor="black", lw=1))
    ax.text(x, y, label, ha="center", va="center", fontsize=9)


def arrow(ax, start, end):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", lw=1.3, color="black"))


def line(ax, start, end):
    ax.plot([start[0], end[0]], [start[1], end[1]], color="black", lw=1.3)


def plus(ax, x, y):
    """The circled plus of a residual connection."""
    ax.add_patch(plt.Circle((x, y), 0.28, facecolor="white", edgecolor="black", lw=1.2, zorder=3))
    ax.text(x, y, "+", ha="center", va="center", fontsize=13, zorder=4)


def draw_block(ax) -> None:
    """One pre-LayerNorm block: the residual stream runs up on the left; each branch reads it and adds back."""
    s, b = 1.6, 5.2  # x positions of the stream and of the branches
    ax.text(s, 0.2, "x  (batch, n, d)", ha="center", va="center", fontsize=10)
    for bottom, ln_name, layer, color, formula in (
        (1.3, "LayerNorm 1", "causal multi-head attention\n(tokens look at earlier tokens)", ATTN,
         "x = x + attn(ln1(x))"),
        (6.3, "LayerNorm 2", "MLP, each token on its own\nd → 4d, GELU, 4d → d", MLP, "x = x + mlp(ln2(x))"),
    ):
        top = bottom + 3.7
        arrow(ax, (s, bottom - 0.8 if bottom < 2 else bottom - 1.0), (s, top - 0.28))
        line(ax, (s, bottom), (b, bottom))
        arrow(ax, (b, bottom), (b, bottom + 0.42))
        box(ax, b, bottom + 0.8, ln_name, NORM)
        arrow(ax, (b, bottom + 1.2), (b, bottom + 1.72))
        box(ax, b, bottom + 2.2, layer, color, h=0.95)
        line(ax, (b, bottom + 2.68), (b, top))
        arrow(ax, (b, top), (s + 0.3, top))
        plus(ax, s, top)
        ax.text(6.8, top, formula, fontsize=9, family="monospace", va="center")
    arrow(ax, (s, 10.28), (s, 11.1))
    ax.text(s, 11.4, "x  (batch, n, d)", ha="center", va="center", fontsize=10)
    ax.text(s - 0.35, 7.6, "residual stream", rotation=90, ha="center", va="center", fontsize=9, color="gray")
    ax.set_xlim(0, 10.5)
    ax.set_title("One transformer block (pre-LayerNorm)")


def draw_gpt(ax) -> None:
    """The whole GPT: embeddings, a stack of blocks, the final LayerNorm and the tied head."""
    c = 3.5
    ax.text(c, 0.2, "token ids  (batch, n)", ha="center", va="center", fontsize=10)
    arrow(ax, (c - 1.0, 0.5), (c - 1.4, 1.12))
    arrow(ax, (c + 1.0, 0.5), (c + 1.4, 1.12))
    box(ax, c - 1.6, 1.5, "token embedding\nV × d", EMBEDDING, w=2.6)
    box(ax, c + 1.6, 1.5, "position embedding\nT × d", EMBEDDING, w=2.6)
    arrow(ax, (c - 1.6, 1.9), (c - 0.2, 2.6))
    arrow(ax, (c + 1.6, 1.9), (c + 0.2, 2.6))
    plus(ax, c, 2.85)
    arrow(ax, (c, 3.13), (c, 3.62))
    box(ax, c, 4.0, "block 1", BLOCK, w=3.0, h=0.7)
    arrow(ax, (c, 4.35), (c, 4.8))
    box(ax, c, 5.15, "block 2", BLOCK, w=3.0, h=0.7)
    ax.text(c, 5.95, "⋮", ha="center", va="center", fontsize=14)
    box(ax, c, 6.75, "block n_layer", BLOCK, w=3.0, h=0.7)
    ax.text(c + 1.8, 5.4, "n_layer blocks,\nsame shape\nin and out", fontsize=8, va="center", color="gray")
    arrow(ax, (c, 7.1), (c, 7.62))
    box(ax, c, 8.0, "final LayerNorm", NORM, w=3.0, h=0.7)
    arrow(ax, (c, 8.35), (c, 8.82))
    box(ax, c, 9.2, "head: d → V scores", EMBEDDING, w=3.0, h=0.7)
    arrow(ax, (c, 9.55), (c, 10.05))
    ax.text(c, 10.35, "logits  (batch, n, V)", ha="center", va="center", fontsize=10)
    ax.text(c, 10.95, "softmax → next-token probabilities", ha="center", va="center", fontsize=9, color="gray")
    ax.annotate("", xy=(c - 2.9, 1.6), xytext=(c - 1.5, 9.2),
                arrowprops=dict(arrowstyle="<|-|>", lw=1.1, ls="--", color="#a0306a",
                                connectionstyle="arc3,rad=0.3"))
    ax.text(-1.6, 5.4, "one matrix:\nthe head is\ntied to the\ntoken table", fontsize=8, color="#a0306a",
            va="center")
    ax.set_xlim(-1.7, 7.2)
    ax.set_title("The whole GPT")


def draw_block_and_gpt():
    """Lesson 05's figure: one block (left) beside the whole GPT (right). Returns the figure."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 7.5), gridspec_kw={"width_ratios": [1.1, 1]})
    draw_block(left)
    draw_gpt(right)
    for ax in (left, right):
        ax.set_ylim(-0.2, 11.8)
        ax.axis("off")
    fig.tight_layout()
    return fig
