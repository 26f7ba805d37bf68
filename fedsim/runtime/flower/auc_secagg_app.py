"""The secure-aggregation histogram AUC over Flower's real SecAgg+ (`SecAggPlusWorkflow` + `secaggplus_mod`).

SecAgg+ in flwr 1.42 is written for the legacy strategy shape: the workflow needs a `LegacyContext` with a
`Strategy` (`configure_fit` / `aggregate_fit`), and the mod wraps a ClientApp `train` function whose reply
is a FitRes record. So this is a dedicated ServerApp for AUC only: round 0 is the Message-API score query
of `fedsim.runtime.flower.auc_app` (scores are public; the server fixes the bucket edges), then one SecAgg+
run per repeat, driven directly (no `DefaultWorkflow`: no model to initialise or evaluate).
The client (`secagg_client`) takes its node's data from a holder: in memory here (`run_secure_flower`),
its own file in the deployable app (`auc_secagg_deploy`, `flwr run fedsim/deploy/secure-auc`).

Exactness. SecAgg+ clips a float vector to [-C, C], quantises it with (x + C) * R / (2C), sums modulo 2^k
and returns the mean of the dequantised vectors. We choose R = 2C, so quantisation is the identity on
integers (+C), and the client's weight equal to `max_weight` (1), so no rescaling; the stochastic rounding
never moves an integer. With A contributing clients the modular sum is sum(x_i + C) <= 2 C A and the sum of
the weights is R A = 2 C A, so nothing wraps when 2 C M < 2^31; C = 2^(30 - ceil(log2(M + 1))) leaves that
margin and keeps each quantised value (<= 2C) inside int32, where flwr's quantiser casts it. A client whose
vector leaves [-C, C] (a count or a noise share beyond ~2^25 / M; never for real data) raises instead of
being clipped. The server multiplies the returned mean by A and rounds: exact, since the sum is an integer
below 2^31 and float64 holds it with 22 bits to spare. So the server obtains the same integers as the
in-process sum of `fedsim.evaluation.secure_aggregation`, and the same estimate for the same seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common import Code, FitIns, FitRes, Parameters, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.compat.common import recorddict_compat as compat
from flwr.server import LegacyContext, ServerConfig, SimpleClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.compat.grid_client_proxy import GridClientProxy
from flwr.server.strategy import Strategy
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
from flwr.server.workflow.constant import Key as WorkflowKey
from flwr.serverapp import Grid, ServerApp

from fedsim.errors import PartyError, UserError, check
from fedsim.evaluation.mann_whitney import bucket_counts
from fedsim.evaluation.methods import client_rng
from fedsim.evaluation.secure_aggregation import (
    SecurePublic,
    SecureRun,
    client_counts,
    client_vector,
    secure_estimate,
    secure_public,
)
from fedsim.privacy.distributed_noise import DistributedNoise
from fedsim.runtime.flower.auc_app import SCORES, TIMEOUT_S, arrays, unpack
from fedsim.runtime.flower.simulation import simulate

MODULUS = 2**32
WEIGHT = 1
Holder = Callable[[Context], tuple[np.ndarray, np.ndarray]]  # a node's (scores, labels)


def clipping_range(clients: int) -> int:
    """C = 2^(30 - ceil(log2(M + 1))): 2 C M < 2^31 (no wrap-around) and 2C fits int32 (module docstring)."""
    return 2 ** (30 - math.ceil(math.log2(clients + 1)))


def workflow(clients: int, timeout: float = TIMEOUT_S) -> SecAggPlusWorkflow:
    """SecAgg+ with every client a neighbour of every other and half of the shares needed to unmask: up to half
    the clients may drop out, and the server with fewer than half the clients cannot unmask one vector."""
    c = clipping_range(clients)
    return SecAggPlusWorkflow(num_shares=1.0, reconstruction_threshold=0.5, max_weight=float(WEIGHT),
                              clipping_range=float(c), quantization_range=2 * c, modulus_range=MODULUS,
                              timeout=timeout)


def client_app(data: list[tuple[np.ndarray, np.ndarray]], failing: frozenset[int] = frozenset()) -> ClientApp:
    """Simulation: node `partition-id` k holds data[k] (`secagg_client`)."""
    return secagg_client(lambda context: data[partition_id(context)], failing)


def partition_id(context: Context) -> int:
    return int(context.node_config["partition-id"])


def secagg_client(holder: Holder, failing: frozenset[int] = frozenset()) -> ClientApp:
    """The client's side, wherever its data lives: `holder(context)` gives the node's (scores, labels) (in
    memory in simulation, its own file in deployment: `auc_secagg_deploy`). It answers the score query and,
    under `secaggplus_mod`, puts its integer counts + noise share into SecAgg+; its labels never leave it.
    Partitions in `failing` raise in the masked-vector stage (a dropout, for tests)."""
    app = ClientApp()

    @app.query("scores")
    def send_scores(message: Message, context: Context) -> Message:
        partition = partition_id(context)
        content = RecordDict({"scores": arrays({"s": holder(context)[0]}),
                              "node": ConfigRecord({"partition": partition})})
        return Message(content, reply_to=message)

    @app.train(mods=[secaggplus_mod])
    def masked_counts(message: Message, context: Context) -> Message:
        partition = partition_id(context)
        if partition in failing:
            raise RuntimeError(f"client {partition} dropped out (simulated)")
        fitins = compat.recorddict_to_fitins(message.content, keep_input=True)
        config = fitins.config
        public = SecurePublic(parameters_to_ndarrays(fitins.parameters)[0], int(config["clients"]),
                              secure_public_noise(config))
        scores, labels = holder(context)
        vector = client_vector(client_counts(scores, labels, public.edges), public,
                               client_rng(int(config["seed"]), int(config["repeat"]), partition))
        limit = clipping_range(public.clients)
        if np.abs(vector).max(initial=0) > limit:
            raise ValueError(f"a count + noise share leaves SecAgg+'s range [-{limit}, {limit}]")
        fitres = FitRes(Status(Code.OK, ""), ndarrays_to_parameters([vector.astype(np.float64)]), WEIGHT, {})
        return Message(compat.fitres_to_recorddict(fitres, keep_input=True), reply_to=message)

    return app


def secure_public_noise(config: dict[str, Any]) -> DistributedNoise:
    """The share law from the FitIns config (the server's `SecurePublic.noise`, field by field)."""
    delta = float(config["delta"]) if config["delta"] >= 0 else None
    return DistributedNoise(str(config["kind"]), float(config["epsilon"]), delta, int(config["threshold"]),
                            float(config["parameter"]))


class ReleaseStrategy(Strategy):
    """Sends every client the public parameters of one release and keeps SecAgg+'s sum (not a model)."""

    def __init__(self, public: SecurePublic, proxies: list[ClientProxy], seed: int) -> None:
        self.public, self.proxies, self.seed = public, proxies, seed
        self.total: np.ndarray | None = None
        self.contributors: list[int] = []

    def initialize_parameters(self, client_manager: Any) -> Parameters | None:
        return None

    def configure_fit(self, server_round: int, parameters: Parameters, client_manager: Any) -> list:
        noise = self.public.noise
        config = {"clients": self.public.clients, "seed": self.seed, "repeat": server_round - 1,
                  "kind": noise.kind, "epsilon": noise.epsilon, "threshold": noise.threshold,
                  "parameter": noise.parameter, "delta": -1.0 if noise.delta is None else noise.delta}
        fitins = FitIns(ndarrays_to_parameters([self.public.edges]), config)
        return [(proxy, fitins) for proxy in self.proxies]

    def aggregate_fit(self, server_round: int, results: list, failures: list) -> tuple[Parameters | None, dict]:
        """SecAgg+ hands every result the same dequantised mean; times A it is the integer sum."""
        if results:
            mean = parameters_to_ndarrays(results[0][1].parameters)[0]
            self.total = np.rint(mean * len(results)).astype(np.int64)
            self.contributors = sorted(proxy.node_id for proxy, _ in results)
        return None, {}

    def configure_evaluate(self, server_round: int, parameters: Parameters, client_manager: Any) -> list:
        return []

    def aggregate_evaluate(self, server_round: int, results: list, failures: list) -> tuple[float | None, dict]:
        return None, {}

    def evaluate(self, server_round: int, parameters: Parameters) -> None:
        return None


def server_main(grid: Grid, context: Context, method: str, epsilon: float, delta: float | None,
                buckets: int | None, clients: int, repeats: int, seed: int,
                min_clients: int | None, timeout: float = TIMEOUT_S, bucketing: str = "mass") -> SecureRun:
    """Score round (Message API), then one SecAgg+ run per repeat; returns what `run_secure_local` returns.
    The nodes must hold partition-ids 0..clients-1, one each (a deployment's SuperNodes may be misnumbered)."""
    deadline = time.monotonic() + timeout
    while len(nodes := sorted(grid.get_node_ids())) < clients:
        check(time.monotonic() < deadline, f"only {len(nodes)} of {clients} Flower clients connected within "
                                           f"{timeout:g} s")
        time.sleep(0.05)
    replies = grid.send_and_receive([Message(RecordDict(), n, SCORES) for n in nodes], timeout=timeout)
    partition_of, held = {}, {}
    for reply in replies:
        if reply.has_error():
            reason = (reply.error.reason or f"error code {reply.error.code}").strip().splitlines()[-1]
            raise UserError(f"a Flower client failed during the score round: {reason}")
        partition = int(reply.content.config_records["node"]["partition"])
        check(partition not in held, f"two Flower clients hold partition-id {partition}; give each SuperNode its "
                                     f"own partition-id 0..{clients - 1}")
        partition_of[reply.metadata.src_node_id] = partition
        held[partition] = unpack(reply.content.array_records["scores"])["s"]
    missing = [k for k in range(clients) if k not in held]
    if missing:  # a reply that did not come within the timeout (an overloaded machine), or a wrong partition
        raise PartyError(f"Flower clients {missing} sent no scores within {timeout:g} s (partitions that "
                         f"replied: {sorted(held)})")
    check(len(held) == clients, f"{len(held)} Flower clients answered, partition-ids {sorted(held)}; expected "
                                f"{clients} (clients={clients}: partition-ids 0..{clients - 1})")
    scores = np.concatenate([held[k] for k in range(clients)])
    public = secure_public(method, scores, epsilon, delta, buckets, clients, min_clients, bucketing)
    proxies = [GridClientProxy(node, grid, context.run_id) for node in nodes]
    estimates, contributors, first = [], clients, (np.empty(0), np.empty(0))
    for repeat in range(repeats):
        strategy = ReleaseStrategy(public, proxies, seed)
        legacy = LegacyContext(context, ServerConfig(num_rounds=1), strategy, SimpleClientManager())
        legacy.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord({WorkflowKey.CURRENT_ROUND: repeat + 1})
        legacy.state.array_records[MAIN_PARAMS_RECORD] = ArrayRecord()
        workflow(clients, timeout)(grid, legacy)
        if strategy.total is None:
            raise UserError(f"SecAgg+ did not complete release {repeat} (too few clients left to unmask)")
        alive = [partition_of[node] for node in strategy.contributors]
        sizes = np.sum([bucket_counts(held[k], public.edges) for k in alive], axis=0)
        contributors = len(alive)
        estimates.append(secure_estimate(strategy.total, sizes, public, contributors))
        first = (strategy.total, sizes) if repeat == 0 else first
    return SecureRun(public, estimates, contributors, *first, scores)


def run_secure_flower(method: str, scores: np.ndarray, labels: np.ndarray, parts: list[np.ndarray],
                      epsilon: float, delta: float | None, buckets: int | None, repeats: int, seed: int,
                      min_clients: int | None = None, failing: frozenset[int] = frozenset(),
                      bucketing: str = "mass") -> SecureRun:
    """The SecAgg+ apps in Flower's simulation engine (Ray); `failing` partitions drop out."""
    outcome: dict[str, Any] = {}
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        try:
            outcome["result"] = server_main(grid, context, method, epsilon, delta, buckets, len(parts), repeats,
                                            seed, min_clients, bucketing=bucketing)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, outside Flower's thread
            outcome["error"] = exc

    simulate(server, client_app([(scores[p], labels[p]) for p in parts], failing), len(parts))
    if "error" in outcome:
        raise outcome["error"]
    check("result" in outcome, "the Flower simulation ended before the server finished")
    return outcome["result"]
