"""The label party as a Flower `ServerApp`: it owns the labels, the top model and the defences, and drives training.

One round trip per step: the message that carries step t's cut gradient also asks for step t+1's embeddings,
so each feature party applies the update of step t before its forward pass of step t+1, the same order as
the local runtime. Replies are checked (`records.check_embeddings`) before they reach the label party, and
every wait has a deadline, so a failed, dead or misbehaving feature party stops the run with one error naming
the party and the step instead of a hang or an obscure exception.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid

from fedsim.assembly import (
    build_feature_party,
    build_label_party,
    feature_setup,
    load_dataset,
    make_schedule,
    resolve_defenses,
    resolve_model,
)
from fedsim.config import TrainConfig, config_from_run_config
from fedsim.data import VerticalDataset
from fedsim.data.party_files import SPLITS, label_party_dataset, read_label_file, width_block
from fedsim.deploy.psi import psi_request
from fedsim.errors import UserError, check
from fedsim.fileio import to_jsonable, write_json_atomic
from fedsim.parties import FeatureParty
from fedsim.privacy import combine_claims
from fedsim.privacy.claims import PrivacyClaim
from fedsim.progress import progress_bar
from fedsim.run_result import TrainResult, finish_run, loss_name, write_run
from fedsim.runtime.flower.records import (
    COLLECT,
    HELLO,
    PSI,
    SETUP,
    SPLIT,
    STEP,
    PartyFault,
    arrays_record,
    check_ack,
    check_embeddings,
    fault_reason,
    step_record,
    where,
)
from fedsim.transcript import ARRAYS, EpochTranscript, Transcript

DEFAULT_TIMEOUT_S = 60.0
SETUP_TIMEOUT_S = 120.0  # the first message also waits for Ray actors / ClientApp processes to start
# Our own reply polling (1 ms doubling to 10 ms): Flower's send_and_receive sleeps 0.1 s (simulation) or 3 s
# (deployment) between pulls, which would add up to one more engine tick to every step.
POLL_FIRST_S, POLL_MAX_S = 0.001, 0.01
# Under `flwr run` the pause grows to 50 ms: a deployed SuperNode pulls its next message only 3 s after its
# last reply, so a faster ServerApp gains nothing there, while up to 100 pulls/s (each one RPC served by the
# SuperLink) take CPU from the nodes' ClientApp processes (bench_deploy_latency counts pulls per exchange).
FLWR_RUN_POLL_MAX_S = 0.05

Audit = Callable[[Message], None]


class Link:
    """Sends one message per party and collects the replies, failing with `PartyFault` at the deadline."""

    def __init__(self, grid: Grid, timeout: float, audit: Audit | None = None, poll_max: float = POLL_MAX_S) -> None:
        self.grid, self.timeout, self.audit, self.poll_max = grid, timeout, audit, poll_max

    def exchange(self, messages: dict[int, Message], what: Callable[[int], str],
                 timeout: float | None = None) -> dict[int, Message]:
        for message in messages.values():
            if self.audit is not None:
                self.audit(message)
        ids = list(self.grid.push_messages(list(messages.values())))
        party_of = dict(zip(ids, messages, strict=True))
        replies: dict[int, Message] = {}
        timeout = self.timeout if timeout is None else timeout
        deadline, pause = time.monotonic() + timeout, POLL_FIRST_S
        while len(replies) < len(messages):
            for reply in self.grid.pull_messages([i for i in ids if party_of[i] not in replies]):
                party = party_of[reply.metadata.reply_to_message_id]
                if reply.has_error():
                    raise PartyFault(f"{what(party)}: the feature party failed: {fault_reason(reply)}")
                replies[party] = reply
            if len(replies) < len(messages):
                if time.monotonic() > deadline:
                    missing = sorted(set(messages) - set(replies))
                    raise PartyFault(f"{what(missing[0])}: no reply within {timeout:g} s (party down or stuck; "
                                     f"silent parties: {missing})")
                time.sleep(pause)
                pause = min(2 * pause, self.poll_max)
        return replies


def parse_nodes(text: str, parties: int) -> dict[int, int]:
    """The run config's `nodes` ("NODE_ID:PARTITION ...", space-separated): the federation the label party
    declared, as {partition: node id}, every partition 0..K-1 exactly once; else a one-line `UserError`.

    Why node ids: with `--enable-supernode-auth` a SuperNode exists only once the label party has registered
    its public key (`flwr supernode register`, or `fedsim deploy register`, prints the node id), and the
    SuperLink admits a node under that id only with that key, so the id names the key."""
    pairs = {}
    for item in text.split():
        node, sep, partition = item.partition(":")
        if not (sep and node.isdigit() and partition.isdigit()):
            raise UserError(f"nodes= takes NODE_ID:PARTITION pairs separated by spaces (e.g. '1234:0 5678:1'), "
                            f"got {item!r}")
        if int(partition) in pairs:
            raise UserError(f"nodes= names partition {partition} twice")
        pairs[int(partition)] = int(node)
    if sorted(pairs) != list(range(parties)):
        raise UserError(f"nodes= must name each partition 0..{parties - 1} once (parties={parties}), got "
                        f"partitions {sorted(pairs)}")
    if len(set(pairs.values())) != parties:
        raise UserError("nodes= names one node id for two partitions")
    return pairs


def connect(grid: Grid, link: Link, config: TrainConfig, party_files: bool = False,
            declared: dict[int, int] | None = None) -> list[int]:
    """Node id of each feature party 0..K-1: ask the nodes their partition (with per-party files, a node
    without its own file fails here); the parties are set up afterwards (`set_up` or `align`).

    With a `declared` federation ({partition: node id}, `parse_nodes`) only those nodes are asked, and each
    must hold its declared partition: a node outside it gets no message at all. Without one every online
    node gets the (empty) hello, and nodes beyond the K partitions nothing more."""
    timeout = max(link.timeout, SETUP_TIMEOUT_S)
    deadline = time.monotonic() + timeout

    def still_waiting() -> str | None:
        """Why setup cannot start yet (the `PartyFault` message should the deadline pass), or None."""
        online = set(grid.get_node_ids())
        if declared is None:
            return None if len(online) >= config.parties else (
                f"only {len(online)} of {config.parties} feature parties connected within {timeout:g} s; start one "
                f"SuperNode per party (partition-id 0..{config.parties - 1})")
        absent = sorted(set(declared.values()) - online)
        pairs = " ".join(f"{node}:{k}" for k, node in sorted(declared.items()))
        return f"declared nodes {absent} did not connect within {timeout:g} s; start their SuperNodes " \
               f"(nodes=\"{pairs}\", NODE_ID:PARTITION)" if absent else None

    while (problem := still_waiting()) is not None:
        if time.monotonic() > deadline:
            raise PartyFault(problem)
        time.sleep(0.1)
    nodes = sorted(grid.get_node_ids()) if declared is None else sorted(declared.values())
    content = RecordDict({"hello": ConfigRecord({"party_files": party_files})})
    replies = link.exchange({n: Message(content, n, HELLO) for n in nodes}, lambda n: f"node {n} during setup",
                            timeout)
    by_party: dict[int, int] = {}
    for node, reply in replies.items():
        partition = partition_of(reply, node)
        if declared is not None and declared.get(partition) != node:
            raise PartyFault(f"node {node} holds partition-id {partition}, but nodes= declares it for partition "
                             f"{next(k for k, n in declared.items() if n == node)}")
        if partition in by_party:
            raise PartyFault(f"nodes {by_party[partition]} and {node} both claim partition-id {partition}")
        by_party[partition] = node
    absent_parties = [k for k in range(config.parties) if k not in by_party]
    if absent_parties:
        raise PartyFault(f"no node holds feature parties {absent_parties}; partition-ids present: {sorted(by_party)}")
    return [by_party[k] for k in range(config.parties)]


def set_up(link: Link, nodes: list[int], config: TrainConfig, dataset: VerticalDataset) -> None:
    """One shared table: send each feature party its setup and its train block (`setup_content`)."""
    setups = {k: Message(setup_content(config, dataset, k), node, SETUP) for k, node in enumerate(nodes)}
    for k, reply in link.exchange(setups, lambda k: f"feature party {k} during setup",
                                  max(link.timeout, SETUP_TIMEOUT_S)).items():
        if partition_of(reply, nodes[k]) != k:
            raise PartyFault(f"node {nodes[k]} answered the setup of feature party {k} as another party")


def setup_content(config: TrainConfig, dataset: VerticalDataset, index: int) -> RecordDict:
    """Feature party `index`'s setup message: its `FeaturePartySetup` and its train block with the sample ids."""
    return RecordDict({
        "setup": ConfigRecord({"party": feature_setup(config, dataset, index).model_dump_json()}),
        "data": arrays_record({"features": np.ascontiguousarray(dataset.blocks[index].train, dtype=np.float32),
                               "train_ids": np.asarray(dataset.train_ids, dtype=np.int64)}),
    })


def partition_of(reply: Message, node: int) -> int:
    """The partition-id a node's setup reply names, or a `PartyFault`."""
    try:
        return int(reply.content.config_records["node"]["partition"])
    except (KeyError, TypeError, ValueError):
        raise PartyFault(f"node {node} sent an invalid setup reply: {sorted(reply.content.keys())}") from None


def align(link: Link, nodes: list[int], config: TrainConfig, split: str) -> tuple[TrainConfig, VerticalDataset]:
    """Per-party files: intersect the ids privately (PSI, one round trip), draw the split over the
    intersection, send each party its setup (`FeaturePartySetup`), its training and test ids (no other id)
    and the run's public facts (those of a transcript manifest: task, classes, the privacy claim), and learn
    its block's width. Returns the config with the model width resolved (`--top-model sum`) and the dataset."""
    labels, own = read_label_file(str(config.data), config.target, config.id_column)
    request = psi_request(labels.index)
    content = RecordDict({"psi": ConfigRecord({"request": request.request, "size": request.size})})
    replies = link.exchange({k: Message(content, node, PSI) for k, node in enumerate(nodes)},
                            lambda k: f"feature party {k} during id alignment")
    common = np.arange(len(labels))
    for k in range(len(nodes)):
        try:
            record = replies[k].content.config_records["psi"]
            found = request.intersection(bytes(record["setup"]), bytes(record["response"]))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as exc:
            raise PartyFault(f"feature party {k} sent an invalid id-alignment answer: {exc}") from None
        common = np.intersect1d(common, found)
    dataset = label_party_dataset(Path(str(config.data)).name, labels, own, common, config.task, config.seed,
                                  config.test_fraction, split, config.impute)
    config = resolve_model(config, dataset)
    ids = arrays_record({"train": dataset.train_ids.astype(np.int64), "test": dataset.test_ids.astype(np.int64)})
    messages = {k: Message(RecordDict({"split": ids, "setup": ConfigRecord({
        "party": feature_setup(config, dataset, k).model_dump_json()})}), node, SPLIT)
        for k, node in enumerate(nodes)}
    replies = link.exchange(messages, lambda k: f"feature party {k} while encoding its block")
    try:
        widths = [int(replies[k].content.config_records["block"]["width"]) for k in range(len(nodes))]  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:
        raise PartyFault(f"a feature party sent an invalid block width: {exc}") from None
    dataset.blocks = [width_block(k, w) for k, w in enumerate(widths)]
    return config, dataset


def train_on_grid(
    grid: Grid, config: TrainConfig, dataset: VerticalDataset | None, timeout: float = DEFAULT_TIMEOUT_S,
    show_progress: bool = False, audit: Audit | None = None, engine: str = "simulation",
    poll_max: float = POLL_MAX_S, split: str = "stratified", declared: dict[int, int] | None = None,
) -> TrainResult:
    """Train through Flower messages and return a `TrainResult` equal in content to the local runtime's.

    `dataset` None: per-party files (each feature party reads its own file, named in its node config); the
    label party aligns the ids privately first (`align`, with `split`) and never holds a feature block.
    `declared`: the federation as {partition: node id} (`parse_nodes`); nodes outside it get nothing."""
    started = time.perf_counter()
    link = Link(grid, timeout, audit, poll_max)
    if dataset is not None:  # defence errors before waiting for the nodes; the nodes get the resolved width
        resolve_defenses(config, dataset.task)
        config = resolve_model(config, dataset)
    check(dataset is not None or config.impute != "drop",
          "impute=drop with party-files: each party would drop rows after the ids are aligned; clean the files, "
          "or use impute=mean|median")
    party_files = dataset is None
    nodes = connect(grid, link, config, party_files, declared)
    if dataset is None:
        config, dataset = align(link, nodes, config, split)
    else:
        set_up(link, nodes, config, dataset)
    label_transform, gradient_transform = resolve_defenses(config, dataset.task)
    label_party = build_label_party(config, dataset, label_transform, gradient_transform)
    schedule = make_schedule(config, dataset)
    setup_s = time.perf_counter() - started
    steps = list(schedule.steps())
    dim = config.model.embedding_dim

    def send(grad_at: tuple[int, int] | None, gradients: list | None, t_next: int) -> dict[int, Message]:
        nxt = steps[t_next] if t_next < len(steps) else None
        messages = {}
        for k, node in enumerate(nodes):
            content = RecordDict({"step": step_record(grad_at, nxt[:2] if nxt else None, nxt[2] if nxt else None)})
            if gradients is not None:
                content["gradient"] = arrays_record({"g": gradients[k]})
            messages[k] = Message(content, node, STEP)
        at = nxt[:2] if nxt else grad_at
        return link.exchange(messages, lambda k: where(k, *at))

    start = time.perf_counter()
    with progress_bar(schedule.total_steps, f"training ({dataset.name}, flower)", show_progress) as advance:
        replies = send(None, None, 0)
        step_s, last = [], start
        for t, (epoch, step, rows) in enumerate(steps):
            embeddings = [check_embeddings(replies[k].content, k, epoch, step, len(rows), dim)
                          for k in range(len(nodes))]
            gradients = label_party.train_step(rows, embeddings, epoch, step)
            replies = send((epoch, step), gradients, t + 1)
            step_s.append(time.perf_counter() - last)
            last += step_s[-1]
            advance(1)
        for k, reply in replies.items():
            check_ack(reply.content, k, epoch, step)
    train_s = time.perf_counter() - start
    flower = {"engine": engine, "setup_s": setup_s, "round_trips_per_step": 1.0 + 1.0 / len(steps),
              "step_ms_median": 1000 * float(np.median(step_s)), "step_ms_max": 1000 * max(step_s),
              "party_files": party_files, "nodes": {str(k): node for k, node in enumerate(nodes)}}
    if party_files:
        return finish_run(config, dataset, [], label_party, label_transform, gradient_transform, train_s,
                          schedule.total_steps, [], extra={"flower": flower},
                          test_embeddings=collect_test(link, nodes, dataset, combine_claims(
                              label_transform.privacy(), gradient_transform.privacy()), dim))
    feature_parties, transcripts = collect(link, nodes, config, dataset)
    return finish_run(config, dataset, feature_parties, label_party, label_transform, gradient_transform, train_s,
                      schedule.total_steps, transcripts, extra={"flower": flower})


def collect_test(link: Link, nodes: list[int], dataset: VerticalDataset, privacy: PrivacyClaim,
                 dim: int) -> list[np.ndarray]:
    """Per-party files: each party's embeddings of the test rows (its transcript stays on its node). The
    message brings the run's public facts for the party's own transcript manifest (task, classes, and the
    privacy claim, which exists once training has run)."""
    facts = {"task": dataset.task, "loss": loss_name(dataset.task), "n_classes": dataset.n_classes,
             "classes": dataset.classes, "dataset": dataset.name, "privacy": {
                 "epsilon": privacy.epsilon, "delta": privacy.delta, "guarantee": privacy.guarantee}}
    content = RecordDict({"run": ConfigRecord({"facts": json.dumps(facts)})})
    replies = link.exchange({k: Message(content, node, COLLECT) for k, node in enumerate(nodes)},
                            lambda k: f"feature party {k} while collecting test embeddings")
    n_test = dataset.n_test
    embeddings = []
    for k in range(len(nodes)):
        content = replies[k].content
        if "test" not in content.array_records:
            raise PartyFault(f"feature party {k} sent no test embeddings: {sorted(content.keys())}")
        try:
            h = content.array_records["test"]["h"].numpy()
        except (KeyError, ValueError, TypeError, EOFError) as exc:
            raise PartyFault(f"feature party {k} sent invalid test embeddings: {exc}") from None
        if h.dtype != np.float32 or h.shape != (n_test, dim) or not np.isfinite(h).all():
            raise PartyFault(f"feature party {k} sent test embeddings {h.dtype} {h.shape}, expected finite "
                             f"float32 ({n_test}, {dim})")
        embeddings.append(h)
    return embeddings


def collect(link: Link, nodes: list[int], config: TrainConfig,
            dataset: VerticalDataset) -> tuple[list[FeatureParty], list[Transcript]]:
    """Fetch each party's trained bottom model and transcript, for the result (not part of the protocol)."""
    replies = link.exchange({k: Message(RecordDict(), node, COLLECT) for k, node in enumerate(nodes)},
                            lambda k: f"feature party {k} while collecting results")
    parties, transcripts = [], []
    for k in range(len(nodes)):
        content = replies[k].content
        party = build_feature_party(config, dataset, k)
        try:  # what a party can get wrong: missing records, a wrong state dict, arrays not in numpy form (TypeError)
            party.model.load_state_dict(content.array_records["model"].to_torch_state_dict())
            arrays = content.array_records["transcript"]
            epochs = json.loads(str(content.config_records["party"]["epochs"]))
            if not (isinstance(epochs, list) and all(isinstance(e, int) for e in epochs)):
                raise ValueError(f"epochs must be a list of integers, got {epochs!r}")
            transcript = Transcript(k, [EpochTranscript(e, *(arrays[f"{e}.{name}"].numpy() for name in ARRAYS))
                                        for e in epochs])
        except (KeyError, RuntimeError, ValueError, TypeError, EOFError) as exc:
            raise PartyFault(f"feature party {k} sent an invalid result: {exc}") from None
        parties.append(party)
        transcripts.append(transcript)
    return parties, transcripts


# --- `flwr run .`: settings come from the run config ([tool.flwr.app.config] in pyproject.toml, or -c) ---

RUNTIME_KEYS = {"timeout", "transcript", "result", "overwrite", "party-files", "split", "nodes"}


def settings_from_run_config(run_config: dict[str, Any]) -> tuple[TrainConfig, dict[str, Any]]:
    """Split a Flower run config into a `TrainConfig` (each setting's key is declared on its field:
    `fedsim.config.settings`) and the runtime settings; "" means unset.

    `defense-params` holds the defences' KEY=VALUE pairs separated by spaces ("low=0 high=30"), read like
    `fedsim train --defense-param` and checked by the defences' parameter schemas."""
    train = {k: v for k, v in run_config.items() if k not in RUNTIME_KEYS}
    runtime = {k: v for k, v in run_config.items() if k in RUNTIME_KEYS and v != ""}
    config = config_from_run_config(TrainConfig, train, runtime="flower")
    return config, runtime


def run_from_context(grid: Grid, context: Context) -> None:
    """Entry point of `flwr run .`: train, then write the transcript folder and the result JSON if asked.

    The label party's outputs name its data (the transcript folder holds the true labels), so they are
    written private: folders 0700, files 0600. With `party-files=true` each feature party reads its own file
    (node config `data=`, `id-column=`), `data=` is the label party's own file, and the transcripts stay with
    their parties (node config `transcript-dir=`): `transcript=` is refused."""
    config, runtime = settings_from_run_config(dict(context.run_config))
    party_files = bool(runtime.get("party-files", False))
    split = str(runtime.get("split", "stratified"))
    if split not in SPLITS:
        raise UserError(f"split {split!r} is not one of: {', '.join(SPLITS)}")
    transcript = Path(runtime["transcript"]) if "transcript" in runtime else None
    if party_files:
        if transcript is not None:
            raise UserError("transcript= is not available with party-files=true: each feature party writes its "
                            "own transcript (node config transcript-dir=)")
        if config.data is None:
            raise UserError("party-files=true needs data= (the label party's file: ids, target, own features)")
    dataset = None if party_files else load_dataset(config)
    declared = parse_nodes(str(runtime["nodes"]), config.parties) if "nodes" in runtime else None
    overwrite = bool(runtime.get("overwrite", False))
    if transcript is not None and transcript.exists() and not overwrite:
        raise UserError(f"output directory {str(transcript)!r} already exists; set overwrite=true to replace it")
    try:
        result = train_on_grid(grid, config, dataset, float(runtime.get("timeout", DEFAULT_TIMEOUT_S)),
                               engine="flwr run", poll_max=FLWR_RUN_POLL_MAX_S, split=split, declared=declared)
    except PartyFault as exc:
        if "result" in runtime:
            write_json_atomic(Path(runtime["result"]), {"error": str(exc)}, private=True)
        raise
    if transcript is not None:
        write_run(result, transcript, overwrite, private=True)
    payload = result.to_json()
    if "result" in runtime:
        write_json_atomic(Path(runtime["result"]), payload, private=True)
    logging.getLogger("flwr").info("fedsim result: %s", json.dumps(to_jsonable(payload)))
