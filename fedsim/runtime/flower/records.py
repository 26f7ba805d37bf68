"""The wire format of the Flower runtime: message types, record names, and the label party's reply checks.

Every message the label party (ServerApp) sends is one of

- `query.hello`  ConfigRecord `hello` {party_files: bool}; reply ConfigRecord `node` {partition: int} (every
                 node, also idle ones beyond K; with per-party files a node without its file fails here)
- `query.setup`  (one shared table) to feature party k only: ConfigRecord `setup` {party: `FeaturePartySetup`
                 JSON: public facts, its own model's settings, never the seed or a label-party setting} +
                 ArrayRecord `data`
                 {features: float32 (n_train, d_k), its train block; train_ids: int64 (n_train,)};
                 reply ConfigRecord `node` {partition: int}
- `train.step`   ConfigRecord `step` {grad_epoch, grad_step, next_epoch, next_step (-1 = none), rows: list[int]}
                 and, from the second step on, ArrayRecord `gradient` {g: float32 (batch, d)}, the cut
                 gradient of the previous step; reply ConfigRecord `step` {epoch, step} + ArrayRecord
                 `embeddings` {h: float32 (batch, d)} for the requested next step (or no embeddings if none)
- `query.psi`    (per-party files) ConfigRecord `psi` {request: bytes, size: int}, the label party's blinded
                 ids (fedsim.deploy.psi); reply ConfigRecord `psi` {setup: bytes, response: bytes}
- `query.split`  (per-party files) to feature party k only: ArrayRecord `split` {train, test: int64 ids of the
                 intersection only} + ConfigRecord `setup` {party: its `FeaturePartySetup` JSON}; reply
                 ConfigRecord `block` {width: int}, the width of the party's encoded block
- `query.collect` empty; reply: the party's trained bottom model and transcript (result collection by the
                 simulator, not part of the split-learning protocol). With per-party files it holds
                 ConfigRecord `run` {facts: the run's public facts and privacy claim, for the party's own
                 transcript manifest} and the reply is ArrayRecord `test` {h: float32 (n_test, d)} only, the
                 party's embeddings of the test rows

So labels and targets never leave the ServerApp: only a party's own features and ids, its setup, batch row
positions, step numbers and gradients do.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, RecordDict

from fedsim.errors import PartyError

HELLO, SETUP, STEP, COLLECT = "query.hello", "query.setup", "train.step", "query.collect"
PSI, SPLIT = "query.psi", "query.split"  # per-party files only (`party-files=true`)
NO_STEP = -1
PARTITION_KEY = "partition-id"


class PartyFault(PartyError):
    """A feature party failed, timed out or sent an invalid reply; the message names the party and the step."""


def step_record(
    grad: tuple[int, int] | None, next_step: tuple[int, int] | None, rows: np.ndarray | None
) -> ConfigRecord:
    grad_epoch, grad_step = grad if grad is not None else (NO_STEP, NO_STEP)
    next_epoch, next_index = next_step if next_step is not None else (NO_STEP, NO_STEP)
    return ConfigRecord({
        "grad_epoch": grad_epoch, "grad_step": grad_step, "next_epoch": next_epoch, "next_step": next_index,
        "rows": [] if rows is None else [int(r) for r in rows],
    })


def to_array(tensor: torch.Tensor | np.ndarray) -> Array:
    value = tensor.detach().numpy() if isinstance(tensor, torch.Tensor) else tensor
    return Array(np.ascontiguousarray(value))


def arrays_record(arrays: dict[str, Any]) -> ArrayRecord:
    return ArrayRecord({name: to_array(value) for name, value in arrays.items()})


def where(party: int, epoch: int, step: int) -> str:
    return f"feature party {party} at epoch {epoch} step {step}"


def fault_reason(reply: Message) -> str:
    """The last line of a ClientApp's error (Flower wraps the remote exception text)."""
    reason = (reply.error.reason or f"error code {reply.error.code}").strip()
    return reason.splitlines()[-1] if reason else f"error code {reply.error.code}"


def check_embeddings(content: RecordDict, party: int, epoch: int, step: int, batch: int, dim: int) -> torch.Tensor:
    """The embeddings of one reply, or `PartyFault` if they are not float32 (batch, dim), finite, for this step."""
    at = where(party, epoch, step)
    info = content.config_records.get("step")
    if info is None or "embeddings" not in content.array_records:
        raise PartyFault(f"{at}: invalid reply: expected records 'step' and 'embeddings', got {sorted(content.keys())}")
    got = (info.get("epoch"), info.get("step"))
    if got != (epoch, step):
        raise PartyFault(f"{at}: reply is for epoch {got[0]} step {got[1]} (wrong step)")
    record = content.array_records["embeddings"]
    if list(record.keys()) != ["h"]:
        raise PartyFault(f"{at}: invalid reply: embeddings record must hold exactly 'h', got {list(record.keys())}")
    array = record["h"]
    if array.dtype != "float32":
        raise PartyFault(f"{at}: embeddings have dtype {array.dtype}, expected float32")
    if tuple(array.shape) != (batch, dim):
        raise PartyFault(f"{at}: embeddings have shape {tuple(array.shape)}, expected ({batch}, {dim})")
    try:
        h = array.numpy()
    except (ValueError, TypeError, EOFError) as exc:  # TypeError: not in numpy form; EOFError: no bytes
        raise PartyFault(f"{at}: embeddings cannot be decoded: {exc}") from None
    if h.dtype != np.float32 or h.shape != (batch, dim):
        raise PartyFault(f"{at}: embeddings decode to {h.dtype} {h.shape}, expected float32 ({batch}, {dim})")
    if not np.isfinite(h).all():
        raise PartyFault(f"{at}: embeddings contain {int((~np.isfinite(h)).sum())} NaN/inf values")
    return torch.from_numpy(h.copy())


def check_ack(content: RecordDict, party: int, epoch: int, step: int) -> None:
    """The reply to the last gradient carries no embeddings, only the step it acknowledges."""
    info = content.config_records.get("step")
    got = (info.get("epoch"), info.get("step")) if info is not None else None
    if got != (NO_STEP, NO_STEP) or "embeddings" in content.array_records:
        raise PartyFault(f"{where(party, epoch, step)}: invalid reply to the last gradient: {got}")
