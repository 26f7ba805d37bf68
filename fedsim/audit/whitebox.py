"""The white-box auditor of `fedsim audit train --auditor white-box`: it reads what the label party did.

Only in audit runs, `WhiteBoxRecorder` wraps the run's gradient transform (the defence) and keeps, per step, what
the likelihood of each canary's secret needs: the top model's outputs and the targets its loss used (through
the loss function it is handed), the clean cut-gradient rows before the defence and the rows the feature
party received. Nothing of it reaches a transcript; the noise is read as it was drawn, never regenerated.

Per canary i and step t it took part in, the auditor scores the release by the log-likelihood ratio of the
canary's high label over its low label; the statistic is the sum over steps (and feature parties):

- `dp_gradient` (and subclasses): for a scalar-output loss the cut-gradient row of example i is
  l'(out_i, y) J_i (J_i = d out_i / d h_i), so the rows under either canary label follow from the clean row and
  l' (taken by autograd on the recorded output): c_y = clip(l'(out_i, y) / l'(out_i, y_used) row_i, C). The
  observed row o is N(c_y, (sigma C)^2 I): LLR = (|o - c_low|^2 - |o - c_high|^2) / (2 (sigma C)^2).
  Its top model's DP-SGD update (the (K+1)-th Gaussian event per epoch the accountant counts) is scored too,
  from Opacus' per-sample gradients by the same label factor (`WhiteBoxRecorder.statistic`).
- `grad_perturb`: every step's loss uses labels re-drawn by k-ary RR at eps_step; the law of the released
  label gives LLR = +eps' when it is the high class, -eps' when the low one, 0 otherwise (eps' = ln of RR's
  keep over flip probability).
- label mechanisms (laplace, gaussian, rr, rr_on_bins): the released label itself (the top model trains on
  it): for additive Laplace / Gaussian noise and RR the exact LLR is increasing in it, so ranking by the
  released value is the exact distinguisher; for rr_on_bins it is a monotone proxy (no formal optimality).

Validity. (out_i, J_i) are functions of the model states, which the claim covers (the top model is trained
by DP-SGD inside the ledger, and the bottom models see only released rows); the two candidate rows are
computed the same way for either label, so the statistic is a function of the mechanism's output, as the
one-run analyses need. A row's candidate pair uses the true label only through the identity
row_i = l'(out_i, y_used) J_i, which gives the same J_i whatever y_used is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from fedsim.defenses.dp_gradient import DPGradient, clip_rows
from fedsim.defenses.grad_perturb import GradientPerturbation
from fedsim.defenses.label_noise import ClippedLabelDefense
from fedsim.defenses.randomized_response import RandomizedResponse
from fedsim.errors import UserError
from fedsim.privacy.claims import PrivacyClaim
from fedsim.protocol import GradientContext, GradientTransform, LabelTransform, TrainingPlan

AUDITORS = ("black-box", "white-box")
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def whitebox_law(label: LabelTransform, gradient: GradientTransform, task: str) -> str:
    """Which likelihood the white-box auditor uses for this run, or a one-line `UserError`."""
    if isinstance(gradient, DPGradient | GradientPerturbation):
        if task == "multiclass" and isinstance(gradient, DPGradient):
            raise UserError("--auditor white-box on dp_gradient needs a one-output loss (regression or binary); "
                            "multiclass cut-gradient rows cannot be recomputed under another label")
        return "gaussian rows" if isinstance(gradient, DPGradient) else "released labels per step"
    if isinstance(label, ClippedLabelDefense | RandomizedResponse):
        return "released labels"
    names = "dp_gradient, grad_perturb, laplace, gaussian, rr, rr_on_bins"
    raise UserError(f"--auditor white-box needs a defence with a formal claim and a known law ({names}); "
                    "this run has none: use --auditor black-box")


class WhiteBoxRecorder(GradientTransform):
    """Delegates every hook to the run's gradient transform and accumulates each canary's white-box LLR."""

    def __init__(self, inner: GradientTransform, rows: np.ndarray, values: tuple[float, float], law: str) -> None:
        self.inner, self.law, self.name = inner, law, inner.name
        self.low, self.high = values
        self.canary = {int(r): i for i, r in enumerate(rows)}
        self.released = np.zeros(len(rows))  # the statistic from everything but the top-model updates
        self.top_updates: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (canaries, <rest, d>, Gram d d^T)
        self.seen = np.zeros(len(rows), dtype=bool)
        self.step: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:  # the defence's own attributes (name, report, ...)
        return getattr(self.__dict__["inner"], name)

    def prepare(self, plan: TrainingPlan, rng: np.random.Generator) -> None:
        self.inner.prepare(plan, rng)

    def wrap_top_model(self, model: nn.Module, in_dim: int, plan: TrainingPlan, rng: np.random.Generator) -> Any:
        return self.inner.wrap_top_model(model, in_dim, plan, rng)

    def target_normalization(self, targets: np.ndarray, rng: np.random.Generator) -> Any:
        return self.inner.target_normalization(targets, rng)

    def privatize_top_model(self, model: nn.Module, optimizer: torch.optim.Optimizer, plan: TrainingPlan,
                            rng: np.random.Generator) -> torch.optim.Optimizer | None:
        private = self.inner.privatize_top_model(model, optimizer, plan, rng)
        if self.law == "gaussian rows" and private is not None:  # dp_gradient's DP-SGD: score its releases too
            dp_optimizer: Any = private  # an Opacus DPOptimizer
            accountant_hook = dp_optimizer.step_hook

            def hook(dp_optimizer: Any) -> None:
                if accountant_hook is not None:
                    accountant_hook(dp_optimizer)
                self._score_top_update(dp_optimizer)

            dp_optimizer.attach_step_hook(hook)
        return private

    def privacy(self) -> PrivacyClaim | None:
        return self.inner.privacy()

    def training_loss(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor,
                      loss_fn: LossFn) -> torch.Tensor:
        def recording(out: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
            self.step = {"out": out.detach(), "used": used.detach(), "loss_fn": loss_fn, "rows": rows}
            return loss_fn(out, used)

        loss = self.inner.training_loss(model, inputs, targets, rows, recording)
        if self.law != "gaussian rows":
            self._score_labels()
        return loss

    def __call__(self, grad: torch.Tensor, context: GradientContext) -> torch.Tensor:
        sent = self.inner(grad, context)
        if self.law == "gaussian rows":
            self._score_rows(grad * context.batch_size, sent * context.batch_size)
        return sent

    def _batch_canaries(self) -> tuple[np.ndarray, np.ndarray]:
        """(positions in the batch, canary indices) of the batch's canaries."""
        rows = self.step["rows"].numpy()
        hits = [(j, self.canary[int(r)]) for j, r in enumerate(rows) if int(r) in self.canary]
        if not hits:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        where, which = zip(*hits, strict=True)
        return np.array(where), np.array(which)

    def _score_labels(self) -> None:
        where, which = self._batch_canaries()
        if not len(where):
            return
        used = self.step["used"].reshape(len(self.step["rows"]), -1)[:, 0].double().numpy()[where]
        if self.law == "released labels":  # fixed once: the latest value is the value
            self.released[which] = used
        else:  # grad_perturb: RR at eps_step over its classes
            llr = cast(GradientPerturbation, self.inner).step_epsilon  # ln(keep / other) of k-ary RR at eps_step, any k
            self.released[which] += np.where(used == self.high, llr, np.where(used == self.low, -llr, 0.0))
        self.seen[which] = True

    def _label_ratios(self, where: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Per canary of the step, l'(out, low) / l'(out, used) and l'(out, high) / l'(out, used): the factors
        that turn any gradient the label party computed for the canary into the one under either label (every
        gradient of example i is l'(out_i, y) times a label-free Jacobian). Cached for the step."""
        if "ratios" not in self.step:
            out, used, loss_fn = self.step["out"][where], self.step["used"][where], self.step["loss_fn"]
            slope_used = loss_slope(loss_fn, out, used)
            slope_used = torch.where(slope_used.abs() < 1e-12, torch.full_like(slope_used, 1e-12), slope_used)
            self.step["ratios"] = tuple(loss_slope(loss_fn, out, torch.full_like(used, value)) / slope_used
                                        for value in (self.low, self.high))
        return self.step["ratios"]

    def _score_rows(self, clean: torch.Tensor, sent: torch.Tensor) -> None:
        where, which = self._batch_canaries()
        if not len(where):
            return
        defense = cast(DPGradient, self.inner)
        candidates = [clip_rows(clean[where].double() * ratio[:, None], defense.clip)
                      for ratio in self._label_ratios(where)]
        std = defense.sigma * defense.clip
        observed = sent[where].double()
        llr = (((observed - candidates[0]) ** 2).sum(1) - ((observed - candidates[1]) ** 2).sum(1)) / (2 * std**2)
        np.add.at(self.released, which, llr.numpy())
        self.seen[which] = True

    def _score_top_update(self, dp_optimizer: Any) -> None:
        """Keep what scoring the top model's DP-SGD release of this step needs (Opacus: per-sample gradients
        clipped to C_t and summed, plus N(0, (sigma C_t)^2 I)). The non-canary rows' clipped gradients are
        subtracted (their labels are fixed, not secret), and every canary's as the midpoint of its two
        candidates; what is left is rest = sum_j (b_j - 1/2) d_j + noise, d_j = clip(g_j(high)) - clip(g_j(low)).
        Kept: <rest, d_i> / (sigma C_t)^2 and the Gram matrix of the d_j over the same variance (`statistic`)."""
        where, which = self._batch_canaries()
        if not len(where):
            return
        per_sample = torch.cat([dp_optimizer._get_flat_grad_sample(p).reshape(len(self.step["rows"]), -1)
                                for p in dp_optimizer.params], dim=1).double()
        scale = dp_optimizer.expected_batch_size * dp_optimizer.accumulated_iterations \
            if dp_optimizer.loss_reduction == "mean" else 1.0
        released = torch.cat([p.grad.reshape(-1) for p in dp_optimizer.params]).double() * scale
        clip = float(dp_optimizer.max_grad_norm)
        others = np.ones(len(per_sample), dtype=bool)
        others[where] = False
        low, high = (opacus_clip(per_sample[where] * ratio[:, None], clip) for ratio in self._label_ratios(where))
        rest = released - opacus_clip(per_sample[others], clip).sum(0) - ((low + high) / 2).sum(0)
        variance = (float(dp_optimizer.noise_multiplier) * clip) ** 2
        d = high - low
        self.top_updates.append((which, (d @ rest / variance).numpy(), (d @ d.T / variance).numpy()))

    @property
    def statistic(self) -> np.ndarray:
        """Per canary: the cut rows' (or released labels') LLR plus the top-model updates' scores, a few rounds
        from S = the cut rows' LLR (`top_update_scores`: each step's other canaries enter by their current
        belief t_j = tanh(S_j / 2) / 2 and its variance). Every input is the mechanism's output or the model
        state, so the statistic stays a function of the output."""
        total = self.released.copy()
        for _ in range(TOP_ROUNDS if self.top_updates else 0):
            t = np.tanh(total / 2) / 2
            total = self.released.copy()
            for which, projection, gram in self.top_updates:
                np.add.at(total, which, top_update_scores(projection, gram, t[which]))
        return total


TOP_ROUNDS = 3  # rounds of the top-model interference estimate (`WhiteBoxRecorder.statistic`)


def top_update_scores(projection: np.ndarray, gram: np.ndarray, belief: np.ndarray) -> np.ndarray:
    """Each canary's LLR from one top-model DP-SGD release, the batch's other canaries marginalised.

    In units of the noise std, rest = sum_j x_j d_j + N(0, I) with x_j = b_j - 1/2 (`_score_top_update`);
    `projection` holds <rest, d_i>, `gram` G = <d_i, d_j>, `belief` t_j = E x_j. For canary i the others'
    residuals x_j - t_j are taken as Gaussian with their Bernoulli variance v_j = 1/4 - t_j^2, so rest - sum_{j != i}
    t_j d_j is N(+-d_i / 2, I + sum_{j != i} v_j d_j d_j^T) and the exact LLR of that Gaussian model is
    z_i = [(I + G V_{-i})^{-1} (projection - G t_{-i})]_i (push-through identity: only the span of the d_j
    matters). With W = (I + G V)^{-1} and h_i = (W G)_ii, Sherman-Morrison gives z_i = ((W (projection - G t))_i
    + t_i h_i) / (1 - v_i h_i): one solve per step. Why not subtract the t_j d_j alone: with half of a batch
    canaries (diabetes, 176 canaries in 353 rows) their unknown residuals dominate the noise, and ignoring
    them scores the release as if it were sharper than it is (dp_gradient at eps 8 audited at 0.415 eps over
    seeds 0-39 that way, 0.454 with the marginalisation, the ideal observer 0.455; docs/auditing.md)."""
    variance = 0.25 - belief**2
    system = np.eye(belief.size) + gram * variance[None, :]  # I + G V
    solve = np.linalg.solve(system, np.column_stack([projection - gram @ belief, gram]))
    spread = np.diag(solve[:, 1:])
    return (solve[:, 0] + belief * spread) / (1.0 - variance * spread)


def opacus_clip(rows: torch.Tensor, clip: float) -> torch.Tensor:
    """Opacus' per-sample clipping, factor min(1, C / (norm + 1e-6)), so the candidates match its own."""
    return rows * (clip / (rows.norm(dim=1, keepdim=True) + 1e-6)).clamp(max=1.0)


def loss_slope(loss_fn: LossFn, out: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """d loss(out_i, y_i) / d out_i per example (one-output losses), by autograd on detached copies."""
    slopes = []
    for o, y in zip(out, targets, strict=True):
        leaf = o.detach().double().reshape(1, -1).requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(leaf, y.double().reshape(1, -1)), leaf)
        slopes.append(grad.reshape(-1)[0])
    return torch.stack(slopes)
