"""Lesson 04's experiment in pictures: accuracy by number of heads, and every head's weights on a row.

    plot_experiment(runs)            held-out accuracy while training, final accuracy and loss per head count
    plot_heads(model, row, layer)    each head's attention on one row, the two positions the task needs marked

The experiment itself (the task, the model, the runs) is utils/how_many_heads.py.
"""

from __future__ import annotations

import statistics

import matplotlib.pyplot as plt
import torch

from ..how_many_heads import HeadsModel, Run, rule_positions
from .attention_heatmaps import draw_attention

COLOURS = {1: "#d62728", 2: "#1f77b4", 4: "#2ca02c", 8: "#9467bd", 16: "#8c564b"}


def plot_experiment(runs: list[Run], title: str = ""):
    """Three panels: held-out accuracy while training (mean line, min-max band over seeds), and the
    final accuracy and loss per head count (one dot per seed, a bar at the mean)."""
    heads = sorted({r.heads for r in runs})
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    ax = axes[0]
    for h in heads:
        mine = [r for r in runs if r.heads == h]
        steps = mine[0].history.steps
        acc = torch.tensor([r.history.accuracy for r in mine])
        colour = COLOURS.get(h)
        label = f"{h} head{'s' if h > 1 else ''} (d_head={mine[0].model.d_model // h})"
        ax.plot(steps, acc.mean(0), color=colour, label=label)
        ax.fill_between(steps, acc.min(0).values, acc.max(0).values, color=colour, alpha=0.2, linewidth=0)
    ax.set(xlabel="training step", ylabel="both answers right (held-out)", ylim=(0, 1.02),
           title="accuracy while training\n(line: mean over seeds, band: min to max)")
    ax.legend(loc="lower right", fontsize=8)
    for ax, key, label, log in ((axes[1], "final_accuracy", "both answers right (held-out)", False),
                                (axes[2], "final_loss", "held-out loss (log scale)", True)):
        for i, h in enumerate(heads):
            values = [getattr(r, key) for r in runs if r.heads == h]
            if log:  # a bar on a log scale has no natural bottom: mark the mean with a line instead
                ax.hlines(statistics.fmean(values), i - 0.3, i + 0.3, color=COLOURS.get(h), linewidth=2.5)
            else:
                ax.bar(i, statistics.fmean(values), color=COLOURS.get(h), alpha=0.35, width=0.6)
            ax.scatter([i] * len(values), values, color=COLOURS.get(h), zorder=3, s=18)
        ax.set_xticks(range(len(heads)), [str(h) for h in heads])
        mean_mark = "line" if log else "bar"
        ax.set(xlabel="number of heads (d_model fixed)", ylabel=label, xlim=(-0.6, len(heads) - 0.4),
               title=f"after {runs[0].history.steps[-1]} steps\n({mean_mark}: mean, dots: one per seed)")
        if log:
            ax.set_yscale("log")
        else:
            ax.set_ylim(0, 1.02)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_heads(model: HeadsModel, row, layer: int = 0, title: str = ""):
    """The attention weights of every head of one layer on one row, with the two positions the
    task needs marked in each query row: o = where x[i] points, x = the previous position."""
    x = torch.as_tensor(row).view(1, -1)
    with torch.no_grad():
        _, weights = model(x, need_weights=True)
    w = weights[layer][0]  # (heads, n, n)
    fig, axes = plt.subplots(1, w.shape[0], figsize=(4.2 * w.shape[0], 4.4), squeeze=False)
    for h, ax in enumerate(axes[0]):
        draw_attention(ax, w[h].numpy(), x[0].tolist(), marks=rule_positions(x[0]), title=f"head {h}")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
