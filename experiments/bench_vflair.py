"""fedsim in VFLAIR's setting (aggregation VFL, `--top-model sum`), next to VFLAIR's own label-inference table.

    python -m fedsim.experiments.bench_vflair --seeds 0 1 2 --out bench_vflair   # fedsim rows + CSV
    python -m fedsim.experiments.bench_vflair --vflair DIR                        # checks DIR is a VFLAIR tree

Settings (VFLAIR's MNIST record: 2 parties, MLP2 bottoms = one hidden layer of 32, each outputting the 10
logits, summed by the label party, which is VFLAIR's active party and holds half the columns: `--layout
vflair`, the default, is 1 feature party + `--label-party-features` half; `--layout passive` is fedsim's usual
2 feature parties and a label party with labels only): digits and a 10-class synthetic set
(`synthetic_multiclass` drawn with 10 classes, 6000 rows), hidden 32, 10 epochs, batch 64, Adam 1e-3
(VFLAIR's batch 2048 would be one step per epoch on digits' 1437 training rows). The last 2 epochs are
attacked with 5% known labels.

VFLAIR itself is not run here (experiments/results/README.md says why): `--vflair DIR` only checks the tree and
prints VFLAIR's shipped MNIST records (`VFLAIR_MNIST`, notes/vflair-mnist-records.txt) beside fedsim's rows, as
reference numbers on a different dataset. Scores: `raw` is the attack's arg-max accuracy; `matched` relabels
the estimated classes by the best one-to-one map to the true ones (`matched_accuracy`), which turns a
consistent permutation (what CAE's soft labels produce) into the leak it is. `eps` is the run's formal label-DP
epsilon where the defence has one; `adv` the raw accuracy minus the best features-only reference's.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fedsim.attacks.evaluate import ReferenceCache, draw_known, run_attack, score_attack
from fedsim.config import ModelConfig, TrainConfig
from fedsim.data.sources import synthetic_multiclass
from fedsim.experiments.report_markdown import markdown_table
from fedsim.streams import Stream
from fedsim.training import train

KNOWN_FRACTION = 0.05
EPOCHS = 10
ATTACKS = ("direct_label_inference", "batch_label_inference", "direction_scoring", "norm_scoring")
# (VFLAIR's row name, fedsim gradient defence, params, epsilon); None: fedsim has no multiclass version of it
DEFENCES: list[tuple[str, str | None, dict[str, Any], float | None]] = [
    ("None_None", "none", {}, None),
    ("LaplaceDP_0.001", None, {}, None),
    ("GaussianDP_0.001", None, {}, None),
    *[(f"GradPerturb_{eps}", "grad_perturb", {}, eps) for eps in (10.0, 1.0, 0.1)],
    ("MID_Active_0.1", "mid", {"lambda_mi": 0.1}, None),
    ("CAE_0.0", "cae", {"confusion": 0.0}, None),
    ("DistanceCorrelation_0.3", "dcor", {"lambda_dcor": 0.3}, None),
    ("GradientSparsification_99.0", None, {}, None),
]
# VFLAIR's shipped MNIST records (5 seeds; notes/vflair-mnist-records.txt): main task, BLI, DLI recovery rates
VFLAIR_MNIST: dict[str, tuple[float, float, float]] = {
    "None_None": (0.975, 0.996, 1.000), "LaplaceDP_0.001": (0.956, 0.414, 0.171),
    "GaussianDP_0.001": (0.962, 0.496, 0.180), "GradPerturb_10.0": (0.970, 0.866, 0.304),
    "GradPerturb_1.0": (0.939, 0.291, 0.140), "GradPerturb_0.1": (0.893, 0.117, 0.107),
    "MID_Active_0.1": (0.889, 0.099, 0.120), "CAE_0.0": (0.974, 0.089, 0.000),
    "DistanceCorrelation_0.3": (0.873, 0.346, 0.205), "GradientSparsification_99.0": (0.947, 0.187, 0.198),
}


def matched_accuracy(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    """Accuracy after the best one-to-one relabelling of the estimated classes (Hungarian assignment)."""
    from scipy.optimize import linear_sum_assignment

    counts = np.zeros((k, k))
    np.add.at(counts, (y_pred.astype(int), y_true.astype(int)), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(y_true))


def synthetic10_csv(folder: Path, seed: int) -> Path:
    """The 10-class synthetic set as a CSV (fedsim's built-in one has 5 classes)."""
    features, target = synthetic_multiclass(6000, np.random.default_rng([seed, Stream.DATASET]), n_classes=10)
    path = folder / f"synthetic10_{seed}.csv"
    features.assign(**{"class": target}).to_csv(path, index=False)
    return path


# VFLAIR's 2 parties are one passive party and the active party, which holds the labels and half the columns
# (its own bottom model, trained on its clean gradient); "passive": two feature parties and labels only
LAYOUTS = {"vflair": {"parties": 1}, "passive": {"parties": 2}}
COLUMNS = {"digits": 64, "synthetic10": 16}


def config(source: dict[str, Any], seed: int, defence: str, params: dict[str, Any], epsilon: float | None,
           layout: dict[str, int]) -> TrainConfig:
    gradient = None if defence == "none" else defence
    return TrainConfig(**source, **layout, task="multiclass", epochs=EPOCHS, batch_size=64, lr=1e-3, seed=seed,
                       record_last_epochs=2, model=ModelConfig(top_model="sum", bottom_hidden=32),
                       gradient_defense=gradient, defense_params=params, epsilon=epsilon)


def rows_for(name: str, source: dict[str, Any], seed: int, layout: dict[str, int]) -> list[dict[str, Any]]:
    out = []
    for vflair_name, defence, params, epsilon in DEFENCES:
        if defence is None:
            continue
        result = train(config(source, seed, defence, params, epsilon, layout))
        view, y = result.party_view(0), result.dataset.y_train
        knowledge, cache = draw_known(view, y, KNOWN_FRACTION, None, seed), ReferenceCache()
        for attack in ATTACKS:
            estimate, _ = run_attack(view, attack, None, knowledge, seed)
            scored = score_attack(view, estimate, y, knowledge, cache.get(view, knowledge, seed))
            truth = np.asarray(y)[view.rows_of(np.asarray(estimate.ids))]
            guess = np.argmax(np.asarray(estimate.estimates), axis=1)
            out.append({"dataset": name, "defence": vflair_name, "seed": seed, "attack": attack,
                        "main_acc": result.metrics["accuracy"], "raw": scored["metrics"]["accuracy"],
                        "matched": matched_accuracy(truth, guess, result.dataset.n_classes),
                        "adv": scored["metrics"].get("advantage", float("nan")),
                        "eps": result.privacy.epsilon if result.privacy.epsilon is not None else float("nan")})
            print(out[-1], flush=True)
    return out


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One line per dataset and defence: mean over seeds of the main task and each attack's raw/matched score,
    with VFLAIR's MNIST record beside it."""
    keys = ["dataset", "defence"]
    wide = frame.pivot_table(index=[*keys, "seed"], columns="attack", values=["raw", "matched"]).groupby(keys).mean()
    wide.columns = [f"{short(a)} {kind}" for kind, a in wide.columns]
    base = frame.groupby(keys)[["main_acc", "eps"]].mean()
    best_adv = frame.groupby([*keys, "seed"])["adv"].max().groupby(keys).mean().rename("best adv")
    table = base.join(wide).join(best_adv).reset_index()
    order = {name: i for i, (name, *_) in enumerate(DEFENCES)}
    table = table.sort_values(["dataset", "defence"], key=lambda c: c.map(order) if c.name == "defence" else c)
    vflair = table["defence"].map(lambda d: VFLAIR_MNIST.get(d, (np.nan,) * 3))
    return table.assign(**{f"VFLAIR MNIST {m}": vflair.map(lambda v, i=i: v[i])
                           for i, m in enumerate(("main", "BLI", "DLI"))})


def cell(value: Any) -> str:
    if isinstance(value, float):
        return "-" if np.isnan(value) else f"{value:.3f}"
    return str(value)


def short(attack: str) -> str:
    return {"direct_label_inference": "DLI", "batch_label_inference": "BLI", "direction_scoring": "DS",
            "norm_scoring": "NS"}[attack]


def check_vflair(folder: Path) -> None:
    """A VFLAIR checkout has its label-inference attacks where the records' code had them."""
    attacks = folder / "src" / "evaluates" / "attacks"
    for name in ("DirectLabelScoring.py", "BatchLabelReconstruction.py"):
        if not (attacks / name).is_file():
            raise SystemExit(f"--vflair {folder}: no {attacks / name}; give the root of a VFLAIR checkout")
    print(f"VFLAIR tree found at {folder}; not run (see experiments/results/README.md), its MNIST records shown")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--datasets", nargs="+", choices=["digits", "synthetic10"], default=["digits", "synthetic10"])
    parser.add_argument("--vflair", type=Path, default=None, help="root of a local VFLAIR checkout (optional)")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="vflair",
                        help="vflair: 1 feature party + a label party with half the columns; "
                             "passive: 2 feature parties")
    parser.add_argument("--out", type=Path, default=None, help="write the per-seed rows to OUT.csv")
    args = parser.parse_args()
    if args.vflair is not None:
        check_vflair(args.vflair)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for name in args.datasets:
                source = ({"dataset": "digits"} if name == "digits" else
                          {"data": str(synthetic10_csv(Path(tmp), seed)), "target": "class"})
                layout = dict(LAYOUTS[args.layout])
                if args.layout == "vflair":
                    layout["label_party_features"] = COLUMNS[name] // 2
                rows += rows_for(name, source, seed, layout)
    frame = pd.DataFrame(rows)
    if args.out is not None:
        frame.to_csv(args.out.with_suffix(".csv"), index=False)
    table = summary(frame)
    print(markdown_table(list(table.columns), [[cell(v) for v in row] for row in table.itertuples(index=False)]))


if __name__ == "__main__":
    main()
