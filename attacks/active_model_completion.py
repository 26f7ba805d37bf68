"""Active model completion (Fu et al., USENIX Security 2022): model completion by a party that trained greedily.

The malicious feature party multiplies every step of its own bottom model (`fedsim train
--malicious-update-scale S --malicious-party P`; `FeatureParty(update_scale=S)` scales its optimizer's learning
rate), so its bottom model learns faster than the others' and the top model comes to rely on its features; its
embeddings then carry more of the label, and model completion on a few known labels recovers more. The
inference step is passive model completion; what is active is the training, which the run config records
(`malicious_update_scale`, `malicious_party`), so this attack refuses a view whose party did not scale its steps.
"""

from __future__ import annotations

import numpy as np

from fedsim.attacks.base import Attack, AttackerKnowledge, AttackResult
from fedsim.attacks.model_completion import ModelCompletionParams, completed_model, predict
from fedsim.errors import check
from fedsim.registry import ATTACKS
from fedsim.rundir import PartyView


@ATTACKS.register("active_model_completion")
class ActiveModelCompletion(Attack[ModelCompletionParams]):
    summary = ("Fu et al.'s active model completion: the attacking party trained with scaled steps "
               "(--malicious-update-scale); then model completion.")
    tasks = ("binary", "multiclass")

    def run(self, view: PartyView, knowledge: AttackerKnowledge, rng: np.random.Generator) -> AttackResult:
        config = view.public
        scaled = config.malicious_party == view.party and config.malicious_update_scale != 1.0
        check(scaled, f"attack {self.name!r} needs a run in which party {view.party} scaled its steps: train with "
                      f"--malicious-party {view.party} --malicious-update-scale S (S > 1); use model_completion "
                      f"for an honest run")
        model, embeddings, split = completed_model(view, knowledge, self.params, self.explicit, rng)
        return AttackResult(view.sample_ids[split.unknown], predict(model, embeddings[split.unknown], view.task),
                            info={"update_scale": config.malicious_update_scale})
