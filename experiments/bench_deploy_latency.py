"""Where a deployed training step's time goes: a real Flower deployment on loopback, measured from its logs.

    python -m fedsim.experiments.bench_deploy_latency [--epochs 1] [--batch-size 128] [--variants stock,warm,...]
    git archive 0a14b4f | tar -x -C /tmp/before    # and, to measure an older fedsim side by side:
    python -m fedsim.experiments.bench_deploy_latency --before /tmp/before

Each variant launches `flower-superlink` + one `flower-supernode` per feature party on 127.0.0.1
(`fedsim.testing.loopback`, the launcher the deployment tests use), runs `flwr run .` on diabetes, and
reads the timestamped DEBUG logs (FLWR_LOG_LEVEL=DEBUG) of the SuperNodes, their ClientApp processes and the
SuperLink (which logs the ServerApp's calls). Every `train.step` message at a node is split at Flower's and
fedsim's own log lines, in the order they happen; the table shows each span's median over all step messages
of all nodes (ms).

Variants: `stock` is Flower's SuperExec (one fresh `flwr-clientapp` process per message); `warm` is
`fedsim.runtime.flower.warm_superexec` (each ClientApp task in a fork of a process that imported Flower and
torch once); `warm-nodepoll` is `warm` with the SuperNode's fixed sleeps (3 s after an empty pull, 0.5 s
between checks for the reply: constants in Flower 1.42's node loop, no setting) capped at `--poll` seconds
by patching that loop in this benchmark only, to measure what Flower would have to make configurable.
A span whose log line a variant does not print (a forked task has no interpreter start) is shown as "-"
and its time is in the next span. The ClientApp's imports are also broken down by package with
`python -X importtime` in a fresh process, so the "imports" spans can be read package by package.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from fedsim.testing.loopback import ROOT, deployment, flower_env, flwr_run

STEP = "train.step"
VARIANTS = ("stock", "warm", "warm-nodepoll")
NODE_SLEEP_CAP_ENV = "FEDSIM_BENCH_NODE_SLEEP_CAP"
# (log line that ends the span, what the span is), in the order they happen for one message at a node
SPANS = [
    ("Received successfully", "SuperNode pulls the message from the SuperLink"),
    ("DEBUG logs enabled", "SuperExec task poll + new ClientApp process (interpreter start)"),
    ("Start `flwr-clientapp` process", "Flower imports in the ClientApp process"),
    ("Runtime.PullTaskInput", "ClientApp connects to the SuperNode's Runtime API"),
    ("[flwr-clientapp] Start FAB installation.", "ClientApp pulls the message from the SuperNode"),
    ("[flwr-clientapp] Start `ClientApp` Loading.", "FAB install (unpack the app)"),
    ("[fedsim] handler start", "ClientApp load: fedsim + torch imports"),
    ("[fedsim] handler end", "fedsim handler: node data, party rebuild + state, step"),
    ("Runtime.PushMessages", "handler end to reply pushed to the SuperNode"),
    (f"Sending: {STEP}", "SuperNode reply poll (Flower sleeps 0.5 s between checks)"),
    ("Sent successfully", "SuperNode pushes the reply to the SuperLink"),
    (f"Receiving: {STEP}", "SuperNode idle until its next pull (Flower sleeps 3 s after an empty pull)"),
]
SERVER_PUSH, SERVER_PULL = "Runtime.PushMessages", "Runtime.PullMessages"  # the ServerApp at the SuperLink
SERVER_SPAN = "(within the idle span) last reply at the SuperLink to the ServerApp's next message"
LINE = re.compile(r"^(?:\x1b\[[0-9;]*m)?[A-Z]+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})(?:\x1b\[[0-9;]*m)?:\s*(.*)$")


def events(*logs: Path) -> list[tuple[float, str]]:
    """(time, message) of every timestamped line of the logs, in time order."""
    found = []
    for log in logs:
        if log.exists():
            for line in log.read_text(errors="replace").splitlines():
                if match := LINE.match(line):
                    stamp = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                    found.append((stamp, match[2]))
    return sorted(found, key=lambda e: e[0])


def first(window: list[tuple[float, str]], text: str) -> float | None:
    return next((t for t, message in window if text in message), None)


def node_spans(node_events: list[tuple[float, str]]) -> list[dict[str, float | None]]:
    """Per train.step message at one node (all but the last, which has no next pull): each span in seconds,
    None where its log line is missing (its time is then counted in the next present span)."""
    starts = [i for i, (_, message) in enumerate(node_events) if f"Receiving: {STEP}" in message]
    spans = []
    for a, b in zip(starts, starts[1:], strict=False):
        window = node_events[a + 1: b + 1]
        previous, row = node_events[a][0], {}
        for marker, name in SPANS:
            at = node_events[b][0] if marker == f"Receiving: {STEP}" else first(window[:-1], marker)
            # processes overlap a little (a SuperExec may start the task before the SuperNode has logged the
            # message as received): time already counted in an earlier span is not counted again
            row[name] = None if at is None else max(0.0, at - previous)
            previous = previous if at is None else max(previous, at)
        row["sent"] = first(window[:-1], "Sent successfully")
        spans.append(row)
    return spans


def server_spans(link_events: list[tuple[float, str]],
                 sent: list[list[float | None]]) -> tuple[dict[str, list[float]], list[int]]:
    """From the SuperLink's log of the ServerApp's calls, per train.step exchange: the time from the last
    node's reply reaching the SuperLink to the ServerApp's next message (its reply polling, pulling the reply,
    the label party's step, pushing), and how many reply pulls it made meanwhile. This time passes while the
    nodes sleep (the idle span above), so it adds to a step only when it is longer than that sleep."""
    pushed = [t for t, m in link_events if m.startswith(SERVER_PUSH)]
    pulls = [t for t, m in link_events if m.startswith(SERVER_PULL)]
    out: dict[str, list[float]] = {SERVER_SPAN: []}
    counts = []
    for i, node_sent in enumerate(zip(*sent, strict=False)):  # push 0 is the setup, push i + 1 train message i
        if i + 2 < len(pushed) and all(s is not None for s in node_sent):
            out[SERVER_SPAN].append(pushed[i + 2] - max(node_sent))  # type: ignore[type-var]
            counts.append(sum(pushed[i + 1] < p < pushed[i + 2] for p in pulls))
    return out, counts


class CappedSleep:
    """The `time` module, except that `sleep` sleeps at most `cap` seconds."""

    def __init__(self, cap: float) -> None:
        self.cap = cap

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, self.cap))

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def supernode_with_sleep_cap() -> None:
    """`flower-supernode`, with its fixed sleeps (3 s after an empty pull, 0.5 s between reply checks) capped at
    NODE_SLEEP_CAP_ENV seconds: what the node loop would cost if Flower let one set its polling."""
    from flwr.supernode import start_client_internal
    from flwr.supernode.cli.flower_supernode import flower_supernode

    start_client_internal.time = CappedSleep(float(os.environ[NODE_SLEEP_CAP_ENV]))  # type: ignore[assignment]
    flower_supernode()


def run_variant(variant: str, parties: int, epochs: int, batch_size: int, poll: float, folder: Path,
                app: Path = ROOT) -> dict:
    with flower_env(folder) as env:
        env.update(FLWR_LOG_LEVEL="DEBUG", PYTHONUNBUFFERED="1", FLWR_SUPEREXEC_TASK_POLL_INTERVAL=str(poll))
        supernode: tuple[str, ...] = ("flower-supernode",)
        if variant == "warm-nodepoll":
            env[NODE_SLEEP_CAP_ENV] = str(poll)
            supernode = (sys.executable, "-c", f"from {__spec__.name} import supernode_with_sleep_cap as main; main()")
        with deployment(env, parties, folder, warm=variant != "stock", supernode=supernode):
            started = time.perf_counter()
            flwr_run(env, "deploy", f"epochs={epochs} batch-size={batch_size} timeout=600.0 "
                                    f"result='{folder / 'result.json'}'", timeout=3600, app=app)
            wall = time.perf_counter() - started
    result = json.loads((folder / "result.json").read_text())
    if "error" in result:
        raise RuntimeError(result["error"])
    per_node = [node_spans(events(folder / f"supernode_{k}.log", folder / f"superexec_{k}.log"))
                for k in range(parties)]
    spans: dict[str, list[float]] = {name: [] for _, name in SPANS}
    for rows in per_node:
        for row in rows:
            for _, name in SPANS:
                if row[name] is not None:
                    spans[name].append(row[name])
    server, pulls = server_spans(events(folder / "superlink.log"), [[r["sent"] for r in rows] for rows in per_node])
    spans.update(server)
    cycles = [sum(v for k, v in row.items() if k != "sent" and v is not None) for rows in per_node for row in rows]
    return {"step_ms_median": result["flower"]["step_ms_median"], "setup_s": result["flower"]["setup_s"],
            "flwr_run_s": wall, "messages": len(cycles), "node_cycle_ms_median": 1000 * statistics.median(cycles),
            "server_pulls_per_exchange": statistics.median(pulls) if pulls else None,
            "spans_ms": {name: (1000 * statistics.median(v) if v else None) for name, v in spans.items()}}


def import_breakdown() -> dict[str, float]:
    """Milliseconds a fresh ClientApp process spends importing, by top-level package (`python -X importtime`):
    Flower's ClientApp runner, fedsim's ClientApp module, and what torch.optim loads on its first optimizer."""
    code = ("import flwr.supernode.cli.flwr_clientapp; from fedsim.runtime.flower.apps import client_app; "
            "import torch; torch.optim.Adam([torch.zeros(1, requires_grad=True)])")
    started = time.perf_counter()
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                         check=True).stderr
    total = time.perf_counter() - started
    by_package: dict[str, float] = {}
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[0].startswith("import time:") and parts[0].split(":")[1].strip().isdigit():
            name = parts[2].strip()
            package = "torch._dynamo (first optimizer)" if name.startswith("torch._dynamo") else name.split(".")[0]
            by_package[package] = by_package.get(package, 0.0) + int(parts[0].split(":")[1]) / 1000
    top = dict(sorted(by_package.items(), key=lambda kv: -kv[1])[:8])
    top["(process wall, incl. interpreter start)"] = 1000 * total
    return top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated: {', '.join(VARIANTS)}")
    parser.add_argument("--parties", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--poll", type=float, default=0.1, help="FLWR_SUPEREXEC_TASK_POLL_INTERVAL (s)")
    parser.add_argument("--before", type=Path, default=None, metavar="CHECKOUT",
                        help="also measure another checkout of fedsim (e.g. an older commit, `git archive` into a "
                             "folder) as variant `before`, first: Flower's stock SuperExec runs its ServerApp and "
                             "ClientApps")
    parser.add_argument("--keep-logs", type=Path, default=None, help="keep each variant's logs in this folder")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    variants = (["before"] if args.before else []) + args.variants.split(",")
    bad = [v for v in variants if v not in (*VARIANTS, "before")]
    if bad:
        parser.error(f"unknown variants {bad}; allowed: {', '.join(VARIANTS)}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="fedsim-deploy-bench-") as tmp:
        for variant in variants:
            folder = (args.keep_logs or Path(tmp)) / variant
            folder.mkdir(parents=True, exist_ok=True)
            before = variant == "before"
            results[variant] = run_variant("stock" if before else variant, args.parties, args.epochs,
                                           args.batch_size, args.poll, folder, args.before if before else ROOT)
    imports = import_breakdown()
    if args.json:
        print(json.dumps({"variants": results, "clientapp_imports_ms": imports}, indent=2))
        return
    print(f"diabetes, {args.parties} feature parties, batch {args.batch_size}, {args.epochs} epoch(s), "
          f"SuperExec task poll {args.poll} s; medians in ms over every train.step message of every node")
    names = list(results[variants[0]]["spans_ms"])
    width = max(map(len, names)) + 2
    column = max(map(len, variants)) + 2
    print("span".ljust(width) + "".join(v.rjust(column) for v in variants))
    for name in names:
        cells = [results[v]["spans_ms"][name] for v in variants]
        print(name.ljust(width) + "".join(("-" if c is None else f"{c:.0f}").rjust(column) for c in cells))
    for key, label in (("node_cycle_ms_median", "node cycle (sum of the node spans)"),
                       ("step_ms_median", "training step, ServerApp's view (result JSON)"),
                       ("server_pulls_per_exchange", "ServerApp reply pulls per exchange (count)")):
        print(label.ljust(width) + "".join(f"{results[v][key] or 0:.0f}".rjust(column) for v in variants))
    print(f"load average during the runs: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} cores)")
    print("\nClientApp process imports by package (python -X importtime, fresh process, ms):")
    for package, ms in imports.items():
        print(f"  {package:<40}{ms:8.0f}")


if __name__ == "__main__":
    main()
