"""Private AUC over Flower (Message API): the same public / prepare / release / estimate steps as in-process.

Horizontal (`setting="horizontal"`, M clients): each ClientApp holds one client's scores and labels
(chosen by its `partition-id`). Round 1 (`query.scores`): every client sends its scores, which label DP
treats as public, so the server can fix the bucket edges. Then per repeat (`query.release`): the server
sends the public parameters (edges or DPAUC's grid, epsilon, noise scale, seed, repeat); each client
computes its counts, adds its own noise from Generator([seed, 1, repeat, partition-id]) and replies with
its release only; the server estimates. Labels never leave a client.

Vertical (`setting="vertical"`, two nodes): the ServerApp is the score holder; the one ClientApp is the
label holder and holds only labels. The score holder sends the scores with the public parameters (scores,
bucket ids and sizes may flow to the label holder); the label holder replies with its label-DP release.

Both equal the in-process run for the same seed bit for bit: same functions, same random streams, the
releases summed in client order.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedsim.errors import UserError
from fedsim.evaluation.methods import (
    METHODS,
    AucMethod,
    Estimate,
    Public,
    Release,
    Settings,
    client_rng,
    server_rng,
)
from fedsim.runtime.flower.simulation import simulate

SCORES, RELEASE = "query.scores", "query.release"
TIMEOUT_S = 120.0


class FlowerAuc(NamedTuple):
    """What the server learnt: the public parameters, one estimate per repeat, the clients' releases of
    repeat 0 (`fedsim auc --curves` post-processes them)."""

    public: Public
    estimates: list[Estimate]
    first_releases: list[Release]


def arrays(values: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in values.items()})


def unpack(record: ArrayRecord) -> dict[str, np.ndarray]:
    return {k: record[k].numpy() for k in record}


def client_app(data: list[tuple[np.ndarray | None, np.ndarray]]) -> ClientApp:
    """A ClientApp whose node `partition-id` k holds data[k] = (scores or None when vertical, labels)."""
    app = ClientApp()

    def reply(message: Message, partition: int, content: RecordDict) -> Message:
        content["node"] = ConfigRecord({"partition": partition})
        return Message(content, reply_to=message)

    @app.query("scores")
    def send_scores(message: Message, context: Context) -> Message:
        partition = int(context.node_config["partition-id"])
        return reply(message, partition, RecordDict({"scores": arrays({"s": data[partition][0]})}))

    @app.query("release")
    def send_release(message: Message, context: Context) -> Message:
        partition = int(context.node_config["partition-id"])
        scores, labels = data[partition]
        setup = message.content.config_records["setup"]
        sent = unpack(message.content.array_records["public"])
        scores = sent.get("scores", scores)
        method = METHODS.get(str(setup["method"]))
        public = Public(sent["edges"], float(setup["epsilon"]), float(setup["noise"]))
        rng = client_rng(int(setup["seed"]), int(setup["repeat"]), partition)
        release = method.release(method.prepare(scores, labels, public), public, rng)
        return reply(message, partition, RecordDict({"release": arrays(release)}))

    return app


def exchange(grid: Grid, nodes: list[int], make: Any, what: str) -> dict[int, RecordDict]:
    """Send one query per node and return the replies by partition-id; a failed node is one UserError."""
    replies = grid.send_and_receive([Message(make(), node, message_type) for node, message_type in nodes],
                                    timeout=TIMEOUT_S)
    by_partition: dict[int, RecordDict] = {}
    for reply in replies:
        if reply.has_error():
            raise UserError(f"a Flower client failed during {what}: {reply.error.reason.strip().splitlines()[-1]}")
        by_partition[int(reply.content.config_records["node"]["partition"])] = reply.content
    if len(by_partition) != len(nodes):
        raise UserError(f"only {len(by_partition)} of {len(nodes)} Flower clients answered during {what}")
    return by_partition


def server_main(grid: Grid, method: AucMethod, settings: Settings, clients: int, repeats: int, seed: int,
                vertical_scores: np.ndarray | None) -> FlowerAuc:
    """The server's side: public parameters, then one release round per repeat."""
    deadline = time.monotonic() + TIMEOUT_S
    while len(nodes := sorted(grid.get_node_ids())) < clients:
        if time.monotonic() > deadline:
            raise UserError(f"only {len(nodes)} of {clients} Flower clients connected within {TIMEOUT_S:g} s")
        time.sleep(0.05)
    if vertical_scores is None:
        replies = exchange(grid, [(n, SCORES) for n in nodes], RecordDict, "the score round")
        held = [unpack(replies[k]["scores"])["s"] for k in range(clients)]
        scores, owner = np.concatenate(held), np.repeat(np.arange(clients), [h.size for h in held])
        public = method.public(scores, settings, owner if clients > 1 else None)
    else:
        scores = vertical_scores
        public = method.public(scores, settings)
    sent = {"edges": public.edges} if vertical_scores is None else {"edges": public.edges, "scores": scores}
    estimates, first = [], []  # type: list[Estimate], list[Release]
    for repeat in range(repeats):
        def make(repeat: int = repeat) -> RecordDict:
            setup = ConfigRecord({"method": method.name, "epsilon": public.epsilon, "noise": public.noise,
                                  "seed": seed, "repeat": repeat})
            return RecordDict({"setup": setup, "public": arrays(sent)})

        replies = exchange(grid, [(n, RELEASE) for n in nodes], make, f"release round {repeat}")
        releases = [unpack(replies[k]["release"]) for k in range(clients)]
        estimates.append(method.estimate(releases, public, server_rng(seed, repeat)))
        first = releases if repeat == 0 else first
    return FlowerAuc(public, estimates, first)


def run_flower(method: AucMethod, settings: Settings, scores: np.ndarray, labels: np.ndarray,
               parts: list[np.ndarray], repeats: int, seed: int,
               setting: str = "horizontal") -> FlowerAuc:
    """Run the AUC apps in Flower's simulation engine; `setting` = horizontal (M nodes) or vertical (1 node)."""
    vertical = setting == "vertical"
    if vertical and len(parts) != 1:
        raise UserError("the vertical setting has one label holder: use --clients 1")
    data = [(None if vertical else scores[idx], labels[idx]) for idx in parts]
    outcome: dict[str, Any] = {}
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        try:
            outcome["result"] = server_main(grid, method, settings, len(parts), repeats, seed,
                                            scores if vertical else None)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, outside Flower's thread
            outcome["error"] = exc

    simulate(server, client_app(data), len(parts))
    if "error" in outcome:
        raise outcome["error"]
    if "result" not in outcome:
        raise UserError("the Flower simulation ended before the server finished")
    return outcome["result"]
