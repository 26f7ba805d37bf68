"""Clip bounds for regression labels: given by the user (public, free) or estimated privately.

Private estimate (never free from the raw labels): each bound is a quantile (default 5 % and 95 %) chosen
by the exponential mechanism (McSherry & Talwar 2007; Smith 2011) over a fixed, data-independent grid of
candidates: 0 and +-1.05^j for |values| between 1e-4 and 1e9 (about 1,000 points, 5 % resolution). The
utility of a candidate c is -|#{y <= c} - q n|; replacing one label changes the count by at most 1, so
sampling c with probability proportional to exp(eps_q * utility / 2) is eps_q-DP. The two bounds use half
of the bounds budget each (sequential composition). Weakness: the candidates far outside the data all
score about -q n, so the estimate is reliable only when q * n * eps_q / 2 is well above log(#candidates)
(about 7): e.g. n = 10,000 and eps_q = 0.05 is fine, n = 350 at any small epsilon is not (the reported
bounds show it). Hence private bounds are opt-in; give public bounds (`low`, `high`) when you can.
"""

from __future__ import annotations

import math

import numpy as np

from fedsim.errors import check

_MAGNITUDES = 1.05 ** np.arange(math.floor(math.log(1e-4, 1.05)), math.ceil(math.log(1e9, 1.05)) + 1)
CANDIDATES = np.concatenate([-_MAGNITUDES[::-1], [0.0], _MAGNITUDES])


def private_quantile(y: np.ndarray, q: float, epsilon: float, rng: np.random.Generator) -> float:
    """The exponential mechanism's q-quantile of `y` over the public grid: epsilon-DP (replace one)."""
    check(0 <= q <= 1, f"quantile must lie in [0, 1], got {q}")
    ranks = np.searchsorted(np.sort(np.asarray(y, dtype=np.float64)), CANDIDATES, side="right")
    score = -np.abs(ranks - q * len(y)) * epsilon / 2.0
    weights = np.exp(score - score.max())
    return float(rng.choice(CANDIDATES, p=weights / weights.sum()))


def private_bounds(y: np.ndarray, epsilon: float, rng: np.random.Generator,
                   quantiles: tuple[float, float] = (0.05, 0.95)) -> tuple[float, float]:
    """A (low, high) clip range from two private quantiles, epsilon-DP in total; low < high guaranteed."""
    low = private_quantile(y, quantiles[0], epsilon / 2, rng)
    high = private_quantile(y, quantiles[1], epsilon / 2, rng)
    low, high = min(low, high), max(low, high)
    if high <= low:  # same grid point: widen to the next candidate above (post-processing)
        above = CANDIDATES[low < CANDIDATES]
        high = float(above[0]) if len(above) else low + 1.0
    return low, high
