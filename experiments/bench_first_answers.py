"""A newcomer's first answers, timed side by side in one run (issue 25, item 3).

    python -m fedsim.experiments.bench_first_answers             # best of 3 each
    python -m fedsim.experiments.bench_first_answers --repeats 5

Every command runs as a fresh `fedsim` process (what a user types), interleaved round by round with
`python -c pass` (the interpreter's own start-up), so load from other processes hits all of them alike; each
one's best wall time is printed. Targets: `fedsim --help` and every `COMMAND --help` under 0.5 s,
`fedsim attack --attack lba|residual` on diabetes under 5 s; the training time (from `fedsim train --json`)
is printed next to them as the floor the attack's set-up is compared with, and so is the import of torch and
scikit-learn alone (the attack needs both: its own fit and the features-only references), which says how much
of the attack's time is this machine's import speed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HELP_TARGET_S = 0.5
ATTACK_TARGET_S = 5.0
COMMANDS = ["datasets", "train", "attack", "bench", "report", "demo", "auc", "attacks", "defenses", "auc-methods",
            "audit", "deploy"]
FEDSIM = [sys.executable, "-m", "fedsim"]
IMPORTS = "python -c 'import torch, sklearn.ensemble'"


def wall(argv: list[str]) -> float:
    """Seconds one process takes from start to exit; a failure stops the benchmark with its stderr."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="Rounds; each command's best is kept.")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        transcript = Path(tmp) / "t"
        trained = subprocess.run([*FEDSIM, "train", "--dataset", "diabetes", "--transcript", str(transcript),
                                  "--json", "--quiet"], capture_output=True, text=True, check=True)
        train_s = json.loads(trained.stdout)["timing"]["train_s"]
        runs = {"python -c pass": [sys.executable, "-c", "pass"],
                IMPORTS: [sys.executable, "-c", "import torch, sklearn.ensemble"],
                "fedsim --help": [*FEDSIM, "--help"]}
        runs |= {f"fedsim {c} --help": [*FEDSIM, c, "--help"] for c in COMMANDS}
        runs |= {f"fedsim attack --attack {a} (diabetes)": [*FEDSIM, "attack", "--transcript", str(transcript),
                                                            "--attack", a, "--quiet"]
                 for a in ("lba", "residual")}
        best = {name: float("inf") for name in runs}
        for _ in range(args.repeats):
            for name, command in runs.items():
                best[name] = min(best[name], wall(command))
    print(f"training on diabetes (fedsim train, 20 epochs): {train_s:.2f} s")
    failed = 0
    for name, seconds in best.items():
        target = ATTACK_TARGET_S if "--attack" in name else None if name.startswith("python") else HELP_TARGET_S
        verdict = "" if target is None else ("ok" if seconds < target else f"over {target:g} s")
        failed += verdict.startswith("over")
        print(f"{name:45s} {seconds:6.2f} s  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
