"""Empirical privacy audits: canaries, one run, an attack as distinguisher, a lower bound on epsilon.

`audit_training` (`fedsim audit train`) audits a training run and its defence, `audit_auc` (`fedsim audit
auc`) a private-AUC release, `audit_label_mechanism` a label mechanism alone (cheap: the validity tests).
The bound itself is core maths: `fedsim.privacy.audit_bound`. This package trains and attacks, so it sits
in the experiments layer.
"""

from fedsim.audit.auc import audit_auc
from fedsim.audit.mechanism import audit_label_mechanism
from fedsim.audit.training import audit_training

__all__ = ["audit_auc", "audit_label_mechanism", "audit_training"]
