"""Checks for the warm-up exercises of notebook 00."""

from __future__ import annotations

from collections import Counter

import torch

from .core import Case, run_cases


def _count_characters(text: str) -> dict[str, int]:
    return dict(Counter(text))


def check_count_characters(count_characters) -> None:
    """Exercise 0.1: count how often each character occurs in a string."""
    run_cases(
        "count_characters",
        count_characters,
        _count_characters,
        [
            Case(("banana",)),
            Case(("To be, or not to be",), hint="Spaces and punctuation are characters too; 'T' and 't' differ."),
            Case(("",), hint="An empty text has no characters: return an empty dict."),
            Case(("学而时习之",), hint="Python strings are Unicode: one Chinese character is one character."),
        ],
        hint="Loop over the characters and add 1 to counts[ch], starting each new character at 0.",
    )


def _softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, dim=-1)


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
                hint="exp(1000) overflows to inf and inf/inf is NaN. Subtract x.max() before exp: "
                "softmax(x) == softmax(x - c) for any constant c.",
            ),
        ],
        hint="softmax(x)_i = exp(x_i) / sum_j exp(x_j); the result should sum to 1.",
    )
