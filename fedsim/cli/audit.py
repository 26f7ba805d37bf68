"""`fedsim audit train` and `fedsim audit auc`: one-run canary audits of a defence or a private-AUC release.

Both commands take the options of `fedsim train` / `fedsim auc` as those commands define them (the
definitions are reused, not restated: `with_options_of`), plus the audit's own.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import typer

from fedsim.cli import auc as auc_cli
from fedsim.cli import train as train_cli
from fedsim.cli.common import emit_json, parse_params
from fedsim.cli.help import HelpCommand

# `fedsim train` options that describe its outputs: an audit writes nothing
TRAIN_OUTPUTS = {"transcript", "record_last_epochs", "stream", "overwrite"}
# `fedsim auc` options an audit takes: the data, the method, its epsilon and the clients (the audit chooses the
# buckets itself: one per distinct score, so each canary is alone in its bucket)
AUC_OPTIONS = {"data", "score_col", "label_col", "synthetic", "method", "epsilon", "delta", "thresholds", "clients",
               "split", "seed", "json_output"}

app = typer.Typer(help="Audit a defence or a private-AUC method: canaries, one run, a lower bound on epsilon.",
                  no_args_is_help=True, rich_markup_mode=None)


def with_options_of(source: Callable[..., Any], keep: Callable[[str], bool]) -> Callable[[Callable], Callable]:
    """The decorated command also takes `source`'s options, with `source`'s own typer definitions; they
    reach it as keyword arguments (`**options`)."""
    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(func, eval_str=True).parameters.values()
               if p.kind is not inspect.Parameter.VAR_KEYWORD]
        names = {p.name for p in own}
        shared = [p for p in inspect.signature(source, eval_str=True).parameters.values()
                  if keep(p.name) and p.name not in names]
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in (*own, *shared)]

        def command(**options: Any) -> Any:
            return func(**options)

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.__name__, command.__doc__ = func.__name__, func.__doc__
        return command

    return wrap


def summary(report: dict[str, Any]) -> list[str]:
    """Human output; a violation is said on the first line."""
    eps = f"epsilon >= {report['empirical_epsilon']:.3g} at {report['confidence']:.0%} confidence"
    formal = report["formal_epsilon"]
    claim = "" if formal is None else f"{formal:.4g}" + (f", delta {report['formal_delta']:g}"
                                                         if report["formal_delta"] else "")
    if report["verdict"] == "violation":
        first = f"VIOLATION: the audit rejects the claimed epsilon {claim} ({eps})"
    elif report["verdict"] == "consistent":
        first = f"consistent: empirical {eps}; claimed epsilon {claim}"
    else:
        first = f"no formal claim: empirical {eps} is what this setting is worth"
    second = f"canaries {report['canaries']}, guesses {report['guesses']}, correct {report['correct']}, " \
             f"distinguisher {report['attack']}"
    if "canary_values" in report:
        second += " (canary labels {:g} or {:g})".format(*report["canary_values"])
    lines = [first, second]
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
@with_options_of(train_cli.train_command, lambda name: name not in TRAIN_OUTPUTS)
def audit_train_command(
    attack: str = typer.Option(None, help="Distinguisher: an attack that applies to the task, {attacks} "
                                          "(default: residual for regression, direction_scoring for binary)."),
    attack_param: list[str] = typer.Option(None, "--attack-param", help="An attack parameter KEY=VALUE, repeatable."),
    canaries: int = typer.Option(None, help="Canaries M (default min(1000, half the training rows))."),
    confidence: float = typer.Option(0.95, help="Confidence of the lower bound, in (0, 1)."),
    canary_values: tuple[float, float] = typer.Option((None, None), "--canary-values", show_default=False,
                                                      help="The two public labels a regression canary can take "
                                                           "(default: the defence's public clip range)."),
    **train_options: Any,
) -> None:
    """Audit a training defence: plant canaries, train once, attack, bound epsilon from below.

    Each canary's label is one of two public values by its own secret coin; the feature party's attack
    guesses them; the one-run bound of Steinke, Nasr & Jagielski turns the guesses into an empirical
    epsilon, compared with the run's formal claim. A violation is reported on the first line (exit 0).
    """
    from fedsim.audit import audit_training
    from fedsim.threads import torch_threads

    json_output, quiet, threads = (train_options.pop(k) for k in ("json_output", "quiet", "threads"))
    config = train_cli.train_config(**train_options)
    values = None if canary_values == (None, None) or canary_values is None else canary_values
    with torch_threads(threads):
        report = audit_training(config, attack=attack, canaries=canaries, confidence=confidence, seed=config.seed,
                                values=values, attack_params=parse_params(attack_param, "--attack-param"),
                                show_progress=not quiet and not json_output)
    show(report, json_output)


@app.command("auc", cls=HelpCommand)
@with_options_of(auc_cli.auc_command, lambda name: name in AUC_OPTIONS)
def audit_auc_command(
    canaries: int = typer.Option(1000, help="Canaries M: extra scored examples with secret labels."),
    confidence: float = typer.Option(0.95, help="Confidence of the lower bound, in (0, 1)."),
    **auc_options: Any,
) -> None:
    """Audit a private-AUC method: canary labels among the scored examples, one release, a lower bound.

    The auditor reads only the released statistics; each canary sits alone in its score bucket (dpauc:
    one release per canary). A violation is reported on the first line (exit 0).
    """
    from fedsim.audit import audit_auc

    json_output = auc_options.pop("json_output")
    scores, labels = auc_cli.load_scores(auc_options.pop("data"), auc_options.pop("score_col"),
                                         auc_options.pop("label_col"), auc_options.pop("synthetic"),
                                         auc_options["seed"])
    report = audit_auc(scores=scores, labels=labels, canaries=canaries, confidence=confidence, **auc_options)
    show(report, json_output)
