"""The report of a bench folder: `DIR/report.md` with tables per dataset and plots in `DIR/plots/`.

Leakage studies: per (dataset, feature parties) a paragraph saying what was measured (attacking party,
known labels, scored samples, epochs, units), a table defence x strength -> test metric and every attack's
advantage over the features-only reference (`fedsim.attacks.reference`), the same table in raw leakage, the
privacy-utility-leakage plot (x: main-task loss, y: the best attack's advantage with error bars over seeds,
the features-only and known-label-mean floors as lines, raw leakage on the right axis, one line per defence
through its strengths, the no-defence point starred, the Pareto front highlighted) and one line per defence:
the smallest advantage reachable within a 10% increase of the main-task loss. AUC studies: per score source a
table and the error (RMSE over repeats) against epsilon per method, log-log, one panel per clients count.

Regression: loss = test MSE, leakage = attack R^2. Binary: loss = 1 - test AUC, leakage = attack (leak) AUC.
Results without references (older tables) fall back to raw leakage. Headlines are plain sentences (no
markdown): the CLI prints them.
Multiclass: loss = 1 - test accuracy, leakage = attack accuracy (on the unknown labels). Classification
sections also get VFLAIR's Defense Capability Score per defence setting and attack, and its mean over the
attacks, T-DCS (`fedsim.metrics.defense_capability_score`: MP = test accuracy, AP = attack accuracy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fedsim.attacks.evaluate import RELABEL_GAP
from fedsim.errors import check
from fedsim.fileio import write_atomic
from fedsim.metrics import DCS_BETA, defense_capability_score

BUDGET = 0.10  # the summary's allowed relative increase of the main-task loss over no defence
SEP = " ± "
LEAK_DECIMALS = 3  # R², AUC and their advantages: one fixed format, whatever the column's values
CI_LEVEL = 0.95  # the nominal level of the private AUC methods' intervals (`ci95`)


@dataclass
class Report:
    path: Path
    plots: list[Path] = field(default_factory=list)
    headlines: list[str] = field(default_factory=list)
    failed_cells: int = 0


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


def load_results(directory: Path) -> pd.DataFrame:
    path = Path(directory) / "results.parquet"
    check(path.is_file(), f"no results table in {str(directory)!r}; run `fedsim bench GRID --out DIR` first")
    return pd.read_parquet(path)


def build_report(directory: Path) -> Report:
    """Write report.md and the plots; return their paths and the headline numbers."""
    import matplotlib

    matplotlib.use("Agg")
    directory = Path(directory)
    frame = load_results(directory)
    plots_dir = directory / "plots"
    plots_dir.mkdir(exist_ok=True)
    report = Report(directory / "report.md")
    grid_name = _grid_name(directory)
    parts = [f"# fedsim report: {grid_name}\n",
             f"From `{directory / 'results.parquet'}` ({frame['cell'].nunique()} cells). "
             "Values are mean ± std over seeds.\n"]
    failed = frame[frame["status"] != "ok"]
    report.failed_cells = int(failed["cell"].nunique())
    ok = frame[frame["status"] == "ok"]
    leakage = ok[ok["kind"] == "leakage"]
    if len(leakage):
        parts.append("## Label leakage under defences\n")
        for (dataset, parties), group in leakage.groupby(["dataset", "parties"], sort=True):
            parts.append(_leakage_section(group, str(dataset), int(parties), plots_dir, report))
    auc = ok[ok["kind"] == "auc"]
    if len(auc):
        parts.append("## Private AUC\n")
        for source, group in auc.groupby("dataset", sort=True):
            parts.append(_auc_section(group, str(source), plots_dir, report))
    if report.failed_cells:
        parts.append(_failures(failed))
    text = "\n".join(parts)
    write_atomic(report.path, lambda p: p.write_text(text))
    return report


def _grid_name(directory: Path) -> str:
    import tomllib

    try:
        return str(tomllib.loads((directory / "grid.toml").read_text()).get("name", directory.name))
    except (OSError, tomllib.TOMLDecodeError):
        return directory.name


# ---- leakage ----

def _leakage_section(group: pd.DataFrame, dataset: str, parties: int, plots_dir: Path, report: Report) -> str:
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
    scored = group[m.leak]
    if "advantage_scoring" in group and f"attack_matched_{m.metric}" in group:
        scored = scored.where(group["advantage_scoring"] != "matched", group[f"attack_matched_{m.metric}"])
    group["features_only"] = scored - group["advantage"]
    known_mean = f"reference_known_mean_{m.metric}"
    group["mean_predictor"] = group.get(known_mean, np.nan)
    settings = _settings(group, m)
    floors = _floors(group)
    title = f"{dataset}, {parties} feature part{'y' if parties == 1 else 'ies'}"
    setup = Setup.of(group, m)
    lines = [f"### {title}\n", _measured(setup, m, floors), ""]
    if floors.available:
        lines += [f"Advantage over the features-only reference ({m.leak_name} minus {floors.text(m)}):\n",
                  _advantage_table(settings, m), "",
                  f"Raw {m.leak_name} (the features-only reference alone: {floors.features_only:.3f}; "
                  f"the known-label mean: {floors.mean_predictor:.3f}):\n"]
    lines += [_leakage_table(settings, m), ""]
    plot = plots_dir / f"leakage_{_slug(dataset)}_{parties}p.png"
    _leakage_plot(settings, m, floors, title, setup.caption(m), plot)
    report.plots.append(plot)
    lines.append(f"![privacy-utility-leakage, {title}](plots/{plot.name})\n")
    summary = _summaries(settings, m, dataset, floors.available)
    if summary:
        measure = "advantage" if floors.available else m.leak_name
        lines.append(f"Smallest {measure} within +{BUDGET:.0%} {m.loss_name} of no defence "
                     f"(best attack per setting):\n")
        lines += [f"- {s}" for s in summary]
    report.headlines += _leakage_headlines(settings, m, dataset, floors) + summary
    flags = _scoring_flags(group, m)
    if flags:
        lines += ["", "Scoring checks (docs/scoring.md):\n", *[f"- {f}" for f in flags]]
    if task in ("binary", "multiclass") and {"test_accuracy", "attack_accuracy"} <= set(group.columns):
        table, best = _dcs_section(group, dataset)
        lines += ["", table]
        report.headlines += best
    return "\n".join(lines) + "\n"


def _scoring_flags(group: pd.DataFrame, m: Measures) -> list[str]:
    """Cells whose raw and matched scores differ by more than RELABEL_GAP (relabelled estimates), and cells whose
    matched accuracy exceeds the eps-label-DP bound beyond its binomial margin."""
    flags = []
    for column, text in (("relabelled", f"raw and matched {m.metric_name} differ by more than {RELABEL_GAP}: the "
                                        "estimates are relabelled; the advantage uses the matched score"),
                         ("exceeds_bound", "matched accuracy above the eps-label-DP bound (advantage_bound) beyond "
                                           "its binomial margin: inspect the defence's claim")):
        if column in group:
            hit = group[group[column].fillna(False).astype(bool)]
            flags += [f"{row.defense} at {row.strength}, seed {row.seed}, {row.attack_label}: {text}"
                      for row in hit.itertuples()]
    return flags


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


# ---- VFLAIR's Defense Capability Score ----

def dcs_frame(group: pd.DataFrame) -> pd.DataFrame:
    """Per (defence, strength): MP (mean test accuracy over seeds), each attack's AP (mean attack accuracy)
    and DCS against the undefended MP, and T-DCS, their mean over the attacks (VFLAIR averages MP and AP over
    repeats before scoring). Empty without a no-defence setting: the ideal point needs its MP."""
    keys = ["defense_key", "strength_key"]
    cells = group.drop_duplicates("cell").groupby(keys, dropna=False)
    frame = cells.agg(mp=("test_accuracy", "mean"), strength_param=("strength_param", "first"))
    ap = group.groupby(keys + ["attack_label"], dropna=False)["attack_accuracy"].mean().unstack("attack_label")
    none = frame["mp"][frame.index.get_level_values("defense_key") == "none"]
    if none.empty:
        return pd.DataFrame()
    mp_ideal = float(none.iloc[0])
    frame = frame.join(ap.add_prefix("ap:"))
    for attack in ap.columns:
        frame[f"dcs:{attack}"] = [defense_capability_score(m, a, mp_ideal) if pd.notna(a) else np.nan
                                  for m, a in zip(frame["mp"], frame[f"ap:{attack}"], strict=True)]
    frame["t_dcs"] = frame[[f"dcs:{a}" for a in ap.columns]].mean(axis=1)
    frame = frame.reset_index()
    frame["is_none"] = frame["defense_key"] == "none"
    return frame.sort_values(["is_none", "defense_key", "strength_key"], ascending=[False, True, True])


def _dcs_section(group: pd.DataFrame, dataset: str) -> tuple[str, list[str]]:
    frame = dcs_frame(group)
    if frame.empty:
        return f"No Defense Capability Score for {dataset}: it needs a no-defence setting.\n", []
    attacks = [c.removeprefix("dcs:") for c in frame.columns if c.startswith("dcs:")]
    header = ["defence", "strength", "test accuracy (MP)"] + [f"{a} AP / DCS" for a in attacks] + ["T-DCS"]
    rows = [[r["defense_key"], _strength_text(r), f"{r['mp']:.4f}"]
            + [f"{r[f'ap:{a}']:.3f} / {r[f'dcs:{a}']:.3f}" if pd.notna(r[f"dcs:{a}"]) else "—" for a in attacks]
            + [f"{r['t_dcs']:.3f}"] for _, r in frame.iterrows()]
    text = (f"VFLAIR's Defense Capability Score (DCS = 1 / (1 + D), D the beta-weighted distance to the ideal "
            f"point AP* = 0, MP* = the undefended test accuracy, beta = {DCS_BETA:g}; higher is better; T-DCS: "
            f"the mean over attacks):\n\n" + _markdown_table(header, rows) + "\n")
    defended = frame[~frame["is_none"]].dropna(subset=["t_dcs"])
    if defended.empty:
        return text, []
    best = defended.loc[defended["t_dcs"].idxmax()]
    none = frame[frame["is_none"]].iloc[0]
    return text, [f"{dataset}: highest T-DCS {best['t_dcs']:.3f} for {best['defense_key']} {_strength_text(best)} "
                  f"(test accuracy {best['mp']:.3f}; no defence: T-DCS {none['t_dcs']:.3f}, test accuracy "
                  f"{none['mp']:.3f})"]


def _attack_labels(group: pd.DataFrame) -> pd.Series:
    """`lba`, or `lba@5%` when one attack runs at several known-label fractions."""
    fractions = group.groupby("attack")["known_fraction"].nunique()
    return group.apply(lambda r: r["attack"] if fractions.get(r["attack"], 1) <= 1 or pd.isna(r["known_fraction"])
                       else f"{r['attack']}@{r['known_fraction']:.0%}", axis=1)


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
                       violations=("violation", "sum"), audit_confidence=("audit_confidence", "first"))
    base = cells.groupby(keys, dropna=False).agg(
        loss_mean=(m.loss, "mean"), loss_std=(m.loss, "std"), seeds=("seed", "nunique"),
        formal_epsilon=("formal_epsilon", "max"), strength_param=("strength_param", "first"), **audited,
    )
    for column, prefix in ((m.leak, "leak"), ("advantage", "adv")):
        stats = group.groupby(keys + ["attack_label"], dropna=False)[column].agg(["mean", "std"])
        stats = stats.unstack("attack_label")
        for attack in stats.columns.get_level_values(1).unique():
            base[f"{prefix}_mean:{attack}"] = stats[("mean", attack)]
            base[f"{prefix}_std:{attack}"] = stats[("std", attack)]
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


def _strength_text(row: pd.Series) -> str:
    if pd.isna(row["strength_key"]):
        return "—"
    name = row["strength_param"]
    return f"{'ε' if name == 'epsilon' else name}={row['strength_key']:g}"


def column_format(values: pd.Series | np.ndarray, signed: bool = False, digits: int = 3,
                  decimals: int | None = None):
    """One number format for a whole column: `decimals` fixed decimals if given; else fixed decimals giving
    `digits` significant digits to its smallest nonzero magnitude, or scientific notation when that needs more
    than 4 decimals or the magnitudes span over 1000x."""
    sign = "+" if signed else ""
    if decimals is not None:
        return lambda v: f"{v:{sign}.{decimals}f}"
    magnitudes = np.abs(np.asarray(pd.Series(values).dropna(), dtype=float))
    magnitudes = magnitudes[magnitudes > 0]
    smallest = magnitudes.min() if magnitudes.size else 1.0
    needed = max(0, digits - 1 - math.floor(math.log10(smallest)))
    if needed > 4 or (magnitudes.size and magnitudes.max() / smallest > 1000):
        return lambda v: f"{v:{sign}.{digits - 1}e}"
    return lambda v: f"{v:{sign}.{needed}f}"


def _mean_std_column(means: pd.Series, stds: pd.Series, signed: bool = False,
                     decimals: int | None = None) -> list[str]:
    """`mean ± std` cells of one column, the mean's format shared by the column and reused for the std."""
    fmt = column_format(means, signed, decimals=decimals)
    plain = column_format(means, decimals=decimals)
    return ["—" if pd.isna(a) else fmt(a) if pd.isna(b) else f"{fmt(a)}{SEP}{plain(b)}" for a, b in zip(means, stds,
                                                                                                    strict=True)]


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
        [_strength_text(r) for _, r in settings.iterrows()],
        ["none" if pd.isna(v) else formal(v) for v in settings["formal_epsilon"]],
    ]
    if "empirical_mean" in settings.columns:  # a study with [leakage.audit]: empirical next to formal epsilon
        level = settings["audit_confidence"].dropna()
        header += [f"empirical ε (audit, {level.iloc[0]:.0%})" if len(level) else "empirical ε (audit)",
                   "violations"]
        columns += [_mean_std_column(settings["empirical_mean"], settings["empirical_std"]),
                    [str(int(v)) for v in settings["violations"]]]
    header += [m.loss_name] + [f"{a} {what}" for a in attacks] + ["seeds"]
    columns += [
        _mean_std_column(settings["loss_mean"], settings["loss_std"]),
        *[_mean_std_column(settings[f"{prefix}_mean:{a}"], settings[f"{prefix}_std:{a}"], signed, LEAK_DECIMALS)
          for a in attacks],
        [str(s) for s in settings["seeds"]],
    ]
    return _markdown_table(header, [list(row) for row in zip(*columns, strict=True)])


def pareto_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points no other point beats on both (lower x and lower y are better)."""
    keep = np.ones(len(x), dtype=bool)
    for i in range(len(x)):
        dominated = (x <= x[i]) & (y <= y[i]) & ((x < x[i]) | (y < y[i]))
        keep[i] = not dominated.any()
    return keep


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
        for _, r in line.iterrows():
            ax.annotate(_strength_text(r), (r["loss_mean"], r[y]), textcoords="offset points", xytext=(4, 4),
                        fontsize=7)
    none = points[points["is_none"]]
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
    _save_figure(fig, path)
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


def _summaries(settings: pd.DataFrame, m: Measures, dataset: str, advantage: bool) -> list[str]:
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
            at = "" if pd.isna(r["strength_key"]) else f" at {_strength_text(r)}"
            lines.append(f"{name} ({dataset}): {what} {r[y]:{signed}.3f} ({r['best_attack']}){at}, {m.loss_name} "
                         f"{_signed(r['loss_mean'] / base_loss - 1)} (no defence: {base_y:{signed}.3f})")
        else:
            r = rows.loc[increase.idxmin()]
            lines.append(f"{name} ({dataset}): no setting within +{BUDGET:.0%} {m.loss_name}; the mildest, "
                         f"{_strength_text(r)}, costs {_signed(r['loss_mean'] / base_loss - 1)} for {what} "
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


# ---- private AUC ----

def _auc_section(group: pd.DataFrame, source: str, plots_dir: Path, report: Report) -> str:
    group = group.copy()
    group["variant"] = group.apply(_auc_variant, axis=1)
    stats = group.groupby(["variant", "clients", "epsilon"], sort=True).agg(
        exact=("exact", "mean"), bias=("bias", "mean"), std=("std", "mean"), rmse=("rmse", "mean"),
        coverage=("ci_coverage", "mean"), n=("n", "max"), repeats=("repeats", "sum"),
    ).reset_index()
    model = group["score_model"].dropna()
    n = int(stats["n"].max()) if stats["n"].notna().any() else 0
    lines = [f"### {source} (n = {n:,}; scores: {model.iloc[0] if len(model) else 'unknown'})\n"]
    lines += [_auc_measured(stats), "", _auc_table(stats), ""]
    if stats.empty:  # only methods without epsilon (exact): nothing to plot
        return "\n".join(lines) + "\n"
    plot = plots_dir / f"auc_{_slug(source)}.png"
    _auc_plot(stats, source, plot)
    report.plots.append(plot)
    lines.append(f"![AUC error vs epsilon, {source}](plots/{plot.name})\n")
    report.headlines += _auc_headlines(stats, source)
    return "\n".join(lines) + "\n"


def _auc_variant(row: pd.Series) -> str:
    """The method, with its discretisation: histogram buckets B, DPAUC's thresholds K."""
    if not pd.isna(row.get("buckets")):
        return f"{row['method']} (B={int(row['buckets'])})"
    if row["method"] == "dpauc" and not pd.isna(row.get("thresholds")):
        return f"dpauc (K={int(row['thresholds'])})"
    return str(row["method"])


def _auc_measured(stats: pd.DataFrame) -> str:
    return ("Measured: each row pools its `repeats` releases, each with fresh noise; bias, std and RMSE of the "
            f"estimate are against the exact AUC of the same scores; CI coverage is the "
            f"fraction of releases whose {CI_LEVEL:.0%} interval holds the exact AUC (nominal {CI_LEVEL:.0%}). "
            f"B: histogram buckets; K: DPAUC's thresholds.")


def _auc_table(stats: pd.DataFrame) -> str:
    header = ["method", "clients", "ε", "exact AUC", "bias", "std", "RMSE", f"CI coverage (nominal {CI_LEVEL:.0%})",
              "repeats"]
    formats = {c: column_format(stats[c], signed=c == "bias", digits=2) for c in ("bias", "std", "rmse")}
    epsilon = column_format(stats["epsilon"])
    rows = [[r["variant"], str(int(r["clients"])), "—" if pd.isna(r["epsilon"]) else epsilon(r["epsilon"]),
             f"{r['exact']:.4f}", *(formats[c](r[c]) for c in ("bias", "std", "rmse")),
             "—" if pd.isna(r["coverage"]) else f"{r['coverage']:.2f}", str(int(r["repeats"]))]
            for _, r in stats.iterrows()]
    return _markdown_table(header, rows)


def _auc_plot(stats: pd.DataFrame, source: str, path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, NullLocator

    clients = sorted(int(c) for c in stats["clients"].unique())
    ncols = min(len(clients), 2)
    nrows = -(-len(clients) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols + 0.8, 3.6 * nrows + 0.6), squeeze=False,
                             sharey=True)
    for ax in axes.flat[len(clients):]:
        ax.set_visible(False)
    for ax, count in zip(axes.flat, clients, strict=False):
        panel = stats[stats["clients"] == count]
        for variant, line in panel.groupby("variant", sort=True):
            line = line.sort_values("epsilon")
            ax.plot(line["epsilon"], line["rmse"].clip(lower=1e-6), marker="o", label=variant)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sorted(panel["epsilon"].unique()))
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("ε (label DP, log scale)")
        ax.set_title(f"{count} client{'s' if count != 1 else ''}")
        ax.grid(alpha=0.3, which="both")
    for row in axes:
        row[0].set_ylabel("RMSE of the AUC estimate (log scale)")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"{source}: private AUC error vs ε")
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)


def _auc_headlines(stats: pd.DataFrame, source: str) -> list[str]:
    single = stats[stats["clients"] == stats["clients"].min()]
    if single.empty:
        return []
    epsilon = min(single["epsilon"].unique(), key=lambda e: abs(math.log(e)))  # the one closest to 1
    at = single[single["epsilon"] == epsilon].sort_values("rmse")
    errors = ", ".join(f"{r['variant']} {r['rmse']:.2g}" for _, r in at.iterrows())
    clients = int(at["clients"].iloc[0])
    return [f"{source}, private AUC at ε={epsilon:g} ({clients} client{'s' if clients != 1 else ''}): RMSE {errors} "
            f"(exact AUC {at['exact'].iloc[0]:.3f})"]


# ---- shared ----

def _failures(failed: pd.DataFrame) -> str:
    cells = failed.drop_duplicates("cell")
    lines = [f"## Failed cells ({len(cells)})\n", "Re-run the same `fedsim bench` command to retry them.\n"]
    for _, r in cells.head(20).iterrows():
        lines.append(f"- `{r['cell']}` {r['kind']} {r['dataset']}: {r['error']}")
    return "\n".join(lines) + "\n"


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_")


def _save_figure(fig, path: Path) -> None:
    write_atomic(path, lambda p: fig.savefig(p, dpi=110, format="png"))


