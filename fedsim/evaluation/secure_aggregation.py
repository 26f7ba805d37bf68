"""Histogram AUC over secure aggregation: M clients, one central-sized integer noise, the server sees a sum.

Without secure aggregation each of M clients adds a full noise to its own counts (`hist`), so the error
of the AUC grows like sqrt(M). Here each client adds only a *share* (`fedsim.privacy.distributed_noise`)
to its integer per-bucket positive counts, and the server learns only the sum over clients, in which the
shares add up to one discrete Laplace (`hist`, pure eps) or one Skellam (`hist_gauss`, (eps, delta))
noise per bucket: the accuracy of one central release whatever M is.

The steps mirror `fedsim.evaluation.methods`: `secure_public` (the server: quantile bucket edges over all
scores, B for one noise per bucket, the share law), `client_counts` (a client: its per-bucket sizes and
positives over all B buckets), `client_vector` (its integer counts + its share, drawn from the same
Generator([seed, 1, repeat, client]) as every method), a sum (`np.sum` in process; Flower's SecAgg+ in
`fedsim.runtime.flower.auc_secagg_app`, which gives the same integers), and `secure_estimate`. Both paths call
these functions, so they agree bit for bit for the same seed.

Threat model. The server is honest but curious: it runs the protocol as written and tries to learn labels
from what it sees. Clients follow the protocol (they add their share and do not lie about counts). With
SecAgg+ the server sees only masked vectors and their sum (plus which clients dropped out), so its view is
the summed counts + the summed noise: eps-label-DP (or (eps, delta)) when at least `min_clients` clients
contribute, and the weaker `achieved_epsilon` otherwise, which is reported. A client sees nothing of the
others' counts. A coalition of c clients that colludes with the server can subtract its own shares: the
honest clients' counts then carry only M - c shares of noise, a guarantee of `achieved_epsilon(M - c)`
(with SecAgg+ such a coalition can isolate one client's vector only if it holds that client's reconstruction
threshold of secret shares: half the clients in `fedsim.runtime.flower.auc_secagg_app`). Secure aggregation here
does not protect against a malicious server or clients that send wrong counts (no input validation), and
bucket sizes and scores stay public, as everywhere in label DP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fedsim.errors import check
from fedsim.evaluation.intervals import auc_interval
from fedsim.evaluation.mann_whitney import bucket_counts, bucket_edges, bucketed_auc, mixed_buckets
from fedsim.evaluation.methods import Estimate, client_rng, default_buckets
from fedsim.limits import check_memory
from fedsim.privacy.distributed_noise import DistributedNoise, discrete_laplace_noise, skellam_noise

SECURE_METHODS = {"hist": "discrete_laplace", "hist_gauss": "skellam"}


@dataclass(frozen=True)
class SecurePublic:
    """What every party knows: bucket edges, the number of clients and the share law."""

    edges: np.ndarray
    clients: int
    noise: DistributedNoise
    mixed: np.ndarray | None = None  # per bucket: holds several distinct scores (None: assume every bucket does)


@dataclass(frozen=True)
class ClientCounts:
    """One client's examples per bucket (public) and positives per bucket (private), over all B buckets."""

    sizes: np.ndarray
    positives: np.ndarray


def check_secure(method: str, clients: int, min_clients: int | None) -> int:
    """The share threshold t (default M), or a one-line UserError for a setup that cannot be run securely."""
    check(method in SECURE_METHODS,
          f"--secure-aggregation needs an integer histogram with additive noise ({', '.join(SECURE_METHODS)}); "
          f"{method} has none")
    check(clients >= 2, "--secure-aggregation needs --clients >= 2: with one client there is nothing to aggregate "
                        "(its release already carries one central noise; drop --secure-aggregation)")
    threshold = clients if min_clients is None else min_clients
    check(isinstance(threshold, int) and 1 <= threshold <= clients,
          f"--min-clients must be an integer between 1 and --clients ({clients}), got {min_clients!r}")
    return threshold


def secure_public(method: str, scores: np.ndarray, epsilon: float, delta: float | None, buckets: int | None,
                  clients: int, min_clients: int | None = None, bucketing: str = "mass") -> SecurePublic:
    """Edges (B from the one-noise-per-bucket rule unless given) and shares sized for `min_clients` (default M)."""
    threshold = check_secure(method, clients, min_clients)
    if buckets is None:
        buckets = default_buckets(scores.size, epsilon, 1.0)
    if SECURE_METHODS[method] == "discrete_laplace":
        noise = discrete_laplace_noise(epsilon, threshold)
    else:
        noise = skellam_noise(epsilon, delta, threshold)
    edges = bucket_edges(scores, buckets, bucketing)
    # every client holds dense int64 sizes and positives over all B buckets, and sends a B-vector per repeat
    check_memory("--clients", clients, 32 * edges.size, f"dense counts over {edges.size} buckets per client "
                                                        "(fewer --buckets fit more clients)")
    return SecurePublic(edges, clients, noise, mixed_buckets(scores, edges))


def client_counts(scores: np.ndarray, labels: np.ndarray, edges: np.ndarray) -> ClientCounts:
    """A client's int64 bucket sizes and positive counts over all B buckets (zeros where it has none)."""
    labels = np.asarray(labels).astype(bool, copy=False)
    return ClientCounts(bucket_counts(scores, edges).astype(np.int64),
                        bucket_counts(scores[labels], edges).astype(np.int64))


def client_vector(counts: ClientCounts, public: SecurePublic, rng: np.random.Generator) -> np.ndarray:
    """What a client puts into secure aggregation: its positive counts + its noise share (int64)."""
    return counts.positives + public.noise.share(counts.positives.size, rng)


def secure_estimate(total: np.ndarray, sizes: np.ndarray, public: SecurePublic, contributors: int) -> Estimate:
    """AUC of the summed noisy counts (not clipped: unbiased) and its interval for the exact AUC
    (`fedsim.evaluation.intervals.auc_interval`) with the summed noise's variance, the same in every bucket."""
    counts = np.asarray(total, dtype=np.float64)
    variances = np.full(counts.size, public.noise.variance(contributors))
    return Estimate(bucketed_auc(counts, sizes), auc_interval(counts, sizes, variances, public.mixed))


@dataclass(frozen=True)
class SecureRun:
    """The public parameters, one estimate per repeat, the clients that contributed, and what the server
    learnt in repeat 0 (the summed counts + shares and the summed bucket sizes: `fedsim auc --curves`), and
    every client's scores in partition order (public; the deployed server has no other copy)."""

    public: SecurePublic
    estimates: list[Estimate]
    contributors: int
    first_total: np.ndarray
    first_sizes: np.ndarray
    scores: np.ndarray

    def info(self) -> dict[str, object]:
        """JSON fields: buckets, share threshold, noise law and parameter, achieved epsilon, guarantee."""
        noise = self.public.noise
        finite = not math.isinf(noise.epsilon)
        return {"buckets": int(self.public.edges.size), "secure_aggregation": True, "min_clients": noise.threshold,
                "contributors": self.contributors, "noise": noise.kind,
                "noise_parameter": noise.parameter if finite else None,
                "achieved_epsilon": noise.achieved_epsilon(self.contributors) if finite else None,
                "guarantee": noise.describe(self.contributors)}


def run_secure_local(method: str, scores: np.ndarray, labels: np.ndarray, parts: list[np.ndarray],
                     epsilon: float, delta: float | None, buckets: int | None, repeats: int, seed: int,
                     min_clients: int | None = None, dropped: frozenset[int] = frozenset(),
                     bucketing: str = "mass") -> SecureRun:
    """In process: every client's vector, an int64 sum, the estimate; `dropped` clients send nothing (their
    examples are then missing from the AUC, as in a real dropout, and the guarantee is reported for the
    clients that did contribute)."""
    public = secure_public(method, scores, epsilon, delta, buckets, len(parts), min_clients, bucketing)
    alive = [c for c in range(len(parts)) if c not in dropped]
    check(len(alive) >= 1, "every client dropped out: nothing to aggregate")
    counts = {c: client_counts(scores[parts[c]], labels[parts[c]], public.edges) for c in alive}
    sizes = np.sum([counts[c].sizes for c in alive], axis=0)
    ordered = [counts[c] for c in alive]
    first = secure_sum(ordered, public, seed, 0, alive)
    estimates = [secure_estimate(secure_sum(ordered, public, seed, repeat, alive) if repeat else first, sizes, public,
                                 len(alive)) for repeat in range(repeats)]
    return SecureRun(public, estimates, len(alive), first, sizes, scores)


def secure_sum(counts: list[ClientCounts], public: SecurePublic, seed: int, repeat: int,
               clients: list[int]) -> np.ndarray:
    """What the server learns in repeat `repeat`: the int64 sum of the vectors of `clients` (their counts)."""
    return np.sum([client_vector(c, public, client_rng(seed, repeat, client))
                   for c, client in zip(counts, clients, strict=True)], axis=0)
