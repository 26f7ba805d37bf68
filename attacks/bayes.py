"""`bayes`: the attacker that knows the public label mechanism and its epsilon (the strongest one under label DP).

The label party trains on released labels r (k-ary RR, Laplace-noised values, or the labels themselves). The cut
gradients carry r, not y, so the attack

1. reads r from the gradients with the read-out attack of the task (`direct_label_inference` multi-class,
   `direction_scoring` binary, `residual` regression), fitted on a part of the known labels;
2. calibrates that read-out on the other part (`calibration` of the known labels), whose true labels it knows;
3. combines the likelihood P(read | y) with the features-only posterior P(y | x) (logistic regression, or ridge
   with a Gaussian residual, on the party's own features, fitted on all known labels), by Bayes' rule.

Classification: P(read j | y = c) = M[c, j], the mechanism's transition matrix T (rr: e^eps/(e^eps + K - 1) on the
diagonal; none: the identity) as `prior_strength` pseudo-counts per class plus the calibration part's counts of
(true c, read j): with few known labels it trusts the mechanism and a perfect read-out, with many it learns the
read-out's errors. `rr_with_prior`'s RRTop-k depends on a prior the attacker does not see: it is modelled as k-ary
RR at the same eps, which has the same worst-case likelihood ratio e^eps (an approximation, no formal guarantee).
The estimate is the posterior, proportional to P(y = c | x) M[c, read].

Regression (Laplace on the public range [a, b], or no label defence): the read value is clip(y, a, b) + Laplace
noise of scale max((b - a)/eps, mean |read - clip(y)| on the calibration part); the prior is N(ridge(x), s^2), s^2
the ridge's squared error on the calibration part (fitted without it). The estimate is the posterior mean on a grid.

Under a Bayes-correct model the posterior is never worse than the prior in expectation, so the attack should not
fall below the features-only reference; the calibration makes a poor read-out cost little (tests measure it).
A mechanism it cannot model (another label defence, any gradient defence): one line, exit 2
(`NotApplicable`: a grid records the attack as not applicable).
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from fedsim.attacks.base import Attack, AttackerKnowledge, AttackResult
from fedsim.attacks.public import PublicDefense, public_defense
from fedsim.errors import NotApplicable, check
from fedsim.params import Integer, Number, PluginParams
from fedsim.privacy.mechanisms import rr_transition_matrix
from fedsim.reference_fits import fit_class_probabilities, logistic_model
from fedsim.registry import ATTACKS
from fedsim.rundir import PartyView

MODELLED = {"regression": (None, "laplace"), "binary": (None, "rr", "rr_with_prior"),
            "multiclass": (None, "rr", "rr_with_prior")}
READOUT = {"regression": "residual", "binary": "direction_scoring", "multiclass": "direct_label_inference"}
GRID = 401  # posterior grid points (regression)


class BayesParams(PluginParams):
    calibration: Number = Field(0.5, gt=0, lt=1, description="Share of the known labels that calibrates the read-out.")
    prior_strength: Number = Field(10.0, ge=0, description="Pseudo-counts per class of the mechanism's matrix.")
    min_steps: Integer = Field(2000, ge=0, description="Adam steps of the residual read-out (regression).")


@ATTACKS.register("bayes")
class BayesAttack(Attack[BayesParams]):
    summary = "Knows the public label mechanism and eps: read-out of the released label x features-only posterior."
    tasks = ("regression", "binary", "multiclass")
    min_known = 4

    def run(self, view: PartyView, knowledge: AttackerKnowledge, rng: np.random.Generator) -> AttackResult:
        facts = public_defense(view)
        check_modelled(view.task, facts)
        known_rows = view.rows_of(np.asarray(knowledge.known_ids))
        labels = np.asarray(knowledge.known_labels, dtype=np.float64)
        calibrate, fit_part = knowledge.hold_out(self.params.calibration, 1, rng)
        params = {"min_steps": self.params.min_steps} if view.task == "regression" else None
        readout = ATTACKS.get(READOUT[view.task])(params).run(view, fit_part, rng)
        read = np.empty((len(view.sample_ids), *np.shape(readout.estimates)[1:]))
        read[view.rows_of(np.asarray(readout.ids))] = readout.estimates
        unknown = np.setdiff1d(np.arange(len(view.sample_ids)), known_rows)
        features = np.asarray(view.features, dtype=np.float64)
        if view.task == "regression":
            estimates, info = _regression(features, known_rows, labels, calibrate, read, unknown, facts, knowledge)
        else:
            estimates, info = _classification(view, features, known_rows, labels, calibrate, read, unknown, facts,
                                               self.params.prior_strength)
        return AttackResult(view.sample_ids[unknown], estimates,
                            info={"readout": READOUT[view.task], "mechanism": facts.label_defense or "none", **info})


def check_modelled(task: str, facts: PublicDefense) -> None:
    """One line (exit 2; not applicable in a grid) for a mechanism the attack cannot model: a label defence not
    in MODELLED, or any gradient defence, which changes what the read-out sees in a way the likelihood (the
    label mechanism's matrix) does not describe, so the posterior would be misspecified."""
    allowed = MODELLED[task]
    names = ", ".join(a or "none" for a in allowed)
    if facts.label_defense not in allowed:
        raise NotApplicable(f"attack 'bayes' cannot model label defence {facts.label_defense!r} on a {task} task; "
                            f"it models: {names}")
    if facts.gradient_defense is not None:
        raise NotApplicable(f"attack 'bayes' cannot model gradient defence {facts.gradient_defense!r}; it models "
                            f"the label defences {names} without a gradient defence")
    if facts.label_defense is not None:
        check(facts.epsilon is not None, f"attack 'bayes' needs the epsilon of {facts.label_defense!r}")
    if facts.label_defense == "laplace":
        check(facts.label_range is not None, "attack 'bayes' needs Laplace's public clip range (low, high); "
                                             "private bounds are not public")


def _classification(view: PartyView, features: np.ndarray, known_rows: np.ndarray, labels: np.ndarray,
                    calibrate: np.ndarray, read: np.ndarray, unknown: np.ndarray, facts: PublicDefense,
                    strength: float) -> tuple[np.ndarray, dict]:
    k = 2 if view.task == "binary" else int(view.n_classes)
    read_class = (read >= 0.5).astype(np.int64) if view.task == "binary" else read.argmax(axis=1)
    mechanism = np.eye(k) if facts.label_defense is None else rr_transition_matrix(float(facts.epsilon), k)
    counts = strength * mechanism
    np.add.at(counts, (labels[calibrate].astype(np.int64), read_class[known_rows[calibrate]]), 1.0)
    likelihood = counts / counts.sum(axis=1, keepdims=True)
    prior = fit_class_probabilities(logistic_model(), features, known_rows, labels, k)[unknown]
    posterior = prior * likelihood[:, read_class[unknown]].T
    posterior /= np.maximum(posterior.sum(axis=1, keepdims=True), 1e-300)
    agreement = float(np.mean(read_class[known_rows[calibrate]] == labels[calibrate]))
    return (posterior[:, 1] if view.task == "binary" else posterior), {"calibration_agreement": agreement}


def _regression(features: np.ndarray, known_rows: np.ndarray, labels: np.ndarray, calibrate: np.ndarray,
                read: np.ndarray, unknown: np.ndarray, facts: PublicDefense,
                knowledge: AttackerKnowledge) -> tuple[np.ndarray, dict]:
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def ridge():
        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))

    fit_rows, cal_rows = known_rows[~calibrate], known_rows[calibrate]
    held_out = ridge().fit(features[fit_rows], labels[~calibrate]).predict(features[cal_rows])
    spread = max(float(np.std(labels)), 1e-12)
    sigma = max(math.sqrt(float(np.mean((labels[calibrate] - held_out) ** 2))), 1e-3 * spread)
    mean = ridge().fit(features[known_rows], labels).predict(features[unknown])
    low, high = facts.label_range or knowledge.label_range or (-np.inf, np.inf)
    scale = (high - low) / float(facts.epsilon) if facts.label_defense == "laplace" else 0.0
    observed = float(np.mean(np.abs(read[cal_rows] - np.clip(labels[calibrate], low, high))))
    scale = max(scale, observed, 1e-3 * spread)
    offsets = np.linspace(-5.0, 5.0, GRID)
    out = np.empty(len(unknown))
    for chunk in np.array_split(np.arange(len(unknown)), max(1, len(unknown) // 4096)):
        grid = mean[chunk, None] + sigma * offsets[None, :]  # the prior's support, +-5 s
        log_post = -0.5 * offsets[None, :] ** 2 - np.abs(read[unknown[chunk], None] - np.clip(grid, low, high)) / scale
        weight = np.exp(log_post - log_post.max(axis=1, keepdims=True))
        out[chunk] = (weight * grid).sum(axis=1) / weight.sum(axis=1)
    return out, {"prior_sigma": sigma, "noise_scale": scale}
