"""The learning-based attack (LBA) of Xie et al. (arXiv 2301.07284): surrogate top model + one dummy label per sample.

Loss, per minibatch of attacked samples and over all their recorded rows (selected epochs):

    mean_U[ D(G_hat, G) + lambda_t * fit(g'(h), y_hat) ] + lambda_kg * mean_K[D] + lambda_kf * mean_K[fit]

with G_hat = d l(g'(h), y_hat)/dh under the protocol's own loss and mean reduction (so 1/B of the row's
step), D the squared L2 distance divided by the mean squared norm of the recorded gradients (or cosine
plus that), and fit the squared error in units of the known labels' std (BCE for binary). K are the
known samples with their true labels. The normalisations are ours, so one set of weights works across
label scales; the paper's own hyperparameters were not available. Read-outs: the dummy labels, and the
surrogate applied to the final embeddings, g'(f(x)). `labels=projected` replaces the free dummy labels by
their least-squares optimum given g' (see `attacks.residual`).

Multiclass (softmax head): the surrogate outputs K logits, each free label is a softmax over K logits (known
samples: their one-hot class), fit is the cross-entropy and G_hat = (1/B) J'^T (softmax(g'(h)) - y_hat),
computed by autograd (J' = dg'/dh). `init=auto` starts from model completion (a known-label fit) whenever
labels are known, which also names the surrogate's K outputs. No top-model shape is assumed beyond the
surrogate's (an MLP by default); a linear surrogate matches a linear top model exactly.

Defaults, tuned on synthetic Friedman and diabetes over 3 seeds (experiments/grids/regression_attacks.toml): the
paper's weights and Adam lr 1e-2 except lambda_t = 0.01 (0.05 biases the labels towards an under-trained
top model's predictions, e.g. on diabetes), the last epoch, and `init=auto` instead of the paper's random
start: labels and surrogate start from the linear closed form or from model completion, chosen by
cross-validation on the known labels. From random labels (`init=random`) the attack lands in poor local
optima on our data. `batch` counts rows (samples x selected epochs) per Adam step; the attack runs
max(passes, enough passes for min_steps) passes over the attacked samples, and stops earlier once its
estimates have settled: every `CHECK_EVERY` steps it compares the dummy labels of (about `SETTLE_SAMPLES`)
attacked samples with the previous check, and stops when their mean squared change is below `settle` times
their variance (a change that moves R² by about that much). This needs no label, known or true.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from fedsim.attacks.base import Attack, AttackerKnowledge, AttackResult
from fedsim.attacks.linear import LinearClosedForm
from fedsim.attacks.model_completion import fit_on_known, output_width, predict
from fedsim.attacks.observations import (
    EpochParams,
    Observations,
    Split,
    Surrogate,
    SurrogateParams,
    build_surrogate,
    minibatches,
    observe,
    split_known,
    torch_seed,
    value_and_input_grad,
)
from fedsim.errors import check
from fedsim.optim import Adam
from fedsim.params import Flag, Integer, Number
from fedsim.progress import progress_bar
from fedsim.registry import ATTACKS
from fedsim.rundir import PartyView
from fedsim.threads import torch_threads

INIT_FITS = 3  # the most surrogate fits an initialisation makes (init=auto: two folds, then the chosen start)
CHECK_EVERY = 100  # Adam steps between two looks at the estimates (early stopping)
SETTLE_SAMPLES = 2048  # about this many attacked samples are watched (bounds a look's cost on large tables)


class Settling:
    """Early stopping without labels: whether the attacked samples' dummy labels stopped moving."""

    def __init__(self, tolerance: float, samples: torch.Tensor) -> None:
        self.tolerance, self.samples = tolerance, samples
        self.previous: torch.Tensor | None = None
        self.done = False

    def check(self, fit: JointFit) -> bool:
        """Compare the current estimates with the last check's; True (and `done`) once they have settled."""
        current = fit.dummy_labels(self.samples).double().clone()
        if self.previous is not None and self.tolerance > 0:
            change = float((current - self.previous).pow(2).mean())
            spread = float(current.var()) if current.numel() > 1 else 0.0
            self.done = change <= self.tolerance * max(spread, 1e-12)
        self.previous = current
        return self.done


class JointFit:
    """Trains a surrogate top model and the attacked samples' labels together on one party's observations."""

    def __init__(self, attack: Attack, view: PartyView, knowledge: AttackerKnowledge,
                 rng: np.random.Generator, advance: Callable[[int], None] | None = None) -> None:
        """`advance(1)` after each step of the initial fits (at most `INIT_FITS` fits of `init_steps` steps)."""
        p = attack.params
        self.advance = advance
        self.p, self.view, self.task, self.rng, self.name = p, view, view.task, rng, attack.name
        self.explicit = attack.explicit
        self.projected = p.labels == "projected"
        check(not self.projected or (self.task == "regression" and p.distance == "l2"),
              f"attack {attack.name!r}: labels=projected needs a regression transcript and distance=l2")
        self.obs: Observations = observe(view, p.epochs)
        self.split: Split = split_known(view, knowledge, self.task)
        self.k = output_width(view)
        self.model: Surrogate = build_surrogate(self.obs.h.shape[1], p, attack.explicit, knowledge, self.split,
                                                torch_seed(rng), timed=bool(p.timed), out_dim=self.k)
        n = len(view.sample_ids)
        self.known_mask = torch.zeros(n, dtype=torch.bool)
        self.known_mask[torch.from_numpy(self.split.known)] = True
        self.known_y = torch.zeros(n)
        self.known_y[torch.from_numpy(self.split.known)] = torch.from_numpy(self.split.known_labels).float()
        self.known_onehot = torch.zeros(n, self.k)
        if self.task == "multiclass":
            self.known_onehot[torch.from_numpy(self.split.known),
                              torch.from_numpy(self.split.known_labels.astype(np.int64))] = 1.0
        self.z = torch.zeros(n)  # free labels: standardised units (regression) or logits (binary: 1, multiclass: K)
        self.show_progress = attack.show_progress
        self.steps_used = 0
        self._init(knowledge, rng)

    # -- labels -------------------------------------------------------------------------------------------
    def _init(self, knowledge: AttackerKnowledge, rng: np.random.Generator) -> None:
        """Start labels (and surrogate) randomly on the known labels' scale, or from a cheaper attack."""
        init, split = self.p.init, self.split
        if init == "auto":
            init = self._choose_init(knowledge, rng)
        self.init_used = init
        if init == "random" or not len(split.known):
            shape = (len(self.view.sample_ids), self.k) if self.task == "multiclass" else len(self.view.sample_ids)
            self.z = torch.from_numpy(rng.standard_normal(shape)).float()
            self.z.requires_grad_(not self.projected)
            return
        embeddings = self.view.embed()
        if init == "model_completion":
            rows, targets = split.known, self.known_y[split.known]
        else:  # linear closed form on the whole transcript, then the surrogate fitted to its labels
            check(self.task == "regression" and len(split.known) >= 3,
                  f"attack {self.name!r}: init=linear needs a regression transcript and at least 3 known labels")
            result = LinearClosedForm().run(self.view, knowledge, rng)
            targets = self.known_y.clone()
            targets[torch.from_numpy(self.view.rows_of(result.ids))] = torch.from_numpy(result.estimates).float()
            rows = np.arange(len(targets))
        fit_on_known(self.model, embeddings[rows], targets, self.task, self.p.init_steps, 1e-2,
                     self.p.init_weight_decay, self.advance)
        with torch.no_grad():
            pred = self.model(embeddings)
        if init == "linear":
            pred = targets
        self.z = (pred - split.mean) / split.std if self.task == "regression" else pred.clone()
        self.z.requires_grad_(not self.projected)

    def _choose_init(self, knowledge: AttackerKnowledge, rng: np.random.Generator) -> str:
        """`init=auto`: random for binary labels or under 3 known labels; otherwise the linear closed form or
        model completion, whichever predicts held-out known labels better (2-fold cross-validation on the
        known set, from 6 known labels on; linear below). Model completion wins where the embeddings alone
        predict the label well, the closed form where the top model is still close to linear."""
        known, n = self.split.known, len(self.view.sample_ids)
        if self.task == "multiclass":
            return "model_completion" if len(known) else "random"
        if self.task != "regression" or len(known) < 3:
            return "random"
        if len(known) < 6:
            return "linear"
        embeddings = self.view.embed()
        errors = {"linear": 0.0, "model_completion": 0.0}
        folds = np.array_split(rng.permutation(len(known)), 2)
        for fit_idx, held_idx in ((folds[0], folds[1]), (folds[1], folds[0])):
            sub = AttackerKnowledge(knowledge.known_ids[fit_idx], knowledge.known_labels[fit_idx])
            held, y_held = known[held_idx], knowledge.known_labels[held_idx]
            linear = LinearClosedForm().run(self.view, sub, rng)
            full = np.full(n, np.nan)
            full[self.view.rows_of(linear.ids)] = linear.estimates
            errors["linear"] += float(np.mean((full[held] - y_held) ** 2))
            sub_split = split_known(self.view, sub, self.task)
            model = build_surrogate(embeddings.shape[1], self.p, self.explicit, sub, sub_split, torch_seed(rng))
            fit_on_known(model, embeddings[sub_split.known], torch.from_numpy(sub_split.known_labels).float(),
                         self.task, self.p.init_steps, 1e-2, self.p.init_weight_decay, self.advance)
            errors["model_completion"] += float(np.mean((predict(model, embeddings[held], self.task) - y_held) ** 2))
        return min(errors, key=errors.get)

    def free_labels(self, samples: torch.Tensor) -> torch.Tensor:
        z = self.z[samples]
        if self.task == "multiclass":
            return torch.where(self.known_mask[samples, None], self.known_onehot[samples], torch.softmax(z, dim=1))
        y = torch.sigmoid(z) if self.task == "binary" else self.split.mean + self.split.std * z
        return torch.where(self.known_mask[samples], self.known_y[samples], y)

    # -- per-row terms ------------------------------------------------------------------------------------
    def _rows(self, samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows of `samples` as an (n, E) index (absent rows point at row 0) and its validity mask."""
        rows = self.obs.table[samples]
        return rows.clamp(min=0), rows >= 0

    def _forward(self, rows: torch.Tensor, create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
        o = self.obs
        flat = rows.reshape(-1)
        p, jac = value_and_input_grad(self.model, o.h[flat], o.progress[flat] if self.p.timed else None,
                                      create_graph)
        return p.reshape(rows.shape), jac.reshape(*rows.shape, -1)

    def projected_labels(self, rows: torch.Tensor, valid: torch.Tensor, p: torch.Tensor,
                         jac: torch.Tensor) -> torch.Tensor:
        """argmin_y sum_r a_r (y - q_r)^2 + c (y - p_r)^2: the labels that best explain G given g' (regression)."""
        o = self.obs
        c2 = (2 * o.inv_b[rows]) ** 2
        jj = (jac**2).sum(-1).clamp_min(1e-12)
        a = c2 * jj / o.grad_scale * valid
        q = p - (o.g[rows] * jac).sum(-1) / (2 * o.inv_b[rows] * jj)
        c = self.p.lambda_t / self.split.std**2 * valid
        return ((a * q + c * p).sum(1)) / (a + c).sum(1).clamp_min(1e-12)

    def _softmax_terms(self, samples: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row (n, E): G_hat of the softmax head by autograd, and the cross-entropy fit."""
        o = self.obs
        flat = rows.reshape(-1)
        h = o.h[flat].detach().requires_grad_(True)
        logits = self.model(h, o.progress[flat] if self.p.timed else None)
        y = self.free_labels(samples)[:, None, :].expand(*rows.shape, self.k).reshape(-1, self.k)
        fit = -(y * torch.log_softmax(logits, dim=1)).sum(1)
        g_hat = torch.autograd.grad((o.inv_b[flat] * fit).sum(), h, create_graph=True)[0]
        return g_hat.reshape(*rows.shape, -1), fit.reshape(rows.shape)

    def terms(self, samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per sample: mean gradient distance and mean fit term over its recorded rows."""
        o = self.obs
        rows, valid = self._rows(samples)
        if self.task == "multiclass":
            g_hat, fit = self._softmax_terms(samples, rows)
            return self._distance(g_hat, o.g[rows], fit, valid)
        p, jac = self._forward(rows, create_graph=True)
        if self.projected:
            y = torch.where(self.known_mask[samples], self.known_y[samples],
                            self.projected_labels(rows, valid, p, jac))
        else:
            y = self.free_labels(samples)
        y = y[:, None].expand_as(p)
        inv_b, g = o.inv_b[rows], o.g[rows]
        if self.task == "binary":
            g_hat = (inv_b * (torch.sigmoid(p) - y))[..., None] * jac
            fit = F.binary_cross_entropy_with_logits(p, y, reduction="none")
        else:
            g_hat = (2 * inv_b * (p - y))[..., None] * jac
            fit = ((p - y) / self.split.std) ** 2
        return self._distance(g_hat, g, fit, valid)

    def _distance(self, g_hat: torch.Tensor, g: torch.Tensor, fit: torch.Tensor,
                  valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dist = ((g_hat - g) ** 2).sum(-1) / self.obs.grad_scale
        if self.p.distance == "cosine_l2":
            dist = dist + 1 - F.cosine_similarity(g_hat, g, dim=-1, eps=1e-12)
        count = valid.sum(1).clamp_min(1)
        return (dist * valid).sum(1) / count, (fit * valid).sum(1) / count

    # -- optimisation -------------------------------------------------------------------------------------
    def fit(self) -> float:
        p, split = self.p, self.split
        params = list(self.model.parameters()) + ([] if self.projected else [self.z])
        optimizer = Adam(params, lr=p.lr)
        batch = max(1, int(p.batch) // self.obs.n_epochs)  # `batch` counts rows: samples x selected epochs
        per_pass = -(-len(split.unknown) // batch)
        passes = max(int(p.passes), -(-int(p.min_steps) // max(per_pass, 1)))
        known = torch.from_numpy(split.known)
        last = float("nan")
        total = passes * per_pass
        watched = split.unknown[::max(1, len(split.unknown) // SETTLE_SAMPLES)]  # evenly spaced: no draw
        settled = Settling(float(p.settle), torch.from_numpy(watched))
        with progress_bar(total, f"attack {self.name}: fit", self.show_progress) as advance:
            for _ in range(passes):
                if settled.done:
                    break
                for chunk in minibatches(split.unknown, batch, self.rng):
                    sub = known if len(known) <= batch else known[torch.from_numpy(
                        self.rng.choice(len(known), batch, replace=False))]
                    if p.lambda_kg == 0 and p.lambda_kf == 0:
                        sub = sub[:0]
                    dist, fit = self.terms(torch.cat([torch.from_numpy(chunk), sub]))
                    n = len(chunk)
                    loss = dist[:n].mean() + p.lambda_t * fit[:n].mean()
                    if len(sub):
                        loss = loss + p.lambda_kg * dist[n:].mean() + p.lambda_kf * fit[n:].mean()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    last = float(loss.detach())
                    advance(1)
                    self.steps_used += 1
                    if self.steps_used % CHECK_EVERY == 0 and settled.check(self):
                        advance(total - self.steps_used)  # the bar ends where the fit ends
                        break
        return last

    def dummy_labels(self, samples: torch.Tensor) -> torch.Tensor:
        """The fitted labels of `samples`: the free ones, or their least-squares optimum given the surrogate."""
        if not self.projected:
            with torch.no_grad():
                return self.free_labels(samples).detach()
        parts = []
        for chunk in torch.split(samples, 4096):
            rows, valid = self._rows(chunk)
            p, jac = self._forward(rows, create_graph=False)
            parts.append(self.projected_labels(rows, valid, p.detach(), jac.detach()).detach())
        return torch.cat(parts) if parts else torch.zeros(0)

    def readouts(self) -> dict[str, np.ndarray]:
        """Both read-outs for the unknown samples: the fitted labels ('dummy') and g'(f(x)) ('surrogate')."""
        dummy = self.dummy_labels(torch.from_numpy(self.split.unknown))
        with torch.no_grad():
            out = self.model(self.view.embed(self.split.unknown))
        surrogate = torch.sigmoid(out) if self.task == "binary" else out
        if self.task == "multiclass":
            surrogate = torch.softmax(out, dim=1)
        return {"dummy": dummy.detach().double().numpy(), "surrogate": surrogate.double().numpy()}


class LBAParams(EpochParams, SurrogateParams):
    """The LBA's loss weights, optimiser, read-out and initialisation (module docstring)."""

    distance: Literal["l2", "cosine_l2"] = Field("l2", description="Gradient distance D (cosine_l2 adds 1 - cos).")
    lambda_t: Number = Field(0.01, ge=0, description="Weight of the attacked samples' label fit term.")
    lambda_kg: Number = Field(0.05, ge=0, description="Weight of the known samples' gradient distance.")
    lambda_kf: Number = Field(0.01, ge=0, description="Weight of the known samples' label fit term.")
    lr: Number = Field(1e-2, gt=0, description="Adam learning rate.")
    passes: Integer = Field(1, ge=0, description="Passes over the attacked samples (at least min_steps steps).")
    batch: Integer = Field(512, ge=1, description="Rows (samples x selected epochs) per Adam step.")
    min_steps: Integer = Field(2000, ge=0, description="Adam steps to run unless the estimates settle earlier.")
    init: Literal["auto", "random", "model_completion", "linear"] = Field(
        "auto", description="Start of labels and surrogate; auto picks by cross-validation on the known labels.")
    readout: Literal["dummy", "surrogate"] = Field(
        "dummy", description="Reported estimate: fitted labels (dummy) or surrogate(f(x)).")
    labels: Literal["free", "projected"] = Field(
        "free", description="Free dummy labels, or their least-squares optimum given the surrogate.")
    timed: Flag = Field(False, description="Condition the surrogate on training progress.")
    init_steps: Integer = Field(300, ge=0, description="Adam steps fitting the surrogate at initialisation.")
    init_weight_decay: Number = Field(1e-2, ge=0, description="Weight decay of that initial fit.")
    settle: Number = Field(1e-4, ge=0, description="Stop once 100 steps move the dummy labels by less than this "
                                                   "share of their variance (0: run every step).")


@ATTACKS.register("lba")
class LearningBasedAttack(Attack[LBAParams]):
    """Xie et al.'s attack; every weight, the epochs, distance, surrogate and initialisation are parameters."""

    summary = "Xie et al.'s learning-based attack: surrogate top model and dummy labels fitted to the gradients."
    tasks = ("regression", "binary", "multiclass")

    def run(self, view: PartyView, knowledge: AttackerKnowledge, rng: np.random.Generator) -> AttackResult:
        budget = INIT_FITS * self.params.init_steps
        with torch_threads(1):  # small tensors: one thread is fastest, and fair to a shared machine
            with progress_bar(budget, f"attack {self.name}: start", self.show_progress) as advance:
                done = [0]

                def step(n: int) -> None:
                    done[0] += n
                    advance(n)

                joint = JointFit(self, view, knowledge, rng, step)
                advance(budget - done[0])  # fewer fits than the most (another init): the phase is over
            final_loss = joint.fit()
        readouts = joint.readouts()
        info = {"epochs_used": joint.obs.epochs_used, "readout": self.params.readout, "init_used": joint.init_used,
                "steps": joint.steps_used}
        if np.isfinite(final_loss):
            info["final_loss"] = final_loss
        return AttackResult(view.sample_ids[joint.split.unknown], readouts[self.params.readout], readouts, info)
