"""Calibration: of the answers a model gives with confidence p, is a share p right?

    ECE = sum_m |B_m| / n * | acc(B_m) - conf(B_m) |

with the n predictions sorted by confidence into M equal-width bins B_m over [0, 1] (Guo et al., 2017,
use M = 15): acc is the share right in the bin, conf its mean confidence. The reliability diagram draws
acc against conf; bars below the diagonal mean the model is overconfident there.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Reliability(NamedTuple):
    counts: torch.Tensor  # (M,) predictions in each bin
    confidence: torch.Tensor  # (M,) mean confidence in each bin (nan where empty)
    accuracy: torch.Tensor  # (M,) share right in each bin (nan where empty)
    ece: float


def reliability(confidence, correct, bins: int = 15) -> Reliability:
    """Bin predictions by confidence (equal-width bins; a confidence of exactly 1 goes in the last bin)."""
    confidence = torch.as_tensor(confidence, dtype=torch.float64).flatten()
    correct = torch.as_tensor(correct, dtype=torch.float64).flatten()
    if confidence.numel() == 0 or confidence.shape != correct.shape:
        raise ValueError(f"give one confidence per prediction and at least one; got {confidence.numel()} "
                         f"confidences and {correct.numel()} right/wrong flags")
    if ((confidence < 0) | (confidence > 1)).any():
        raise ValueError("confidences are probabilities, in [0, 1]: pass softmax outputs, not logits")
    which = (confidence * bins).long().clamp(max=bins - 1)
    counts = torch.bincount(which, minlength=bins).double()
    conf_sum = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, confidence)
    right_sum = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, correct)
    mean_conf, mean_acc = conf_sum / counts, right_sum / counts  # nan in empty bins
    used = counts > 0
    ece = ((counts[used] / counts.sum()) * (mean_acc[used] - mean_conf[used]).abs()).sum().item()
    return Reliability(counts.long(), mean_conf, mean_acc, ece)


def expected_calibration_error(confidence, correct, bins: int = 15) -> float:
    return reliability(confidence, correct, bins).ece
