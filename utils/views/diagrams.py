"""Boxes and arrows: the block diagrams of lesson 05, drawn with matplotlib.

    draw_block_and_gpt()   one pre-LayerNorm block on the left, the whole GPT on the right
    draw_course_map()      lesson 00's map: what each lesson turns into what, and which lessons build on which
    draw_timeline()        lesson 00's road from rules and counts to today's assistants, with the lesson of each step

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


# Lesson 00's course map: (number, title, what it turns into what, x, y, colour).
COURSE_MAP = [
    ("01", "Tokenization", "text → token ids", 1.0, 4.0, EMBEDDING),
    ("02", "Embeddings", "ids → vectors + positions", 3.6, 4.0, EMBEDDING),
    ("03", "Attention", "tokens look at each other", 6.2, 4.0, ATTN),
    ("04", "Multi-head attention", "several looks at once", 8.8, 4.0, ATTN),
    ("05", "The GPT", "blocks → a language model", 8.8, 2.3, BLOCK),
    ("06", "Training", "predict the next token", 6.2, 2.3, MLP),
    ("07", "Generation", "scores → new text", 3.6, 2.3, MLP),
    ("08", "Fine-tuning BERT", "an encoder classifies text", 8.8, 0.6, NORM),
    ("09", "Reading attention", "what the heads do, measured", 3.6, 0.6, NORM),
    ("10", "Translation", "encoder + decoder, joined", 1.0, 2.3, ATTN),
    ("11", "Today's open LLMs", "RoPE, RMSNorm, SwiGLU, GQA", 1.0, 0.6, BLOCK),
    ("12", "An assistant", "SFT, DPO, RL with rewards", 1.0, -1.1, MLP),
    ("13", "LLMs in practice", "costs, failures, choosing", 3.6, -1.1, NORM),
]
# Which lesson's result the next one uses (the arrows of the map).
COURSE_LINKS = [("01", "02"), ("02", "03"), ("03", "04"), ("04", "05"), ("05", "06"), ("06", "07"),
                ("05", "08"), ("07", "09"), ("08", "09"), ("07", "10"), ("07", "11"), ("11", "12"),
                ("12", "13")]


def draw_course_map():
    """Lesson 00's picture of the course: one box per lesson, an arrow where a lesson builds on another.
    Returns the figure."""
    fig, ax = plt.subplots(figsize=(12, 6.0))
    where = {number: (x, y) for number, _, _, x, y, _ in COURSE_MAP}
    for number, title, does, x, y, color in COURSE_MAP:
        box(ax, x, y, f"{number} · {title}\n{does}", color, w=2.3, h=1.0)
    for start, end in COURSE_LINKS:
        (x0, y0), (x1, y1) = where[start], where[end]
        if y0 == y1:  # side by side: from one box's edge to the other's
            step = 1.2 if x1 > x0 else -1.2
            arrow(ax, (x0 + step, y0), (x1 - step, y1))
        elif x0 == x1:  # one above the other
            arrow(ax, (x0, y0 - 0.55), (x1, y1 + 0.55))
        else:  # diagonal: from the lower edge towards the target's upper edge
            arrow(ax, (x0 - 0.6 if x1 < x0 else x0 + 0.6, y0 - 0.55), (x1 + 0.6 if x1 < x0 else x1 - 0.6, y1 + 0.55))
    ax.text(1.0, 5.1, "00 · Start here: the set-up check and a warm-up", ha="center", fontsize=9, color="gray")
    ax.set_xlim(-0.4, 10.2)
    ax.set_ylim(-1.8, 5.4)
    ax.axis("off")
    ax.set_title("The course: each lesson builds on the one its arrow comes from")
    fig.tight_layout()
    return fig


# Lesson 00's timeline: (year, the step, who, the lesson that builds it or "" where none does yet). Sources in
# lessons/00_start_here.md, "Where the ideas come from".
TIMELINE = [
    (1948, "next-letter statistics (n-grams)", "Shannon", ""),
    (1966, "ELIZA: a chat program of hand-written rules", "Weizenbaum", ""),
    (1997, "the LSTM, a recurrent network that remembers", "Hochreiter & Schmidhuber", "13"),
    (2003, "a neural language model with word vectors", "Bengio et al.", "02"),
    (2013, "word2vec: word vectors from a large corpus", "Mikolov et al.", "02"),
    (2014, "sequence to sequence: an encoder and a decoder", "Sutskever et al.", "10"),
    (2014, "attention: the decoder looks back at every word", "Bahdanau et al.", "03"),
    (2016, "subword tokens (byte-pair encoding)", "Sennrich et al.", "01"),
    (2017, "the Transformer: attention only, in parallel", "Vaswani et al.", "04"),
    (2018, "GPT: pre-train on text, then fine-tune", "Radford et al.", "06"),
    (2018, "BERT: an encoder pre-trained on masked words", "Devlin et al.", "08"),
    (2019, "GPT-2: a stack of decoder blocks, 1.5 billion parameters", "Radford et al.", "05"),
    (2019, "what attention heads look at", "Clark et al.", "09"),
    (2020, "GPT-3: 175 billion parameters, tasks from a prompt", "Brown et al.", "07"),
    (2022, "LaMDA and InstructGPT: fine-tuned to converse", "Thoppilan et al.; Ouyang et al.", "12"),
    (2023, "open weights: LLaMA with RoPE, RMSNorm, SwiGLU", "Touvron et al.", "11"),
    (2025, "reasoning trained by RL with checkable rewards", "DeepSeek-AI", "12"),
]
# The eras the timeline's bands mark: (first year, last year, name).
ERAS = [(1940, 1999, "rules, counts and\nrecurrent networks"), (2000, 2016, "learned vectors\nand attention"),
        (2017, 2019, "the Transformer\nand pre-training"), (2020, 2026, "scale, chat\nand reasoning")]


def draw_timeline():
    """Lesson 00's timeline, one row per step, oldest at the top; a coloured badge names the course lesson
    that builds the step (grey where no lesson does). Rows are evenly spaced, not to scale in time: the
    last ten years hold most of the steps. Returns the figure."""
    fig, ax = plt.subplots(figsize=(11, 6.4))
    n = len(TIMELINE)
    colors = {number: color for number, _, _, _, _, color in COURSE_MAP}
    for first, last, name in ERAS:
        rows = [i for i, (year, *_) in enumerate(TIMELINE) if first <= year <= last]
        if rows:
            top, bottom = n - rows[0] - 0.5 + 1, n - rows[-1] - 0.5
            ax.axhspan(bottom, top, color="#f4f4f4" if ERAS.index((first, last, name)) % 2 else "white", zorder=0)
            ax.text(9.9, (top + bottom) / 2, name, ha="right", va="center", fontsize=8, color="gray", style="italic")
    ax.plot([1.0, 1.0], [0.6, n + 0.4], color="gray", lw=1, zorder=1)
    for i, (year, step, who, lesson) in enumerate(TIMELINE):
        y = n - i
        ax.plot(1.0, y, "o", color="black", ms=4, zorder=2)
        ax.text(0.8, y, str(year), ha="right", va="center", fontsize=9)
        ax.text(1.25, y, f"{step}  ({who})", ha="left", va="center", fontsize=9)
        label = f"lesson {lesson}" if lesson else "not built here"
        box(ax, 7.2, y, label, colors.get(lesson, "#eeeeee"), w=1.2, h=0.7)
    ax.set_xlim(0, 10)
    ax.set_ylim(0.4, n + 0.6)
    ax.axis("off")
    ax.set_title("Where the ideas come from, and the lesson that builds each")
    fig.tight_layout()
    return fig
