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
