"""The feature party as a Flower `ClientApp`: one party per node, its feature block chosen by `partition-id`.

All party state between messages lives in `context.state` (bottom model, optimizer state, the batch whose
gradient is awaited, the transcript), because a node may run each message in a fresh process (a deployed
SuperNode starts one ClientApp process per message; the simulation hands messages to any Ray actor). The
party is rebuilt each message with `build_feature_party_from_block` and its state restored, so it
trains bit-identically to the local runtime. The pending batch's graph is not kept: its forward pass is
recomputed, with the same weights, just before the backward pass.

The party learns nothing of the run beyond its `FeaturePartySetup` (public facts, its own model's settings)
and its data block, both in the setup message: never the seed or the label party's settings.

This module is imported by every deployed ClientApp process, so it imports only what a party needs per
message (torch, Flower's records, the party and model code); the party's data comes from the node's cache
(`node_data`), where the setup message's block was saved.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable, Mod

from fedsim.errors import UserError
from fedsim.parties import FeatureParty, FeaturePartySetup, build_feature_party_from_block
from fedsim.runtime.flower.node_data import (
    CACHE_DIR_KEY,
    NodeData,
    default_cache_dir,
    node_data,
    own_file_data,
    store,
)
from fedsim.runtime.flower.records import NO_STEP, PARTITION_KEY, arrays_record, to_array
from fedsim.transcript import ARRAYS, Transcript, TranscriptRecorder

SETUP_STATE, MODEL_STATE, OPTIM_STATE, PENDING_STATE, TRANSCRIPT_STATE, PARTY_FILES_STATE = (
    "fedsim.setup", "fedsim.model", "fedsim.optim", "fedsim.pending", "fedsim.transcript", "fedsim.party_files")
DATA_KEY, ID_COLUMN_KEY, TRANSCRIPT_DIR_KEY = "data", "id-column", "transcript-dir"  # node config, per-party files


def _cache_dir(context: Context) -> str:
    return str(context.node_config.get(CACHE_DIR_KEY) or default_cache_dir())


def _own_file(context: Context) -> tuple[str, str | None]:
    """This node's file and id column (node config `data=`, `id-column=`; None: the default, `id`)."""
    if DATA_KEY not in context.node_config:
        raise UserError(f"node config has no {DATA_KEY!r}; start the SuperNode with --node-config "
                        f"'{PARTITION_KEY}=K {DATA_KEY}=/path/to/own-file.csv {ID_COLUMN_KEY}=id'")
    id_column = context.node_config.get(ID_COLUMN_KEY)
    return str(context.node_config[DATA_KEY]), None if id_column is None else str(id_column)


def _party(context: Context, setup: FeaturePartySetup, recorder: StateRecorder | None = None) -> FeatureParty:
    data = node_data(context.run_id, setup.model_dump_json(), _cache_dir(context))
    return build_feature_party_from_block(setup, data.features, data.train_ids, recorder)


class StateRecorder:
    """Appends each step's transcript rows to `context.state`, dropping epochs beyond `keep_last`."""

    def __init__(self, arrays: ArrayRecord, keep_last: int | None) -> None:
        self.arrays, self.keep_last = arrays, keep_last

    def record(self, epoch: int, step: int, batch_ids: np.ndarray, embeddings: torch.Tensor,
               gradients: torch.Tensor) -> None:
        prefix = f"{epoch:06d}.{step:07d}"
        self.arrays[f"{prefix}.ids"] = to_array(np.asarray(batch_ids, dtype=np.int64))
        self.arrays[f"{prefix}.h"] = to_array(embeddings)
        self.arrays[f"{prefix}.g"] = to_array(gradients)
        if self.keep_last is None or step != 0:
            return
        epochs = sorted({int(key.split(".")[0]) for key in self.arrays})
        if len(epochs) > self.keep_last:
            for key in [k for k in self.arrays if int(k.split(".")[0]) in epochs[: -self.keep_last]]:
                del self.arrays[key]

    def transcript(self, party: int, dim: int, rows_per_epoch: int) -> Transcript:
        """Replay the stored steps into a `TranscriptRecorder` (same arrays as the local runtime's)."""
        recorder = TranscriptRecorder(party, dim, rows_per_epoch, self.keep_last)
        for key in sorted(k for k in self.arrays if k.endswith(".ids")):
            prefix = key[: -len(".ids")]
            epoch, step = (int(x) for x in prefix.split("."))
            recorder.record(epoch, step, self.arrays[key].numpy(), torch.from_numpy(self.arrays[f"{prefix}.h"].numpy()),
                            torch.from_numpy(self.arrays[f"{prefix}.g"].numpy()))
        return recorder.finish()


def _setup(context: Context) -> FeaturePartySetup:
    if SETUP_STATE not in context.state:
        raise RuntimeError("this node received a training message before the setup message")
    return FeaturePartySetup.model_validate_json(str(context.state.config_records[SETUP_STATE]["setup"]))


def _restore(context: Context) -> tuple[FeatureParty, StateRecorder, FeaturePartySetup]:
    """Rebuild this node's feature party exactly as the local runtime builds it, then restore its state."""
    setup = _setup(context)
    if TRANSCRIPT_STATE not in context.state:
        context.state[TRANSCRIPT_STATE] = ArrayRecord()
    recorder = StateRecorder(context.state.array_records[TRANSCRIPT_STATE], setup.record_last_epochs)
    party = _party(context, setup, recorder)
    if MODEL_STATE in context.state:
        party.model.load_state_dict(context.state.array_records[MODEL_STATE].to_torch_state_dict())
        saved = context.state.array_records[OPTIM_STATE]
        state = party.optimizer.state_dict()
        for key in saved:
            param, name = key.split(".", 1)
            state["state"].setdefault(int(param), {})[name] = torch.from_numpy(saved[key].numpy().copy())
        party.optimizer.load_state_dict(state)
    return party, recorder, setup


def _save(context: Context, party: FeatureParty) -> None:
    context.state[MODEL_STATE] = ArrayRecord(party.model.state_dict())
    context.state[OPTIM_STATE] = arrays_record({
        f"{param}.{name}": value for param, values in party.optimizer.state_dict()["state"].items()
        for name, value in values.items()
    })


def _warm_up(context: Context, setup: FeaturePartySetup) -> None:
    """Run one throwaway forward/backward, so the first step is not the slowest."""
    party = _party(context, setup)
    party.backward(torch.zeros_like(party.forward(np.zeros(1, dtype=np.int64))), 0, 0)


def _partition(context: Context) -> int:
    if PARTITION_KEY not in context.node_config:
        raise RuntimeError(f"node config has no {PARTITION_KEY!r}; start the SuperNode with "
                           f"--node-config '{PARTITION_KEY}=K'")
    return int(context.node_config[PARTITION_KEY])


def _partition_reply(message: Message, party: int) -> Message:
    return Message(RecordDict({"node": ConfigRecord({"partition": party})}), reply_to=message)


def hello(message: Message, context: Context) -> Message:
    """Reply with this node's party index (its `partition-id`), so the label party knows whom to set up; with
    per-party files a node started without its file fails here, before any id is exchanged."""
    if bool(message.content.config_records["hello"].get("party_files", False)):
        _own_file(context)
    return _partition_reply(message, _partition(context))


def _keep_setup(context: Context, party: int, setup_json: str) -> FeaturePartySetup:
    """Check the setup is this node's party's, forget any earlier run's state and keep the setup."""
    party_setup = FeaturePartySetup.model_validate_json(setup_json)
    if party_setup.index != party:
        raise RuntimeError(f"setup for feature party {party_setup.index} reached partition-id {party}")
    for key in (MODEL_STATE, OPTIM_STATE, PENDING_STATE, TRANSCRIPT_STATE, PARTY_FILES_STATE):
        if key in context.state:
            del context.state[key]
    context.state[SETUP_STATE] = ConfigRecord({"setup": setup_json})
    return party_setup


def setup(message: Message, context: Context) -> Message:
    """One shared table: keep this party's setup and save the data block the label party sent for the run's
    later messages; reply with the index."""
    party = _partition(context)
    setup_json = str(message.content.config_records["setup"]["party"])
    party_setup = _keep_setup(context, party, setup_json)
    data = message.content.array_records["data"]
    store(context.run_id, setup_json, NodeData(data["features"].numpy(), data["train_ids"].numpy()),
          _cache_dir(context))
    _warm_up(context, party_setup)
    return _partition_reply(message, party)


def psi(message: Message, context: Context) -> Message:
    """Per-party files: answer the label party's PSI request over this node's own ids (fedsim.deploy.psi)."""
    from fedsim.data.party_files import read_party_file  # pandas: only in the messages that read the file
    from fedsim.deploy.psi import psi_answer

    path, id_column = _own_file(context)
    record = message.content.config_records["psi"]
    setup_bytes, response = psi_answer(bytes(record["request"]), int(record["size"]),  # type: ignore[arg-type]
                                       read_party_file(path, id_column).index)
    return Message(RecordDict({"psi": ConfigRecord({"setup": setup_bytes, "response": response})}),
                   reply_to=message)


def split(message: Message, context: Context) -> Message:
    """Per-party files: keep this party's setup, encode its own file on the label party's train/test ids and
    save the block; reply with its width."""
    setup_json = str(message.content.config_records["setup"]["party"])
    party_setup = _keep_setup(context, _partition(context), setup_json)
    context.state[PARTY_FILES_STATE] = ConfigRecord({"party_files": True})
    ids = message.content.array_records["split"]
    data = own_file_data(_own_file(context), ids["train"].numpy().astype(np.int64),
                         ids["test"].numpy().astype(np.int64), party_setup.impute)
    store(context.run_id, setup_json, data, _cache_dir(context))
    _warm_up(context, party_setup)
    return Message(RecordDict({"block": ConfigRecord({"width": int(data.features.shape[1])})}), reply_to=message)


def step(message: Message, context: Context) -> Message:
    """Apply the gradient of the pending batch (if any), then send the embeddings of the requested batch."""
    party, _, _ = _restore(context)
    info = message.content.config_records["step"]
    grad_at = (int(info["grad_epoch"]), int(info["grad_step"]))
    if grad_at[0] != NO_STEP:
        pending = context.state.config_records.get(PENDING_STATE)
        if pending is None or (int(pending["epoch"]), int(pending["step"])) != grad_at:
            raise RuntimeError(f"gradient for epoch {grad_at[0]} step {grad_at[1]} does not match the pending batch")
        gradient = torch.from_numpy(message.content.array_records["gradient"]["g"].numpy().copy())
        party.forward(np.asarray(pending["rows"], dtype=np.int64))  # same weights as when first sent
        party.backward(gradient, *grad_at)
        del context.state[PENDING_STATE]
    reply = RecordDict()
    next_at = (int(info["next_epoch"]), int(info["next_step"]))
    if next_at[0] != NO_STEP:
        rows = np.asarray(info["rows"], dtype=np.int64)
        reply["embeddings"] = arrays_record({"h": party.forward(rows)})
        context.state[PENDING_STATE] = ConfigRecord({"epoch": next_at[0], "step": next_at[1],
                                                     "rows": [int(r) for r in rows]})
    reply["step"] = ConfigRecord({"epoch": next_at[0], "step": next_at[1]})
    _save(context, party)
    return Message(reply, reply_to=message)


def collect(message: Message, context: Context) -> Message:
    """Hand the trained bottom model and the transcript to the simulator (result collection only); with
    per-party files, only the embeddings of the test rows, and the transcript goes to this node's own
    `transcript-dir` (if set), private."""
    party, recorder, party_setup = _restore(context)
    dim = party_setup.public.bottom_model.embedding_dim
    transcript = recorder.transcript(party.index, dim, party.sample_ids.shape[0])
    if PARTY_FILES_STATE in context.state:
        data = node_data(context.run_id, str(context.state.config_records[SETUP_STATE]["setup"]),
                         _cache_dir(context))
        assert data.test_features is not None, "a per-party-files entry always holds the test block"
        if TRANSCRIPT_DIR_KEY in context.node_config:
            folder = Path(str(context.node_config[TRANSCRIPT_DIR_KEY])) / f"run-{context.run_id}"
            facts = json.loads(str(message.content.config_records["run"]["facts"]))
            write_own_transcript(folder, party_setup, party, transcript, data, facts)
        with torch.no_grad():
            test = party.embed(data.test_features).numpy()
        return Message(RecordDict({"test": arrays_record({"h": test})}), reply_to=message)
    arrays = {f"{e.epoch}.{name}": getattr(e, name) for e in transcript.epochs for name in ARRAYS}
    return Message(RecordDict({
        "model": ArrayRecord(party.model.state_dict()),
        "transcript": arrays_record(arrays),
        "party": ConfigRecord({"index": party.index, "epochs": json.dumps(transcript.epoch_numbers)}),
    }), reply_to=message)


def write_own_transcript(folder: Path, setup: FeaturePartySetup, party: FeatureParty, transcript: Transcript,
                         data: NodeData, facts: dict) -> None:
    """This party's own transcript folder, exactly what it saw (its features, ids, bottom model, embeddings
    and gradients) and the public facts the label party sent; no truth folder. Private (0700/0600), all or
    nothing; `fedsim attack --transcript FOLDER --party K --known-labels FILE` reads it."""
    from fedsim.fileio import staged_directory
    from fedsim.rundir import ManifestPrivacy, PartyShape, PartyView, TranscriptManifest, save_party

    public = setup.public
    manifest = TranscriptManifest(
        public=public, dataset=facts["dataset"], task=facts["task"], loss=facts["loss"], parties=public.parties,
        n_train=len(data.train_ids), n_classes=facts["n_classes"], classes=facts["classes"],
        epochs_recorded=transcript.epoch_numbers,
        shapes=[PartyShape(party=party.index, features=data.features.shape[1],
                           embedding_dim=public.bottom_model.embedding_dim)],
        privacy=ManifestPrivacy(**facts["privacy"]))
    party.model.eval()
    view = PartyView(party.index, transcript, data.features, data.train_ids, party.model, facts["task"],
                     facts["loss"], public.batch_size, public.parties, manifest)
    with staged_directory(folder, overwrite=True, private=True) as staging:
        save_party(staging / f"party_{party.index}", view)
        manifest.write(staging)


def log_handler_time(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Log (at DEBUG, i.e. with FLWR_LOG_LEVEL=DEBUG) when fedsim's handler starts and ends: with Flower's own
    DEBUG lines this splits a deployed message's time into process start, imports and handling
    (`bench_deploy_latency` reads these lines)."""
    logger = logging.getLogger("flwr")
    logger.debug("[fedsim] handler start: %s", message.metadata.message_type)
    reply = call_next(message, context)
    logger.debug("[fedsim] handler end: %s", message.metadata.message_type)
    return reply


def feature_app(mods: list[Mod] | None = None) -> ClientApp:
    """The feature-party ClientApp; `mods` wrap every handler (Flower mods: auditing, fault injection)."""
    client_app = ClientApp(mods=[*(mods or []), log_handler_time])
    client_app.query("hello")(hello)
    client_app.query("setup")(setup)
    client_app.query("psi")(psi)
    client_app.query("split")(split)
    client_app.train("step")(step)
    client_app.query("collect")(collect)
    return client_app

