"""Scaling laws from a handful of runs: L(N) = E + A N^(-alpha), and along one compute budget
L(N) = E + A N^-alpha + B D^-beta with D = C / 6N (`fit_isoflop`).

With E fixed, log(L - E) = log A - alpha log N is a straight line, fitted by least squares. With E free,
`fit_power_law` searches E on a grid below the smallest loss and keeps the line fit with the least squared
error in L itself. A few points fit almost as well with a larger E and a larger alpha as with a smaller
pair, so report the range `bootstrap_alpha` gives, not the exponent alone.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class PowerLaw(NamedTuple):
    E: float
    A: float
    alpha: float

    def __call__(self, n):
        return self.E + self.A * np.asarray(n, dtype=float) ** (-self.alpha)


def _line_fit(n, loss, e) -> PowerLaw:
    slope, intercept = np.polyfit(np.log(n), np.log(loss - e), 1)
    return PowerLaw(float(e), float(np.exp(intercept)), float(-slope))


def fit_power_law(n, loss, E: float | None = None, grid: int = 400) -> PowerLaw:
    """Fit L = E + A N^-alpha to sizes n and losses; E given, or chosen on a grid in [0, min(loss))."""
    n, loss = np.asarray(n, dtype=float), np.asarray(loss, dtype=float)
    if n.shape != loss.shape or n.ndim != 1 or len(n) < 2 or (n <= 0).any():
        raise ValueError(f"give at least two positive sizes and a loss for each; got {n.shape} and {loss.shape}")
    if E is not None:
        if not E < loss.min():
            raise ValueError(f"E = {E} must be below every loss (the smallest is {loss.min():.4f})")
        return _line_fit(n, loss, E)
    if len(n) < 3:
        raise ValueError("with E free there are three parameters: give at least three sizes")
    candidates = [_line_fit(n, loss, e) for e in np.linspace(0, loss.min(), grid, endpoint=False)]
    return min(candidates, key=lambda f: float(((f(n) - loss) ** 2).sum()))


def bootstrap_alpha(n, loss, E: float | None = None, resamples: int = 200, seed: int = 0) -> tuple[float, float]:
    """2.5th and 97.5th percentiles of alpha over fits to the fit's values plus resampled residuals."""
    n, loss = np.asarray(n, dtype=float), np.asarray(loss, dtype=float)
    fit = fit_power_law(n, loss, E)
    residuals = loss - fit(n)
    rng = np.random.default_rng(seed)
    alphas = []
    for _ in range(resamples):
        fake = fit(n) + rng.choice(residuals, len(n), replace=True)
        if E is not None and fake.min() <= E:
            continue
        alphas.append(fit_power_law(n, fake, E, grid=100).alpha)
    return float(np.percentile(alphas, 2.5)), float(np.percentile(alphas, 97.5))


class IsoFlopFit(NamedTuple):
    """L(N) = E + A N^-alpha + B D^-beta along one compute budget C, where D = C / (6N) (Hoffmann et al., 2022)."""
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    flops: float

    def __call__(self, n):
        n = np.asarray(n, dtype=float)
        return self.E + self.A * n ** (-self.alpha) + self.B * (self.flops / (6 * n)) ** (-self.beta)

    def optimal_size(self) -> float:
        """The N where dL/dN = 0: alpha A N^-alpha = beta B (6N / C)^beta, so
        N_opt = (alpha A / (beta B))^(1 / (alpha + beta)) (C / 6)^(beta / (alpha + beta))."""
        if self.A <= 0 or self.B <= 0:
            return float("nan")  # no minimum: one of the two terms does not fall
        g = (self.alpha * self.A / (self.beta * self.B)) ** (1 / (self.alpha + self.beta))
        return g * (self.flops / 6) ** (self.beta / (self.alpha + self.beta))


def fit_isoflop(n, loss, flops: float, alpha: float = 0.34, beta: float = 0.28) -> IsoFlopFit:
    """Fit E, A and B of L = E + A N^-alpha + B D^-beta (D = flops / 6N) by least squares, with the exponents
    fixed (by default Hoffmann et al.'s fitted 0.34 and 0.28): with them fixed the fit is linear in E, A, B."""
    n, loss = np.asarray(n, dtype=float), np.asarray(loss, dtype=float)
    if n.shape != loss.shape or n.ndim != 1 or len(n) < 3 or (n <= 0).any():
        raise ValueError(f"give at least three positive sizes and a loss for each; got {n.shape} and {loss.shape}")
    design = np.stack([np.ones_like(n), n ** (-alpha), (flops / (6 * n)) ** (-beta)], axis=1)
    (e, a, b), *_ = np.linalg.lstsq(design, loss, rcond=None)
    return IsoFlopFit(float(e), float(a), float(b), alpha, beta, float(flops))
