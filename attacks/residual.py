"""Residual decomposition: our attack beyond the paper, for MSE.

Every MSE gradient row is G_r = (2/B)(g(h_r) - y) grad g(h_r), so for any estimate g' of the top model
y = g'(h_r) - (B/2) <G_r, grad g'(h_r)> / ||grad g'(h_r)||^2. A sample's label is the same in every
epoch while the top model moves, so the attack fits one surrogate g'(h, t) conditioned on training
progress t over all recorded epochs, and takes each label as the least-squares combination of its rows'
decompositions (plus a small pull towards g'(h), the fit prior): the labels are never free variables, they
are projected out (variable projection), so only g' is optimised. It starts, like the LBA, from the
linear closed form (`init=auto`).
"""

from __future__ import annotations

from attacks.lba import LBA_DEFAULTS, LearningBasedAttack
from attacks.registry import ATTACKS


@ATTACKS.register("residual")
class ResidualAttack(LearningBasedAttack):
    name = "residual"
    tasks = ("regression",)
    defaults = {**LBA_DEFAULTS, "epochs": "all", "labels": "projected", "timed": True}
