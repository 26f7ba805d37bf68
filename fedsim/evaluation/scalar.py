"""`scalar_laplace`: one label holder releases only the AUC, with Laplace noise near the central floor.

Why: a histogram release pays for B noisy counts; when only the number is wanted, noise on the AUC itself
has standard deviation about sqrt(2) / (eps min(n+, n-)), several times lower. The catch is that the
AUC's sensitivity depends on min(n+, n-), which is private (a label flip changes n+).

Mechanism (n, the number of examples, is public: scores are public in label DP):

1. Spend eps1 = share x eps on the positive count: n~+ = n+ + Laplace(1/eps1) (sensitivity 1: eps1-DP).
2. From that release only, a public floor L = clip(floor(min(n~+, n - n~+) - ln(1/beta)/eps1), 1, floor(n/2)).
3. Release A~ = f_L(labels) + Laplace(1 / (L eps2)), eps2 = eps - eps1, where

       f_L = 1/2 + W / max(n+ n-, L (n - L)),   W = (1/2) sum_{i pos, j neg} sign(s_i - s_j) = (AUC - 1/2) n+ n-.

   f_L equals the AUC whenever L <= min(n+, n-) (then n+ n- >= L (n - L)), which holds with probability
   >= 1 - beta, beta = min(0.01, 1/n); otherwise f_L is the AUC shrunk towards 1/2 (never outside [0, 1]).

Guarantee: eps1 + eps2 = eps, pure label-DP, by adaptive sequential composition, because for *every* L in
[1, n/2] the global sensitivity of f_L over neighbouring label vectors is at most 1/L. Proof. Flip one
example from negative to positive: a = n+ -> a + 1, b = n- -> b - 1; n fixed. Write g(a) = max(a (n - a),
L (n - L)). The flipped example's pairs change W by at most (1/2)(a + b - 1) = (n - 1)/2 in absolute value,
and |W| <= ab/2.
- If g(a) = g(a + 1) (both clamped, or a + 1 = L, or a = n - L, where the clamp and a (n - a) meet):
  |f' - f| = |W' - W| / g(a) <= (n - 1) / (2 L (n - L)) < 1/L, since n - L >= n/2.
- Otherwise L <= a and a + 1 <= n - L, so both denominators are the true products ab and (a+1)(b-1):
  f' - f = (W' - W)/((a+1)(b-1)) + W (a - b + 1)/(ab (a+1)(b-1)), so
  |f' - f| <= [(a + b - 1) + |a - b + 1|] / (2 (a+1)(b-1)) = max(a, b - 1)/((a+1)(b-1)) <= 1/min(a+1, b-1)
  <= 1/L (a + 1 > L and b - 1 = n - a - 1 >= L).
The flip from positive to negative is the same pair read backwards. `test_scalar` checks the bound by
brute force over every label vector and every flip for small n, with and without tied scores.

Interval (exact, not asymptotic): with probability >= 1 - beta the true n+ lies within ln(1/beta)/eps1 of
n~+, and with probability >= 1 - alpha f_L lies within ln(1/alpha)/(L eps2) of A~ (Laplace tails), alpha =
0.05 - beta. For each n+ in the first range AUC = 1/2 + (f_L - 1/2) g(n+)/(n+ n-); the interval is the union
of these images, intersected with [0, 1], so it covers with probability >= 95%. (That range lies inside
[L, n - L] unless L was clipped, so usually g(n+) = n+ n- and the interval is A~ +- ln(1/alpha)/(L eps2).)

Choosing the share: eps1 trades the margin ln(1/beta)/eps1 against eps2. With m the minority count the
noise std is sqrt(2)/((eps - eps1)(m - ln(1/beta)/eps1)), smallest at eps1 = sqrt(eps ln(1/beta) / m). m is
private, so the default uses m0 = n/10 (a public guess, from n only) and caps the share at 1/2. At Criteo
scale (n = 458,407, eps = 1) that spends 1% of eps on n+ and the std is within 2% of the floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fedsim.errors import check
from fedsim.evaluation.mann_whitney import exact_auc

MINORITY_GUESS = 0.1  # m0 = n/10 in the default share rule


@dataclass(frozen=True)
class ScalarRelease:
    """What the label holder publishes: the noisy positive count, the floor L it implies, the noisy AUC."""

    noisy_positives: float
    floor: int
    auc: float


def clamp_probability(n: int) -> float:
    """beta = min(0.01, 1/n): how often L may exceed the minority count. Small, because a clamped f_L is
    shrunk towards 1/2 by about (AUC - 1/2)(L - m)/m, far more than the noise at large n."""
    return min(0.01, 1.0 / n)


def margin(n: int, epsilon1: float) -> float:
    """ln(1/beta)/eps1: P(|Laplace(1/eps1)| > margin) = beta."""
    return math.log(1.0 / clamp_probability(n)) / epsilon1


def default_share(n: int, epsilon: float) -> float:
    """Share of eps spent on n+: sqrt(eps ln(1/beta) / m0) / eps with m0 = n/10, in [0.001, 0.5]."""
    if math.isinf(epsilon):
        return 0.0
    minority = max(1.0, MINORITY_GUESS * n)
    return min(0.5, max(0.001, math.sqrt(math.log(1.0 / clamp_probability(n)) / (epsilon * minority))))


def clamped_auc(w: float, positives: int, n: int, floor: int) -> float:
    """f_L = 1/2 + W / max(n+ n-, L (n - L)) (see the module docstring)."""
    return 0.5 + w / max(positives * (n - positives), floor * (n - floor))


@dataclass(frozen=True)
class Statistics:
    """The label holder's private summary: n, n+ and W = (AUC - 1/2) n+ n- (0 with a single class)."""

    n: int
    positives: int
    w: float


def statistics(scores: np.ndarray, labels: np.ndarray) -> Statistics:
    """n, n+ and W, half the sum over positive-negative pairs of sign(s_pos - s_neg)."""
    n, positives = int(labels.size), int(np.sum(labels))
    if positives in (0, n):
        return Statistics(n, positives, 0.0)
    return Statistics(n, positives, (exact_auc(scores, labels) - 0.5) * positives * (n - positives))


def count_floor(noisy_positives: float, n: int, epsilon1: float) -> int:
    """L from the noisy count alone: min(n~+, n - n~+) - ln(1/beta)/eps1, clipped to [1, n // 2]."""
    minority = min(noisy_positives, n - noisy_positives)
    return int(np.clip(math.floor(minority - margin(n, epsilon1)), 1, n // 2))


def scalar_release(stats: Statistics, epsilon: float, share: float, rng: np.random.Generator) -> ScalarRelease:
    """The label holder's release (eps-label-DP in total; module docstring)."""
    n, positives, w = stats.n, stats.positives, stats.w
    if math.isinf(epsilon):
        return ScalarRelease(float(positives), min(positives, n - positives), clamped_auc(w, positives, n, 1))
    check(0.0 < share < 1.0, f"the share of epsilon spent on the positive count must be in (0, 1), got {share}")
    epsilon1, epsilon2 = share * epsilon, (1.0 - share) * epsilon
    noisy_positives = positives + rng.laplace(0.0, 1.0 / epsilon1)
    floor = count_floor(noisy_positives, n, epsilon1)
    noisy_auc = clamped_auc(w, positives, n, floor) + rng.laplace(0.0, 1.0 / (floor * epsilon2))
    return ScalarRelease(float(noisy_positives), floor, float(noisy_auc))


def scalar_interval(release: ScalarRelease, n: int, epsilon: float, share: float,
                    level: float = 0.95) -> tuple[float, float]:
    """The exact interval of the module docstring: covers the AUC with probability >= `level`."""
    if math.isinf(epsilon):
        return release.auc, release.auc
    alpha_auc = (1.0 - level) - clamp_probability(n)
    epsilon1, epsilon2 = share * epsilon, (1.0 - share) * epsilon
    low = release.auc - math.log(1.0 / alpha_auc) / (release.floor * epsilon2)
    high = release.auc + math.log(1.0 / alpha_auc) / (release.floor * epsilon2)
    reach = margin(n, epsilon1)
    candidates = np.arange(max(1, math.ceil(release.noisy_positives - reach)),
                           min(n - 1, math.floor(release.noisy_positives + reach)) + 1)
    if candidates.size == 0:
        return 0.0, 1.0
    products = candidates * (n - candidates)
    stretch = float(np.max(np.maximum(products, release.floor * (n - release.floor)) / products))
    low = 0.5 + (low - 0.5) * (stretch if low < 0.5 else 1.0)
    high = 0.5 + (high - 0.5) * (stretch if high > 0.5 else 1.0)
    return float(np.clip(low, 0.0, 1.0)), float(np.clip(high, 0.0, 1.0))


def scalar_laplace(stats: Statistics, epsilon: float, rng: np.random.Generator,
                   share: float | None = None) -> tuple[ScalarRelease, tuple[float, float]]:
    """The release (its `auc` is the raw estimate, which may leave [0, 1]) and its exact 95% interval."""
    share = default_share(stats.n, epsilon) if share is None else share
    release = scalar_release(stats, epsilon, share, rng)
    return release, scalar_interval(release, stats.n, epsilon, share)
