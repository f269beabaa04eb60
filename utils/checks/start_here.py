"""Checks for the warm-up exercises of notebook 00."""

from __future__ import annotations

import math
from collections import Counter

import torch
import torch.nn.functional as F

from .core import Case, Mistake, run_cases
from .hints import exercise
from .rules import NoTorchCall

__all__ = ["check_count_characters", "check_softmax", "check_cross_entropy"]


def _count_characters(text: str) -> dict[str, int]:
    return dict(Counter(text))


@exercise("0.1", "Count characters", "easy", 5, hints=(
    "A dict can hold a running count per character: look at each character of the text once and "
    "add 1 to its count.",
    "A character seen for the first time has no entry yet: start it at 0 before adding 1 "
    "(dict.get(key, default) returns the default when the key is missing).",
    "Loop `for ch in text:` and update `counts[ch]`; return the dict. An empty text gives {}.",
))
def check_count_characters(count_characters) -> None:
    """Exercise 0.1: count how often each character occurs in a string."""
    run_cases(
        "count_characters",
        count_characters,
        _count_characters,
        [
            Case(("banana",)),
            Case(("To be, or not to be",), hint="Spaces and punctuation are characters too; 'T' and 't' differ."),
            Case(("",), hint="An empty text has no characters: the answer is an empty dict."),
            Case(("学而时习之",), hint="Python strings are Unicode: one Chinese character is one character."),
        ],
        hint="Every character of the text needs its own entry, counted once per occurrence.",
        exercise="0.1",
        mistakes=[
            Mistake(lambda text: dict(Counter(text.lower())), "upper and lower case were merged: 'T' and 't' "
                    "are different characters, each with its own count."),
            Mistake(lambda text: dict(Counter(text.replace(" ", ""))), "spaces were left out: a space is a "
                    "character like any other."),
            Mistake(lambda text: dict.fromkeys(text, 1), "every character got the count 1: add 1 each time it "
                    "occurs, instead of setting it to 1."),
        ],
    )


_NO_SOFTMAX = NoTorchCall(
    (torch.softmax, F.softmax, torch.Tensor.softmax, torch.log_softmax, F.log_softmax, torch.Tensor.log_softmax,
     torch.special.softmax),
    "build softmax yourself from torch.exp and .sum().",
)


_OVERFLOW = ("an exp overflowed to inf, and inf / inf is NaN. Without a shift, or with a shift by the smallest "
             "score, the mean or the first score, some exponent can stay far above 0: the shift must make the "
             "largest exponent exactly 0.")


def _softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, dim=-1)


@exercise("0.2", "Softmax", "easy", 10, hints=(
    "Softmax has two steps: make every score positive with exp, then divide by the total so that "
    "the results add up to 1.",
    "exp(1000) is too big for a float and becomes inf, and inf / inf is NaN. Softmax does not change "
    "when the same number is subtracted from every score: pick the number that keeps every exp at most 1.",
    "Subtract the largest score (x.max()) from every score before exp; then divide the exps by their sum.",
))
def check_softmax(softmax) -> None:
    """Exercise 0.2: softmax of a 1-D tensor, stable for large inputs."""
    run_cases(
        "softmax",
        softmax,
        _softmax,
        [
            Case((torch.tensor([1.0, 2.0, 3.0]),)),
            Case((torch.tensor([0.0, 0.0, 0.0, 0.0]),), hint="Equal scores must give equal probabilities."),
            Case((torch.tensor([-3.0, 5.0]),)),
            Case(
                (torch.tensor([1000.0, 1001.0, 1002.0]),),
                hint="exp(1000) overflows to inf and inf / inf is NaN: the scores must be shifted before exp, "
                "and softmax(x) == softmax(x - c) for any constant c.",
            ),
            Case(
                (torch.tensor([0.0, 100.0]),),
                hint="exp(100) overflows a float32 (its limit is about exp(88.7)). Which shift keeps every "
                "exponent at 0 or below?",
            ),
            Case(
                (torch.tensor([-1000.0, 0.0, 1000.0]),),
                hint="After the shift, the largest exponent must be 0: any other choice of constant overflows "
                "on some input.",
            ),
        ],
        hint="The probabilities must be positive and add up to 1.",
        exercise="0.2",
        rules=[_NO_SOFTMAX],
        mistakes=[
            Mistake(lambda x: torch.exp(x) / torch.exp(x).sum(), _OVERFLOW),
            Mistake(lambda x: torch.exp(x - x.min()) / torch.exp(x - x.min()).sum(), _OVERFLOW),
            Mistake(lambda x: torch.exp(x - x.mean()) / torch.exp(x - x.mean()).sum(), _OVERFLOW),
            Mistake(lambda x: torch.exp(x - x[0]) / torch.exp(x - x[0]).sum(), _OVERFLOW),
            Mistake(lambda x: torch.exp(x) / torch.exp(x).max(), "dividing by the largest exp does not make the "
                    "probabilities add up to 1: divide by the sum."),
            Mistake(lambda x: x / x.sum(), "the scores were divided by their sum without exp: negative scores "
                    "would give negative 'probabilities'."),
        ],
    )


def _cross_entropy(logits: torch.Tensor, target: int) -> float:
    return F.cross_entropy(logits[None], torch.tensor([target])).item()


@exercise("0.3", "Cross-entropy from scores", "medium", 15, hints=(
    "The loss is minus the log of the probability the model gives to the right answer: "
    "-log softmax(logits)[target]. A probability near 0 gives a large loss; near 1, a loss near 0.",
    "Taking the log of a softmax fails for large scores: a probability of exp(-1000) rounds to 0 and "
    "log(0) is -inf. Write log softmax(x)_t as x_t - log(sum_j exp(x_j)) and compute the log of the sum "
    "stably, with the same shift as in exercise 0.2.",
    "With m = logits.max(): log(sum_j exp(x_j)) = m + log(sum_j exp(x_j - m)). The loss is that minus "
    "logits[target], returned as a Python float (.item()).",
))
def check_cross_entropy(cross_entropy) -> None:
    """Exercise 0.3: -log softmax(logits)[target], stable for large scores, returned as a float."""

    def compare(expected, got):
        if isinstance(got, torch.Tensor):
            return "expected a Python float, got a tensor: return the number with .item()"
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return f"expected a Python float, got {type(got).__name__}"
        if math.isnan(got) or math.isinf(got):
            return None if got == expected else f"the result is {got}"
        return None if math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-4) else "the numbers differ"

    run_cases(
        "cross_entropy",
        cross_entropy,
        _cross_entropy,
        [
            Case((torch.tensor([2.0, 1.0, 0.1]), 0)),
            Case((torch.tensor([0.0, 0.0, 0.0, 0.0]), 3), hint="Four equal scores give each answer 1/4: the loss "
                 "is log 4 = 1.386 whichever answer is right."),
            Case((torch.tensor([2.0, 1.0, 0.1]), 2), hint="The loss is about the probability of the target "
                 "(here the last, least likely answer), not of the most likely one."),
            Case((torch.tensor([1000.0, 0.0]), 1), hint="The right answer has probability exp(-1000), which "
                 "rounds to 0: the loss is 1000, but the log of a rounded 0 is -inf."),
            Case((torch.tensor([1000.0, 1001.0, 1002.0]), 2)),
        ],
        hint="The loss is minus the log of the target's probability under softmax.",
        compare=compare,
        exercise="0.3",
        rules=[NoTorchCall(
            (torch.softmax, F.softmax, torch.Tensor.softmax, torch.log_softmax, F.log_softmax,
             torch.Tensor.log_softmax, F.cross_entropy, F.nll_loss, torch.logsumexp, torch.Tensor.logsumexp,
             torch.special.log_softmax, torch.special.softmax, torch.special.logsumexp),
            "compute it from torch.exp, torch.log and .sum(), as in exercise 0.2.",
        )],
        mistakes=[
            Mistake(lambda x, t: -torch.log(_softmax(x)[t]).item(),
                    "the log of a softmax: a tiny probability rounds to 0 and its log is -inf. Work in logs "
                    "throughout: log softmax(x)_t = x_t - log(sum_j exp(x_j))."),
            Mistake(lambda x, t: torch.log(_softmax(x)[t]).item(),
                    "the sign is flipped: the loss is minus the log-probability, a number >= 0."),
            Mistake(lambda x, t: (torch.log(torch.exp(x - x.max()).sum()) - x[t]).item(),
                    "the shift was subtracted but not added back: log(sum_j exp(x_j)) = m + log(sum_j exp(x_j - m))."),
            Mistake(lambda x, t: torch.logsumexp(x, 0).item(),
                    "the loss must use the target's score: it is log(sum_j exp(x_j)) minus the target's score."),
        ],
    )
