"""Classification metrics, written out so that every number can be checked by hand.

A confusion matrix counts, for every true label (row) and predicted label (column), how many examples
fell there. With two labels and "positive" = 1 (spam, or a positive review):

                 predicted 0   predicted 1
    true 0           TN            FP
    true 1           FN            TP

    accuracy  = (TP + TN) / all                    how often the model is right
    precision = TP / (TP + FP)                     of the messages flagged as spam, how many are spam
    recall    = TP / (TP + FN)                     of the spam, how much was caught
    F1        = 2 * precision * recall / (precision + recall)

A ratio whose denominator is 0 (no positive predictions, say) is defined as 0 here, not NaN, as
scikit-learn does with zero_division=0: a model that never says "spam" has caught no spam.

With more than two classes, each class in turn is "positive" and the others are "negative"; the
*macro* average is the plain mean of the per-class scores, so a rare class counts as much as a
common one (macro_scores).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


def confusion_matrix(labels: Sequence[int], predictions: Sequence[int], num_classes: int | None = None) -> np.ndarray:
    """(num_classes, num_classes) int array: entry [t, p] counts examples with true label t predicted as p."""
    labels = np.asarray(labels, dtype=np.int64).ravel()
    predictions = np.asarray(predictions, dtype=np.int64).ravel()
    if labels.shape != predictions.shape:
        raise ValueError(f"{labels.size} labels but {predictions.size} predictions: they must pair up")
    if labels.size and min(labels.min(), predictions.min()) < 0:
        raise ValueError("labels and predictions must be class indices 0, 1, ...")
    if num_classes is None:
        num_classes = int(max(labels.max(initial=1), predictions.max(initial=1))) + 1
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else 0.0


def accuracy(labels: Sequence[int], predictions: Sequence[int]) -> float:
    """Share of predictions equal to the label (0.0 for no examples)."""
    matrix = confusion_matrix(labels, predictions)
    return _ratio(np.trace(matrix), matrix.sum())


class Scores(NamedTuple):
    accuracy: float
    precision: float
    recall: float
    f1: float


def scores_from_confusion(matrix, positive: int = 1) -> Scores:
    """Accuracy, and precision, recall and F1 of the `positive` class, from a confusion matrix."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix is square, got shape {matrix.shape}")
    tp = matrix[positive, positive]
    fp = matrix[:, positive].sum() - tp  # predicted positive, but another label
    fn = matrix[positive, :].sum() - tp  # truly positive, predicted as another label
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return Scores(_ratio(np.trace(matrix), matrix.sum()), precision, recall, f1)


class MacroScores(NamedTuple):
    precision: float
    recall: float
    f1: float


def macro_scores(labels: Sequence[int], predictions: Sequence[int], num_classes: int) -> MacroScores:
    """Precision, recall and F1 of every class 0..num_classes - 1, each averaged over the classes.

    Macro F1 is the mean of the per-class F1 scores (not the F1 of the mean precision and recall). A
    class that never occurs, in the labels or the predictions, still counts: its scores are 0.
    """
    matrix = confusion_matrix(labels, predictions, num_classes)
    per_class = [scores_from_confusion(matrix, positive=c) for c in range(num_classes)]
    return MacroScores(*(float(np.mean([getattr(s, name) for s in per_class])) for name in MacroScores._fields))


def scores(labels: Sequence[int], predictions: Sequence[int], positive: int = 1) -> Scores:
    """Accuracy, precision, recall and F1 (of the `positive` class) of predictions against labels."""
    num_classes = int(max(np.max(labels, initial=1), np.max(predictions, initial=1), positive)) + 1
    return scores_from_confusion(confusion_matrix(labels, predictions, num_classes), positive)


def precision(labels, predictions, positive: int = 1) -> float:
    return scores(labels, predictions, positive).precision


def recall(labels, predictions, positive: int = 1) -> float:
    return scores(labels, predictions, positive).recall


def f1(labels, predictions, positive: int = 1) -> float:
    return scores(labels, predictions, positive).f1


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % confidence interval (z = 1.96) of a proportion successes / n, by Wilson's score method.

    Unlike p +- z sqrt(p(1-p)/n), it stays inside [0, 1] and is not of width zero at 0 or n successes:
    0 right answers out of 50 still allows a true accuracy of up to 7 %.
    """
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes} of {n}")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def pass_at_k(n: int, correct: int, k: int) -> float:
    """The chance that at least one of k replies is right, estimated from n >= k samples of which `correct`
    were right: 1 - C(n - correct, k) / C(n, k), the unbiased estimator of Chen et al. (2021), i.e. k
    replies drawn from the n without replacement."""
    if not 0 <= correct <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= correct <= n and 1 <= k <= n, got n={n}, correct={correct}, k={k}")
    if n - correct < k:
        return 1.0
    return 1.0 - math.comb(n - correct, k) / math.comb(n, k)


def report(labels, predictions, positive: int = 1, name: str = "") -> str:
    """One line: accuracy, precision, recall, F1 (in %), and the number of examples."""
    s = scores(labels, predictions, positive)
    head = f"{name}: " if name else ""
    return (f"{head}accuracy {100 * s.accuracy:.2f}% | precision {100 * s.precision:.2f}% | "
            f"recall {100 * s.recall:.2f}% | F1 {s.f1:.4f} | {len(labels):,} examples")


def plot_confusion_matrix(matrix, class_names: Sequence[str] | None = None, ax=None, title: str = "",
                          cmap: str = "Blues"):
    """Draw a confusion matrix as a heat map with the count (and row %) written in every cell.

    Rows are true labels, columns predictions, as in `confusion_matrix`. Returns the axes.
    """
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    if ax is None:
        _, ax = plt.subplots(figsize=(1.6 * n + 1.6, 1.4 * n + 1.2))
    row_share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(row_share, cmap=cmap, vmin=0, vmax=1)  # colour by share of the row, so rare classes show too
    for t in range(n):
        for p in range(n):
            dark = row_share[t, p] > 0.5
            ax.text(p, t, f"{matrix[t, p]:,}\n({100 * row_share[t, p]:.1f}%)", ha="center", va="center",
                    color="white" if dark else "black", fontsize=11)
    ax.set_xticks(range(n), names)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    return ax
