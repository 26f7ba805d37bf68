"""Integer noise split into per-client shares whose sum is exactly one central release's noise.

Secure aggregation shows the server only the sum of M clients' integer vectors, so each client adds a
*share* of one central noise instead of a full noise of its own. Both laws used here are infinitely
divisible over the integers, which makes the split exact (no approximation, no rounding):

- `discrete_laplace` (pure eps): the two-sided geometric law P(Z = k) = (1-a)/(1+a) a^|k| with a = e^-eps
  is G1 - G2 for i.i.d. geometric G ~ NB(1, 1-a), and NB(r, p) sums over shares: sum of t i.i.d.
  NB(1/t, 1-a) is NB(1, 1-a). So a client's share is NB(1/t, 1-a) - NB(1/t, 1-a) (a Polya difference;
  numpy's `negative_binomial` takes a real n > 0), and t shares add up to one discrete Laplace.
  Guarantee: one label changes one coordinate of the summed vector by 1 (L1 sensitivity 1) and the
  discrete Laplace with a = e^-eps has P(k)/P(k+1) <= e^eps everywhere: eps-DP.
- `skellam` ((eps, delta)): Sk(mu) = Poisson(mu) - Poisson(mu); t shares Sk(mu/t) add up to Sk(mu)
  (Agarwal, Kairouz & Liu, "The Skellam mechanism for differentially private federated learning",
  NeurIPS 2021). Accounting: for a sensitivity-1 shift the mechanism is (eps, delta)-DP iff the hockey-stick
  divergence delta(eps) = sum_k max(0, P(k) - e^eps P(k-1)) is <= delta (the privacy-loss definition, tight;
  symmetric law, so both shift directions give the same value). `skellam_delta` computes it from scipy's
  Skellam pmf on +-(40 sd + 40) (the rest of the support has mass < 1e-300); a test checks it against
  dp-accounting's privacy-loss distribution. `skellam_mu` finds the smallest mu meeting (eps, delta).

Dropouts. Shares are sized for a threshold t <= M (`min_clients`): if A clients contribute, the summed
noise is the same law with r = A/t central releases' worth (NB(A/t) differences, or Sk(mu A/t)).
- A >= t: the noise is one central noise plus independent extra noise (infinite divisibility), so the
  release is post-processing of an eps-DP (or (eps, delta)-DP) one: the full guarantee holds.
- A < t: the noise is weaker; `achieved_epsilon(A)` computes the guarantee that actually holds: for the
  Polya difference the largest log P(k)/P(k+1) (it is reached at k = 0: the ratio falls towards eps as k
  grows, because each NB(r<1) ratio P(m+1)/P(m) = a (m+r)/(m+1) rises to a; we take the max over
  k <= 32 to be safe); for Skellam the eps at which delta(eps) meets the target delta. It is reported,
  never silently replaced by the nominal eps. The same numbers bound what a coalition of c clients that
  colludes with the server learns: it can subtract its own shares, leaving A = M - c honest shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp
from scipy.stats import nbinom, skellam

from fedsim.errors import check
from fedsim.privacy.mechanisms import check_delta, check_epsilon, epsilon_at_delta

KINDS = ("discrete_laplace", "skellam")


@dataclass(frozen=True)
class DistributedNoise:
    """One central integer noise per coordinate, split into shares for `threshold` clients.

    `parameter` is a = e^-eps (discrete Laplace) or mu (Skellam, the total's Poisson rate per side);
    `epsilon` = inf means no noise (every share is 0).
    """

    kind: str
    epsilon: float
    delta: float | None
    threshold: int
    parameter: float

    def share(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """One client's int64 share of the noise for `size` coordinates."""
        if math.isinf(self.epsilon):
            return np.zeros(size, dtype=np.int64)
        if self.kind == "discrete_laplace":
            r, p = 1.0 / self.threshold, 1.0 - self.parameter
            return rng.negative_binomial(r, p, size) - rng.negative_binomial(r, p, size)
        rate = self.parameter / self.threshold
        return rng.poisson(rate, size) - rng.poisson(rate, size)

    def variance(self, contributors: int) -> float:
        """Variance of one coordinate of the sum of `contributors` shares."""
        if math.isinf(self.epsilon):
            return 0.0
        r = contributors / self.threshold
        if self.kind == "discrete_laplace":
            a = self.parameter
            return 2.0 * r * a / (1.0 - a) ** 2
        return 2.0 * r * self.parameter

    def achieved_epsilon(self, contributors: int) -> float:
        """The eps (at `delta` for Skellam) that the sum of `contributors` shares guarantees."""
        if math.isinf(self.epsilon):
            return math.inf
        check(contributors >= 1, "no client contributed: nothing was released")
        if contributors >= self.threshold:
            return self.epsilon
        r = contributors / self.threshold
        if self.kind == "discrete_laplace":
            return polya_difference_epsilon(r, self.parameter)
        return skellam_epsilon(self.parameter * r, self.delta)

    def describe(self, contributors: int) -> str:
        """One sentence: the noise law and the guarantee for `contributors` summed shares."""
        if math.isinf(self.epsilon):
            return "no noise (epsilon = inf): no privacy"
        law = ("discrete Laplace" if self.kind == "discrete_laplace"
               else f"Skellam (mu = {self.parameter:.4g})")
        target = f"{self.epsilon:g}" if self.delta is None else f"({self.epsilon:g}, {self.delta:g})"
        achieved = self.achieved_epsilon(contributors)
        if contributors >= self.threshold:
            return (f"{target}-label-DP towards the server: {contributors} clients' shares add up to at least one "
                    f"{law} noise per bucket (shares sized for {self.threshold} clients)")
        return (f"only {contributors} of the {self.threshold} clients the shares were sized for contributed: "
                f"the release is {achieved:.4g}-label-DP{'' if self.delta is None else f' at delta {self.delta:g}'}"
                f" towards the server, weaker than the {target} asked for")


def discrete_laplace_noise(epsilon: float, threshold: int) -> DistributedNoise:
    """Shares of discrete Laplace(a = e^-eps) for `threshold` clients: eps-DP at L1 sensitivity 1."""
    check(threshold >= 1, f"the share threshold must be >= 1, got {threshold}")
    if math.isinf(epsilon):
        return DistributedNoise("discrete_laplace", math.inf, None, threshold, 0.0)
    epsilon = check_epsilon(epsilon)
    return DistributedNoise("discrete_laplace", epsilon, None, threshold, math.exp(-epsilon))


def skellam_noise(epsilon: float, delta: float, threshold: int) -> DistributedNoise:
    """Shares of Sk(mu) for `threshold` clients, mu the smallest making it (eps, delta)-DP at sensitivity 1."""
    check(threshold >= 1, f"the share threshold must be >= 1, got {threshold}")
    if math.isinf(epsilon):
        return DistributedNoise("skellam", math.inf, delta, threshold, 0.0)
    epsilon, delta = check_epsilon(epsilon), check_delta(delta)
    return DistributedNoise("skellam", epsilon, delta, threshold, skellam_mu(epsilon, delta))


def polya_difference_logpmf(k: np.ndarray, r: float, a: float) -> np.ndarray:
    """log P(X - Y = k) for i.i.d. X, Y ~ NB(r, 1-a) (failures before r successes), k >= 0."""
    terms = int(math.ceil((80.0 + 10.0 * abs(math.log(r))) / -math.log(a))) + 64
    j = np.arange(terms)
    base = nbinom.logpmf(j, r, 1.0 - a)
    return np.array([logsumexp(nbinom.logpmf(j + int(kk), r, 1.0 - a) + base) for kk in np.atleast_1d(k)])


def polya_difference_epsilon(r: float, a: float) -> float:
    """Pure eps of NB(r, 1-a) - NB(r, 1-a) noise at sensitivity 1: max_k log P(k)/P(k+1) (see the module
    docstring); -log a when r >= 1 (a discrete Laplace plus independent noise)."""
    if r >= 1.0:
        return -math.log(a)
    logs = polya_difference_logpmf(np.arange(34), r, a)
    return float(max(np.max(logs[:-1] - logs[1:]), -math.log(a)))


def _support(mu: float) -> np.ndarray:
    width = int(math.ceil(40.0 * math.sqrt(2.0 * mu) + 40.0))
    return np.arange(-width, width + 2)


def skellam_delta(mu: float, epsilon: float) -> float:
    """Tight delta(eps) of Sk(mu) noise at sensitivity 1: sum_k max(0, P(k) - e^eps P(k-1))."""
    k = _support(mu)
    log_p, log_q = skellam.logpmf(k, mu, mu), skellam.logpmf(k - 1, mu, mu)
    with np.errstate(over="ignore"):
        excess = np.exp(log_p) - np.exp(np.minimum(log_q + epsilon, 700.0))
    return float(np.sum(np.clip(excess, 0.0, None)))


def skellam_epsilon(mu: float, delta: float) -> float:
    """Smallest eps with skellam_delta(mu, eps) <= delta (the guarantee of Sk(mu) at that delta)."""
    return epsilon_at_delta(lambda e: skellam_delta(mu, e), delta)


@lru_cache(maxsize=256)
def skellam_mu(epsilon: float, delta: float) -> float:
    """Smallest mu (to 1e-6 relative, rounded up) with Sk(mu) (eps, delta)-DP at sensitivity 1."""
    low = high = 0.5
    while skellam_delta(high, epsilon) > delta:
        low, high = high, high * 2.0
    if low == high:
        low = 1e-6
    mu = brentq(lambda m: skellam_delta(m, epsilon) - delta, low, high, xtol=1e-9, rtol=1e-7)
    return float(mu * (1.0 + 1e-6))
