"""`--auditor white-box`: the likelihood ratio read from the label party's recorded state, per defence law."""

from __future__ import annotations

import pytest

from fedsim.audit.training import audit_training
from fedsim.config import TrainConfig
from fedsim.errors import UserError

BINARY = {"dataset": "synthetic_ctr", "rows": 800, "epochs": 2}


@pytest.mark.parametrize("fields,law,analysis", [
    ({"gradient_defense": "grad_perturb", "epsilon": 4.0}, "released labels per step",
     "f-DP, 2-fold randomised-response family"),  # one RR per epoch, 2 epochs
    ({"label_defense": "rr", "epsilon": 2.0}, "released labels", "f-DP, (eps, delta)-DP curve"),
])
def test_white_box_reads_the_released_labels_law(fields, law, analysis):
    out = audit_training(TrainConfig(**BINARY, **fields, seed=0), canaries=300, seed=0, auditor="white-box")
    assert out["attack"] == f"likelihood ratio ({law})" and out["auditor"] == "white-box"
    assert out["verdict"] in ("consistent", "violation") and out["analysis"] == analysis
    # RR at eps: about e^eps / (1 + e^eps) of the guesses right; the LLR ranking must see it
    assert out["correct"] >= 0.7 * out["guesses"] and out["empirical_epsilon"] > 0.5


def test_white_box_never_regenerates_noise_the_recorder_keeps_the_training_identical():
    config = TrainConfig(**BINARY, label_defense="rr", epsilon=2.0, seed=0)
    white = audit_training(config, canaries=100, seed=0, auditor="white-box")
    black = audit_training(config, canaries=100, seed=0)
    assert white["test"] == black["test"]  # the recorder observes; the run is the same run


def test_white_box_refuses_a_run_without_a_formal_claim_before_training():
    config = TrainConfig(**BINARY, gradient_defense="max_norm", seed=0)
    with pytest.raises(UserError, match="needs a defence with a formal claim"):
        audit_training(config, canaries=100, auditor="white-box")


def test_top_model_updates_alone_tell_the_canaries_apart(monkeypatch):
    """dp_gradient's top-model DP-SGD releases are scored from Opacus' per-sample gradients: their part of the
    statistic alone ranks the canaries by their secret label (a wrong candidate, clip or sign would not)."""
    from sklearn.metrics import roc_auc_score

    from fedsim.audit import whitebox
    from fedsim.audit.report import secret_bits

    kept = []
    original = whitebox.WhiteBoxRecorder.__init__

    def keep(self, *args, **kwargs):
        original(self, *args, **kwargs)
        kept.append(self)

    monkeypatch.setattr(whitebox.WhiteBoxRecorder, "__init__", keep)
    config = TrainConfig(dataset="synthetic_regression", rows=800, epochs=3, gradient_defense="dp_gradient",
                         epsilon=8.0, delta=1e-5, defense_params={"label_low": 0.0, "label_high": 30.0}, seed=0)
    out = audit_training(config, canaries=300, seed=0, auditor="white-box")
    (recorder,) = kept
    assert recorder.top_updates  # every epoch's top-model steps with canaries were kept
    top_only = recorder.statistic - recorder.released
    assert roc_auc_score(secret_bits(out["canaries"], 0), top_only) > 0.65


def test_top_update_scores_are_the_gaussian_llr_with_the_other_canaries_marginalised():
    """The closed form (push-through + Sherman-Morrison, in the span of the d_j) equals the LLR computed in
    the parameter space: rest - sum_{j != i} t_j d_j ~ N(+-d_i / 2, I + sum_{j != i} v_j d_j d_j^T)."""
    import numpy as np

    from fedsim.audit.whitebox import top_update_scores

    rng = np.random.default_rng(3)
    dim, size = 12, 5
    d = rng.normal(size=(dim, size))
    rest = rng.normal(size=dim) * 2
    belief = rng.uniform(-0.49, 0.49, size)
    variance = 0.25 - belief**2
    expected = []
    for i in range(size):
        others = [j for j in range(size) if j != i]
        cov = np.eye(dim) + (d[:, others] * variance[others]) @ d[:, others].T
        centred = rest - d[:, others] @ belief[others]
        inv = np.linalg.inv(cov)
        up, down = centred - d[:, i] / 2, centred + d[:, i] / 2
        expected.append((down @ inv @ down - up @ inv @ up) / 2)
    got = top_update_scores(d.T @ rest, d.T @ d, belief)
    assert np.allclose(got, expected, rtol=1e-10, atol=1e-10)
    # certain beliefs (t_j = +-1/2, no variance) leave the projection with the others' known terms removed
    sure = np.sign(belief) / 2
    known = [d[:, i] @ (rest - d @ sure + d[:, i] * sure[i]) for i in range(size)]
    assert np.allclose(top_update_scores(d.T @ rest, d.T @ d, sure), known)
