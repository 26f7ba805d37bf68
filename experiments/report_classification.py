"""The classification part of a leakage section: VFLAIR's Defense Capability Score per defence setting and
attack, and its mean over the attacks, T-DCS (`fedsim.metrics.defense_capability_score`: MP = test accuracy,
AP = attack accuracy); the scoring checks (relabelled estimates, matched accuracy above the eps bound) and the
score the advantage was taken on (matched or raw, docs/scoring.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fedsim.attacks.evaluate import RELABEL_GAP
from fedsim.experiments.report_markdown import markdown_table, strength_text
from fedsim.experiments.results import NOT_APPLICABLE
from fedsim.metrics import DCS_BETA, defense_capability_score


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
    applicable = group.assign(na=group["status"].eq(NOT_APPLICABLE) if "status" in group else False)
    na = applicable.groupby(keys + ["attack_label"], dropna=False)["na"].all().unstack("attack_label")
    frame = frame.join(na.fillna(False).astype(bool).add_prefix("na:"))
    everywhere = [f"dcs:{a}" for a in ap.columns if frame[f"dcs:{a}"].notna().all()]  # settings on the same attacks
    frame["t_dcs"] = frame[everywhere].mean(axis=1) if everywhere else np.nan
    frame = frame.reset_index()
    frame["is_none"] = frame["defense_key"] == "none"
    return frame.sort_values(["is_none", "defense_key", "strength_key"], ascending=[False, True, True])



def dcs_section(group: pd.DataFrame, dataset: str) -> tuple[str, list[str]]:
    frame = dcs_frame(group)
    if frame.empty:
        return f"No Defense Capability Score for {dataset}: it needs a no-defence setting.\n", []
    attacks = [c.removeprefix("dcs:") for c in frame.columns if c.startswith("dcs:")]
    header = ["defence", "strength", "test accuracy (MP)"] + [f"{a} AP / DCS" for a in attacks] + ["T-DCS"]
    rows = [[r["defense_key"], strength_text(r), f"{r['mp']:.4f}"]
            + ["n/a" if r[f"na:{a}"] else f"{r[f'ap:{a}']:.3f} / {r[f'dcs:{a}']:.3f}" if pd.notna(r[f"dcs:{a}"])
               else "—" for a in attacks]
            + [f"{r['t_dcs']:.3f}" if pd.notna(r['t_dcs']) else "—"] for _, r in frame.iterrows()]
    text = (f"VFLAIR's Defense Capability Score (DCS = 1 / (1 + D), D the beta-weighted distance to the ideal "
            f"point AP* = 0, MP* = the undefended test accuracy, beta = {DCS_BETA:g}; higher is better; T-DCS: "
            f"the mean over the attacks scored in every setting{_left_out(frame, attacks)}):\n\n"
            + markdown_table(header, rows) + "\n")
    defended = frame[~frame["is_none"]].dropna(subset=["t_dcs"])
    if defended.empty:
        return text, []
    best = defended.loc[defended["t_dcs"].idxmax()]
    none = frame[frame["is_none"]].iloc[0]
    return text, [f"{dataset}: highest T-DCS {best['t_dcs']:.3f} for {best['defense_key']} {strength_text(best)} "
                  f"(test accuracy {best['mp']:.3f}; no defence: T-DCS {none['t_dcs']:.3f}, test accuracy "
                  f"{none['mp']:.3f})"]


def _left_out(frame: pd.DataFrame, attacks: list[str]) -> str:
    """`, not <attack>` for the attacks without a score in some setting (n/a or not run; left out of T-DCS)."""
    partial = [a for a in attacks if frame[f"dcs:{a}"].isna().any()]
    return f", not {', '.join(partial)} (n/a or not run in some)" if partial else ""


def scored_leakage(group: pd.DataFrame, leak: str) -> pd.Series:
    """The attack score each row's advantage was taken on: the matched score (`attack_matched_<metric>`) where
    `advantage_scoring` says "matched", else the raw `leak` column (regression, older tables)."""
    matched = f"attack_matched_{leak.removeprefix('attack_')}"
    if "advantage_scoring" not in group or matched not in group:
        return group[leak]
    return group[leak].where(group["advantage_scoring"] != "matched", group[matched])


def scoring_flags(group: pd.DataFrame, metric_name: str) -> list[str]:
    """Cells whose raw and matched scores differ by more than RELABEL_GAP (relabelled estimates), and cells whose
    matched accuracy exceeds the eps-label-DP bound beyond its binomial margin."""
    flags = []
    for column, text in (("relabelled", f"raw and matched {metric_name} differ by more than {RELABEL_GAP}: the "
                                        "estimates are relabelled; the advantage uses the matched score"),
                         ("exceeds_bound", "matched accuracy above the eps-label-DP bound (advantage_bound) beyond "
                                           "its binomial margin: inspect the defence's claim")):
        if column in group:
            hit = group[group[column].fillna(False).astype(bool)]
            flags += [f"{row.defense} at {row.strength}, seed {row.seed}, {row.attack_label}: {text}"
                      for row in hit.itertuples()]
    return flags
