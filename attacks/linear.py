"""Closed form for a linear top model g(h) = w.h + b under MSE with mean reduction.

Every gradient row of step t is G_r = (2/B)(w_t.h_r + b_t - y) w_t: all rows of a step are parallel to
w_t, so the step's direction u_t (top eigenvector of the step's sum of G G^T) is observed exactly. With
n_t = |w_t| (signed along u_t) and m_t = 1/n_t,

    y = n_t (u_t.h_r) - m_t (B/2)(u_t.G_r) + b_t,

linear in (y, n_t, m_t, b_t) once m_t is let free. `mode=global` (the default on one epoch, `epochs=last`)
fits one (n, m, b) on the known labels' rows: the top model drifts a little within an epoch, so this is
near-exact late in training, and on an MLP top model it is the local linearisation (a strong, cheap
baseline, and the LBA's starting point). `mode=per_step` (the default with `epochs=all` or a count >= 2)
solves the sparse least-squares system over the selected epochs with three unknowns per step and one label
per sample shared across epochs: with two or more epochs it is determined by the data and two distinct
known labels (scale and shift), so it is exact on noise-free gradients of a linear top model whatever the
optimiser did between steps; with an MLP top model, early epochs fit this model worse than the last one.
Least squares absorbs gradient noise. The top model's offset/scale (fedsim.models.TopModel) fold into w, b.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch
from pydantic import Field

from fedsim.attacks.base import Attack, AttackerKnowledge, AttackResult
from fedsim.attacks.observations import EpochParams, Observations, observe, split_known
from fedsim.errors import check
from fedsim.registry import ATTACKS
from fedsim.rundir import PartyView


def step_directions(obs: Observations) -> torch.Tensor:
    """u_t per step: top eigenvector of sum_r G_r G_r^T, signs aligned with the overall top direction."""
    g = obs.g.double()
    d = g.shape[1]
    outer = torch.zeros(obs.steps, d, d, dtype=torch.float64)
    outer.index_add_(0, obs.step, g[:, :, None] * g[:, None, :])
    _, vectors = torch.linalg.eigh(outer)
    u = vectors[:, :, -1]
    _, overall = torch.linalg.eigh(outer.sum(0))
    sign = torch.sign(u @ overall[:, -1])
    return u * torch.where(sign == 0, torch.ones_like(sign), sign)[:, None]


class LinearParams(EpochParams):
    mode: Literal["auto", "global", "per_step"] = Field(
        "auto", description="One (n, m, b) fit on the known rows, or three unknowns per step; auto by epochs.")


@ATTACKS.register("linear")
class LinearClosedForm(Attack[LinearParams]):
    summary = "Closed form for a linear top model under MSE: exact on a linear top model, else linearised."
    min_known = 3

    def run(self, view: PartyView, knowledge: AttackerKnowledge, rng: np.random.Generator) -> AttackResult:
        obs = observe(view, self.params.epochs)
        split = split_known(view, knowledge, view.task)
        check(len(split.known) >= 3, "attack 'linear' needs at least 3 known labels")
        u = step_directions(obs)[obs.step]
        a = (u * obs.h.double()).sum(1).numpy()
        c = ((u * obs.g.double()).sum(1) / (2 * obs.inv_b.double())).numpy()
        mode = self.params.mode
        if mode == "auto":
            mode = "per_step" if obs.n_epochs >= 2 else "global"
        check(mode == "global" or obs.n_epochs >= 2, "attack 'linear' mode=per_step needs at least 2 epochs")
        solve = self._per_step if mode == "per_step" else self._global
        estimates = solve(obs, split.known, split.known_labels, split.unknown, a, c)
        info = {"epochs_used": obs.epochs_used, "mode": mode}
        return AttackResult(view.sample_ids[split.unknown], estimates, info=info)

    @staticmethod
    def _global(obs: Observations, known: np.ndarray, y_known: np.ndarray, unknown: np.ndarray,
                a: np.ndarray, c: np.ndarray) -> np.ndarray:
        sample = obs.sample.numpy()
        label_of = np.full(len(obs.table), np.nan)
        label_of[known] = y_known
        rows = np.flatnonzero(~np.isnan(label_of[sample]))
        design = np.stack([a, -c, np.ones_like(a)], axis=1)
        coef, *_ = np.linalg.lstsq(design[rows], label_of[sample[rows]], rcond=None)
        per_row = design @ coef
        sums = np.bincount(sample, weights=per_row, minlength=len(obs.table))
        counts = np.bincount(sample, minlength=len(obs.table))
        return sums[unknown] / np.maximum(counts[unknown], 1)

    @staticmethod
    def _per_step(obs: Observations, known: np.ndarray, y_known: np.ndarray, unknown: np.ndarray,
                  a: np.ndarray, c: np.ndarray) -> np.ndarray:
        sample, step = obs.sample.numpy(), obs.step.numpy()
        n_rows, n_unknown = len(sample), len(unknown)
        column_of = np.full(len(obs.table), -1)
        column_of[unknown] = np.arange(n_unknown)
        label_of = np.zeros(len(obs.table))
        label_of[known] = y_known
        is_unknown = column_of[sample] >= 0
        r = np.arange(n_rows)
        base = n_unknown + 3 * step
        rows = np.concatenate([r[is_unknown], r, r, r])
        cols = np.concatenate([column_of[sample[is_unknown]], base, base + 1, base + 2])
        vals = np.concatenate([np.ones(is_unknown.sum()), -a, c, -np.ones(n_rows)])
        matrix = scipy.sparse.csc_matrix((vals, (rows, cols)), shape=(n_rows, n_unknown + 3 * obs.steps))
        rhs = np.where(is_unknown, 0.0, -label_of[sample])
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(0))).ravel()
        norms[norms == 0] = 1.0
        scaled = matrix @ scipy.sparse.diags(1 / norms)
        solution = scipy.sparse.linalg.lsqr(scaled, rhs, atol=1e-14, btol=1e-14, iter_lim=5000)[0]
        return solution[:n_unknown] / norms[:n_unknown]
