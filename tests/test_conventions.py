"""Named conventions: a failed party is not a user mistake; the transcript recorder is a Protocol."""

from __future__ import annotations

from flwr.app import ArrayRecord

import fedsim.training
from fedsim.cli.app import main
from fedsim.errors import PartyError, UserError
from fedsim.runtime.flower.client import StateRecorder
from fedsim.runtime.flower.records import PartyFault
from fedsim.transcript import Recorder, TranscriptRecorder


def test_a_failed_party_exits_1_and_names_it(monkeypatch, capsys) -> None:
    def crash(*args, **kwargs):
        raise PartyFault("feature party 1 at epoch 0 step 3: the feature party failed: disk on fire")

    monkeypatch.setattr(fedsim.training, "train", crash)
    assert main(["train", "--dataset", "diabetes", "--epochs", "1", "--quiet"]) == 1
    assert capsys.readouterr().err.strip() == ("fedsim: error: feature party 1 at epoch 0 step 3: the feature party "
                                                "failed: disk on fire")


def test_party_errors_are_not_user_errors() -> None:
    assert issubclass(PartyFault, PartyError) and not issubclass(PartyError, UserError)
    assert main(["train", "--epochs", "0", "--quiet"]) == 2  # a user mistake still exits 2


def test_both_recorders_satisfy_the_protocol() -> None:
    """mypy checks the signatures (fedsim/runtime/flower/client.py passes a StateRecorder with no ignore)."""
    assert isinstance(TranscriptRecorder(0, 4, 10, None), Recorder)
    assert isinstance(StateRecorder(ArrayRecord(), None), Recorder)
    assert not isinstance(object(), Recorder)
