"""Empirical privacy audits: canaries, one run, an attack as distinguisher, a lower bound on epsilon.

`audit_training` (`fedsim audit train`) audits a training run and its defence, `audit_auc` (`fedsim audit
auc`) a private-AUC release, `audit_label_mechanism` a label mechanism alone (cheap: the validity tests).
The bound itself is core maths: `fedsim.privacy.audit_bound`. This package trains and attacks, so it sits
in the experiments layer. The package is callable: `fedsim.audit(...)` is `fedsim.audit.api.audit`.
"""

import sys
import types
from typing import Any

from fedsim.audit.api import AuditReport, audit
from fedsim.audit.auc import audit_auc
from fedsim.audit.mechanism import audit_label_mechanism
from fedsim.audit.training import audit_training

__all__ = ["AuditReport", "audit", "audit_auc", "audit_label_mechanism", "audit_training"]


class _CallablePackage(types.ModuleType):
    """`fedsim.audit(...)` runs `fedsim.audit.api.audit`: the package holds the name the Python API gives it."""

    def __call__(self, *args: Any, **kwargs: Any) -> AuditReport:
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
