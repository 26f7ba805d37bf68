"""The private-AUC methods, each split into what the server knows (public), what one client computes from
its own scores and labels (prepare), the one label-DP message it sends (release), and what the server
computes from all messages (estimate). The in-process runner and the Flower apps call the same four steps,
so they agree bit for bit for the same seed.

Neighbouring datasets differ in one example's label (scores are public). Guarantees, per method:

- `naive_rr`, `rr`: each client reports its labels through binary randomised response with flip probability
  p = 1/(1+e^eps) (`fedsim.privacy.mechanisms.randomized_response`): eps-label-DP per label, and every label
  is reported once, so the whole evaluation is eps-DP; per-bucket counts and the AUC are post-processing.
  `rr` de-biases the counts, c_hat_b = (c~_b - p n_b)/(1 - 2p), which is unbiased for c_b.
- `hist`: per nonempty bucket, the client releases c_b + Laplace(1/eps) (unclipped: see `Histogram`).
  Bucket sizes are public, so one
  label change moves exactly one count by exactly 1: L1 sensitivity 1, eps-DP whatever the number of buckets.
- `hist_gauss`: the same counts + N(0, sigma^2), sigma from the analytic Gaussian mechanism at L2
  sensitivity 1: (eps, delta)-DP.
- `dpauc`: the DPAUC paper's mechanism (see `fedsim.evaluation.dpauc`).
- `scalar_laplace`: one label holder releases only the AUC, with Laplace noise at sensitivity 1/L, L a floor
  on min(n+, n-) taken from a Laplace-noised positive count: eps-DP in total (proof in
  `fedsim.evaluation.scalar`).
- `exact`: no privacy (the reference); labels are released in the clear.

In the horizontal setting each of M clients adds its own noise (local DP), or with secure aggregation
(`fedsim.evaluation.secure_aggregation`, `hist` and `hist_gauss` only) a share of one central noise; in the
vertical setting the label holder is the single client (M = 1) and receives the public scores or bucket ids
from the score holder.

Intervals: the bucket methods use the test-inversion interval of `fedsim.evaluation.intervals` (it holds on
rare positives, where the delta method under-covers), widened by a bound on the bucketing error when buckets
hold several distinct scores (`auc_interval`: it covers the exact AUC, not only the bucketed one); `dpauc` a
parametric bootstrap; `scalar_laplace` an exact interval from the Laplace tails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from fedsim.errors import check
from fedsim.evaluation import dpauc as dpauc_math
from fedsim.evaluation import scalar
from fedsim.evaluation.beyond import threshold_edge, threshold_metrics
from fedsim.evaluation.intervals import auc_interval
from fedsim.evaluation.mann_whitney import bucket_counts, bucket_edges, bucketed_auc, mixed_buckets
from fedsim.limits import check_memory
from fedsim.params import Epsilon, Integer, Number, PluginParams, with_defaults
from fedsim.privacy.mechanisms import (
    analytic_gaussian_sigma,
    debias_rr_counts,
    gaussian_noise,
    laplace_noise,
    laplace_scale,
    randomized_response,
    rr_flip_probability,
)
from fedsim.registry import Registry
from fedsim.streams import AucStream

Release = dict[str, np.ndarray]


class BucketParams(PluginParams):
    """Settings of the bucket methods (`exact` has no epsilon: it is the non-private reference)."""

    buckets: Integer | None = Field(None, ge=2, description="Quantile score buckets (default: one per distinct score).")
    threshold: Number | None = Field(None, description="Also report accuracy, precision, recall, F1 at score >= T.")


class EpsilonParams(PluginParams):
    epsilon: Epsilon = Field(description="Total label-DP epsilon of the evaluation.")


class PrivateBucketParams(BucketParams, EpsilonParams):
    """Settings of a private bucket method."""


HistogramParams = with_defaults(PrivateBucketParams, "HistogramParams", "Settings of the noisy-histogram methods.",
                                descriptions={"buckets": "Quantile score buckets (default: a rule in n, epsilon "
                                                         "and clients; see default_buckets)."})


class GaussianHistogramParams(HistogramParams):
    delta: Number = Field(1e-6, gt=0, lt=1, description="delta of the (epsilon, delta) guarantee.")


class DPAUCParams(EpsilonParams):
    thresholds: Integer = Field(100, ge=4, description="Thresholds K of DPAUC's grid (K/4 >= 1).")


@dataclass(frozen=True)
class Settings:
    """What the user chose; `epsilon` = inf means no noise (every method then returns its noise-free value)."""

    epsilon: float | None
    delta: float | None = None
    buckets: int | None = None
    thresholds: int = 100
    threshold: float | None = None
    bucketing: str = "mass"  # how bucket edges follow the scores (`mann_whitney.bucket_edges`)

    @property
    def budget(self) -> float:
        """`epsilon` of a method that needs one (`make_settings` requires it there; only `exact` has none)."""
        if self.epsilon is None:
            raise RuntimeError("an AUC method that needs epsilon ran without one")
        return self.epsilon


@dataclass(frozen=True)
class Public:
    """What every party may know: bucket edges or the threshold grid, noise parameters, accounting."""

    edges: np.ndarray
    epsilon: float
    noise: float = 0.0  # Laplace scale, Gaussian sigma, RR flip probability or scalar_laplace's share of eps
    info: dict[str, Any] = field(default_factory=dict)
    threshold: float | None = None  # where accuracy, precision, recall and F1 are wanted
    mixed: np.ndarray | None = None  # per bucket: holds several distinct scores (None: assume every bucket does)


@dataclass(frozen=True)
class ClientData:
    """One client's examples grouped by public bucket: its private labels and their per-bucket counts."""

    buckets: np.ndarray  # ids of the client's nonempty buckets, ascending
    sizes: np.ndarray  # examples per nonempty bucket (public)
    positives: np.ndarray  # positives per nonempty bucket (private)
    member: np.ndarray | None  # per example: position of its bucket in `buckets` (for randomised response)
    labels: np.ndarray  # per example (private), for randomised response


@dataclass(frozen=True)
class Estimate:
    estimate: float
    ci95: tuple[float, float]
    metrics: dict[str, float] | None = None  # at Public.threshold


def default_buckets(n: int, epsilon: float, clients_per_bucket: float) -> int | None:
    """B = round((eps n / sqrt(m))^(2/5)), at least 2, where m = clients adding noise to a bucket; None (one
    bucket per distinct score) when eps = inf.

    Why: quantile buckets bias the AUC by about -a/B^2 (within-bucket pairs count 1/2; a ~ 0.5 on binormal
    scores) while the noise std grows like sqrt(B m)/(eps n). The RMSE optimum is B* ~ (eps n/sqrt(m))^(2/5);
    the constant 1 is about 1.5 B* on Criteo-like scores (458k rows, eps 1, m = 1: B = 184), which keeps the
    bias near 0.2 noise std. The interval does not rely on that (on nearly separable scores the bias is larger:
    breast_cancer, B = 10): `fedsim.evaluation.intervals.auc_interval` bounds the bucketing error. Uses n, eps
    and the public client layout only: no labels.
    """
    if math.isinf(epsilon):
        return None
    return max(2, round((epsilon * n / math.sqrt(clients_per_bucket)) ** 0.4))


def clients_per_bucket(scores: np.ndarray, owners: np.ndarray | None, buckets: int | None,
                       bucketing: str = "mass") -> float:
    """Mean number of clients holding examples in one of `buckets` quantile buckets (public: scores and
    which client holds them). M for IID clients, about 1 + M/B when clients hold contiguous score ranges."""
    if owners is None or buckets is None:
        return 1.0
    edges = bucket_edges(scores, buckets, bucketing)
    pairs = np.searchsorted(edges, scores, "left").astype(np.int64) * (int(owners.max()) + 1) + owners
    return np.unique(pairs).size / edges.size


def group_by_bucket(scores: np.ndarray, labels: np.ndarray, edges: np.ndarray, members: bool = False) -> ClientData:
    """Bucket one client's examples by the public edges and count its positives per nonempty bucket.

    Counts come from sorted scores (fast); each example's bucket (`member`) only when `members` is set.
    """
    sizes = bucket_counts(scores, edges)
    buckets = np.flatnonzero(sizes)
    positives = bucket_counts(scores[labels == 1], edges)[buckets].astype(np.float64)
    member = None
    if members:
        position = np.cumsum(sizes > 0) - 1
        member = position[np.searchsorted(edges, scores, "left")]
    return ClientData(buckets, sizes[buckets], positives, member, labels)


def sum_by_bucket(releases: list[Release], key: str, size: int) -> np.ndarray:
    """Server-side sum over clients of a per-bucket quantity (in client order: deterministic)."""
    ids = np.concatenate([r["buckets"] for r in releases])
    values = np.concatenate([r[key] for r in releases])
    return np.bincount(ids, weights=values, minlength=size)


class AucMethod:
    """The four steps of a private AUC method (see the module docstring); this base is the bucket family.

    `Params` is the method's settings schema (`fedsim.params`; `fedsim.evaluation.driver.make_settings`)."""

    name: str
    summary: ClassVar[str] = ""
    tasks: ClassVar[tuple[str, ...]] = ("binary",)
    Params: ClassVar[type[PluginParams]] = PrivateBucketParams
    fine_by_default = True  # noise that does not grow with B: one bucket per distinct score is best
    one_label_holder: ClassVar[bool] = False  # True: the method needs all labels in one place (clients = 1)
    # why no valid 95% interval for the exact AUC exists (run_auc then prints ci95 null with this reason)
    no_interval: ClassVar[str | None] = None

    @property
    def needs_epsilon(self) -> bool:
        return "epsilon" in self.Params.model_fields

    def public(self, scores: np.ndarray, settings: Settings, owners: np.ndarray | None = None) -> Public:
        """Bucket edges from the scores; `owners` (client of each score, None for one client) sets the
        default number of buckets: one step of B = rule(m(B)) from B = rule(1) (see `default_buckets`)."""
        buckets = settings.buckets
        if buckets is None and not self.fine_by_default:
            first = default_buckets(scores.size, settings.budget, 1.0)
            layout = clients_per_bucket(scores, owners, first, settings.bucketing)
            buckets = default_buckets(scores.size, settings.budget, layout)
        edges = bucket_edges(scores, buckets, settings.bucketing)
        if settings.threshold is not None:
            edges = np.union1d(edges, threshold_edge(scores, settings.threshold))
        return Public(edges, settings.epsilon, self.noise_parameter(settings), {"buckets": int(edges.size)},
                      settings.threshold, mixed_buckets(scores, edges))

    def guarantee(self, settings: Settings, public: Public) -> str:
        """One sentence stating the label-DP guarantee of this run."""
        if math.isinf(settings.budget):
            return f"no noise (epsilon = inf): no privacy; the noise-free value of {self.name}"
        return self.describe(settings, public)

    def describe(self, settings: Settings, public: Public) -> str:
        raise NotImplementedError

    def noise_parameter(self, settings: Settings) -> float:
        return 0.0

    def noise_for_two_counts(self, settings: Settings) -> float | None:
        """The noise parameter that keeps this method's guarantee when one label moves two counts by 1 each
        (one-vs-rest over K classes, `fedsim.evaluation.multiclass`); None: the method cannot do that."""
        return None

    def prepare(self, scores: np.ndarray, labels: np.ndarray, public: Public) -> ClientData:
        return group_by_bucket(scores, labels, public.edges)

    def release(self, data: ClientData, public: Public, rng: np.random.Generator) -> Release:
        return {"buckets": data.buckets, "sizes": data.sizes, "positives": data.positives}

    def totals(self, releases: list[Release], public: Public) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sum the clients' per-bucket releases into (positive-count estimates, sizes, noise variances)."""
        size = public.edges.size
        sizes = sum_by_bucket(releases, "sizes", size)
        reporters = np.bincount(np.concatenate([r["buckets"] for r in releases]), minlength=size)
        counts, variances = self.server_counts(sum_by_bucket(releases, "positives", size), sizes, reporters,
                                               public)
        return counts, sizes, variances

    def estimate(self, releases: list[Release], public: Public, rng: np.random.Generator) -> Estimate:
        """The AUC of the summed count estimates (`totals`), its interval and the threshold metrics."""
        counts, sizes, variances = self.totals(releases, public)
        metrics = None
        if public.threshold is not None:
            metrics = threshold_metrics(counts, sizes, public.edges, public.threshold)
        return Estimate(bucketed_auc(counts, sizes), auc_interval(counts, sizes, variances, public.mixed), metrics)

    def server_counts(self, released: np.ndarray, sizes: np.ndarray, reporters: np.ndarray,
                      public: Public) -> tuple[np.ndarray, np.ndarray]:
        """Positive-count estimates per bucket and the variance of their noise (here: exact, none)."""
        return released, np.zeros_like(released)


class Exact(AucMethod):
    """The non-private reference: true counts (one bucket per distinct score: the exact AUC)."""

    name = "exact"
    summary = "The non-private reference: the AUC of the true labels (no privacy)."
    Params = BucketParams

    def guarantee(self, settings: Settings, public: Public) -> str:
        return "no privacy: the AUC of the true labels (the reference)"

    def noise_for_two_counts(self, settings: Settings) -> float:
        return 0.0


class NaiveRR(AucMethod):
    """Each client flips each label with p = 1/(1+e^eps) and reports per-bucket counts of flipped labels;
    the AUC is computed on them as if they were true: biased towards 1/2 (baseline only). Its interval is
    the noise interval of this biased estimator, not an interval for the exact AUC."""

    name = "naive_rr"
    summary = "Randomised response on labels, AUC computed as if true: biased towards 1/2 (baseline)."
    no_interval: ClassVar[str | None] = (
        "no valid interval: naive_rr is biased towards 1/2 by an amount that depends on the unknown labels; use rr "
        "(de-biased) for an interval")

    def noise_parameter(self, settings: Settings) -> float:
        return 0.0 if math.isinf(settings.budget) else rr_flip_probability(settings.budget)

    def describe(self, settings: Settings, public: Public) -> str:
        return (f"{settings.epsilon:g}-label-DP: each label is reported once through randomised response "
                f"(flip probability {public.noise:.4g}); counts and AUC are post-processing")

    def prepare(self, scores: np.ndarray, labels: np.ndarray, public: Public) -> ClientData:
        return group_by_bucket(scores, labels, public.edges, members=True)

    def release(self, data: ClientData, public: Public, rng: np.random.Generator) -> Release:
        flipped = data.labels
        if public.noise > 0:
            flipped = randomized_response(data.labels, public.epsilon, 2, rng)
        counts = np.bincount(data.member, weights=flipped, minlength=data.buckets.size)
        return {"buckets": data.buckets, "sizes": data.sizes, "positives": counts}

    def server_counts(self, released: np.ndarray, sizes: np.ndarray, reporters: np.ndarray,
                      public: Public) -> tuple[np.ndarray, np.ndarray]:
        return released, sizes * public.noise * (1.0 - public.noise)


class DebiasedRR(NaiveRR):
    """The same release, de-biased: c_hat_b = (c~_b - p n_b)/(1 - 2p), unclipped, then the bucketed formula.

    With one bucket per distinct score (the default) this equals the corrected AUC of Menon et al. Each
    c_hat_b is unbiased with variance n_b p (1-p)/(1-2p)^2 (independent of c_b), which the delta-method
    interval uses; the AUC itself is a ratio, consistent and nearly unbiased at large n.
    """

    name = "rr"
    summary = "Randomised response on labels, per-bucket counts de-biased: eps-label-DP."
    no_interval: ClassVar[str | None] = None

    def server_counts(self, released: np.ndarray, sizes: np.ndarray, reporters: np.ndarray,
                      public: Public) -> tuple[np.ndarray, np.ndarray]:
        p = public.noise
        if p == 0:
            return released, np.zeros_like(released)
        return debias_rr_counts(released, sizes, public.epsilon), sizes * p * (1.0 - p) / (1.0 - 2.0 * p) ** 2


class Histogram(AucMethod):
    """Noisy per-bucket positive counts, summed over clients, then the bucketed formula (counts not clipped).

    A client adds noise only to its nonempty buckets (an empty bucket's count is public: 0). The interval is
    the delta method with variance (clients releasing bucket b) x (noise variance).

    Why no clipping to [0, n_b] (the spec asked for it): the noisy counts are unbiased; clipping pulls the
    counts of all-positive or all-negative buckets inwards, which biases the AUC downwards exactly where
    classes separate well. On breast_cancer (n = 285, AUC 0.997, 300 releases) clipping gives bias
    -1.5e-3 / CI coverage 0.54 at eps 64 and -6.2e-3 / 0.78 at eps 8; unclipped: +1.2e-4 / 0.94 and
    -7.7e-4 / 0.94, with lower RMSE at every eps tried (1, 8, 64). At n = 458k both are identical. The
    price: at very high noise the estimate can leave [0, 1] (as de-biased RR can); the interval shows it.
    """

    name = "hist"
    summary = "Laplace noise on per-bucket positive counts: eps-label-DP for any number of buckets."
    Params = HistogramParams
    fine_by_default = False

    def noise_parameter(self, settings: Settings) -> float:
        return 0.0 if math.isinf(settings.budget) else laplace_scale(settings.budget, 1.0)

    def describe(self, settings: Settings, public: Public) -> str:
        return (f"{settings.epsilon:g}-label-DP: Laplace(1/epsilon) on each client's per-bucket positive counts; "
                "bucket sizes are public, so one label moves one count by 1 (L1 sensitivity 1), for any B")

    def noise_for_two_counts(self, settings: Settings) -> float:
        """Laplace scale 2/eps: two counts moving by 1 is L1 sensitivity 2."""
        return 2.0 * self.noise_parameter(settings)

    def draw(self, size: int, public: Public, rng: np.random.Generator) -> np.ndarray:
        return laplace_noise(size, public.noise, rng)

    def variance(self, public: Public) -> float:
        return 2.0 * public.noise**2

    def release(self, data: ClientData, public: Public, rng: np.random.Generator) -> Release:
        noisy = data.positives + self.draw(data.buckets.size, public, rng)
        return {"buckets": data.buckets, "sizes": data.sizes, "positives": noisy}

    def server_counts(self, released: np.ndarray, sizes: np.ndarray, reporters: np.ndarray,
                      public: Public) -> tuple[np.ndarray, np.ndarray]:
        return released, reporters * self.variance(public)


class GaussianHistogram(Histogram):
    """`hist` with Gaussian noise, sigma from the analytic Gaussian mechanism: (eps, delta)-DP."""

    name = "hist_gauss"
    summary = "Gaussian noise on per-bucket positive counts (analytic Gaussian): (eps, delta)-label-DP."
    Params = GaussianHistogramParams

    def noise_parameter(self, settings: Settings) -> float:
        if math.isinf(settings.budget):
            return 0.0
        return analytic_gaussian_sigma(settings.budget, settings.delta, 1.0)

    def describe(self, settings: Settings, public: Public) -> str:
        return (f"({settings.epsilon:g}, {settings.delta:g})-label-DP: N(0, {public.noise:.4g}^2) on each "
                "client's per-bucket positive counts (analytic Gaussian mechanism, L2 sensitivity 1)")

    def noise_for_two_counts(self, settings: Settings) -> float:
        """sigma x sqrt(2): two counts moving by 1 is L2 sensitivity sqrt(2) (sigma is linear in it)."""
        return math.sqrt(2.0) * self.noise_parameter(settings)

    def draw(self, size: int, public: Public, rng: np.random.Generator) -> np.ndarray:
        return gaussian_noise(size, public.noise, rng)

    def variance(self, public: Public) -> float:
        return public.noise**2


class DPAUC(AucMethod):
    """The DPAUC baseline (faithful): Laplace on TP, FP, TN, FN at K thresholds; see `fedsim.evaluation.dpauc`."""

    name = "dpauc"
    summary = "The DPAUC paper's mechanism: Laplace on TP, FP, TN, FN at K thresholds (scores in [0, 1])."
    no_interval: ClassVar[str | None] = (
        "no valid interval: DPAUC's threshold-grid and clipping bias depends on the unknown labels and its "
        "bootstrap does not bound it (covered 0.2 of 200 releases on rare_positive)")
    Params = DPAUCParams

    def public(self, scores: np.ndarray, settings: Settings, owners: np.ndarray | None = None) -> Public:
        check(scores.min() >= 0.0 and scores.max() <= 1.0,
              "dpauc's threshold grid covers [0, 1]: give scores in [0, 1] (probabilities), or use hist or rr")
        clients = 1 if owners is None else int(owners.max()) + 1
        # per threshold and client: 4 prepared counts, their noise and the released copy (float64), and the sum
        check_memory("--thresholds", settings.thresholds, 256 * clients, f"the counts of {clients} client(s) at "
                                                                         "each threshold")
        grid = dpauc_math.threshold_grid(settings.thresholds)
        per_value = dpauc_math.per_value_epsilon(settings.budget, grid.size)
        scale = 0.0 if math.isinf(per_value) else laplace_scale(per_value, 1.0)
        info = {"thresholds": int(grid.size), **dpauc_math.accounting(per_value, grid.size)}
        return Public(grid, settings.budget, scale, info)

    def describe(self, settings: Settings, public: Public) -> str:
        info = public.info
        return (f"{info['epsilon_paper']:g}-label-DP by the paper's accounting (4 K eps_v, K = {info['thresholds']},"
                f" eps_v = {info['epsilon_per_value']:.3g}); the same release is {info['epsilon_tight']:g}-DP by "
                "the tight bound 2 K eps_v (one label moves two of the four counts at each threshold)")

    def prepare(self, scores: np.ndarray, labels: np.ndarray, public: Public) -> np.ndarray:
        return dpauc_math.confusion_counts(scores, labels, public.edges)

    def release(self, data: np.ndarray, public: Public, rng: np.random.Generator) -> Release:
        return {"counts": data + laplace_noise(data.shape, public.noise, rng)}

    def estimate(self, releases: list[Release], public: Public, rng: np.random.Generator) -> Estimate:
        total = np.sum([r["counts"] for r in releases], axis=0)
        auc, ci = dpauc_math.server_auc(total, len(releases), public.noise, rng)
        return Estimate(auc, ci)


class ScalarLaplace(AucMethod):
    """Only the AUC is released: Laplace noise on it, calibrated to 1/L for a floor L on min(n+, n-) taken from
    a Laplace-noised positive count (`fedsim.evaluation.scalar` proves the bound). One label holder; the
    interval is exact (Laplace tails), not asymptotic."""

    name = "scalar_laplace"
    summary = "Laplace noise on the AUC itself, at sensitivity 1/L for a private floor L on min(n+, n-)."
    Params = EpsilonParams

    one_label_holder = True

    def public(self, scores: np.ndarray, settings: Settings, owners: np.ndarray | None = None) -> Public:
        share = scalar.default_share(scores.size, settings.budget)
        return Public(np.empty(0), settings.budget, share, {"share": share})

    def describe(self, settings: Settings, public: Public) -> str:
        return (f"{settings.epsilon:g}-label-DP: {public.noise:.3g} of epsilon on a Laplace-noised positive count, "
                "the rest on Laplace noise on the AUC at sensitivity 1/L, L a floor on min(n+, n-) derived from "
                "that count (proof in fedsim.evaluation.scalar)")

    def prepare(self, scores: np.ndarray, labels: np.ndarray, public: Public) -> scalar.Statistics:
        return scalar.statistics(scores, labels)

    def release(self, data: scalar.Statistics, public: Public, rng: np.random.Generator) -> Release:
        out = scalar.scalar_release(data, public.epsilon, public.noise, rng)
        return {"auc": np.array([out.auc]), "noisy_positives": np.array([out.noisy_positives]),
                "floor": np.array([out.floor]), "n": np.array([data.n])}

    def estimate(self, releases: list[Release], public: Public, rng: np.random.Generator) -> Estimate:
        (sent,) = releases
        out = scalar.ScalarRelease(float(sent["noisy_positives"][0]), int(sent["floor"][0]), float(sent["auc"][0]))
        return Estimate(out.auc, scalar.scalar_interval(out, int(sent["n"][0]), public.epsilon, public.noise))


def places_buckets(method: str, buckets: int | None) -> bool:
    """Whether where the bucket edges go shapes `method`'s release (`--bucketing`): a method with score buckets,
    given B or choosing it by a rule; one bucket per distinct score (rr, naive_rr and exact without B) has no
    edges to place."""
    chosen = METHODS.get(method)
    return "buckets" in chosen.Params.model_fields and (buckets is not None or not chosen.fine_by_default)


def bucket_placing_methods() -> tuple[list[str], list[str]]:
    """(the methods that place bucket edges by default, those that do with --buckets B)."""
    bucketed = [m for m in METHODS.names() if "buckets" in METHODS.get(m).Params.model_fields]
    by_default = [m for m in bucketed if places_buckets(m, None)]
    return by_default, [m for m in bucketed if m not in by_default]


def check_layout(method: AucMethod, clients: int) -> None:
    """A method that needs every label in one place runs with one client only (one-line UserError)."""
    check(not method.one_label_holder or clients == 1,
          f"{method.name} releases one AUC for one label holder: use --clients 1, got {clients}")


def client_rng(seed: int, repeat: int, client: int) -> np.random.Generator:
    """Client `client`'s noise stream in repeat `repeat` (the same in every runtime)."""
    return np.random.default_rng([seed, AucStream.CLIENT_NOISE, repeat, client])


def server_rng(seed: int, repeat: int) -> np.random.Generator:
    """The server's stream in repeat `repeat` (simulated intervals), the same in every runtime."""
    return np.random.default_rng([seed, AucStream.SERVER, repeat])


METHODS: Registry[AucMethod] = Registry("AUC method")
for _method in (Exact(), NaiveRR(), DebiasedRR(), DPAUC(), Histogram(), GaussianHistogram(), ScalarLaplace()):
    METHODS.add(_method.name, _method)
