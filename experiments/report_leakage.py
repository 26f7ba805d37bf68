"""The leakage sections of a report: per (dataset, feature parties) a paragraph saying what was measured
(attacking party, known labels, scored samples, epochs, units), a table defence x strength -> test metric and
every attack's advantage over the features-only reference (`fedsim.attacks.baselines`), the same table in raw
leakage, the privacy-utility-leakage plot (x: main-task loss, y: the best attack's advantage with error bars
over seeds, the features-only and known-label-mean floors as lines, raw leakage on the right axis, one line per
defence through its strengths, the no-defence point starred, the Pareto front highlighted) and one line per
defence: the smallest advantage reachable within a 10% increase of the main-task loss.

Regression: loss = test MSE, leakage = attack R^2. Binary: loss = 1 - test AUC, leakage = attack (leak) AUC.
Multiclass: loss = 1 - test accuracy, leakage = attack accuracy (on the unknown labels), plus the Defense
Capability Score and the scoring checks (`report_classification`). Results without references (older tables)
fall back to raw leakage.
Headlines are plain sentences (no markdown): the CLI prints them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fedsim.experiments.report_classification import dcs_section, scored_leakage, scoring_flags
from fedsim.experiments.report_markdown import (
    Report,
    column_format,
    markdown_table,
    mean_std_column,
    save_figure,
    slug,
    strength_text,
)
from fedsim.experiments.results import NOT_APPLICABLE
from fedsim.privacy.fdp import binomial_excess

BUDGET = 0.10  # the summary's allowed relative increase of the main-task loss over no defence
LEAK_DECIMALS = 3  # R², AUC and their advantages: one fixed format, whatever the column's values


@dataclass(frozen=True)
class Measures:
    """Which columns measure utility loss and leakage for a task, and how to print them."""

    loss: str
    loss_name: str
    loss_unit: str  # printed after the loss's name (with its leading separator), "" when unitless
    leak: str
    leak_name: str
    metric_name: str  # the leakage metric alone ("R²", "AUC")
    advantage: str = "attack_advantage"

    @property
    def metric(self) -> str:
        """The leakage metric's key in the attack's metrics (`r2`, `auc`)."""
        return self.leak.removeprefix("attack_")

    @staticmethod
    def of(task: str) -> Measures:
        if task == "binary":
            return Measures("loss", "1 - test AUC", "", "attack_auc", "attack AUC", "AUC")
        if task == "multiclass":
            return Measures("loss", "1 - test accuracy", "", "attack_accuracy", "attack accuracy", "accuracy")
        return Measures("test_mse", "test MSE", " (squared label units)", "attack_r2", "attack R²", "R²")



def leakage_section(group: pd.DataFrame, dataset: str, parties: int, plots_dir: Path, report: Report) -> str:
    task = str(group["task"].iloc[0])
    m = Measures.of(task)
    group = group.copy()
    if task == "binary":
        group["loss"] = 1 - group["test_auc"]
    if task == "multiclass":
        group["loss"] = 1 - group["test_accuracy"]
    group["defense_key"] = group["defense"].astype(str)
    group["strength_key"] = group["strength"].astype(float)
    group["attack_label"] = _attack_labels(group)
    group["advantage"] = group.get(m.advantage, np.nan)
    group["scored"] = scored_leakage(group, m.leak)  # matched where the advantage is taken on the matched score
    group["features_only"] = group["scored"] - group["advantage"]
    known_mean = f"reference_known_mean_{m.metric}"
    group["mean_predictor"] = group.get(known_mean, np.nan)
    settings = _settings(group, m)
    floors = _floors(group)
    title = f"{dataset}, {parties} feature part{'y' if parties == 1 else 'ies'}{_active_text(group)}"
    setup = Setup.of(group, m)
    lines = [f"### {title}\n", _measured(setup, m, floors), ""]
    if floors.available:
        lines += [f"Advantage over the features-only reference ({m.leak_name} minus {floors.text(m)}):\n",
                  _advantage_table(settings, m), "",
                  f"{_scored_name(group, m)} (the features-only reference alone: {floors.features_only:.3f}; "
                  f"the known-label mean: {floors.mean_predictor:.3f}):\n"]
    lines += [_leakage_table(settings, m), ""]
    plot = plots_dir / f"leakage_{slug(dataset)}_{parties}p{slug(_active_text(group))}.png"
    _leakage_plot(settings, m, floors, title, setup.caption(m), plot)
    report.plots.append(plot)
    lines.append(f"![privacy-utility-leakage, {title}](plots/{plot.name})\n")
    summary = summaries(settings, m, dataset, floors.available)
    if summary:
        measure = "advantage" if floors.available else m.leak_name
        lines.append(f"Smallest {measure} within +{BUDGET:.0%} {m.loss_name} of no defence "
                     f"(best attack per setting):\n")
        lines += [f"- {s}" for s in summary]
    report.headlines += _leakage_headlines(settings, m, dataset, floors) + summary
    notes = not_applicable_notes(group)
    if notes:
        lines += ["", "Not applicable (n/a: the attack cannot model the defence; not a failure):\n",
                  *[f"- {n}" for n in notes]]
    flags = scoring_flags(group, m.metric_name)
    if flags:
        lines += ["", "Scoring checks (docs/scoring.md):\n", *[f"- {f}" for f in flags]]
    if task in ("binary", "multiclass") and {"test_accuracy", "attack_accuracy"} <= set(group.columns):
        table, best = dcs_section(group, dataset)
        lines += ["", table]
        report.headlines += best
    return "\n".join(lines) + "\n"



@dataclass(frozen=True)
class Floors:
    """The references' headline metric, mean over cells: the same in every defence setting, since the known
    labels depend only on the seed and the references read only the features and those labels."""

    features_only: float
    mean_predictor: float

    @property
    def available(self) -> bool:
        return not pd.isna(self.features_only)

    @property
    def mean_advantage(self) -> float:
        """The mean predictor on the advantage scale (at most 0: it is one of the features-only references)."""
        return self.mean_predictor - self.features_only

    @staticmethod
    def text(m: Measures) -> str:
        return (f"the {m.metric_name} of the best features-only reference: the known-label mean, or ridge or "
                f"gradient-boosted trees on the party's own features, fitted on the same known labels")



def _floors(group: pd.DataFrame) -> Floors:
    cells = group.dropna(subset=["features_only"]).drop_duplicates("cell")
    if cells.empty:
        return Floors(np.nan, np.nan)
    return Floors(float(cells["features_only"].mean()), float(cells["mean_predictor"].mean()))



@dataclass(frozen=True)
class Setup:
    """What a leakage section measured, in words: for the report's paragraph and the plot's caption."""

    parties: str  # the attacking feature party (or parties)
    knowledge: str  # known labels as a count and a fraction, and the samples scored
    epochs: str
    test_rows: str
    seeds: int

    @staticmethod
    def of(group: pd.DataFrame, m: Measures) -> Setup:
        # tables written before these columns existed lack some of them: they read as unknown
        group = group.reindex(columns=group.columns.union(["known_labels", "n_train", "n_attacked", "attack_party",
                                                           "epochs", "n_test"], sort=False))
        known = group.dropna(subset=["known_labels"]).groupby("attack_label").agg(
            count=("known_labels", "mean"), n_train=("n_train", "first"), attacked=("n_attacked", "mean"))
        knowledge = "; ".join(
            f"{name}: {r['count']:.0f} known labels ({r['count'] / r['n_train']:.1%} of {r['n_train']:.0f} "
            f"training rows), {m.metric_name} on {r['attacked']:.0f}" for name, r in known.iterrows())
        if len(known) and known[["count", "attacked"]].nunique().le(1).all():
            r = known.iloc[0]
            knowledge = (f"{r['count']:.0f} known labels ({r['count'] / r['n_train']:.1%} of {r['n_train']:.0f} "
                         f"training rows, drawn by seed), {m.metric_name} on the other {r['attacked']:.0f}")
        return Setup(parties=", ".join(str(int(p)) for p in sorted(group["attack_party"].dropna().unique())),
                     knowledge=knowledge,
                     epochs=", ".join(f"{int(e)}" for e in sorted(group["epochs"].dropna().unique())),
                     test_rows=", ".join(f"{int(n)}" for n in sorted(group["n_test"].dropna().unique())),
                     seeds=int(group["seed"].nunique()))

    def caption(self, m: Measures) -> str:
        import textwrap

        return textwrap.fill(f"Feature party {self.parties} attacks; {self.knowledge} (its unknown training "
                             f"labels); {self.epochs} training epochs; mean ± std over {self.seeds} seed(s).", 115)



def _measured(setup: Setup, m: Measures, floors: Floors) -> str:
    """One paragraph: who attacked, with how many known labels, on which samples, after how much training."""
    text = (f"Measured: feature party {setup.parties} attacks from its own view; {setup.knowledge}. The "
            f"{m.metric_name} is computed on the attacked party's unknown training labels only (never the known "
            f"ones). Training: {setup.epochs} epochs. Main task: {m.loss_name} on {setup.test_rows} test "
            f"rows{m.loss_unit}. Values are mean ± std over {setup.seeds} seed(s).")
    if floors.available:
        text += (f" Advantage = attack {m.metric_name} − {m.metric_name} of the best features-only reference "
                 f"(what the party could predict from its own features and known labels without the protocol).")
    return text



def _scored_name(group: pd.DataFrame, m: Measures) -> str:
    """What the leakage table holds: the raw score, or the matched one where the advantage is taken on it."""
    if "advantage_scoring" in group and group["advantage_scoring"].eq("matched").any():
        return (f"Matched {m.leak_name} (best one-to-one map of estimated to true classes where the attacker could "
                f"learn it from its known labels, else raw; docs/scoring.md; raw differs by more than 0.05 only in "
                f"the cells flagged below)")
    return f"Raw {m.leak_name}"


def _active_text(group: pd.DataFrame) -> str:
    """`, party 0 active (update scale 5)` for a run with a malicious feature party (Fu et al.), else ""."""
    if "malicious_update_scale" not in group.columns or group["malicious_update_scale"].isna().all():
        return ""
    row = group.dropna(subset=["malicious_update_scale"]).iloc[0]
    return f", party {int(row['malicious_party'])} active (update scale {row['malicious_update_scale']:g})"


def _attack_labels(group: pd.DataFrame) -> pd.Series:
    """`lba`, or `lba@5%` when one attack runs at several known-label fractions, and `lba (init=random)` when it
    runs with several parameter settings (each labelled by its parameters)."""
    fractions = group.groupby("attack")["known_fraction"].nunique()
    variants = group.groupby("attack")["attack_params"].nunique() if "attack_params" in group.columns else {}

    def label(r: pd.Series) -> str:
        name = str(r["attack"])
        if variants.get(r["attack"], 1) > 1 and json.loads(r["attack_params"]):
            name += " (" + ", ".join(f"{k}={v}" for k, v in json.loads(r["attack_params"]).items()) + ")"
        if fractions.get(r["attack"], 1) > 1 and not pd.isna(r["known_fraction"]):
            name += f"@{r['known_fraction']:.0%}"
        return name

    return group.apply(label, axis=1)



def _settings(group: pd.DataFrame, m: Measures) -> pd.DataFrame:
    """One row per (defence, strength): the loss and each attack's leakage and advantage (mean, std over seeds).

    The best attack of a setting has the highest mean advantage (the same as the highest raw leakage when the
    attacks share their known labels); without advantages, the highest raw leakage.
    """
    keys = ["defense_key", "strength_key"]
    cells = group.drop_duplicates("cell")
    audited = {}
    if "empirical_epsilon" in cells.columns:  # a study with [leakage.audit]: empirical next to formal epsilon
        cells = cells.assign(violation=cells["audit_verdict"] == "violation")
        audited = dict(empirical_mean=("empirical_epsilon", "mean"), empirical_std=("empirical_epsilon", "std"),
                       violations=("violation", "sum"), audit_confidence=("audit_confidence", "first"),
                       audited=("audit_verdict", lambda v: int(v.isin(["consistent", "violation"]).sum())))
    base = cells.groupby(keys, dropna=False).agg(
        loss_mean=(m.loss, "mean"), loss_std=(m.loss, "std"), seeds=("seed", "nunique"),
        formal_epsilon=("formal_epsilon", "max"), strength_param=("strength_param", "first"), **audited,
    )
    if "advantage_bound" in group and group["advantage_bound"].notna().any():  # the same for a cell's attacks
        bounded = group.dropna(subset=["advantage_bound"]).drop_duplicates("cell")
        bound = bounded.groupby(keys, dropna=False)["advantage_bound"].agg(["mean", "std"])
        base["bound_mean"], base["bound_std"] = bound["mean"], bound["std"]
    for column, prefix in (("scored", "leak"), ("advantage", "adv")):
        stats = group.groupby(keys + ["attack_label"], dropna=False)[column].agg(["mean", "std"])
        stats = stats.unstack("attack_label")
        for attack in stats.columns.get_level_values(1).unique():
            base[f"{prefix}_mean:{attack}"] = stats[("mean", attack)]
            base[f"{prefix}_std:{attack}"] = stats[("std", attack)]
    not_applicable = group["status"].eq(NOT_APPLICABLE) if "status" in group else pd.Series(False, group.index)
    na = not_applicable.groupby([group[k] for k in keys] + [group["attack_label"]], dropna=False).all()
    for attack, flags in na.unstack("attack_label").items():
        base[f"na:{attack}"] = flags.reindex(base.index).fillna(False).astype(bool)
    ranking = "adv" if base[[c for c in base.columns if c.startswith("adv_mean:")]].notna().any().any() else "leak"
    means = base[[c for c in base.columns if c.startswith(f"{ranking}_mean:")]]
    best = means.idxmax(axis=1).str.removeprefix(f"{ranking}_mean:")
    base["best_attack"] = best
    for prefix in ("leak", "adv"):
        for stat in ("mean", "std"):
            base[f"best_{prefix}_{stat}"] = [row[f"{prefix}_{stat}:{a}"] if isinstance(a, str) else np.nan
                                             for (_, row), a in zip(base.iterrows(), best, strict=True)]
    base["best_leak"] = base["best_leak_mean"]
    base = base.reset_index()
    base["is_none"] = base["defense_key"] == "none"
    return base.sort_values(["is_none", "defense_key", "strength_key"], ascending=[False, True, True])



def _attacks_of(settings: pd.DataFrame) -> list[str]:
    return [c.removeprefix("leak_mean:") for c in settings.columns if c.startswith("leak_mean:")]



def _leakage_table(settings: pd.DataFrame, m: Measures) -> str:
    """Raw leakage per attack; `_advantage_table` is the same over the features-only reference."""
    return _settings_table(settings, m, "leak", m.metric_name, signed=False)



def _advantage_table(settings: pd.DataFrame, m: Measures) -> str:
    return _settings_table(settings, m, "adv", "advantage", signed=True)



def _settings_table(settings: pd.DataFrame, m: Measures, prefix: str, what: str, signed: bool) -> str:
    attacks = _attacks_of(settings)
    formal = column_format(settings["formal_epsilon"])
    header = ["defence", "strength", "formal ε"]
    columns = [
        settings["defense_key"].tolist(),
        [strength_text(r) for _, r in settings.iterrows()],
        ["none" if pd.isna(v) else formal(v) for v in settings["formal_epsilon"]],
    ]
    if "empirical_mean" in settings.columns:  # a study with [leakage.audit]: empirical next to formal epsilon
        level = settings["audit_confidence"].dropna()
        header += [f"empirical ε (audit, {level.iloc[0]:.0%})" if len(level) else "empirical ε (audit)",
                   "violations"]
        columns += [mean_std_column(settings["empirical_mean"], settings["empirical_std"]),
                    [str(int(v)) for v in settings["violations"]]]
    header += [m.loss_name]
    columns += [mean_std_column(settings["loss_mean"], settings["loss_std"])]
    if prefix == "adv" and "bound_mean" in settings:  # the eps-label-DP bound on any attack's advantage
        header += ["ε bound on advantage"]
        columns += [mean_std_column(settings["bound_mean"], settings["bound_std"], True, LEAK_DECIMALS)]
    header += [f"{a} {what}" for a in attacks] + ["seeds"]
    columns += [
        *[not_applicable_cells(settings, a, mean_std_column(settings[f"{prefix}_mean:{a}"],
                                                            settings[f"{prefix}_std:{a}"], signed, LEAK_DECIMALS))
          for a in attacks],
        [str(s) for s in settings["seeds"]],
    ]
    table = markdown_table(header, [list(row) for row in zip(*columns, strict=True)])
    if "empirical_mean" in settings.columns and len(settings["audit_confidence"].dropna()):
        table += "\n\n" + violation_summary(int(settings["violations"].sum()), int(settings["audited"].sum()),
                                             float(settings["audit_confidence"].dropna().iloc[0]))
    return table


def not_applicable_cells(settings: pd.DataFrame, attack: str, cells: list[str]) -> list[str]:
    """`cells` with "n/a" where the attack does not apply to the setting's defence (it cannot model it), so a
    refusal reads neither as a missing number nor as a failure."""
    flags = settings.get(f"na:{attack}", pd.Series(False, index=settings.index))
    return ["n/a" if flag else cell for flag, cell in zip(flags, cells, strict=True)]


def not_applicable_notes(group: pd.DataFrame) -> list[str]:
    """One line per (attack, reason) of the attacks that did not apply, naming the defences."""
    if "not_applicable_reason" not in group:
        return []
    rows = group[group["status"] == NOT_APPLICABLE]
    return [f"{attack} n/a under {', '.join(sorted(set(r['defense_key'])))}: {reason}"
            for (attack, reason), r in rows.groupby(["attack_label", "not_applicable_reason"], sort=True)]


def violation_summary(violations: int, audited: int, confidence: float) -> str:
    """Violations over the audited cells against their binomial expectation at correct mechanisms: a real
    defect shows as an excess, not as one hit (each audit of a correct mechanism errs with 1 - confidence)."""
    excess = binomial_excess(violations, audited, confidence)
    return (f"Audit violations: {violations} of {audited} audited cells; correct mechanisms give about "
            f"{excess['expected']:.2g} (Binomial({audited}, {1 - confidence:.2g})); P[>= {violations}] = "
            f"{excess['p_value']:.2g}" + (": an excess, look for a defect" if excess["p_value"] < 0.05 else ""))



def pareto_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points no other point beats on both (lower x and lower y are better)."""
    keep = np.ones(len(x), dtype=bool)
    for i in range(len(x)):
        dominated = (x <= x[i]) & (y <= y[i]) & ((x < x[i]) | (y < y[i]))
        keep[i] = not dominated.any()
    return keep



def _label_away(ax, row: pd.Series, y: str, none: pd.DataFrame) -> None:
    """A point's strength label, on the side facing away from the no-defence marker, so it never covers it."""
    dx = dy = 1.0
    if len(none):
        dx = 1.0 if row["loss_mean"] >= float(none["loss_mean"].iloc[0]) else -1.0
        dy = 1.0 if row[y] >= float(none[y].iloc[0]) else -1.0
    ax.annotate(strength_text(row), (row["loss_mean"], row[y]), textcoords="offset points",
                xytext=(6 * dx, 6 * dy), ha="left" if dx > 0 else "right", va="bottom" if dy > 0 else "top",
                fontsize=7)



def _leakage_plot(settings: pd.DataFrame, m: Measures, floors: Floors, title: str, caption: str,
                  path: Path) -> None:
    """x: main-task loss, y: the best attack's advantage (raw leakage without references), error bars = std over
    seeds; the features-only and mean-predictor floors as horizontal lines; raw leakage on the right axis."""
    import matplotlib.pyplot as plt

    y = "best_adv_mean" if floors.available else "best_leak_mean"
    y_std = y.replace("_mean", "_std")
    fig, ax = plt.subplots(figsize=(7.6, 5.6))
    points = settings.dropna(subset=["loss_mean", y])
    front = points[pareto_mask(points["loss_mean"].to_numpy(), points[y].to_numpy())].sort_values("loss_mean")
    ax.plot(front["loss_mean"], front[y], color="0.75", linewidth=7, solid_capstyle="round", zorder=1,
            label="Pareto front")
    for name, line in points[~points["is_none"]].groupby("defense_key", sort=True):
        line = line.sort_values("strength_key")
        ax.errorbar(line["loss_mean"], line[y], xerr=line["loss_std"].fillna(0), yerr=line[y_std].fillna(0),
                    marker="o", capsize=2, zorder=3, label=name)
    none = points[points["is_none"]]
    for _, r in points[~points["is_none"]].iterrows():
        _label_away(ax, r, y, none)
    if len(none):
        ax.errorbar(none["loss_mean"], none[y], xerr=none["loss_std"].fillna(0), yerr=none[y_std].fillna(0),
                    fmt="*", markersize=16, color="black", capsize=2, zorder=4, label="no defence")
    if floors.available:
        ax.axhline(0.0, color="tab:green", linestyle="--", linewidth=1.2, zorder=2,
                   label=f"features-only reference ({m.metric_name} {floors.features_only:.3f})")
        ax.axhline(floors.mean_advantage, color="tab:red", linestyle=":", linewidth=1.2, zorder=2,
                   label=f"known-label mean ({m.metric_name} {floors.mean_predictor:.3f})")
        offset = floors.features_only
        right = ax.secondary_yaxis("right", functions=(lambda a: a + offset, lambda r: r - offset))
        right.set_ylabel(f"raw best {m.leak_name}")
        ax.set_ylabel(f"best attack's advantage in {m.metric_name}\nover the features-only reference "
                      f"(lower is safer)")
    else:
        ax.set_ylabel(f"best {m.leak_name} (leakage: lower is safer)")
    log_x = _log_axis_if_wide(ax, points["loss_mean"])
    ax.set_xlabel(f"{m.loss_name}{m.loss_unit}: main task, lower is better{'; log scale' if log_x else ''}")
    ax.set_title(f"{title}: privacy-utility-leakage")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.text(0.01, 0.01, caption, fontsize=7, va="bottom", ha="left")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    save_figure(fig, path)
    plt.close(fig)



def _log_axis_if_wide(ax, values: pd.Series) -> bool:
    """A logarithmic x axis when the values span over 8x (a weak epsilon would squash the rest)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    positive = values[values > 0]
    if not len(positive) or positive.max() <= 8 * positive.min():
        return False
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 100 else f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    return True



def summaries(settings: pd.DataFrame, m: Measures, dataset: str, advantage: bool) -> list[str]:
    """Per defence: the setting with the smallest leakage within the loss budget, or the mildest one.

    The budget test uses the increase rounded as printed (one decimal of a percent), so a line never says a
    setting is outside the budget while printing an increase equal to it.
    """
    none = settings[settings["is_none"]]
    if none.empty:
        return [f"{dataset}: no no-defence cell to compare with"]
    y, what = ("best_adv_mean", "advantage") if advantage else ("best_leak_mean", f"best {m.leak_name}")
    base_loss, base_y = float(none["loss_mean"].iloc[0]), float(none[y].iloc[0])
    signed = "+" if advantage else ""
    lines = []
    for name, rows in settings[~settings["is_none"]].groupby("defense_key", sort=True):
        rows = rows.dropna(subset=["loss_mean", y])
        if rows.empty:
            continue
        increase = (rows["loss_mean"] / base_loss - 1).round(3)
        within = rows[increase <= BUDGET]
        if len(within):
            r = within.loc[within[y].idxmin()]
            at = "" if pd.isna(r["strength_key"]) else f" at {strength_text(r)}"
            lines.append(f"{name} ({dataset}): {what} {r[y]:{signed}.3f} ({r['best_attack']}){at}, {m.loss_name} "
                         f"{_signed(r['loss_mean'] / base_loss - 1)} (no defence: {base_y:{signed}.3f})")
        else:
            r = rows.loc[increase.idxmin()]
            lines.append(f"{name} ({dataset}): no setting within +{BUDGET:.0%} {m.loss_name}; the mildest, "
                         f"{strength_text(r)}, costs {_signed(r['loss_mean'] / base_loss - 1)} for {what} "
                         f"{r[y]:{signed}.3f} (no defence: {base_y:{signed}.3f})")
    return lines



def _leakage_headlines(settings: pd.DataFrame, m: Measures, dataset: str, floors: Floors) -> list[str]:
    none = settings[settings["is_none"]]
    if none.empty or pd.isna(none["best_leak"].iloc[0]):
        return []
    r = none.iloc[0]
    beyond = (f", {r['best_adv_mean']:+.3f} over the best features-only reference ({floors.features_only:.3f})"
              if floors.available else "")
    return [f"{dataset}, no defence: the best attack ({r['best_attack']}) reaches {m.leak_name} "
            f"{r['best_leak']:.3f}{beyond}; {m.loss_name} {r['loss_mean']:.4g}{m.loss_unit}"]



def _signed(fraction: float) -> str:
    return f"{fraction:+.1%}"
