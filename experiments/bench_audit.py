"""Audit tightness benchmark: empirical epsilon (one-run canary audit) next to the formal epsilon.

`train` (the default): M = 1000 canaries, one training run per row, default attack and guessing rule
(`fedsim.audit`), 95% confidence. Regression rows on synthetic_regression (5,000 rows: 4,000 training
rows, a quarter of them canaries) with the project's public clip range [0, 30]; binary rows (rr) on
synthetic_ctr (5,000 rows). Targets of the issue: laplace and rr at eps in {1, 2, 4} reach
eps_emp >= 0.6 eps; no defence gives eps_emp >= 4. Epochs are kept small (5): the audit needs the
released labels, not a good model.

`whitebox`: the white-box auditor (`--auditor white-box`, the likelihood ratio of each canary's labels read
from the label party's recorded state): dp_gradient at eps in {2, 4, 8} on synthetic_regression (5,000 rows)
and diabetes (442 rows: 176 canaries, half the training rows), grad_perturb on synthetic_ctr, gaussian labels
and rr_on_bins on synthetic_regression, and the `train` rows' laplace and rr (the released label read
directly: what the black-box rows lose to the attack). Every row gives both analyses (f-DP, used for the verdict, and
Steinke-Nasr-Jagielski), the ideal observer's bound at the same canaries and the efficiency.

`auc`: the private-AUC methods on the breast_cancer score set (285 scores) with M = 1000 canaries; DPAUC
at its default K = 100 thresholds and at K = 4, where its tight epsilon 2 K eps_v is within reach.

    nice python -m fedsim.experiments.bench_audit                  # the table (minutes on 2 busy cores)
    nice python -m fedsim.experiments.bench_audit --seeds 0 1 2    # spread over training/audit seeds
    nice python -m fedsim.experiments.bench_audit auc --seeds 0 1 2
    nice python -m fedsim.experiments.bench_audit whitebox --seeds 0 1 2 [--only dp_gradient] [--canaries M]

Not a timed test. Prints a markdown table; `--out FILE.csv` also keeps every row.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import pandas as pd

from fedsim.assembly import load_dataset
from fedsim.audit.auc import audit_auc
from fedsim.audit.training import audit_training, default_canaries
from fedsim.config import TrainConfig
from fedsim.evaluation import synthetic_scores
from fedsim.experiments.report_leakage import violation_summary
from fedsim.threads import torch_threads

CANARIES = 1000
EPSILONS = (1.0, 2.0, 4.0)
REGRESSION = {"dataset": "synthetic_regression", "rows": 5000, "epochs": 5}
BINARY = {"dataset": "synthetic_ctr", "rows": 5000, "epochs": 5}
CLIP = {"low": 0.0, "high": 30.0}
DIABETES = {"dataset": "diabetes", "epochs": 5}
GRADIENT_RANGES = {"synthetic_regression": (0.0, 30.0), "diabetes": (0.0, 350.0)}


def settings() -> list[tuple[str, dict[str, Any], tuple[float, float] | None]]:
    """(row name, TrainConfig fields, canary values) of every benchmark row."""
    rows: list[tuple[str, dict[str, Any], tuple[float, float] | None]] = [
        ("regression, no defence", dict(REGRESSION), (0.0, 30.0)),
        ("binary, no defence", dict(BINARY), None),
    ]
    for eps in EPSILONS:
        rows.append((f"laplace eps={eps:g}", {**REGRESSION, "label_defense": "laplace", "epsilon": eps,
                                               "defense_params": CLIP}, None))
    for eps in EPSILONS:
        rows.append((f"rr eps={eps:g}", {**BINARY, "label_defense": "rr", "epsilon": eps}, None))
    return rows


def whitebox_settings() -> list[tuple[str, dict[str, Any], tuple[float, float] | None]]:
    """(row name, TrainConfig fields, canary values) of the white-box rows (module docstring)."""
    rows: list[tuple[str, dict[str, Any], tuple[float, float] | None]] = []
    for data in (REGRESSION, DIABETES):
        low, high = GRADIENT_RANGES[str(data["dataset"])]
        for eps in (2.0, 4.0, 8.0):
            rows.append((f"dp_gradient {data['dataset']} eps={eps:g}", {
                **data, "gradient_defense": "dp_gradient", "epsilon": eps, "delta": 1e-5,
                "defense_params": {"label_low": low, "label_high": high}}, (low, high)))
    for eps in EPSILONS:
        rows.append((f"grad_perturb eps={eps:g}", {**BINARY, "gradient_defense": "grad_perturb", "epsilon": eps}, None))
        rows.append((f"gaussian eps={eps:g}", {**REGRESSION, "label_defense": "gaussian", "epsilon": eps,
                                                "delta": 1e-5, "defense_params": CLIP}, None))
        rows.append((f"rr_on_bins eps={eps:g}", {**REGRESSION, "label_defense": "rr_on_bins", "epsilon": eps,
                                                  "defense_params": CLIP}, None))
    # the black-box table's label mechanisms, read by the auditor itself: what is left is the analysis
    rows += [row for row in settings() if row[0].startswith(("laplace", "rr eps"))]
    return rows


def auc_settings() -> list[tuple[str, dict[str, Any]]]:
    rows = [(f"{method} eps={eps:g}", {"method": method, "epsilon": eps})
            for method in ("hist", "hist_gauss", "rr", "naive_rr") for eps in EPSILONS]
    rows += [(f"dpauc K={k} eps={eps:g}", {"method": "dpauc", "epsilon": eps, "thresholds": k})
             for k, eps in ((100, 1.0), (100, 8.0), (4, 4.0), (4, 16.0))]
    return rows


def run_one(kind: str, fields: dict[str, Any], values: tuple[float, float] | None, seed: int,
            canaries: int | None = None) -> dict[str, Any]:
    """One audit; `canaries` None: CANARIES, or half the training rows where fewer fit."""
    if kind == "auc":
        scores, labels = synthetic_scores("breast_cancer", 0)
        return audit_auc(scores=scores, labels=labels, canaries=CANARIES if canaries is None else canaries, seed=seed,
                         **fields)
    config = TrainConfig(**fields, seed=seed)
    auditor = "white-box" if kind == "whitebox" else "black-box"
    if canaries is None:
        canaries = min(CANARIES, default_canaries(load_dataset(config).n_train))
    with torch_threads(1):
        return audit_training(config, canaries=canaries, seed=seed, values=values, auditor=auditor)


def run(kind: str, seeds: list[int], only: str | None = None, canaries: int | None = None) -> pd.DataFrame:
    rows = {"train": settings, "whitebox": whitebox_settings}[kind]() if kind != "auc" else \
        [(name, fields, None) for name, fields in auc_settings()]
    records = []
    for name, fields, values in rows:
        if only is not None and not name.startswith(only):
            continue
        for seed in seeds:
            start = time.perf_counter()
            out = run_one(kind, fields, values, seed, canaries)
            records.append({"setting": name, "seed": seed, "formal_epsilon": out["formal_epsilon"],
                            "empirical_epsilon": out["empirical_epsilon"], "correct": out["correct"],
                            "guesses": out["guesses"], "attack": out["attack"], "verdict": out["verdict"],
                            "tight_epsilon": out.get("tight_epsilon"), "fdp_epsilon": out["fdp_epsilon"],
                            "steinke_epsilon": out["steinke_epsilon"], "ideal_epsilon": out["ideal_epsilon"],
                            "efficiency": out["efficiency"], "auditor": out["auditor"],
                            "canaries": out["canaries"], "seconds": time.perf_counter() - start})
            print(records[-1], flush=True)
    return pd.DataFrame(records)


def table(frame: pd.DataFrame) -> str:
    """Mean (min-max) over seeds per setting, both analyses, the ideal observer and the violations."""
    lines = ["| setting | formal eps | empirical eps (f-DP, 95%) | ratio | Steinke | ideal | efficiency | "
             "violations | canaries | auditor |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, g in frame.groupby("setting", sort=False):
        formal = g["formal_epsilon"].iloc[0]
        emp = g["empirical_epsilon"]
        ratio = "-" if pd.isna(formal) else f"{emp.mean() / formal:.2f}"
        ideal = "-" if g["ideal_epsilon"].isna().all() else f"{g['ideal_epsilon'].mean():.2f}"
        eff = "-" if g["efficiency"].isna().all() else f"{g['efficiency'].mean():.2f}"
        lines.append(f"| {name} | {'none' if pd.isna(formal) else f'{formal:.3g}'} | {emp.mean():.2f} "
                     f"({emp.min():.2f}-{emp.max():.2f}) | {ratio} | {g['steinke_epsilon'].mean():.2f} | {ideal} | "
                     f"{eff} | {(g['verdict'] == 'violation').sum()}/{len(g)} | {g['canaries'].iloc[0]} | "
                     f"{g['auditor'].iloc[0]} |")
    audited = frame["verdict"].isin(["consistent", "violation"])
    return "\n".join(lines) + "\n\n" + violation_summary(int((frame["verdict"] == "violation").sum()),
                                                          int(audited.sum()), 0.95)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", nargs="?", choices=("train", "whitebox", "auc"), default="train")
    parser.add_argument("--only", help="run only the settings whose name starts with this")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", help="also write the rows to this CSV file")
    parser.add_argument("--canaries", type=int, help=f"canaries per audit (default {CANARIES}, or half the "
                        "training rows where fewer fit; more than the rows minus one is refused)")
    args = parser.parse_args(argv)
    frame = run(args.kind, args.seeds, args.only, args.canaries)
    if args.out:
        frame.to_csv(args.out, index=False)
    print(table(frame))


if __name__ == "__main__":
    main()
