"""Per-step latency of the Flower runtime vs the local runtime and vs a bare round trip of Flower's engine.

    python -m fedsim.experiments.bench_flower_latency [--epochs 3] [--parties 2] [--round-trips 30]

All figures come from one invocation, side by side: the local runtime, the Flower runtime in the
simulation engine (Ray), and, in one more simulation, bare round trips (one echo message per node carrying
a 64x16 float32 array) timed with fedsim's reply polling and with Flower's `Grid.send_and_receive`.
The Flower runtime makes one round trip per step, so its per-step time should sit near one bare round trip.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedsim.config import TrainConfig
from fedsim.runtime.flower.server import Link
from fedsim.runtime.flower.simulation import simulate
from fedsim.training import train

ECHO = "query.echo"
echo_app = ClientApp()


@echo_app.query("echo")
def echo(message: Message, context: Context) -> Message:
    return Message(message.content, reply_to=message)


def bare_round_trips(nodes: int, count: int) -> dict[str, list[float]]:
    """Seconds per round trip to all `nodes` at once, with fedsim's `Link` and with `send_and_receive`."""
    times: dict[str, list[float]] = {"link": [], "send_and_receive": []}
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        while len(node_ids := sorted(grid.get_node_ids())) < nodes:
            time.sleep(0.05)
        link = Link(grid, timeout=60.0)

        def messages() -> list[Message]:
            payload = RecordDict({"x": ArrayRecord({"h": Array(np.zeros((64, 16), np.float32))})})
            return [Message(payload, node, ECHO) for node in node_ids]

        for kind in times:
            for i in range(count + 1):  # the first round trip warms the actors up
                start = time.perf_counter()
                if kind == "link":
                    link.exchange(dict(enumerate(messages())), str)
                else:
                    replies = list(grid.send_and_receive(messages(), timeout=60.0))
                    assert len(replies) == nodes and not any(r.has_error() for r in replies)
                if i:
                    times[kind].append(time.perf_counter() - start)

    simulate(server, echo_app, nodes)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--parties", type=int, default=2)
    parser.add_argument("--round-trips", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads in this process (Flower's Ray actors use 1); on a busy 2-core machine "
                             "2 threads make each tiny step 100x slower")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = TrainConfig(dataset="diabetes", parties=args.parties, epochs=args.epochs)
    local = train(config, record=True)
    flower = train(config.model_copy(update={"runtime": "flower"}))
    bare = bare_round_trips(args.parties, args.round_trips)
    ms = {
        "local_per_step_ms": 1000 * local.train_s / local.steps,
        "flower_per_step_ms": 1000 * flower.train_s / flower.steps,
        "flower_step_median_ms": flower.extra["flower"]["step_ms_median"],
        "bare_link_median_ms": 1000 * statistics.median(bare["link"]),
        "bare_link_min_ms": 1000 * min(bare["link"]),
        "bare_send_and_receive_median_ms": 1000 * statistics.median(bare["send_and_receive"]),
        "bare_send_and_receive_min_ms": 1000 * min(bare["send_and_receive"]),
    }
    ratios = {
        "flower_over_local": ms["flower_per_step_ms"] / ms["local_per_step_ms"],
        "flower_median_over_bare_link": ms["flower_step_median_ms"] / ms["bare_link_median_ms"],
        "flower_median_over_bare_send_and_receive": ms["flower_step_median_ms"] / ms["bare_send_and_receive_median_ms"],
    }
    same = local.metrics == flower.metrics
    if args.json:
        print(json.dumps({"parties": args.parties, "steps": local.steps, **ms, **ratios, "same_metrics": same}))
        return
    print(f"diabetes, {args.parties} feature parties, {local.steps} steps (batch 64), {args.threads} torch thread(s), "
          f"same test metrics: {same}")
    print(f"  local runtime                            {ms['local_per_step_ms']:9.2f} ms/step")
    print(f"  flower runtime (simulation, Ray)         {ms['flower_per_step_ms']:9.2f} ms/step mean, "
          f"{ms['flower_step_median_ms']:.2f} median  (1 round trip per step; the mean includes actor warm-up)")
    print(f"  bare engine round trip, fedsim polling   {ms['bare_link_median_ms']:9.2f} ms median, "
          f"{ms['bare_link_min_ms']:.2f} min  ({args.round_trips} round trips)")
    print(f"  bare engine round trip, send_and_receive {ms['bare_send_and_receive_median_ms']:9.2f} ms median, "
          f"{ms['bare_send_and_receive_min_ms']:.2f} min")
    print(f"  flower / local = {ratios['flower_over_local']:.0f}x (mean); flower median step / bare round trip = "
          f"{ratios['flower_median_over_bare_link']:.2f}x (fedsim polling), "
          f"{ratios['flower_median_over_bare_send_and_receive']:.2f}x (send_and_receive)")


if __name__ == "__main__":
    main()
