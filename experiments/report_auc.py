"""The private AUC sections of a report (evaluation): per score source a table (bias, std, RMSE of the estimate,
CI coverage against its nominal 95%, DPAUC's K) and the RMSE against epsilon per method, log-log, one panel per
clients count."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from fedsim.experiments.report_markdown import Report, column_format, markdown_table, save_figure, slug

CI_LEVEL = 0.95  # the nominal level of the private AUC methods' intervals (`ci95`)


def auc_section(group: pd.DataFrame, source: str, plots_dir: Path, report: Report) -> str:
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
    off = stats[stats.apply(coverage_is_off, axis=1)]
    if len(off):
        lines += [f"**Coverage off** (marked ⚠): {len(off)} row(s) whose measured coverage is outside the "
                  f"two-sided 95% binomial range of {CI_LEVEL:.0%} intervals over their releases; their "
                  f"intervals do not mean what they say.", ""]
    measured = stats.dropna(subset=["rmse"])  # an RMSE needs repeats >= 2 (`repeats = 1`: one release, none)
    if measured.empty:  # only methods without epsilon (exact), or single releases: nothing to plot
        return "\n".join(lines) + "\n"
    plot = plots_dir / f"auc_{slug(source)}.png"
    _auc_plot(measured, source, plot)
    report.plots.append(plot)
    lines.append(f"![AUC error vs epsilon, {source}](plots/{plot.name})\n")
    report.headlines += _auc_headlines(measured, source)
    return "\n".join(lines) + "\n"



def _auc_variant(row: pd.Series) -> str:
    """The method, with its discretisation (histogram buckets B and how they are placed, DPAUC's thresholds K)
    and secure aggregation: rows that differ in any of them are different releases, never pooled."""
    details = []
    if not pd.isna(row.get("buckets")):
        details.append(f"B={int(row['buckets'])}")
    elif row["method"] == "dpauc" and not pd.isna(row.get("thresholds")):
        details.append(f"K={int(row['thresholds'])}")
    if row.get("bucketing") == "variance":
        details.append("variance buckets")
    secure = row.get("secure_aggregation")
    if secure is not None and pd.notna(secure) and bool(secure):
        details.append("secure aggregation")
    return f"{row['method']} ({', '.join(details)})" if details else str(row["method"])



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
             "—" if pd.isna(r["coverage"]) else f"{r['coverage']:.2f}" + (" ⚠" if coverage_is_off(r) else ""),
             str(int(r["repeats"]))]
            for _, r in stats.iterrows()]
    return markdown_table(header, rows)



def coverage_is_off(row: pd.Series) -> bool:
    """True when `coverage` of `repeats` releases is implausible for a correct 95% interval: the count of
    covering releases has binomial probability < 2.5% in its tail (e.g. 0.00 of 20 or 0.70 of 20)."""
    from scipy.stats import binom

    if pd.isna(row["coverage"]) or pd.isna(row["repeats"]) or int(row["repeats"]) < 1:
        return False
    repeats = int(row["repeats"])
    hits = round(float(row["coverage"]) * repeats)
    return bool(binom.cdf(hits, repeats, CI_LEVEL) < 0.025 or binom.sf(hits - 1, repeats, CI_LEVEL) < 0.025)



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
            rmse = line["rmse"].clip(lower=1e-6)
            # the standard error of an RMSE over R releases, delta method under normal errors: RMSE / sqrt(2R)
            ax.errorbar(line["epsilon"], rmse, yerr=rmse / (2 * line["repeats"]) ** 0.5, marker="o", capsize=2,
                        label=f"{variant} (n = {int(line['repeats'].min())} releases per point)")
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
    fig.suptitle(f"{source}: private AUC error vs ε (bars: ± one standard error, RMSE/√(2n))")
    fig.tight_layout()
    save_figure(fig, path)
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
