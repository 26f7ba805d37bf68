"""`fedsim audit train` and `fedsim audit auc`: one-run canary audits of a defence or a private-AUC release.

Both commands take the settings of `fedsim train` / `fedsim auc` (`TrainConfig`, `EvalConfig`: the same
generated options), plus the audit's own (`AuditConfig`, `AucAuditConfig`).
"""

from __future__ import annotations

from typing import Any

import typer

from fedsim.cli import auc as auc_cli
from fedsim.cli.common import emit_json
from fedsim.cli.help import HelpCommand
from fedsim.cli.options import config_command
from fedsim.config import AucAuditConfig, AuditConfig, EvalConfig, TrainConfig

# the `fedsim train` setting that describes its output: an audit writes nothing
TRAIN_OUTPUTS = {"record_last_epochs"}
# `fedsim auc` settings that are not options of `fedsim audit auc`, and why: the audit takes every setting of
# the release itself and none of what `fedsim auc` derives from, repeats or records about it
NOT_AUDITED = {
    "curves": "post-processing of the audited release", "projection": "post-processing of the audited release",
    "plot": "post-processing of the audited release", "threshold": "post-processing of the audited release",
    "repeats": "the audit is one release", "ledger": "the audit releases nothing on the labels it prints",
    "budget": "the audit releases nothing on the labels it prints",
    "runtime": "the audit computes the release in process (the Flower apps compute the same one)",
    "setting": "in process the vertical and horizontal releases are one computation",
    "class_scores": "multiclass releases are not audited yet",
}
# the settings that say where the scores come from; the others are `audit_auc`'s keyword arguments
AUC_INPUTS = {"data", "score_col", "label_col", "synthetic", "method", "epsilon"}

app = typer.Typer(help="Audit a defence or a private-AUC method: canaries, one run, a lower bound on epsilon.",
                  no_args_is_help=True, rich_markup_mode=None)


def summary(report: dict[str, Any]) -> list[str]:
    """Human output; a violation is said on the first line, with how often a correct mechanism reads one."""
    eps = f"epsilon >= {report['empirical_epsilon']:.3g} at {report['confidence']:.0%} confidence"
    formal = report["formal_epsilon"]
    claim = "" if formal is None else f"{formal:.4g}" + (f", delta {report['formal_delta']:g}"
                                                         if report["formal_delta"] else "")
    if report["verdict"] == "violation":
        rate = f"about 1 in {round(1 / report['false_alarm_rate']):d}"
        first = f"VIOLATION: the audit rejects the claimed epsilon {claim} ({eps}); {rate} audits of a correct " \
                "mechanism read this at this confidence: rerun with another --seed or a higher --confidence"
    elif report["verdict"] == "consistent":
        first = f"consistent: empirical {eps}; claimed epsilon {claim}"
    else:
        first = f"no formal claim: empirical {eps} is what this setting is worth"
    second = f"canaries {report['canaries']}, guesses {report['guesses']}, correct {report['correct']}, " \
             f"distinguisher {report['attack']} ({report['auditor']} auditor)"
    classes = report.get("canary_classes", 2)
    if classes > 2:
        second += f" (k-ary canaries: one of the {classes} classes 0..{classes - 1})"
    elif "canary_values" in report:
        second += " (canary labels {:g} or {:g})".format(*report["canary_values"])
    steinke = report["steinke_epsilon"]
    steinke_text = f"{steinke:.3g}" if steinke is not None else f"n/a ({report['steinke_reason']})"
    lines = [first, second,
             f"analyses: f-DP {report['fdp_epsilon']:.3g} ({report['analysis']}, used for the verdict), "
             f"Steinke-Nasr-Jagielski {steinke_text}"]
    if report["ideal_epsilon"] is not None:
        efficiency = "-" if report["efficiency"] is None else f"{report['efficiency']:.2f}"
        lines.append(f"ideal observer: epsilon >= {report['ideal_epsilon']:.3g} at the same canaries; "
                     f"audit efficiency {efficiency}")
    elif "ideal_reason" in report:
        lines.append(f"ideal observer: n/a ({report['ideal_reason']})")
    if "tight_epsilon" in report:
        lines.append(f"tight epsilon of this release (2 K eps_v): {report['tight_epsilon']:.4g}")
    if report.get("test"):
        lines.append("test: " + ", ".join(f"{k} {v:.4g}" for k, v in report["test"].items()))
    lines.append(f"privacy: {report['guarantee']}")
    return lines


def show(report: dict[str, Any], json_output: bool) -> None:
    if json_output:
        emit_json(report)
    else:
        print("\n".join(summary(report)))


@app.command("train", cls=HelpCommand)
@config_command(AuditConfig, TrainConfig, exclude=TRAIN_OUTPUTS)
def audit_train_command(
    audit: AuditConfig,
    config: TrainConfig,
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    threads: int = typer.Option(1, min=1, help="Torch threads (small split models run fastest on one)."),
) -> None:
    """Audit a training defence: plant canaries, train once, attack, bound epsilon from below.

    Each canary's label is one of two public values by its own secret coin; the feature party's attack
    guesses them; the one-run bound of Steinke, Nasr & Jagielski turns the guesses into an empirical
    epsilon, compared with the run's formal claim. A violation is reported on the first line (exit 0).
    """
    from fedsim.audit import audit_training
    from fedsim.threads import torch_threads

    with torch_threads(threads):
        report = audit_training(config, attack=audit.attack, canaries=audit.canaries, confidence=audit.confidence,
                                seed=config.seed, values=audit.canary_values, attack_params=audit.attack_params,
                                show_progress=not quiet and not json_output, auditor=audit.auditor,
                                canary_classes=audit.canary_classes)
    show(report, json_output)


@app.command("auc", cls=HelpCommand)
@config_command(AucAuditConfig, EvalConfig, exclude=set(NOT_AUDITED))
def audit_auc_command(
    audit: AucAuditConfig,
    config: EvalConfig,
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Audit a private-AUC method: canary labels among the scored examples, one release, a lower bound.

    Takes the release's options of `fedsim auc`. The auditor reads only the released statistics (with
    --secure-aggregation: the server's sum); each canary sits alone in its score bucket (dpauc: one release
    per canary). The curves, AP and calibration of `fedsim auc --curves` post-process the same release, so
    this audit covers them. A violation is reported on the first line (exit 0).
    """
    from fedsim.audit import audit_auc

    scores, labels = auc_cli.load_scores(config.data, config.score_col, config.label_col, config.synthetic,
                                         config.seed)
    report = audit_auc(config.method, scores, labels, config.epsilon, canaries=audit.canaries,
                       confidence=audit.confidence, show_progress=not quiet and not json_output,
                       **config.model_dump(exclude=AUC_INPUTS | set(NOT_AUDITED)))
    show(report, json_output)
