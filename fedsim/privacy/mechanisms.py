"""The noise primitives of label DP, written once: label defences (`defenses/`) and private evaluation
(`fedsim.evaluation`) both draw from here.

Conventions. The neighbouring relation is *replace one label*. Every function takes an explicit numpy
`Generator`; none touches global random state. Parameters are validated with one-line `UserError`s
(`check_epsilon`, `check_delta`), so callers that take user input can rely on them.

Guarantees (standard, stated so each caller can cite them):
- `laplace_mechanism(values, sensitivity, epsilon)`: adds Laplace(sensitivity/epsilon) per value; for a
  release whose L1 sensitivity is `sensitivity` this is epsilon-DP (Dwork et al. 2006).
- `analytic_gaussian_sigma(epsilon, delta, sensitivity)`: the smallest sigma for which N(0, sigma^2)
  added to an L2-sensitivity-`sensitivity` release is (epsilon, delta)-DP (Balle & Wang 2018, exact
  condition on the privacy loss; computed by dp-accounting's `get_sigma_gaussian`).
- `randomized_response(labels, epsilon, k)`: k-ary RR keeps the label with probability
  e^eps / (e^eps + k - 1), else outputs each other class with probability 1 / (e^eps + k - 1); the ratio
  of any output's probability under two inputs is at most e^eps, so it is epsilon-DP (Warner 1965).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from fedsim.errors import check


def _checked(value: float | None, ok, missing: str, rule: str) -> float:
    """`value` as a float if `ok(value)`, else a one-line `UserError` (`missing` when it is None)."""
    check(value is not None, missing)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    check(math.isfinite(number) and ok(number), f"{rule}, got {value!r}")
    return number


def check_epsilon(epsilon: float | None, what: str = "epsilon") -> float:
    """A finite epsilon > 0, else a one-line `UserError`."""
    return _checked(epsilon, lambda v: v > 0, f"{what} is required: give --epsilon EPS (a finite number > 0)",
                    f"{what} must be a finite number > 0")


def check_delta(delta: float | None, what: str = "delta") -> float:
    """A delta strictly inside (0, 1), else a one-line `UserError`."""
    return _checked(delta, lambda v: 0 < v < 1, f"{what} is required: give --delta DELTA (0 < delta < 1, e.g. 1e-5)",
                    f"{what} must be a number with 0 < delta < 1")


# --- additive noise -------------------------------------------------------------------------------------


def laplace_noise(shape: int | tuple[int, ...], scale: float, rng: np.random.Generator) -> np.ndarray:
    """I.i.d. Laplace(0, scale) draws (density exp(-|z|/scale) / (2 scale)); variance 2 scale^2."""
    check(math.isfinite(scale) and scale >= 0, f"Laplace scale must be finite and >= 0, got {scale}")
    return rng.laplace(0.0, scale, size=shape) if scale > 0 else np.zeros(shape)


def gaussian_noise(shape: int | tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """I.i.d. N(0, sigma^2) draws."""
    check(math.isfinite(sigma) and sigma >= 0, f"Gaussian sigma must be finite and >= 0, got {sigma}")
    return rng.normal(0.0, sigma, size=shape) if sigma > 0 else np.zeros(shape)


def laplace_scale(epsilon: float, sensitivity: float) -> float:
    """The Laplace scale b = sensitivity / epsilon that makes one release epsilon-DP."""
    return float(sensitivity) / check_epsilon(epsilon)


def laplace_mechanism(values: np.ndarray, sensitivity: float, epsilon: float,
                      rng: np.random.Generator) -> np.ndarray:
    """values + Laplace(sensitivity/epsilon): epsilon-DP for a release of L1 sensitivity `sensitivity`."""
    values = np.asarray(values, dtype=np.float64)
    return values + laplace_noise(values.shape, laplace_scale(epsilon, sensitivity), rng)


def analytic_gaussian_sigma(epsilon: float, delta: float, sensitivity: float = 1.0) -> float:
    """Smallest sigma making N(0, sigma^2) (epsilon, delta)-DP at L2 sensitivity `sensitivity`."""
    import dp_accounting

    epsilon, delta = check_epsilon(epsilon), check_delta(delta)
    return float(sensitivity) * float(dp_accounting.get_sigma_gaussian(epsilon, delta))


def gaussian_mechanism(values: np.ndarray, sensitivity: float, epsilon: float, delta: float,
                       rng: np.random.Generator) -> np.ndarray:
    """values + N(0, sigma^2) with the analytic sigma: (epsilon, delta)-DP at L2 sensitivity `sensitivity`."""
    values = np.asarray(values, dtype=np.float64)
    return values + gaussian_noise(values.shape, analytic_gaussian_sigma(epsilon, delta, sensitivity), rng)


# --- randomised response --------------------------------------------------------------------------------


def rr_keep_probability(epsilon: float, k: int) -> float:
    """Probability that k-ary RR outputs the true class: e^eps / (e^eps + k - 1)."""
    check(int(k) >= 1, f"randomised response needs k >= 1 classes, got {k}")
    epsilon = check_epsilon(epsilon)
    return 1.0 / (1.0 + (k - 1) * math.exp(-epsilon))  # = e^eps/(e^eps+k-1), stable for large eps


def rr_flip_probability(epsilon: float) -> float:
    """Binary RR: probability of reporting the other label, 1 / (1 + e^eps)."""
    return 1.0 - rr_keep_probability(epsilon, 2)


def rr_transition_matrix(epsilon: float, k: int) -> np.ndarray:
    """M[i, j] = P(output j | input i) of k-ary RR (rows sum to 1)."""
    keep = rr_keep_probability(epsilon, k)
    other = (1.0 - keep) / (k - 1) if k > 1 else 0.0
    return np.full((k, k), other) + np.eye(k) * (keep - other)


def randomized_response(labels: np.ndarray, epsilon: float, num_classes: int,
                        rng: np.random.Generator) -> np.ndarray:
    """k-ary RR on integer labels in [0, num_classes): epsilon-DP per label (see the module docstring)."""
    labels = np.asarray(labels)
    check(labels.size == 0 or (np.issubdtype(labels.dtype, np.integer) or np.all(labels == np.round(labels))),
          "randomised response needs integer class labels")
    labels = labels.astype(np.int64)
    check(labels.size == 0 or (labels.min() >= 0 and labels.max() < num_classes),
          f"randomised response labels must lie in [0, {num_classes})")
    keep = rng.random(labels.shape) < rr_keep_probability(epsilon, num_classes)
    if num_classes == 1:
        return labels.copy()
    # a uniform draw among the other k-1 classes: shift by 1..k-1 modulo k
    shift = rng.integers(1, num_classes, size=labels.shape)
    return np.where(keep, labels, (labels + shift) % num_classes)


def debias_rr_counts(noisy_counts: np.ndarray, totals: np.ndarray, epsilon: float) -> np.ndarray:
    """Unbiased estimate of true positive counts from binary-RR-released labels: (c - p n) / (1 - 2p)."""
    p = rr_flip_probability(epsilon)
    counts, totals = np.asarray(noisy_counts, dtype=np.float64), np.asarray(totals, dtype=np.float64)
    return (counts - p * totals) / (1.0 - 2.0 * p)


def sample_transition(matrix: np.ndarray, inputs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each input index i, an output index drawn from row `matrix[i]` (a finite mechanism's release)."""
    cumulative = np.cumsum(np.asarray(matrix, dtype=np.float64), axis=1)[np.asarray(inputs)]
    draws = (rng.random(len(cumulative))[:, None] > cumulative).sum(axis=1)
    return np.minimum(draws, cumulative.shape[1] - 1)


def max_likelihood_ratio(transition: np.ndarray) -> float:
    """Worst-case ratio P(o | x) / P(o | x') over outputs o and inputs x, x' of a transition matrix.

    A mechanism with finite input and output sets is epsilon-DP iff this is <= e^eps (used by tests and as
    a self-check of data-dependent mechanisms such as RR-on-bins).
    """
    transition = np.asarray(transition, dtype=np.float64)
    col_max, col_min = transition.max(axis=0), transition.min(axis=0)
    if np.any((col_min == 0) & (col_max > 0)):
        return math.inf
    used = col_max > 0
    return float(np.max(col_max[used] / col_min[used]))


def epsilon_at_delta(delta_of: Callable[[float], float], delta: float) -> float:
    """The smallest eps with delta_of(eps) <= delta, for a privacy profile delta_of decreasing in eps
    (doubling bracket, then Brent's method). scipy.optimize loads here: every attack module imports this one."""
    from scipy.optimize import brentq

    if delta_of(0.0) <= delta:
        return 0.0
    high = 1.0
    while delta_of(high) > delta:
        high *= 2.0
    return float(brentq(lambda e: delta_of(e) - delta, 0.0, high, xtol=1e-10))
