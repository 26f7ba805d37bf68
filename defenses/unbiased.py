"""unbiased_opt: the optimal unbiased label randomiser (Badanidiyuru et al., "Optimal Unbiased Randomizers
for Regression with Label Differential Privacy", NeurIPS 2023), as a linear program.

On the support y_1..y_k (bins over [low, high]) with prior P, and a public output grid o_1..o_G that
extends beyond the label range (unbiasedness at the ends needs outputs far outside it), find the
transition matrix M[y, o] minimising sum_y P(y) sum_o M[y, o] (o - y)^2 subject to: rows sum to 1,
sum_o M[y, o] o = y (unbiased), and M[y, o] in [l_o, u_o] with u_o <= e^eps l_o (eps-DP: for each
output every row's probability lies within a factor e^eps). Solved with SciPy's HiGHS at eps minus a
1e-6 margin; the solution is clipped at 0, renormalised and its likelihood ratio re-checked before use.

A label is first rounded at random to one of its two neighbouring support points (probabilities that
keep the mean), then released through that row: every output's probability is a convex combination of
entries inside [l_o, u_o], so the release stays eps-DP and is unbiased for the clipped label. The prior
costs `prior_share` of epsilon as in RR-on-bins. Unbiased, so its noisy-label error exceeds RR-on-bins'
(which is biased) but stays below Laplace's at the same epsilon.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix, hstack, vstack

from fedsim.defenses.rr_on_bins import BinnedPriorDefense
from fedsim.errors import check
from fedsim.privacy.mechanisms import max_likelihood_ratio, sample_transition
from fedsim.registry import LABEL_DEFENSES

MARGIN = 1e-6


def output_grid(low: float, high: float, epsilon: float, points: int = 161) -> np.ndarray:
    """A public grid reaching (e^eps + 1)/(e^eps - 1) label ranges beyond each end (and 0.5 more)."""
    reach = (high - low) * (0.5 + (math.exp(epsilon) + 1) / math.expm1(epsilon))
    return np.linspace(low - reach, high + reach, points)


def optimal_unbiased(support: np.ndarray, prior: np.ndarray, outputs: np.ndarray, epsilon: float) -> np.ndarray:
    """The LP's transition matrix M (k x G), eps-DP and unbiased on `support`."""
    k, g = len(support), len(outputs)
    n = k * g  # M flattened row-major, then l (g), then u (g)
    cost = np.concatenate([(prior[:, None] * (outputs[None, :] - support[:, None]) ** 2).ravel(), np.zeros(2 * g)])
    rows = np.repeat(np.arange(k), g)
    cols = np.arange(n)
    sums = coo_matrix((np.ones(n), (rows, cols)), shape=(k, n + 2 * g))
    means = coo_matrix((np.tile(outputs, k), (rows, cols)), shape=(k, n + 2 * g))
    a_eq = vstack([sums, means])
    b_eq = np.concatenate([np.ones(k), support])
    pick = coo_matrix((np.ones(n), (np.arange(n), np.arange(n))), shape=(n, n))
    col_of = coo_matrix((np.ones(n), (np.arange(n), np.tile(np.arange(g), k))), shape=(n, g))
    zero = coo_matrix((n, g))
    upper = hstack([pick, zero, -col_of])  # M - u <= 0
    lower = hstack([-pick, col_of, zero])  # l - M <= 0
    eye = coo_matrix((np.ones(g), (np.arange(g), np.arange(g))), shape=(g, g))
    ratio = hstack([coo_matrix((g, n)), -math.exp(epsilon - MARGIN) * eye, eye])  # u - e^eps l <= 0
    a_ub = vstack([upper, lower, ratio]).tocsr()
    result = linprog(cost, A_ub=a_ub, b_ub=np.zeros(a_ub.shape[0]), A_eq=a_eq.tocsr(), b_eq=b_eq,
                     bounds=(0, None), method="highs")
    check(result.status == 0, f"unbiased_opt: the linear program failed ({result.message})")
    matrix = np.clip(result.x[:n].reshape(k, g), 0, None)
    matrix[matrix < 1e-12] = 0.0
    matrix /= matrix.sum(axis=1, keepdims=True)
    used = matrix.max(axis=0) > 0
    check(max_likelihood_ratio(matrix[:, used]) <= math.exp(epsilon),
          "unbiased_opt: the solver's matrix breaks the epsilon bound; try fewer bins")
    return matrix


@LABEL_DEFENSES.register("unbiased_opt")
class UnbiasedOptimal(BinnedPriorDefense):
    """The optimal unbiased randomiser against a private prior (module docstring)."""

    summary = "Badanidiyuru et al.'s optimal unbiased eps-DP label randomiser (a linear program)."

    def apply(self, y: np.ndarray, task: str, rng: np.random.Generator) -> np.ndarray:
        support, _, prior = self.support_and_prior(y, rng)
        eps = self.mechanism_epsilon
        outputs = output_grid(support[0], support[-1], eps)
        matrix = optimal_unbiased(support, prior, outputs, eps)
        self.matrix, self.outputs, self.support = matrix, outputs, support
        self.ledger.pure_release(eps, what=f"optimal unbiased randomiser over {len(outputs)} public outputs",
                                 mechanism="unbiased_opt")
        self.report.update(mechanism_epsilon=eps, outputs_used=int((matrix.max(axis=0) > 0).sum()))
        # randomised rounding to a neighbouring support point keeps the mean of the clipped label
        step = support[1] - support[0]
        position = (np.clip(y, support[0], support[-1]) - support[0]) / step
        below = np.minimum(np.floor(position).astype(np.int64), len(support) - 2)
        index = below + (rng.random(len(y)) < position - below)
        return outputs[sample_transition(matrix, index, rng)]
