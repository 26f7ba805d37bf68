"""Private evaluation: the AUC (and threshold metrics) a score holder can compute from label-DP releases.

`run_auc(method, scores, labels, epsilon, ...)` returns the `fedsim auc` JSON dict (`secure_aggregation=True`
with hist / hist_gauss and M >= 2 clients: one central noise shared by the clients); `METHODS` lists the
methods (exact, naive_rr, rr, dpauc, hist, hist_gauss, scalar_laplace); `synthetic_scores(name, seed)` gives
seeded test sets (criteo, rare_positive, breast_cancer); `threshold_metrics` and `laplace_mse` go beyond AUC
from the same releases.
"""

from fedsim.evaluation.beyond import laplace_mse, threshold_metrics
from fedsim.evaluation.driver import run_auc, split_clients, validate_inputs
from fedsim.evaluation.mann_whitney import bucketed_auc, exact_auc
from fedsim.evaluation.methods import METHODS
from fedsim.evaluation.synthetic import SYNTHETIC, synthetic_scores

__all__ = ["METHODS", "SYNTHETIC", "bucketed_auc", "exact_auc", "laplace_mse", "run_auc", "split_clients",
           "synthetic_scores", "threshold_metrics", "validate_inputs"]
