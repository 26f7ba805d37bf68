"""Model completion (Fu et al., USENIX Security 2022, passive variant): a fresh top model on known labels only.

The attacker fits a surrogate top model on (f(x_k), y_k) for its known labels, with its trained bottom
model f, and predicts everyone else. It uses no gradient at all, so it measures what the gradients add.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from fedsim.attacks.base import Attack, AttackerKnowledge, AttackResult
from fedsim.attacks.observations import Split, Surrogate, SurrogateParams, build_surrogate, split_known, torch_seed
from fedsim.optim import Adam
from fedsim.params import Integer, Number
from fedsim.registry import ATTACKS
from fedsim.rundir import PartyView


class ModelCompletionParams(SurrogateParams):
    steps: Integer = Field(300, ge=0, description="Full-batch Adam steps on the known labels.")
    lr: Number = Field(1e-2, ge=0, description="Adam learning rate.")
    weight_decay: Number = Field(1e-2, ge=0, description="Adam weight decay.")


def fit_on_known(model: Surrogate, h: torch.Tensor, y: torch.Tensor, task: str, steps: int, lr: float,
                 weight_decay: float, advance: Callable[[int], None] | None = None) -> None:
    """Full-batch Adam on the known pairs, in standardised label units (regression), BCE (binary) or softmax
    cross-entropy on class indices (multiclass); `advance(1)` after each step (a progress bar)."""
    optimizer = Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        p = model(h)
        if task == "multiclass":
            loss = F.cross_entropy(p, y.long())
        elif task == "binary":
            loss = F.binary_cross_entropy_with_logits(p, y)
        else:
            loss = ((p - y) / model.std).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if advance is not None:
            advance(1)


def predict(model: Surrogate, h: torch.Tensor, task: str) -> np.ndarray:
    """Label values (regression), positive-class probabilities (binary) or (n, K) class probabilities."""
    with torch.no_grad():
        p = model(h)
    if task == "multiclass":
        p = torch.softmax(p, dim=1)
    elif task == "binary":
        p = torch.sigmoid(p)
    return p.double().numpy()


def output_width(view: PartyView) -> int:
    """Outputs of a surrogate top model: K logits for multiclass, else one."""
    return int(view.n_classes) if view.task == "multiclass" else 1


def completed_model(view: PartyView, knowledge: AttackerKnowledge, params: ModelCompletionParams, explicit: set[str],
                    rng: np.random.Generator) -> tuple[Surrogate, torch.Tensor, Split]:
    """The surrogate top model fitted on the known labels, the party's embeddings of its training samples and
    the known/unknown split."""
    split = split_known(view, knowledge, view.task)
    embeddings = view.embed()
    model = build_surrogate(embeddings.shape[1], params, explicit, knowledge, split, torch_seed(rng),
                            out_dim=output_width(view))
    fit_on_known(model, embeddings[split.known], torch.from_numpy(split.known_labels).float(), view.task,
                 params.steps, params.lr, params.weight_decay)
    return model, embeddings, split


@ATTACKS.register("model_completion")
class ModelCompletion(Attack[ModelCompletionParams]):
    summary = "Fu et al.'s passive model completion: a top model fitted on the known labels only, no gradients."
    tasks = ("regression", "binary", "multiclass")

    def run(self, view: PartyView, knowledge: AttackerKnowledge, rng: np.random.Generator) -> AttackResult:
        model, embeddings, split = completed_model(view, knowledge, self.params, self.explicit, rng)
        return AttackResult(view.sample_ids[split.unknown], predict(model, embeddings[split.unknown], view.task))
