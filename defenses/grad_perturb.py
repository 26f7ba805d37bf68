"""Cut-gradient perturbation through randomised labels (after Yang et al., "Differentially Private Label
Protection in Split Learning", 2022, TPSL): at every step the label party computes its loss, and so both the
top-model update and the cut gradients, on labels drawn afresh by k-ary randomised response, never on the
true labels.

Privacy (proof sketch). Fix every party's features and all randomness except the labels'. Step t of training
is a deterministic function of the state after step t - 1 and of the randomised labels of its batch, so the
whole transcript (and the top model) is a post-processing of the sequence of RR releases. A release of sample
i's label is (eps / E)-label-DP (k-ary RR with keep probability e^(eps/E) / (e^(eps/E) + k - 1)); sample i's
label enters E releases (one per epoch, the schedule visits each sample once per epoch), other samples'
releases do not depend on it, so by basic composition the run is eps-label-DP, for any number of steps in
between. The ledger records the releases actually made (the most any sample had), so a run that used a label
more often than planned reports the larger epsilon. Binary (k = 2) and multiclass (k = K logits); soft
targets (from a soft-label defence) cannot be randomised this way and are refused.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from fedsim.defenses.base import Defense, ledger_claim
from fedsim.errors import UserError, check
from fedsim.privacy.claims import PrivacyClaim
from fedsim.privacy.ledger import PrivacyLedger
from fedsim.privacy.mechanisms import check_epsilon, randomized_response
from fedsim.protocol import GradientTransform, TrainingPlan
from fedsim.registry import GRADIENT_DEFENSES


@GRADIENT_DEFENSES.register("grad_perturb")
class GradientPerturbation(Defense, GradientTransform):
    summary = "Yang et al.'s label-DP cut gradients: each step's loss on freshly RR-randomised labels (eps/epochs)."
    tasks = ("binary", "multiclass")
    takes_epsilon = True
    audit_law = "rr_per_epoch"  # a canary's label: one RR release at eps / epochs per epoch (fedsim.audit.ideal)
    privacy_family = "rr_per_epoch"  # so its claim is audited in the curve of that composition (fedsim.privacy.fdp)

    def __init__(self, epsilon: float) -> None:
        self.epsilon = epsilon
        self.uses: np.ndarray | None = None

    @classmethod
    def from_config(cls, task: str, epsilon: float | None, delta: float | None, params: dict) -> GradientPerturbation:
        cls.check_task(task)
        cls.read_params(params)
        return cls(check_epsilon(epsilon))

    def prepare(self, plan: TrainingPlan, rng: np.random.Generator) -> None:
        self.rng, self.plan = rng, plan
        self.step_epsilon = self.epsilon / plan.epochs
        self.uses = np.zeros(plan.n_train, dtype=np.int64)
        self.classes = 0

    def training_loss(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, rows: torch.Tensor,
                      loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        out = model(inputs)
        multiclass = self.plan.task == "multiclass"
        if multiclass and targets.dim() != 1:
            raise UserError("grad_perturb needs class-index targets; it cannot follow a soft-label defence (cae)")
        self.classes = out.shape[1] if multiclass else 2
        labels = targets.reshape(-1).numpy().astype(np.int64)
        noisy = torch.from_numpy(randomized_response(labels, self.step_epsilon, self.classes, self.rng))
        self.uses[rows.numpy()] += 1
        return loss_fn(out, noisy if multiclass else noisy.reshape(targets.shape).to(targets.dtype))

    def privacy(self) -> PrivacyClaim:
        check(self.uses is not None and self.classes > 0, "grad_perturb: no step has run yet")
        releases = int(self.uses.max())
        ledger = PrivacyLedger().randomized_response(self.step_epsilon, self.classes, count=releases,
                                                     what="each label once per use, every step fresh")
        eps = ledger.epsilon()
        return ledger_claim(self.name, ledger, None,
                            f"{eps:.4g}-label-DP for the whole transcript and the top model: every step's loss "
                            f"uses labels freshly randomised by {self.classes}-ary RR at eps {self.step_epsilon:.4g}, "
                            f"each label at most {releases} times (basic composition)",
                            step_epsilon=self.step_epsilon, releases_per_label=releases)
