"""`fedsim audit auc`: a one-run canary audit of the private-AUC releases (fedsim.evaluation.methods).

The auditor is the DP adversary: it knows every label but the canaries' and may choose public things, here
each canary's score. The canaries are m extra scored examples whose labels are fair coins; the auditor
reads only the method's released statistics (its `release` step) and the public information.

- Bucket methods (hist, hist_gauss, rr, naive_rr): every canary gets its own score above all the data's
  scores and the audit uses one bucket per distinct score, so each canary sits alone in its bucket (each
  method's guarantee holds for any bucketing). The statistic is the canary's bucket's released positive
  count, read from the release of the client that holds it. All canaries share one release.
- dpauc: one canary moves 2 of the 4 counts at each of the K thresholds, so canaries in one release would
  blur each other. Each canary gets its own release (an independent run of the mechanism on the data plus
  that canary), and the statistic is the exact Laplace log-likelihood ratio of bit 1 over bit 0 given the
  2K moved counts. The M runs together are still eps-DP in each canary's bit (only its own run sees it),
  so the one-run bound applies. The tight epsilon is 2 K eps_v; the paper's accounting claims 4 K eps_v.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fedsim.audit.report import audit_statistic, secret_bits
from fedsim.errors import check
from fedsim.evaluation.driver import check_counts, make_settings, owners, split_clients, validate_inputs
from fedsim.evaluation.methods import METHODS, AucMethod, Public, Settings, client_rng
from fedsim.limits import check_memory
from fedsim.privacy.audit_bound import check_confidence
from fedsim.streams import AuditStream, Stream

MAX_CANARIES = 1000
# per canary: its bit, score and label in the concatenated arrays (8 B each, copied once or twice), its
# released bucket count in a Python dict (~100 B) and its statistic
CANARY_BYTES = 256


def audit_auc(method: str, scores: np.ndarray, labels: np.ndarray, epsilon: float | None, *,
              delta: float | None = None, thresholds: int = 100, clients: int = 1, split: str = "iid",
              canaries: int = MAX_CANARIES, confidence: float = 0.95, seed: int = 0,
              guesses: int | Sequence[int] | None = None) -> dict[str, Any]:
    """Plant canaries among the scored examples, release once, bound epsilon: the `fedsim audit auc` object."""
    check_confidence(confidence)
    check(method != "exact", "method exact releases the labels in the clear: nothing to audit; choose one of "
                             "naive_rr, rr, dpauc, hist, hist_gauss")
    scores, labels = validate_inputs(scores, labels)
    check(canaries >= 1, f"--canaries must be >= 1, got {canaries}")
    check_memory("--canaries", canaries, CANARY_BYTES, "the canaries' scores, labels and released buckets")
    check_counts(1, clients)
    check(epsilon is not None and np.isfinite(epsilon),
          "an audit needs a finite --epsilon (epsilon = inf claims nothing)")
    chosen = METHODS.get(method)
    settings = make_settings(method, epsilon, delta, None, thresholds)
    bits = secret_bits(canaries, seed)
    if method == "dpauc":
        statistic, public = _dpauc_statistics(chosen, settings, scores, labels, bits, clients, split, seed)
    else:
        statistic, public = _bucket_statistics(chosen, settings, scores, labels, bits, clients, split, seed)
    report = audit_statistic(bits, statistic, confidence, settings.epsilon, settings.delta, f"{method} release",
                             guesses)
    report.update(method=method, n=int(scores.size), clients=clients,
                  guarantee=chosen.guarantee(settings, public))
    if method == "dpauc":
        report["tight_epsilon"] = public.info["epsilon_tight"]
    return report


def _bucket_statistics(method: AucMethod, settings: Settings, scores: np.ndarray, labels: np.ndarray,
                       bits: np.ndarray, clients: int, split: str, seed: int) -> tuple[np.ndarray, Public]:
    m = len(bits)
    canary_scores = scores.max() + 1.0 + np.arange(m)  # public, distinct, above every data score
    all_scores = np.concatenate([scores, canary_scores])
    all_labels = np.concatenate([labels, bits.astype(labels.dtype)])
    n = all_scores.size
    fine = Settings(settings.epsilon, settings.delta, n, settings.thresholds)  # B >= n: one bucket per score
    parts = split_clients(all_scores, clients, split, seed)
    public = method.public(all_scores, fine, owners(parts, n))
    statistic = np.full(m, np.nan)
    for c, idx in enumerate(parts):
        release = method.release(method.prepare(all_scores[idx], all_labels[idx], public), public,
                                 client_rng(seed, 0, c))
        bucket_of = dict(zip(release["buckets"].tolist(), release["positives"].tolist(), strict=True))
        for row in idx[idx >= scores.size]:
            bucket = int(np.searchsorted(public.edges, all_scores[row], "left"))
            statistic[row - scores.size] = bucket_of[bucket]
    return statistic, public


def _dpauc_statistics(method: AucMethod, settings: Settings, scores: np.ndarray, labels: np.ndarray,
                      bits: np.ndarray, clients: int, split: str, seed: int) -> tuple[np.ndarray, Public]:
    """Per canary, its own release; the Laplace log-likelihood ratio of its label being 1 (module docstring)."""
    check(clients == 1, "the dpauc audit runs with one client (--clients 1)")
    canary_score = 0.5  # any score works: the canary moves two counts at every threshold wherever it sits
    public = method.public(np.append(scores, canary_score), settings)
    base = method.prepare(scores, labels, public)  # the counts without the canary, known to the auditor
    with_one = method.prepare(np.array([canary_score]), np.array([1]), public)  # ... and its two cases
    with_zero = method.prepare(np.array([canary_score]), np.array([0]), public)
    rng = np.random.default_rng([seed, Stream.AUDIT, AuditStream.AUC_CANARIES])
    statistic = np.empty(len(bits))
    for i, bit in enumerate(bits):
        counts = method.prepare(np.append(scores, canary_score), np.append(labels, bit), public)
        released = method.release(counts, public, rng)["counts"]
        statistic[i] = (np.abs(released - base - with_zero).sum() - np.abs(released - base - with_one).sum()) \
            / public.noise
    return statistic, public
