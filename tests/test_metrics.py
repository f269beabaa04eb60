"""Tests for utils/metrics.py: small cases checked by hand, edge cases, and agreement with scikit-learn."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
from sklearn import metrics as sk

from utils import metrics

matplotlib.use("Agg")


def test_confusion_matrix_by_hand():
    labels = [0, 0, 0, 1, 1]
    predictions = [0, 1, 0, 1, 0]
    # true 0: predicted 0 twice, 1 once; true 1: predicted 0 once, 1 once
    assert metrics.confusion_matrix(labels, predictions).tolist() == [[2, 1], [1, 1]]


def test_scores_by_hand():
    #            pred 0  pred 1
    # true 0       50      10      TN = 50, FP = 10
    # true 1        5      35      FN = 5,  TP = 35
    s = metrics.scores_from_confusion([[50, 10], [5, 35]])
    assert s.accuracy == pytest.approx(85 / 100)
    assert s.precision == pytest.approx(35 / 45)
    assert s.recall == pytest.approx(35 / 40)
    p, r = 35 / 45, 35 / 40
    assert s.f1 == pytest.approx(2 * p * r / (p + r))


def test_positive_class_can_be_chosen():
    s = metrics.scores_from_confusion([[50, 10], [5, 35]], positive=0)
    assert s.precision == pytest.approx(50 / 55)
    assert s.recall == pytest.approx(50 / 60)


def test_no_positive_predictions_give_zero_not_nan():
    s = metrics.scores([0, 1, 1, 0], [0, 0, 0, 0])
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)
    assert s.accuracy == 0.5


def test_no_positive_labels_give_zero_not_nan():
    s = metrics.scores([0, 0, 0], [0, 1, 0])
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)
    assert not any(math.isnan(v) for v in s)


def test_perfect_and_empty():
    assert metrics.scores([1, 0, 1], [1, 0, 1]) == (1.0, 1.0, 1.0, 1.0)
    assert metrics.accuracy([], []) == 0.0
    assert metrics.confusion_matrix([], []).tolist() == [[0, 0], [0, 0]]


def test_all_one_class_still_gives_a_two_by_two_matrix():
    assert metrics.confusion_matrix([0, 0], [0, 0]).tolist() == [[2, 0], [0, 0]]
    assert metrics.confusion_matrix([1, 1], [1, 1]).tolist() == [[0, 0], [0, 2]]


def test_errors_are_clear():
    with pytest.raises(ValueError, match="pair up"):
        metrics.confusion_matrix([0, 1], [0])
    with pytest.raises(ValueError, match="square"):
        metrics.scores_from_confusion([[1, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=200)
    predictions = np.where(rng.random(200) < 0.8, labels, 1 - labels)
    expected = sk.confusion_matrix(labels, predictions)
    np.testing.assert_array_equal(metrics.confusion_matrix(labels, predictions), expected)
    s = metrics.scores(labels, predictions)
    assert s.accuracy == pytest.approx(sk.accuracy_score(labels, predictions))
    assert s.precision == pytest.approx(sk.precision_score(labels, predictions, zero_division=0))
    assert s.recall == pytest.approx(sk.recall_score(labels, predictions, zero_division=0))
    assert s.f1 == pytest.approx(sk.f1_score(labels, predictions, zero_division=0))
    assert metrics.f1(labels, predictions, positive=0) == pytest.approx(
        sk.f1_score(labels, predictions, pos_label=0, zero_division=0))


def test_three_classes_agree_with_sklearn():
    rng = np.random.default_rng(0)
    labels, predictions = rng.integers(0, 3, 100), rng.integers(0, 3, 100)
    expected = sk.confusion_matrix(labels, predictions)
    np.testing.assert_array_equal(metrics.confusion_matrix(labels, predictions), expected)
    for c in range(3):
        expected = sk.f1_score(labels, predictions, labels=[c], average=None, zero_division=0)[0]
        assert metrics.f1(labels, predictions, positive=c) == pytest.approx(expected)


def test_macro_scores_by_hand_and_against_sklearn():
    labels, predictions = [0, 1, 2, 2], [0, 2, 2, 2]
    # class 0: P = R = F1 = 1; class 1: never predicted, P = R = F1 = 0; class 2: P = 2/3, R = 1, F1 = 0.8
    got = metrics.macro_scores(labels, predictions, 3)
    assert got == pytest.approx((5 / 9, 2 / 3, 0.6))
    rng = np.random.default_rng(0)
    for k in (2, 3, 5):
        labels, predictions = rng.integers(0, k, 60), rng.integers(0, k - 1, 60)  # class k - 1 never predicted
        theirs = sk.precision_recall_fscore_support(labels, predictions, average="macro", labels=list(range(k)),
                                                    zero_division=0)[:3]
        assert metrics.macro_scores(labels, predictions, k) == pytest.approx(theirs)


def test_a_class_that_never_occurs_still_counts_in_the_macro_average():
    assert metrics.macro_scores([0, 1], [0, 1], 3) == pytest.approx((2 / 3, 2 / 3, 2 / 3))


def test_report_and_plot():
    line = metrics.report([0, 1, 1, 0], [0, 1, 0, 0], name="toy")
    assert line.startswith("toy: accuracy 75.00%") and "F1 0.6667" in line
    ax = metrics.plot_confusion_matrix([[3, 1], [0, 4]], ["ham", "spam"], title="t")
    texts = [t.get_text() for t in ax.texts]
    assert texts[0].startswith("3") and len(texts) == 4
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ham", "spam"]
