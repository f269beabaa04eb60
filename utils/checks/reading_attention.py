"""Checks for the exercises of lesson 09 (reading attention: scoring heads, and what pictures miss).

The references are written out here with plain loops and numpy, independently of utils.head_scores
and of the solution notebook.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .core import Case, difference, run_cases, seeded_randn

__all__ = ["check_previous_token_score", "check_pattern_correlation", "check_norm_shares"]


def _softmax_rows(scores: torch.Tensor) -> torch.Tensor:
    return torch.softmax(scores.double(), dim=-1)


def _random_map(n: int, seed: int, causal: bool = False, sharpness: float = 2.0) -> torch.Tensor:
    """A random (n, n) attention map: rows are softmaxes of random scores (masked above the diagonal)."""
    scores = sharpness * seeded_randn(n, n, seed=seed, dtype=torch.float64)
    if causal:
        scores = scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
    return _softmax_rows(scores)


def _shifted_map(n: int, offset: int, strength: float = 0.9) -> torch.Tensor:
    """Each row puts `strength` on token i + offset (where it exists) and spreads the rest evenly."""
    w = torch.full((n, n), (1 - strength) / (n - 1), dtype=torch.float64)
    for i in range(n):
        j = i + offset
        if 0 <= j < n:
            w[i, j] = strength
        else:
            w[i] = 1.0 / n
    return w


def _as_number(value):
    """A Python float from a float, an int, a numpy number or a one-element tensor; None otherwise."""
    if isinstance(value, torch.Tensor):
        return float(value.item()) if value.numel() == 1 else None
    if isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, bool):
        return float(value)
    return None


def _compare_number(expected: float, got) -> str | None:
    number = _as_number(got)
    if number is None:
        shape = f" of shape {tuple(got.shape)}" if isinstance(got, torch.Tensor) else ""
        return f"expected one number (a float), got {type(got).__name__}{shape}"
    if math.isnan(number):
        return "the result is NaN"
    return None if math.isclose(number, expected, rel_tol=1e-5, abs_tol=1e-6) else "the numbers differ"


# --- Exercise 9.1 ------------------------------------------------------------------------------


def _previous_token_reference(weights: torch.Tensor) -> float:
    n = weights.shape[0]
    return sum(float(weights[i, i - 1]) for i in range(1, n)) / (n - 1)


def check_previous_token_score(previous_token_score) -> None:
    """Exercise 9.1: the mean of w[i, i - 1] over the tokens i = 1 .. n - 1 of one head's (n, n) map."""
    exact = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    run_cases(
        "previous_token_score",
        previous_token_score,
        _previous_token_reference,
        [
            Case((exact,), label="a 3-token head that always looks at the previous token (token 0 at itself)",
                 hint="Every token that has a previous token puts all its weight on it, so the score is 1.0. Token "
                 "0 has no previous token: average over the n - 1 tokens 1 .. n - 1, not over all n rows "
                 "(that gives 2/3 here). Row i is the token that looks, so its previous token is w[i, i - 1]."),
            Case((_shifted_map(5, +1),), label="a 5-token head that looks at the NEXT token (0.9 on it)",
                 hint="This head looks forwards, so its previous-token score is small. Row = the token "
                 "that looks, column = the token looked at: the previous token of row i is column i - 1, "
                 "w[i, i - 1], just below the diagonal (torch.diagonal(w, offset=-1)). w[i - 1, i] is the "
                 "next-token weight."),
            Case((_shifted_map(5, 0),), label="a 5-token head that looks at ITSELF (0.9 on the diagonal)",
                 hint="The main diagonal w[i, i] is the weight on the token itself, not on the previous one."),
            Case((_random_map(6, seed=1, causal=True),), label="a random causal 6-token map",
                 hint="Take the mean of the n - 1 weights w[1, 0], w[2, 1], ..., w[n-1, n-2]: the mean, not the sum, "
                 "so that a perfect previous-token head scores 1 whatever the length."),
            Case((_random_map(9, seed=2),), label="a random bidirectional 9-token map",
                 hint="Works for any n: no fixed sizes. Return one number (a float, e.g. with .item())."),
        ],
        hint="score = mean of w[i, i - 1] for i = 1 .. n - 1 (torch.diagonal(w, offset=-1).mean()).",
        compare=_compare_number,
    )


# --- Exercise 9.2 ------------------------------------------------------------------------------


def _correlation_reference(a: torch.Tensor, b: torch.Tensor) -> float:
    x = a.detach().cpu().double().numpy().ravel()
    y = b.detach().cpu().double().numpy().ravel()
    return float(np.corrcoef(x, y)[0, 1])


def check_pattern_correlation(pattern_correlation) -> None:
    """Exercise 9.2: Pearson correlation of two (n, n) attention maps, all n * n entries flattened."""
    previous, following = _shifted_map(6, -1), _shifted_map(6, +1)
    a, b = _random_map(7, seed=3), _random_map(7, seed=4)
    c = _random_map(5, seed=5, causal=True)
    run_cases(
        "pattern_correlation",
        pattern_correlation,
        _correlation_reference,
        [
            Case((previous, previous.clone()), label="a previous-token map compared with itself",
                 hint="The same pattern correlates perfectly with itself: 1.0 (up to rounding)."),
            Case((a, b), label="two unrelated random 7-token maps",
                 hint="Centre each map first (subtract its own mean over all n * n entries), then divide the sum "
                 "of products by the product of the norms. Without centring you get the cosine similarity, "
                 "which is high for ANY two attention maps because all their entries are positive."),
            Case((previous, following), label="previous-token map against next-token map",
                 hint="Opposite patterns give a negative correlation: do not take the absolute value or clamp."),
            Case((c, c.T.contiguous()), label="a causal 5-token map against its transpose",
                 hint="Correlate the two maps as two long vectors of n * n numbers (flatten them). "
                 "torch.corrcoef on a 2-d map correlates its rows with each other, and a mean of per-row "
                 "correlations is a different number."),
        ],
        hint="Flatten both maps, subtract each one's mean, r = sum(x * y) / (||x|| * ||y||); return a float.",
        compare=_compare_number,
    )


# --- Exercise 9.3 ------------------------------------------------------------------------------


def _norm_shares_reference(weights: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    n = weights.shape[0]
    lengths = [math.sqrt(sum(float(x) ** 2 for x in values[j])) for j in range(n)]
    out = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        moved = [float(weights[i, j]) * lengths[j] for j in range(n)]
        total = sum(moved)
        for j in range(n):
            out[i, j] = moved[j] / total
    return out


def _vectors(n: int, d: int, seed: int, lengths=None) -> torch.Tensor:
    v = seeded_randn(n, d, seed=seed, dtype=torch.float64)
    if lengths is not None:
        v = v / v.norm(dim=-1, keepdim=True) * torch.tensor(lengths, dtype=torch.float64)[:, None]
    return v


def check_norm_shares(norm_shares) -> None:
    """Exercise 9.3: shares of ||alpha_ij f(x_j)|| = alpha_ij ||f(x_j)||, each row divided by its sum."""
    three = torch.tensor([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.5, 0.25, 0.25]], dtype=torch.float64)
    run_cases(
        "norm_shares",
        norm_shares,
        _norm_shares_reference,
        [
            Case((three, _vectors(3, 4, seed=6, lengths=[2.0, 2.0, 2.0])),
                 label="3 tokens whose value vectors all have length 2",
                 hint="When every vector has the same length, the norm changes nothing: the shares are the "
                 "weights themselves. Each row must sum to 1: divide by the row's total. values is (n, d), one row per "
                 "token: take the norm of each row (dim=-1), which gives n lengths."),
            Case((three, _vectors(3, 4, seed=7, lengths=[0.1, 1.0, 3.0])),
                 label="token 0 (like [CLS]) gets most weight but has a tiny vector (lengths 0.1, 1, 3)",
                 hint="Use the length ||f(x_j)|| (torch.linalg.vector_norm over the last dim), not its square. "
                 "Scale COLUMN j (the token looked at) by token j's length: weights * lengths[None, :], then "
                 "divide each ROW by its sum. Here token 0 keeps about 17% of row 0, not 80%."),
            Case((_random_map(4, seed=8), _vectors(4, 4, seed=9)), label="4 tokens with 4-dim vectors (n == d)",
                 hint="The vectors are (n, d): one row per token. Take the norm of each row (dim=-1); with n == d "
                 "a norm over dim 0 has the right shape but the wrong numbers."),
            Case((_random_map(6, seed=10, causal=True), _vectors(6, 3, seed=11)), label="a causal 6-token map, d = 3",
                 hint="Zero weights stay zero. Return an (n, n) tensor whose rows each sum to 1."),
        ],
        hint="moved = weights * lengths (lengths[j] = ||values[j]||, one per column); return moved / moved.sum(-1, "
        "keepdim=True).",
        compare=lambda expected, got: difference(expected, got, rtol=1e-5, atol=1e-6),
    )
