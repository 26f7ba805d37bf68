"""`fedsim audit auc`: a one-run canary audit of the private-AUC releases (fedsim.evaluation.methods).

The auditor is the DP adversary: it knows every label but the canaries' and may choose public things, here
each canary's score. The canaries are m extra scored examples whose labels are fair coins; the auditor
reads only the method's released statistics (its `release` step) and the public information.

- Bucket methods (hist, hist_gauss, rr, naive_rr): every canary gets its own score above all the data's
  scores and its own bucket (each method's guarantee holds for any bucketing); the data keep the release's
  buckets (`buckets`, default one per distinct score; the canaries' statistics do not depend on them). The
  statistic is the canary's bucket's released positive count, read from the release of the client that
  holds it. All canaries share one release.
- scalar_laplace: as dpauc, one release per canary (the release is one number: canaries in one release
  would blur each other). The canary scores above every data score, so its label moves the positive
  count by 1 and the AUC statistic W by +n-/2 (label 1) or -n+/2 (label 0); the statistic is the exact
  log-likelihood ratio of the two Laplace releases (the floor L is a function of the released count, so
  the same under both labels).
- Secure aggregation (hist, hist_gauss over M >= 2 clients, shares sized for `min_clients`): the same
  buckets; each client adds its share to its integer counts and the statistic is the canary's bucket in
  the server's sum, which is all the server sees.
- dpauc: one canary moves 2 of the 4 counts at each of the K thresholds, so canaries in one release would
  blur each other. Each canary gets its own release (an independent run of the mechanism on the data plus
  that canary), and the statistic is the exact Laplace log-likelihood ratio of bit 1 over bit 0 given the
  2K moved counts. The M runs together are still eps-DP in each canary's bit (only its own run sees it),
  so the one-run bound applies. The tight epsilon is 2 K eps_v; the paper's accounting claims 4 K eps_v.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from fedsim.audit.report import audit_statistic, secret_bits
from fedsim.errors import check
from fedsim.evaluation import scalar
from fedsim.evaluation.driver import check_counts, make_settings, owners, split_clients, validate_inputs
from fedsim.evaluation.methods import METHODS, AucMethod, Public, Settings, client_rng
from fedsim.evaluation.secure_aggregation import SecurePublic, client_counts, secure_public, secure_sum
from fedsim.limits import check_memory
from fedsim.privacy.audit_bound import check_confidence
from fedsim.progress import progress_bar
from fedsim.streams import AuditStream, Stream

MAX_CANARIES = 1000
# per canary: its bit, score and label in the concatenated arrays (8 B each, copied once or twice), its
# released bucket count in a Python dict (~100 B) and its statistic
CANARY_BYTES = 256


def audit_auc(method: str, scores: np.ndarray, labels: np.ndarray, epsilon: float | None, *,
              delta: float | None = None, buckets: int | None = None, thresholds: int = 100, clients: int = 1,
              split: str = "iid", secure_aggregation: bool = False, min_clients: int | None = None,
              canaries: int = MAX_CANARIES, confidence: float = 0.95, seed: int = 0,
              guesses: int | Sequence[int] | None = None, show_progress: bool = False,
              bucketing: str = "mass") -> dict[str, Any]:
    """Plant canaries among the scored examples, release once, bound epsilon: the `fedsim audit auc` object.

    Takes the release's settings as `fedsim.evaluation.run_auc` does (the same checks); `buckets` sets the
    data's buckets only, since every canary has its own (module docstring)."""
    check_confidence(confidence)
    check(method != "exact", "method exact releases the labels in the clear: nothing to audit; choose one of "
                             "naive_rr, rr, dpauc, hist, hist_gauss")
    scores, labels = validate_inputs(scores, labels)
    check(canaries >= 1, f"--canaries must be >= 1, got {canaries}")
    check_memory("--canaries", canaries, CANARY_BYTES, "the canaries' scores, labels and released buckets")
    check_counts(1, clients)
    check(epsilon is not None and np.isfinite(epsilon),
          "an audit needs a finite --epsilon (epsilon = inf claims nothing)")
    check(min_clients is None or secure_aggregation, "--min-clients applies with --secure-aggregation only")
    chosen = METHODS.get(method)
    settings = make_settings(method, epsilon, delta, buckets, thresholds, bucketing=bucketing)
    bits = secret_bits(canaries, seed)
    extra: dict[str, Any] = {}
    if method == "dpauc":
        check(buckets is None, "dpauc has thresholds, not buckets: drop --buckets (or set --thresholds)")
        statistic, public = _dpauc_statistics(chosen, settings, scores, labels, bits, clients, split, seed,
                                              show_progress)
        guarantee = chosen.guarantee(settings, public)
        extra["tight_epsilon"] = public.info["epsilon_tight"]
    elif method == "scalar_laplace":
        check(buckets is None, "scalar_laplace releases one number, not buckets: drop --buckets")
        statistic, public = _scalar_statistics(chosen, settings, scores, labels, bits, clients, seed, show_progress)
        guarantee = chosen.guarantee(settings, public)
    elif secure_aggregation:
        statistic, secure = _secure_statistics(method, settings, scores, labels, bits, clients, split, seed,
                                               min_clients)
        guarantee = secure.noise.describe(clients)
        extra.update(secure_aggregation=True, min_clients=secure.noise.threshold, buckets=_data_buckets(secure.edges,
                                                                                                        scores))
    else:
        statistic, public = _bucket_statistics(chosen, settings, scores, labels, bits, clients, split, seed)
        guarantee = chosen.guarantee(settings, public)
        extra["buckets"] = _data_buckets(public.edges, scores)
    report = audit_statistic(bits, statistic, confidence, settings.epsilon, settings.delta, f"{method} release",
                             guesses)
    report.update(method=method, n=int(scores.size), clients=clients, guarantee=guarantee, **extra)
    return report


def _with_canaries(scores: np.ndarray, labels: np.ndarray, bits: np.ndarray) -> tuple[np.ndarray, ...]:
    """The canaries' scores (public, distinct, above every data score), then all scores and labels."""
    canary_scores = scores.max() + 1.0 + np.arange(len(bits))
    return (canary_scores, np.concatenate([scores, canary_scores]),
            np.concatenate([labels, bits.astype(labels.dtype)]))


def _data_buckets(edges: np.ndarray, scores: np.ndarray) -> int:
    """How many of the release's buckets hold the data (the rest hold one canary each)."""
    return int(np.count_nonzero(edges <= scores.max()))


def _bucket_statistics(method: AucMethod, settings: Settings, scores: np.ndarray, labels: np.ndarray,
                       bits: np.ndarray, clients: int, split: str, seed: int) -> tuple[np.ndarray, Public]:
    canary_scores, all_scores, all_labels = _with_canaries(scores, labels, bits)
    parts = split_clients(all_scores, clients, split, seed)
    layout = owners(parts, all_scores.size)
    release = method.public(scores, settings, None if layout is None else layout[:scores.size])
    edges = np.concatenate([release.edges, canary_scores])  # the release's buckets, then one per canary
    public = replace(release, edges=edges, info={**release.info, "buckets": int(edges.size)})
    statistic = np.full(len(bits), np.nan)
    for c, idx in enumerate(parts):
        released = method.release(method.prepare(all_scores[idx], all_labels[idx], public), public,
                                  client_rng(seed, 0, c))
        bucket_of = dict(zip(released["buckets"].tolist(), released["positives"].tolist(), strict=True))
        for row in idx[idx >= scores.size]:
            bucket = int(np.searchsorted(public.edges, all_scores[row], "left"))
            statistic[row - scores.size] = bucket_of[bucket]
    return statistic, public


def _secure_statistics(method: str, settings: Settings, scores: np.ndarray, labels: np.ndarray, bits: np.ndarray,
                       clients: int, split: str, seed: int,
                       min_clients: int | None) -> tuple[np.ndarray, SecurePublic]:
    """Every client's counts + share summed (what the server learns); each canary's bucket in that sum."""
    canary_scores, all_scores, all_labels = _with_canaries(scores, labels, bits)
    release = secure_public(method, scores, settings.budget, settings.delta, settings.buckets, clients, min_clients,
                            settings.bucketing)
    edges = np.concatenate([release.edges, canary_scores])
    check_memory("--clients", clients, 32 * edges.size, f"dense counts over {edges.size} buckets per client")
    public = replace(release, edges=edges)
    parts = split_clients(all_scores, clients, split, seed)
    counts = [client_counts(all_scores[idx], all_labels[idx], edges) for idx in parts]
    total = secure_sum(counts, public, seed, 0, list(range(clients)))
    return total[np.searchsorted(edges, canary_scores, "left")].astype(np.float64), public


def _dpauc_statistics(method: AucMethod, settings: Settings, scores: np.ndarray, labels: np.ndarray,
                      bits: np.ndarray, clients: int, split: str, seed: int,
                      show_progress: bool) -> tuple[np.ndarray, Public]:
    """Per canary, its own release; the Laplace log-likelihood ratio of its label being 1 (module docstring)."""
    check(clients == 1, "the dpauc audit runs with one client (--clients 1)")
    canary_score = 0.5  # any score works: the canary moves two counts at every threshold wherever it sits
    public = method.public(np.append(scores, canary_score), settings)
    base = method.prepare(scores, labels, public)  # the counts without the canary, known to the auditor
    with_one = method.prepare(np.array([canary_score]), np.array([1]), public)  # ... and its two cases
    with_zero = method.prepare(np.array([canary_score]), np.array([0]), public)
    rng = np.random.default_rng([seed, Stream.AUDIT, AuditStream.AUC_CANARIES])
    statistic = np.empty(len(bits))
    with progress_bar(len(bits), "dpauc releases, one per canary", show_progress) as advance:
        for i, bit in enumerate(bits):
            counts = method.prepare(np.append(scores, canary_score), np.append(labels, bit), public)
            released = method.release(counts, public, rng)["counts"]
            statistic[i] = (np.abs(released - base - with_zero).sum()
                            - np.abs(released - base - with_one).sum()) / public.noise
            advance(1)
    return statistic, public


def _scalar_statistics(method: AucMethod, settings: Settings, scores: np.ndarray, labels: np.ndarray,
                       bits: np.ndarray, clients: int, seed: int, show_progress: bool) -> tuple[np.ndarray, Public]:
    """Per canary, its own scalar release; the exact log-likelihood ratio of its label being 1 (docstring)."""
    check(clients == 1, "the scalar_laplace audit runs with one client (--clients 1)")
    all_scores = np.append(scores, scores.max() + 1.0)
    public = method.public(all_scores, settings)
    cases = [scalar.statistics(all_scores, np.append(labels, bit)) for bit in (0, 1)]  # its prepare; 2 inputs
    epsilon1, epsilon2 = public.noise * settings.budget, (1.0 - public.noise) * settings.budget
    rng = np.random.default_rng([seed, Stream.AUDIT, AuditStream.AUC_CANARIES])
    statistic = np.empty(len(bits))
    with progress_bar(len(bits), "scalar_laplace releases, one per canary", show_progress) as advance:
        for i, bit in enumerate(bits):
            released = method.release(cases[bit], public, rng)
            count, floor, auc = (float(released[key][0]) for key in ("noisy_positives", "floor", "auc"))
            means = [scalar.clamped_auc(case.w, case.positives, case.n, int(floor)) for case in cases]
            statistic[i] = (epsilon1 * (abs(count - cases[0].positives) - abs(count - cases[1].positives))
                            + floor * epsilon2 * (abs(auc - means[0]) - abs(auc - means[1])))
            advance(1)
    return statistic, public
