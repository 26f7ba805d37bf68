"""RR-on-bins (Ghazi et al., "Regression with Label Differential Privacy", ICLR 2023, arXiv 2212.06074).

The optimal epsilon-DP label randomiser for squared loss against a prior P on a sorted support
y_1 < ... < y_k is m-ary randomised response over m output values v_1..v_m, one per interval of a partition
of the support into contiguous bins: the label's own bin value with probability e^eps/(e^eps + m - 1),
every other value with probability 1/(e^eps + m - 1). For a fixed partition the expected squared error
is (1/(e^eps + m - 1)) * sum_j sum_y w_j(y) (v_j - y)^2 with w_j(y) = e^eps P(y) inside bin j and P(y)
outside, so each v_j is a weighted mean and each bin's cost is separable: a dynamic program over (end
of the last bin, number of bins) finds the best partition for every m, and m is chosen last (the
normaliser depends on m). `brute_force` enumerates all partitions for tests.

Here the support is `bins` equally spaced points over the clip range [low, high] (labels are rounded to
the nearest), and the prior is a Laplace-noised histogram of the rounded labels (replace-one L1
sensitivity 2, so Laplace(2/eps_prior) per bin is eps_prior-DP) with `prior_share` of epsilon (default
0.1; 0 = a public uniform prior). With private clip bounds another `bounds_share` is spent first. The
output is RR on the bin index, which is (eps - shares)-DP for ANY partition, so the total is the sum of
the shares and the RR epsilon (adaptive sequential composition). Biased by design (outputs are pulled
towards the prior mean), lower error than Laplace.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from pydantic import Field, model_validator

from fedsim.defenses.label_noise import ClipParams, ClippedLabelDefense
from fedsim.errors import check
from fedsim.params import Integer, Number
from fedsim.privacy.mechanisms import check_epsilon, laplace_noise, randomized_response, rr_keep_probability
from fedsim.registry import LABEL_DEFENSES


@dataclass(frozen=True)
class BinPlan:
    """A partition of the support into contiguous bins (`bin_of[i]`), their output values and its error."""

    bin_of: np.ndarray  # support index -> bin index (non-decreasing)
    values: np.ndarray  # one output value per bin
    expected_error: float  # E_{y~P} E (yhat - y)^2

    @property
    def m(self) -> int:
        return len(self.values)

    def transition_matrix(self, epsilon: float) -> np.ndarray:
        """P(output value j | support point i), shape (k, m)."""
        m = self.m
        keep = rr_keep_probability(epsilon, m)
        other = (1.0 - keep) / (m - 1) if m > 1 else 0.0
        out = np.full((len(self.bin_of), m), other)
        out[np.arange(len(self.bin_of)), self.bin_of] = keep
        return out


def _bin_stats(support: np.ndarray, prior: np.ndarray, epsilon: float):
    """Prefix sums so that the cost and value of any bin [r, i] are O(1)."""
    boost = math.expm1(epsilon)
    c0 = np.concatenate([[0.0], np.cumsum(prior)])
    c1 = np.concatenate([[0.0], np.cumsum(prior * support)])
    c2 = np.concatenate([[0.0], np.cumsum(prior * support**2)])
    total = (prior.sum(), (prior * support).sum(), (prior * support**2).sum())

    def bin_cost(r: int, i: int) -> tuple[float, float]:
        """(unnormalised cost, optimal value) of the bin holding support points r..i inclusive."""
        w = total[0] + boost * (c0[i + 1] - c0[r])
        s1 = total[1] + boost * (c1[i + 1] - c1[r])
        s2 = total[2] + boost * (c2[i + 1] - c2[r])
        return s2 - s1 * s1 / w, s1 / w

    return bin_cost


def optimal_bins(support: np.ndarray, prior: np.ndarray, epsilon: float) -> BinPlan:
    """The dynamic program: best contiguous partition and values for squared loss (O(k^3))."""
    support, prior = np.asarray(support, float), np.asarray(prior, float)
    check(np.all(np.diff(support) > 0), "RR-on-bins needs a strictly increasing support")
    prior = prior / prior.sum()
    k = len(support)
    cost = _bin_stats(support, prior, epsilon)
    table = np.full((k + 1, k + 1), np.inf)  # table[i, j]: first i points covered by j bins
    back = np.zeros((k + 1, k + 1), dtype=np.int64)
    table[0, 0] = 0.0
    costs = np.full((k, k), np.inf)
    for r in range(k):
        for i in range(r, k):
            costs[r, i] = cost(r, i)[0]
    for j in range(1, k + 1):
        for i in range(j, k + 1):
            candidates = table[j - 1 : i, j - 1] + costs[j - 1 : i, i - 1]
            best = int(np.argmin(candidates))
            table[i, j], back[i, j] = candidates[best], best + j - 1
    norm = np.exp(epsilon) + np.arange(k + 1) - 1
    m = int(np.argmin(table[k, 1:] / norm[1:])) + 1
    ends, i = [], k
    for j in range(m, 0, -1):
        ends.append(i)
        i = back[i, j]
    ends.reverse()
    return _plan(support, prior, epsilon, ends, cost)


def _plan(support, prior, epsilon, ends: list[int], cost) -> BinPlan:
    starts = [0, *ends[:-1]]
    values = np.array([cost(r, e - 1)[1] for r, e in zip(starts, ends, strict=True)])
    total = sum(cost(r, e - 1)[0] for r, e in zip(starts, ends, strict=True))
    bin_of = np.concatenate([np.full(e - r, j) for j, (r, e) in enumerate(zip(starts, ends, strict=True))])
    return BinPlan(bin_of.astype(np.int64), values, float(total / (np.exp(epsilon) + len(ends) - 1)))


def brute_force(support: np.ndarray, prior: np.ndarray, epsilon: float) -> BinPlan:
    """Every contiguous partition tried (2^(k-1) of them): the reference for the dynamic program."""
    support, prior = np.asarray(support, float), np.asarray(prior, float)
    prior = prior / prior.sum()
    k = len(support)
    cost = _bin_stats(support, prior, epsilon)
    plans = []
    for cuts in itertools.product([False, True], repeat=k - 1):
        ends = [i + 1 for i, cut in enumerate(cuts) if cut] + [k]
        plans.append(_plan(support, prior, epsilon, ends, cost))
    return min(plans, key=lambda p: p.expected_error)


class BinnedPriorParams(ClipParams):
    bins: Integer = Field(20, ge=2, description="Support points, equally spaced over the clip range.")
    prior_share: Number = Field(0.1, ge=0, lt=1, description="Share of epsilon for the private prior (0: uniform).")

    @model_validator(mode="after")
    def _shares_below_one(self) -> BinnedPriorParams:
        total = (self.bounds_share or 0.0) + self.prior_share
        if not total < 1:
            raise ValueError(f"bounds_share + prior_share must be < 1, got {total}")
        return self


class BinnedPriorDefense(ClippedLabelDefense):
    """A mechanism on a support of `bins` points over [low, high], against a prior: a Laplace-noised
    histogram (replace-one L1 sensitivity 2) with `prior_share` of epsilon, or uniform (public) at 0."""

    Params = BinnedPriorParams

    def __init__(self, epsilon: float, low: float | None, high: float | None, bounds_share: float, bins: int,
                 prior_share: float) -> None:
        super().__init__(epsilon, None, low, high, bounds_share)
        self.bins, self.prior_share = bins, prior_share

    @classmethod
    def from_config(cls, task: str, epsilon: float | None, delta: float | None, params: dict):
        cls.check_task(task)
        p = cls.read_params(params)
        return cls(check_epsilon(epsilon), p.low, p.high, p.bounds_share or 0.0, p.bins, p.prior_share)

    @property
    def mechanism_epsilon(self) -> float:
        return self.epsilon * (1.0 - self.bounds_share - self.prior_share)

    def support_and_prior(self, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(support, nearest support index of each clipped label, prior over the support)."""
        low, high = self.clip_range(y, rng)
        support = np.linspace(low, high, self.bins)
        step = (high - low) / (self.bins - 1)
        index = np.clip(np.rint((np.clip(y, low, high) - low) / step), 0, self.bins - 1).astype(np.int64)
        counts = np.bincount(index, minlength=self.bins).astype(np.float64)
        if self.prior_share > 0:
            eps_prior = self.epsilon * self.prior_share
            counts = counts + laplace_noise(self.bins, 2.0 / eps_prior, rng)
            self.ledger.laplace(eps_prior, what=f"prior: histogram of {self.bins} bins + Laplace(2/eps)")
            prior = np.clip(counts, 0, None) + 1e-3 * max(counts.sum(), 1.0) / self.bins
            source = "private (Laplace histogram)"
        else:
            prior, source = np.ones(self.bins), "public (uniform)"
        self.report.update(prior=source, prior_share=self.prior_share, support_points=self.bins)
        return support, index, prior / prior.sum()


@LABEL_DEFENSES.register("rr_on_bins")
class RROnBins(BinnedPriorDefense):
    """RR-on-bins with a private prior (see the module docstring for the accounting)."""

    summary = "Ghazi et al.'s RR-on-bins: optimal eps-DP randomiser for squared loss against a private prior."

    def apply(self, y: np.ndarray, task: str, rng: np.random.Generator) -> np.ndarray:
        support, index, prior = self.support_and_prior(y, rng)
        eps_rr = self.mechanism_epsilon
        plan = optimal_bins(support, prior, eps_rr)
        self.ledger.randomized_response(eps_rr, max(plan.m, 2), what=f"RR over {plan.m} bin values")
        self.plan = plan
        self.report.update(output_values=[float(v) for v in plan.values], rr_epsilon=eps_rr)
        if plan.m == 1:
            return np.full(len(y), plan.values[0])
        return plan.values[randomized_response(plan.bin_of[index], eps_rr, plan.m, rng)]
