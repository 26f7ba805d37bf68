"""The deployment latency benchmark's log parsing: spans between Flower's and fedsim's log lines."""

from __future__ import annotations

import pytest

from fedsim.experiments.bench_deploy_latency import SERVER_SPAN, SPANS, events, node_spans, server_spans

ESC = "\x1b[94m"


def line(second: float, text: str) -> str:
    whole, ms = int(second), round((second % 1) * 1000)
    return f"{ESC}DEBUG 2026-12-01 12:00:{whole:02d},{ms:03d}\x1b[0m:     {text}"


def test_node_spans_split_each_step_message_at_its_log_lines(tmp_path):
    # one step message with every line, then one whose ClientApp was forked (no interpreter start lines)
    full = [(0.0, "Receiving: train.step message (ID: a)"), (0.1, "Received successfully"),
            (0.5, "DEBUG logs enabled. Do not use this in production"), (1.5, "Start `flwr-clientapp` process"),
            (1.6, "Runtime.PullTaskInput"), (1.7, "[flwr-clientapp] Start FAB installation."),
            (1.8, "[flwr-clientapp] Start `ClientApp` Loading."), (3.0, "[fedsim] handler start: train.step"),
            (3.5, "[fedsim] handler end: train.step"), (3.6, "Runtime.PushMessages"),
            (4.0, "Sending: train.step message (ID: b)"), (4.1, "Sent successfully")]
    forked = [(7.1, "Receiving: train.step message (ID: c)"), (7.2, "Received successfully"),
              (7.4, "Runtime.PullTaskInput"), (7.5, "[flwr-clientapp] Start FAB installation."),
              (7.6, "[flwr-clientapp] Start `ClientApp` Loading."), (7.7, "[fedsim] handler start: train.step"),
              (7.9, "[fedsim] handler end: train.step"), (8.0, "Runtime.PushMessages"),
              (8.5, "Sending: train.step message (ID: d)"), (8.6, "Sent successfully"),
              (11.6, "Receiving: train.step message (ID: e)")]
    log = tmp_path / "supernode_0.log"
    log.write_text("\n".join([line(t, m) for t, m in full + forked] + ["INFO:     127.0.0.1 - POST (no stamp)"]))
    rows = node_spans(events(log))
    assert len(rows) == 2
    expected_full = [0.1, 0.4, 1.0, 0.1, 0.1, 0.1, 1.2, 0.5, 0.1, 0.4, 0.1, 3.0]
    assert [rows[0][name] for _, name in SPANS] == pytest.approx(expected_full, abs=1e-4)
    expected_forked = [0.1, None, None, 0.2, 0.1, 0.1, 0.1, 0.2, 0.1, 0.5, 0.1, 3.0]
    got = [rows[1][name] for _, name in SPANS]
    assert [g is None for g in got] == [e is None for e in expected_forked]
    assert [g for g in got if g is not None] == pytest.approx([e for e in expected_forked if e is not None], abs=1e-4)
    assert sum(v for v in got if v is not None) == pytest.approx(11.6 - 7.1, abs=1e-4)  # the spans tile the cycle


    link = tmp_path / "superlink.log"
    link.write_text("\n".join(line(t, m) for t, m in [
        (0.0, "Runtime.PushMessages"), (0.05, "Runtime.PushMessages"), (4.0, "Runtime.PullMessages"),
        (4.2, "Runtime.PullMessages"), (4.4, "Runtime.PushMessages"), (8.7, "Runtime.PullMessages"),
        (9.0, "Runtime.PushMessages")]))
    spans, pulls = server_spans(events(link), [[row["sent"] for row in rows]])
    assert spans[SERVER_SPAN] == pytest.approx([4.4 - 4.1, 9.0 - 8.6], abs=1e-4) and pulls == [2, 1]


def test_overlapping_processes_count_no_time_twice(tmp_path):
    """A forked task may reach the Runtime API before the SuperNode logs the message as received."""
    log = tmp_path / "supernode_0.log"
    log.write_text("\n".join(line(t, m) for t, m in [
        (0.0, "Receiving: train.step message"), (0.3, "Runtime.PullTaskInput"), (0.8, "Received successfully"),
        (0.9, "[flwr-clientapp] Start FAB installation."), (1.0, "Sent successfully"),
        (4.0, "Receiving: train.step message")]))
    row = node_spans(events(log))[0]
    spans = {name: row[name] for _, name in SPANS}
    assert all(v is None or v >= 0 for v in spans.values())
    assert sum(v for v in spans.values() if v is not None) == pytest.approx(4.0, abs=1e-4)

