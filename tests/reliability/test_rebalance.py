"""A rebalance in the middle of a batch: member A has written a batch of partition 0 and not yet
recorded it when member B joins the group, is given partition 0, reads it from the committed
offset and writes the same alerts. Between them every alert must be written exactly once (CSV
and archive), and once more after `merge`, at the root.

Two consumers of one group run in this process, on the real broker. Member A is held inside
its write (after its files are written, before the sync and the ledger) by a wrapper around
`Pipeline.write`, and released once the ledger shows B recorded the held alerts of partition 0:
each step waits on something observable, never on a sleep. Tansu names members by client.id
first, so with the range assignor B (client.id "0-...") is given partition 0, A keeps 1.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.ops.merge import merge
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline.run import Pipeline
from lsst_alert_pipeline.sources.base import Message

from ..alerts import csv_rows
from .figures import FIGURES
from .helpers import archived_ids, simulated_alerts, verify_exactly_once, wait_for

pytestmark = pytest.mark.kafka


def member_settings(bootstrap: str, topic: str, root: Path, name: str,
                    client: str) -> config.Settings:
    """A member of group g-TOPIC; short session and poll interval so nothing can hang."""
    return config.load(environ={}, flags={
        "topics": [topic], "output_dir": str(root), "member": name, "batch_size": 500,
        "idle_timeout": 20, "broker_timeout": 20,
        "kafka": {"bootstrap.servers": bootstrap, "group.id": f"g-{topic}", "client.id": client,
                  "session.timeout.ms": 1500, "heartbeat.interval.ms": 300,
                  "max.poll.interval.ms": 15000, "partition.assignment.strategy": "range"}})


def recorded_by(root: Path, member: str, ids: list[str]) -> set[str]:
    """Those of the ids the shared ledger vouches for in the member's files."""
    db = sqlite3.connect(root / "state" / "ledger.sqlite", timeout=30)
    try:
        marks = ",".join("?" * len(ids))
        rows = db.execute(f"SELECT dia_source_id, csv_file FROM alerts "
                          f"WHERE dia_source_id IN ({marks})", ids).fetchall()
    finally:
        db.close()
    return {key for key, csv_file in rows if csv_file.startswith(f"members/{member}/")}


def test_a_rebalance_in_the_middle_of_a_batch_writes_each_alert_once(
        broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    topic = "rebalance-mid-batch"
    broker.create_topic(topic, 2)
    alerts = simulated_alerts(160, seed=17)
    for partition in range(2):
        broker.produce(topic, alerts.payloads[partition::2], partition=partition)
    root = tmp_path / "lsst_alerts"

    held, release = threading.Event(), threading.Event()
    held_ids: list[str] = []  # A's written alerts of partition 0 in the batch it is held in
    real_write = Pipeline.write

    def write(self: Pipeline, messages: list[Message], results: Any = None) -> Any:
        outcome = real_write(self, messages, results)
        if self.output.member == "a" and not held.is_set() and any(
                m.partition == 0 for m in messages):
            on_zero = {str(alerts.ids[2 * m.offset]) for m in messages
                       if m.partition == 0 and m.offset is not None}
            held_ids.extend(key for key, _ in outcome.written if key in on_zero)
            held.set()
            assert release.wait(60), "member A was never released"
        return outcome

    monkeypatch.setattr(Pipeline, "write", write)
    summaries: dict[str, consumer.RunSummary] = {}

    def member(name: str, client: str) -> threading.Thread:
        settings = member_settings(broker.bootstrap, topic, root, name, client)
        thread = threading.Thread(target=lambda: summaries.update({name: consumer.consume(
            settings)}), name=f"member-{name}", daemon=True)
        thread.start()
        return thread

    with caplog.at_level(logging.INFO, logger="lsst_alert_pipeline"):
        first = member("a", "1-member-a")
        try:
            wait_for(held.is_set, 60, "member A to write a batch holding partition 0")
            assert held_ids, "member A's held batch wrote no alert of partition 0"
            second = member("b", "0-member-b")
            wait_for(lambda: recorded_by(root, "b", held_ids) == set(held_ids), 60,
                     "member B, given partition 0, to record the alerts A holds")
        finally:
            release.set()
        first.join(90)
        second.join(90)
    assert not first.is_alive() and not second.is_alive(), "a member did not finish"
    for name in ("a", "b"):
        assert summaries[name].exit_code == exitcodes.OK, (name, summaries[name].line())

    written = {name: Counter(row["diaSourceId"] for row in csv_rows(root / "members" / name))
               for name in ("a", "b")}
    everything = written["a"] + written["b"]
    expected = {str(i) for i in alerts.ids}
    duplicated = sum(n - 1 for n in everything.values())
    FIGURES["duplicated"] += duplicated
    FIGURES["lost"] += len(expected - set(everything))
    assert not duplicated, f"{duplicated} alerts written twice across the members"
    assert set(everything) == expected, f"{len(expected - set(everything))} alerts lost"
    for name in ("a", "b"):  # each member's archive holds exactly the alerts of its CSV files
        archived = Counter(str(i) for i in archived_ids(root / "members" / name) or [])
        assert archived == written[name], f"member {name}'s archive differs from its CSV"
    assert not set(held_ids) & set(written["a"]), "A kept alerts B had recorded"
    assert "moved to another member while this batch was written" in caplog.text
    assert summaries["a"].already_written >= len(held_ids)

    merge(root)
    verify_exactly_once(root, alerts, set(alerts.ids))  # every alert once at the root
    FIGURES["rebalances"] += 1
