"""Residual decomposition: our attack beyond the paper, for MSE.

Every MSE gradient row is G_r = (2/B)(g(h_r) - y) grad g(h_r), so for any estimate g' of the top model
y = g'(h_r) - (B/2) <G_r, grad g'(h_r)> / ||grad g'(h_r)||^2. The attack fits one surrogate g'(h, t),
conditioned on training progress t so that it can follow the moving top model, and takes each label as
the least-squares combination of its rows' decompositions over the selected epochs (a sample's label is
the same in every epoch): the labels are never free variables, they are projected out (variable
projection), so only g' is optimised, on gradient matching plus the known labels. It starts, like the
LBA, from the linear closed form (`init=auto`).

Tuned defaults (experiments/grids/regression_attacks.toml, 3 seeds, synthetic Friedman and diabetes): no fit prior
(lambda_t = 0: it hurts when the top model is under-trained, as on diabetes) and the last epoch only;
`epochs=all` refines jointly over every recorded epoch but scored slightly lower on both sets.
"""

from __future__ import annotations

from fedsim.attacks.lba import LBAParams, LearningBasedAttack
from fedsim.params import with_defaults
from fedsim.registry import ATTACKS


@ATTACKS.register("residual")
class ResidualAttack(LearningBasedAttack):
    name = "residual"
    summary = "Residual decomposition (ours, MSE): labels projected out given a progress-aware surrogate."
    tasks = ("regression",)
    Params = with_defaults(LBAParams, "ResidualParams", "The LBA's parameters, labels projected, surrogate timed.",
                           labels="projected", timed=True, lambda_t=0.0)
