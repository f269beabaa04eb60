"""Checks for the exercises of lesson 02 (embeddings and positions).

The references come from torch and utils.embeddings, never from the solution notebook.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..embeddings import sinusoidal_positions
from .core import Case, run_cases, seeded_randn

__all__ = ["check_embed_one_hot", "check_sinusoidal", "check_add_positions"]


def check_embed_one_hot(embed_one_hot) -> None:
    """Exercise 2.1: an embedding lookup written as one-hot vectors times the table."""
    run_cases(
        "embed_one_hot",
        embed_one_hot,
        F.embedding,  # the lookup itself: row ids[...] of the table
        [
            Case(
                (torch.tensor([2, 0, 1]), torch.arange(12.0).reshape(3, 4)),
                hint="Row t of the answer is row ids[t] of the table. F.one_hot(ids, num_classes=...) "
                "gives shape (n, vocab_size); times the (vocab_size, d) table gives (n, d). F.one_hot returns "
                "integers: convert with .to(table.dtype) before the product.",
            ),
            Case(
                (torch.tensor([4, 4, 1]), seeded_randn(6, 3, seed=1)),
                hint="num_classes must be the table's number of rows (table.shape[0]), not ids.max() + 1: "
                "the vocabulary has tokens that this text does not use.",
            ),
            Case(
                (torch.tensor([[0, 3], [3, 2]]), seeded_randn(5, 4, seed=2)),
                hint="A batch of ids (batch, n) must give (batch, n, d): F.one_hot adds the vocab dim last, "
                "and @ multiplies over it whatever dims come before.",
            ),
            Case(
                (torch.tensor([1]), seeded_randn(2, 5, seed=3).double()),
                hint="F.one_hot returns integers (torch.long); convert it to the table's dtype "
                "(.to(table.dtype)) before the matrix product.",
            ),
        ],
        hint="one_hot = F.one_hot(ids, num_classes=table.shape[0]).to(table.dtype); return one_hot @ table.",
    )


def check_sinusoidal(sinusoidal) -> None:
    """Exercise 2.2: the sinusoidal position table (n, d)."""
    run_cases(
        "sinusoidal",
        sinusoidal,
        sinusoidal_positions,
        [
            Case(
                (1, 2),
                hint="Position 0 is [sin 0, cos 0, sin 0, cos 0, ...] = [0, 1, 0, 1, ...].",
            ),
            Case(
                (5, 2),
                hint="With d = 2 there is one pair, of frequency 1: row t is [sin t, cos t].",
            ),
            Case(
                (4, 8),
                hint="Interleave: even columns 0, 2, 4, ... hold sines, odd columns 1, 3, 5, ... hold cosines "
                "(table[:, 0::2] = ..., table[:, 1::2] = ...), not all sines then all cosines. Columns 2i "
                "and 2i+1 share the frequency 1 / 10000 ** (2i / d), where 2i = 0, 2, 4, ... (not i / d).",
            ),
            Case(
                (50, 16),
                hint="Check the exponent: the frequency of pair i is 1 / 10000 ** (2 * i / d) with i = 0 .. d/2-1.",
            ),
            Case((3, 6)),
        ],
        hint="angle[t, i] = t / 10000 ** (2 * i / d); column 2i is sin(angle), column 2i+1 is cos(angle).",
        atol=1e-5,
    )


def _add_positions(x: torch.Tensor, position_table: torch.Tensor) -> torch.Tensor:
    return x + position_table[: x.shape[-2]]


def check_add_positions(add_positions) -> None:
    """Exercise 2.3: add the first n rows of a position table to token vectors (batch, n, d)."""
    run_cases(
        "add_positions",
        add_positions,
        _add_positions,
        [
            Case(
                (torch.zeros(2, 3, 4), seeded_randn(5, 4, seed=4)),
                hint="A sequence of n = 3 tokens needs the position vectors of positions 0, 1, 2: the first "
                "3 rows of the table (it has context_length = 5 rows).",
            ),
            Case(
                (seeded_randn(6, 4, seed=5).reshape(3, 2, 4), seeded_randn(6, 4, seed=6)),
                hint="Here batch = 3 and n = 2: take as many table rows as the sequence is long (x.shape[-2]), "
                "not as many as there are sequences.",
            ),
            Case(
                (seeded_randn(10, 2, seed=7).reshape(2, 5, 2), seeded_randn(5, 2, seed=8)),
                hint="A sequence as long as the table (n = context_length) uses every row.",
            ),
            Case(
                (seeded_randn(3, 4, seed=9), seeded_randn(6, 4, seed=10)),
                hint="A single sequence (n, d) without a batch dim: the length is x.shape[-2] "
                "(x.shape[1] would be d here).",
            ),
        ],
        hint="return x + position_table[:n] with n = x.shape[-2]; broadcasting adds the same (n, d) "
        "position vectors to every sequence of the batch.",
    )
