"""WEAT: an association test on embeddings (Caliskan, Bryson and Narayanan, 2017), run on sentence vectors
as SEAT does (May et al., 2019).

    s(w, A, B) = mean_a cos(w, a) - mean_b cos(w, b)            how much nearer w is to A than to B
    d = (mean_{x in X} s(x, A, B) - mean_{y in Y} s(y, A, B)) / std_{w in X u Y} s(w, A, B)

d is the effect size (|d| <= 2 with the population standard deviation used here). The p-value is a
permutation test: the share of equal-size re-splits (X_i, Y_i) of X u Y whose sum of s over X_i minus
that over Y_i is at least the observed one.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F


def association(w: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """s(w, A, B) for each row of w: (n, d), a: (n_a, d), b: (n_b, d) -> (n,)."""
    w, a, b = (F.normalize(t.double(), dim=-1) for t in (w, a, b))
    return (w @ a.T).mean(1) - (w @ b.T).mean(1)


def effect_size(x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> float:
    """WEAT's d for target vectors x, y and attribute vectors a, b (rows are vectors)."""
    _check_sets(x, y, a, b)
    sx, sy = association(x, a, b), association(y, a, b)
    return ((sx.mean() - sy.mean()) / torch.cat([sx, sy]).std(unbiased=False)).item()


def p_value(x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, b: torch.Tensor, samples: int = 20_000,
            seed: int = 0) -> float:
    """One-sided permutation p-value: exact over all splits when there are at most `samples`, else sampled."""
    _check_sets(x, y, a, b)
    s = torch.cat([association(x, a, b), association(y, a, b)])
    n, k = len(s), len(x)
    observed = s[:k].sum() - s[k:].sum()
    total = s.sum()
    if math.comb(n, k) <= samples:
        splits = torch.tensor(list(itertools.combinations(range(n), k)))
    else:
        generator = torch.Generator().manual_seed(seed)
        splits = torch.stack([torch.randperm(n, generator=generator)[:k] for _ in range(samples)])
        stats = 2 * s[splits].sum(1) - total
        # the observed split counts as one of the samples, so a sampled p is never 0
        return ((stats >= observed - 1e-12).sum().item() + 1) / (samples + 1)
    stats = 2 * s[splits].sum(1) - total  # sum over X_i minus sum over the rest
    return (stats >= observed - 1e-12).double().mean().item()


def _check_sets(x, y, a, b) -> None:
    for name, t in dict(x=x, y=y, a=a, b=b).items():
        if not isinstance(t, torch.Tensor) or t.dim() != 2 or len(t) == 0:
            raise ValueError(f"{name} must be a non-empty (n, d) tensor of vectors, got {getattr(t, 'shape', t)}")
    if len({t.shape[1] for t in (x, y, a, b)}) != 1:
        raise ValueError("all four sets must hold vectors of the same width")
    if len(x) != len(y):
        raise ValueError(f"the target sets must be the same size (WEAT's test splits them in halves); "
                         f"got {len(x)} and {len(y)}")
