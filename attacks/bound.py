"""`advantage_bound`: the most any attack can add to the features-only posterior under an eps-label-DP release.

Claim: let M be eps-label-DP (for every output o and classes c, c': P(o | y = c) <= e^eps P(o | y = c'), the other
labels and all features fixed) and let p = P(y = . | x) be the attacker's features-only posterior of a sample.
Then for every output o and class c,

    P(y = c | o, x) <= b_c := p_c e^eps / (p_c e^eps + 1 - p_c).

Proof sketch (Wu et al., AISTATS 2023; Busa-Fekete et al., NeurIPS 2024): Bayes gives
P(c | o, x) = p_c P(o|c) / (p_c P(o|c) + sum_{j != c} p_j P(o|j)), and P(o|j) >= e^-eps P(o|c), so the
denominator is at least P(o|c) (p_c + (1 - p_c) e^-eps); multiply through by e^eps. Any attack's guess g(o, x)
is right with probability E_o[P(y = g | o, x)] <= max_c b_c, so its expected accuracy on n samples is at most
their mean of max_c b_c (`accuracy_bound`); `advantage_bound` is that minus the features-only reference's
accuracy on the same samples. The known labels of other samples change nothing: they are part of what is
conditioned on.

The true features-only posterior is unknown; the best features-only reference's class probabilities stand in
for it. That proxy carries no formal guarantee (a miscalibrated reference moves the bound), so a cell above the
bound is flagged for inspection, not proven to break the claim. A cell is flagged when the attack's matched
accuracy exceeds the bound by more than `Z_MARGIN` binomial standard errors (one-sided, about 0.1% false flags).
"""

from __future__ import annotations

import math

import numpy as np

Z_MARGIN = 3.09  # one-sided 99.9% normal quantile


def class_probabilities(predictions: np.ndarray) -> np.ndarray:
    """(n, K) class probabilities from (n, K) ones or (n,) positive-class probabilities (binary)."""
    p = np.asarray(predictions, dtype=np.float64)
    p = np.stack([1.0 - p, p], axis=1) if p.ndim == 1 else p
    p = np.clip(p, 0.0, 1.0)
    return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-300)


def accuracy_bound(prior: np.ndarray, epsilon: float) -> float:
    """The mean over samples of max_c p_c e^eps / (p_c e^eps + 1 - p_c) (module docstring)."""
    p = class_probabilities(prior)
    scaled = p * math.exp(epsilon)
    return float(np.mean(np.max(scaled / (scaled + 1.0 - p), axis=1)))


def exceeds_bound(accuracy: float, bound: float, n: int) -> bool:
    """True when `accuracy` on n samples lies above `bound` by more than Z_MARGIN binomial standard errors."""
    se = math.sqrt(bound * (1.0 - bound) / max(n, 1))
    return accuracy > bound + Z_MARGIN * se
