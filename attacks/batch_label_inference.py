"""Batch-level label inference (Zou et al., "Defending batch-level label inference and replacement attacks in
vertical federated learning", IEEE TBD 2022; their attack is DLG-style gradient matching on one batch).

Each recorded step is attacked on its own: a dummy linear top model (W_s, b_s) for that batch and one dummy
soft label per sample (softmax of free logits) are fitted so that the softmax cross-entropy cut gradients they
imply, (1/B) W_s^T (softmax(W_s h + b_s) - y_hat), match the batch's received gradients (squared distance,
normalised by the mean squared gradient norm). A batch alone fixes the labels only up to a permutation of the
dummy classes, so every W_s starts from one linear top model fitted on the known labels (model completion),
which names the classes; the known samples keep their labels. Shape: the matching is exact for a linear top
model (then some W_s reproduces the batch's gradients); for an MLP top a per-batch linear model is its local
linearisation, an approximation.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from fedsim.attacks.base import Attack, AttackerKnowledge, AttackResult
from fedsim.attacks.model_completion import fit_on_known
from fedsim.attacks.observations import (
    EpochParams,
    SurrogateParams,
    build_surrogate,
    observe,
    split_known,
    torch_seed,
)
from fedsim.attacks.scoring import per_sample
from fedsim.optim import Adam
from fedsim.params import Integer, Number
from fedsim.registry import ATTACKS
from fedsim.rundir import PartyView
from fedsim.threads import torch_threads


class BatchParams(EpochParams):
    steps: Integer = Field(300, ge=0, description="Adam steps of the gradient matching (all batches at once).")
    lr: Number = Field(0.05, gt=0, description="Adam learning rate.")
    init_steps: Integer = Field(300, ge=0, description="Adam steps of the known-label fit that names the classes.")


@ATTACKS.register("batch_label_inference")
class BatchLabelInference(Attack[BatchParams]):
    summary = "Zou et al.'s batch-level inference: per-batch dummy linear top and labels matched to its gradients."
    tasks = ("multiclass",)

    def run(self, view: PartyView, knowledge: AttackerKnowledge, rng: np.random.Generator) -> AttackResult:
        p = self.params
        obs = observe(view, p.epochs)
        split = split_known(view, knowledge, view.task)
        k, n = int(view.n_classes), len(view.sample_ids)
        anchor = build_surrogate(obs.h.shape[1], SurrogateParams(surrogate="linear", hidden=1, depth=0), {"surrogate"},
                                 knowledge, split, torch_seed(rng), out_dim=k)
        h_all = view.embed()
        fit_on_known(anchor, h_all[split.known], torch.from_numpy(split.known_labels).float(), view.task,
                     p.init_steps, 1e-2, 1e-2)
        net = anchor.net
        weight = net.weight.detach().expand(obs.steps, -1, -1).clone().requires_grad_(True)
        bias = net.bias.detach().expand(obs.steps, -1).clone().requires_grad_(True)
        with torch.no_grad():
            logits = net(h_all).clone()
        known = torch.zeros(n, dtype=torch.bool)
        known[torch.from_numpy(split.known)] = True
        fixed = torch.zeros(n, k)
        fixed[torch.from_numpy(split.known), torch.from_numpy(split.known_labels.astype(np.int64))] = 1.0
        logits.requires_grad_(True)
        optimizer = Adam([weight, bias, logits], lr=p.lr)
        with torch_threads(1):
            for _ in range(p.steps):
                y_hat = torch.where(known[:, None], fixed, torch.softmax(logits, 1))[obs.sample]
                w = weight[obs.step]
                z = torch.einsum("rkd,rd->rk", w, obs.h) + bias[obs.step]
                g_hat = torch.einsum("rkd,rk->rd", w, torch.softmax(z, 1) - y_hat) * obs.inv_b[:, None]
                loss = ((g_hat - obs.g) ** 2).sum(1).mean() / obs.grad_scale
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        scores = torch.softmax(logits.detach(), 1)[obs.sample]
        return AttackResult(view.sample_ids[split.unknown], per_sample(obs, scores, split.unknown),
                            info={"epochs_used": obs.epochs_used, "final_loss": float(loss.detach()) if p.steps
                                  else None})
