"""A batch's offset commit overlaps the next batch's writes, and each batch keeps its order:
files -> sync -> ledger -> commit; the next batch is synced only once the commit before is done.
Against the real test broker (pipeline/commit_behind.py)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from lsst_alert_pipeline import exitcodes
from lsst_alert_pipeline.errors import BrokerUnreachable
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline.ledger import BatchRecord, Ledger
from lsst_alert_pipeline.sources.base import Message
from lsst_alert_pipeline.sources.kafka import KafkaSource

from .alerts import csv_rows
from .reliability.helpers import settings_for, simulated_alerts
from .reliability.test_durability_order import Event, record_calls

pytestmark = pytest.mark.kafka


def record_commits(monkeypatch: pytest.MonkeyPatch, events: list[Event],
                   first_commit_waits_for: threading.Event | None = None) -> None:
    real_commit = KafkaSource.commit

    def commit(self: KafkaSource, messages: list[Message]) -> None:
        commits = sum(1 for kind, _ in events if kind == "commit")
        if commits == 0 and first_commit_waits_for is not None:
            first_commit_waits_for.wait(timeout=60)  # until the next batch is being written
        real_commit(self, messages)
        events.append(("commit", ([m.offset for m in messages],
                                  threading.current_thread().name)))

    monkeypatch.setattr(KafkaSource, "commit", commit)


def test_each_commit_follows_its_ledger_record_and_precedes_the_next_sync(
        broker: Any, topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alerts = simulated_alerts(40, seed=61)
    broker.produce(topic, alerts.payloads)
    output = (tmp_path / "out").resolve()
    events: list[Event] = []
    record_calls(monkeypatch, events)
    second_batch_writing = threading.Event()
    record_commits(monkeypatch, events, second_batch_writing)
    real_record = Ledger.record_batch

    def record_batch(self: Ledger, batch: BatchRecord) -> None:
        real_record(self, batch)
        # Note the offsets the ledger holds, in the order the ledger was written.
        events.append(("offsets", sorted(offset for span in batch.offset_ranges
                                         for offset in range(span.first, span.last + 1))))

    monkeypatch.setattr(Ledger, "record_batch", record_batch)
    real_write = consumer.Pipeline.write

    def write(self: Any, messages: list[Message], results: Any = None) -> Any:
        if sum(1 for kind, _ in events if kind == "ledger") == 1:
            second_batch_writing.set()  # batch 1 is recorded; its commit may still run
        return real_write(self, messages, results)

    monkeypatch.setattr(consumer.Pipeline, "write", write)
    summary = consumer.consume(settings_for(broker.bootstrap, topic, output, batch_size=10,
                                            max_messages=40))
    assert summary.exit_code == exitcodes.OK, summary.line()
    assert sorted(int(row["diaSourceId"]) for row in csv_rows(output)) == sorted(alerts.ids)
    kinds = [kind for kind, _ in events]
    ledgers = [i for i, kind in enumerate(kinds) if kind == "ledger"]
    commits = [i for i, kind in enumerate(kinds) if kind == "commit"]
    syncs = [i for i, kind in enumerate(kinds) if kind == "sync"]
    assert len(ledgers) == len(commits) == len(syncs) >= 2, kinds
    for number, (ledger, commit) in enumerate(zip(ledgers, commits, strict=True)):
        offsets = events[ledger + 1][1]
        committed, thread = events[commit][1]
        assert committed == offsets, f"batch {number}: committed {committed}, recorded {offsets}"
        assert thread.startswith("commit-behind"), thread
        assert syncs[number] < ledger < commit, f"batch {number}: {kinds}"
        if number + 1 < len(syncs):
            assert commit < syncs[number + 1], f"batch {number}: next synced first: {kinds}"
    # The first commit was held until the second batch was being written: they overlapped,
    # and every file of the second batch still came after the first ledger record.
    assert second_batch_writing.is_set()
    writes_before_first_ledger = [i for i in range(ledgers[0]) if kinds[i] == "write"]
    assert all(i < syncs[0] for i in writes_before_first_ledger)


def test_a_commit_that_fails_ends_the_run_and_undoes_the_batch_written_meanwhile(
        broker: Any, topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alerts = simulated_alerts(30, seed=62)
    broker.produce(topic, alerts.payloads)
    output = tmp_path / "out"
    recorded: list[int] = []
    real_record = Ledger.record_batch

    def record_batch(self: Ledger, batch: BatchRecord) -> None:
        real_record(self, batch)
        recorded.append(len(batch.written))

    def commit(self: KafkaSource, messages: list[Message]) -> None:
        raise BrokerUnreachable("no broker answered the offset commit (test)")

    monkeypatch.setattr(Ledger, "record_batch", record_batch)
    monkeypatch.setattr(KafkaSource, "commit", commit)
    summary = consumer.consume(settings_for(broker.bootstrap, topic, output, batch_size=10))
    assert summary.exit_code == exitcodes.BROKER_UNREACHABLE, summary.line()
    assert recorded == [10]  # the batch whose commit failed; the next one was never recorded
    assert summary.alerts_written == 10
    # The next batch, written while the commit ran, is undone: the CSV holds what the ledger
    # vouches for, and no archive file the ledger does not list.
    assert len(csv_rows(output)) == 10
    assert len(list(output.glob("archive/*/*.parquet"))) == 1
