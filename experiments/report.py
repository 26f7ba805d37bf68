"""The report of a bench folder: `DIR/report.md` with tables per dataset and plots in `DIR/plots/`.

Leakage studies: per (dataset, feature parties) a table defence x strength -> test metric and every
attack's metric (mean +- std over seeds) with the formal epsilon; the privacy-utility-leakage plot
(x: main-task loss, y: the best attack's leakage, one line per defence through its strengths, the
no-defence point starred, the Pareto front highlighted); and one line per defence: the smallest leakage
reachable within a 10% increase of the main-task loss. AUC studies: per score source a table and the
error (RMSE over repeats) against epsilon per method, log-log, one panel per clients count.

Regression: loss = test MSE, leakage = attack R^2. Binary: loss = 1 - test AUC, leakage = attack (leak) AUC.
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

from fedsim.errors import check
from fedsim.fileio import write_atomic
from fedsim.metrics import DCS_BETA, defense_capability_score

BUDGET = 0.10  # the summary's allowed relative increase of the main-task loss over no defence
SEP = " ± "


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
    leak: str
    leak_name: str

    @staticmethod
    def of(task: str) -> Measures:
        if task == "binary":
            return Measures("loss", "1 - test AUC", "attack_auc", "attack AUC")
        if task == "multiclass":
            return Measures("loss", "1 - test accuracy", "attack_accuracy", "attack accuracy")
        return Measures("test_mse", "test MSE", "attack_r2", "attack R²")


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
    settings = _settings(group, m)
    title = f"{dataset}, {parties} feature part{'y' if parties == 1 else 'ies'}"
    lines = [f"### {title}\n", _leakage_table(settings, m), ""]
    plot = plots_dir / f"leakage_{_slug(dataset)}_{parties}p.png"
    _leakage_plot(settings, m, title, plot)
    report.plots.append(plot)
    lines.append(f"![privacy-utility-leakage, {title}](plots/{plot.name})\n")
    summary = _summaries(settings, m, dataset)
    if summary:
        lines.append(f"Smallest leakage within +{BUDGET:.0%} {m.loss_name} of no defence "
                     f"(best attack per setting):\n")
        lines += [f"- {s}" for s in summary]
    report.headlines += _leakage_headlines(settings, m, dataset) + summary
    if task in ("binary", "multiclass") and {"test_accuracy", "attack_accuracy"} <= set(group.columns):
        table, best = _dcs_section(group, dataset)
        lines += ["", table]
        report.headlines += best
    return "\n".join(lines) + "\n"


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
    """One row per (defence, strength): the loss and each attack's leakage (mean, std over seeds)."""
    keys = ["defense_key", "strength_key"]
    cells = group.drop_duplicates("cell")
    base = cells.groupby(keys, dropna=False).agg(
        loss_mean=(m.loss, "mean"), loss_std=(m.loss, "std"), seeds=("seed", "nunique"),
        formal_epsilon=("formal_epsilon", "max"), strength_param=("strength_param", "first"),
    )
    leak = group.groupby(keys + ["attack_label"], dropna=False)[m.leak].agg(["mean", "std"]).unstack("attack_label")
    for attack in leak.columns.get_level_values(1).unique():
        base[f"leak_mean:{attack}"] = leak[("mean", attack)]
        base[f"leak_std:{attack}"] = leak[("std", attack)]
    means = base[[c for c in base.columns if c.startswith("leak_mean:")]]
    base["best_leak"] = means.max(axis=1)
    base["best_attack"] = means.idxmax(axis=1).str.removeprefix("leak_mean:")
    base = base.reset_index()
    base["is_none"] = base["defense_key"] == "none"
    return base.sort_values(["is_none", "defense_key", "strength_key"], ascending=[False, True, True])


def _strength_text(row: pd.Series) -> str:
    if pd.isna(row["strength_key"]):
        return "—"
    name = row["strength_param"]
    return f"{'ε' if name == 'epsilon' else name}={row['strength_key']:g}"


def _fmt(mean: float, std: float) -> str:
    if pd.isna(mean):
        return "—"
    return f"{mean:.4g}" if pd.isna(std) else f"{mean:.4g}{SEP}{std:.2g}"


def _leakage_table(settings: pd.DataFrame, m: Measures) -> str:
    attacks = [c.removeprefix("leak_mean:") for c in settings.columns if c.startswith("leak_mean:")]
    header = ["defence", "strength", "formal ε", m.loss_name] + [f"{a} {m.leak_name.split()[-1]}"
                                                                      for a in attacks] + ["seeds"]
    rows = []
    for _, r in settings.iterrows():
        formal = "none" if pd.isna(r["formal_epsilon"]) else f"{r['formal_epsilon']:.4g}"
        rows.append([r["defense_key"], _strength_text(r), formal, _fmt(r["loss_mean"], r["loss_std"])]
                    + [_fmt(r[f"leak_mean:{a}"], r[f"leak_std:{a}"]) for a in attacks] + [str(r["seeds"])])
    return _markdown_table(header, rows)


def pareto_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points no other point beats on both (lower x and lower y are better)."""
    keep = np.ones(len(x), dtype=bool)
    for i in range(len(x)):
        dominated = (x <= x[i]) & (y <= y[i]) & ((x < x[i]) | (y < y[i]))
        keep[i] = not dominated.any()
    return keep


def _leakage_plot(settings: pd.DataFrame, m: Measures, title: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.8))
    points = settings.dropna(subset=["loss_mean", "best_leak"])
    front = points[pareto_mask(points["loss_mean"].to_numpy(), points["best_leak"].to_numpy())]
    front = front.sort_values("loss_mean")
    ax.plot(front["loss_mean"], front["best_leak"], color="0.75", linewidth=7, solid_capstyle="round",
            zorder=1, label="Pareto front")
    for name, line in points[~points["is_none"]].groupby("defense_key", sort=True):
        line = line.sort_values("strength_key")
        ax.plot(line["loss_mean"], line["best_leak"], marker="o", zorder=3, label=name)
        for _, r in line.iterrows():
            ax.annotate(_strength_text(r), (r["loss_mean"], r["best_leak"]), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)
    none = points[points["is_none"]]
    if len(none):
        ax.scatter(none["loss_mean"], none["best_leak"], marker="*", s=260, color="black", zorder=4,
                   label="no defence")
    losses = points["loss_mean"][points["loss_mean"] > 0]
    if len(losses) and losses.max() > 8 * losses.min():  # a weak epsilon would squash the rest
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 100 else f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"{m.loss_name} (main task: lower is better)")
    ax.set_ylabel(f"best {m.leak_name} (leakage: lower is safer)")
    ax.set_title(f"{title}: privacy-utility-leakage")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)


def _summaries(settings: pd.DataFrame, m: Measures, dataset: str) -> list[str]:
    none = settings[settings["is_none"]]
    if none.empty:
        return [f"{dataset}: no no-defence cell to compare with"]
    base_loss, base_leak = float(none["loss_mean"].iloc[0]), float(none["best_leak"].iloc[0])
    lines = []
    for name, rows in settings[~settings["is_none"]].groupby("defense_key", sort=True):
        rows = rows.dropna(subset=["loss_mean", "best_leak"])
        if rows.empty:
            continue
        increase = rows["loss_mean"] / base_loss - 1
        within = rows[increase <= BUDGET]
        if len(within):
            r = within.loc[within["best_leak"].idxmin()]
            at = "" if pd.isna(r["strength_key"]) else f" at {_strength_text(r)}"
            lines.append(f"**{name}** ({dataset}): best {m.leak_name} {r['best_leak']:.3g} ({r['best_attack']})"
                         f"{at}, {m.loss_name} {_signed(r['loss_mean'] / base_loss - 1)} "
                         f"(no defence: {base_leak:.3g})")
        else:
            r = rows.loc[increase.idxmin()]
            lines.append(f"**{name}** ({dataset}): no setting within +{BUDGET:.0%} {m.loss_name}; the mildest, "
                         f"{_strength_text(r)}, costs {_signed(r['loss_mean'] / base_loss - 1)} for best "
                         f"{m.leak_name} {r['best_leak']:.3g} (no defence: {base_leak:.3g})")
    return lines


def _leakage_headlines(settings: pd.DataFrame, m: Measures, dataset: str) -> list[str]:
    none = settings[settings["is_none"]]
    if none.empty or pd.isna(none["best_leak"].iloc[0]):
        return []
    r = none.iloc[0]
    return [f"{dataset}, no defence: the best attack ({r['best_attack']}) reaches {m.leak_name} "
            f"{r['best_leak']:.3g}; {m.loss_name} {r['loss_mean']:.4g}"]


def _signed(fraction: float) -> str:
    return f"{fraction:+.1%}"


# ---- private AUC ----

def _auc_section(group: pd.DataFrame, source: str, plots_dir: Path, report: Report) -> str:
    group = group.copy()
    group["variant"] = group.apply(
        lambda r: r["method"] if pd.isna(r.get("buckets")) else f"{r['method']} (B={int(r['buckets'])})", axis=1)
    stats = group.groupby(["variant", "clients", "epsilon"], sort=True).agg(
        exact=("exact", "mean"), bias=("bias", "mean"), std=("std", "mean"), rmse=("rmse", "mean"),
        coverage=("ci_coverage", "mean"), n=("n", "max"), repeats=("repeats", "sum"),
    ).reset_index()
    model = group["score_model"].dropna()
    n = int(stats["n"].max()) if stats["n"].notna().any() else 0
    lines = [f"### {source} (n = {n:,}; scores: {model.iloc[0] if len(model) else 'unknown'})\n"]
    header = ["method", "clients", "ε", "exact AUC", "bias", "std", "RMSE", "CI coverage", "repeats"]
    rows = [[r["variant"], str(int(r["clients"])), "—" if pd.isna(r["epsilon"]) else f"{r['epsilon']:g}",
             f"{r['exact']:.4f}", f"{r['bias']:+.2g}", f"{r['std']:.2g}", f"{r['rmse']:.2g}",
             "—" if pd.isna(r["coverage"]) else f"{r['coverage']:.2f}", str(int(r["repeats"]))]
            for _, r in stats.iterrows()]
    lines += [_markdown_table(header, rows), ""]
    if stats.empty:  # only methods without epsilon (exact): nothing to plot
        return "\n".join(lines) + "\n"
    plot = plots_dir / f"auc_{_slug(source)}.png"
    _auc_plot(stats, source, plot)
    report.plots.append(plot)
    lines.append(f"![AUC error vs epsilon, {source}](plots/{plot.name})\n")
    report.headlines += _auc_headlines(stats, source)
    return "\n".join(lines) + "\n"


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
        ax.set_xlabel("ε (label DP)")
        ax.set_title(f"{count} client{'s' if count != 1 else ''}")
        ax.grid(alpha=0.3, which="both")
    for row in axes:
        row[0].set_ylabel("RMSE of the AUC estimate")
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


