"""Durability before commit, checked by recording the order of every write, sync and commit.

A kill -9 test cannot see a missing sync (the page cache survives the process). Here every
file-system call that matters during a run is recorded in order: cutout and dead-letter renames,
CSV appends, the output's sync (syncfs, or os.sync/os.fsync where there is none), the ledger's
record of the batch and the Kafka-style offset commit. For each batch: every file it wrote is
written before the sync, the sync is of the output directory's file system and comes before the
ledger records the batch, and the ledger before the offsets are committed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.decode.schemas import latest_version
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline import outputdir
from lsst_alert_pipeline.pipeline.ledger import BatchRecord, Ledger
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts
from lsst_alert_pipeline.sinks.csv import DailyCsv
from lsst_alert_pipeline.sources.files import FileSource

from ..alerts import csv_rows

Event = tuple[str, Any]


def record_calls(monkeypatch: pytest.MonkeyPatch, events: list[Event]) -> None:
    """Append each durability-relevant call to `events`, then make it."""
    real_replace, real_rename, real_fsync = os.replace, os.rename, os.fsync

    def replace(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        real_replace(source, target, *args, **kwargs)
        events.append(("write", Path(target)))

    def rename(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        real_rename(source, target, *args, **kwargs)
        events.append(("write", Path(target)))

    def fsync(fd: int) -> None:
        events.append(("sync", Path(os.readlink(f"/proc/self/fd/{fd}"))))
        real_fsync(fd)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "fsync", fsync)
    real_syncfs = outputdir._SYNCFS
    if real_syncfs is not None:
        def syncfs(fd: int) -> int:
            events.append(("sync", Path(os.readlink(f"/proc/self/fd/{fd}"))))
            return int(real_syncfs(fd))  # type: ignore[operator]
        monkeypatch.setattr(outputdir, "_SYNCFS", syncfs)
    real_sync = os.sync
    monkeypatch.setattr(os, "sync", lambda: (events.append(("sync", Path("/"))), real_sync()))
    real_append = DailyCsv.append

    def append(self: DailyCsv, rows_by_file: dict[str, list[list[Any]]]) -> dict[str, int]:
        lengths = real_append(self, rows_by_file)
        events.extend(("write", self.folder / name) for name in rows_by_file)
        return lengths

    monkeypatch.setattr(DailyCsv, "append", append)
    real_record = Ledger.record_batch

    def record_batch(self: Ledger, batch: BatchRecord) -> None:
        events.append(("ledger", (list(batch.written), dict(batch.csv_lengths),
                                  list(batch.deadletters))))
        real_record(self, batch)

    monkeypatch.setattr(Ledger, "record_batch", record_batch)
    real_commit = FileSource.commit
    monkeypatch.setattr(FileSource, "commit", lambda self, messages: (
        events.append(("commit", len(messages))), real_commit(self, messages)))


def batches(events: list[Event]) -> list[list[Event]]:
    """The events split after each commit (the last, uncommitted remainder dropped)."""
    out, current = [], []
    for event in events:
        current.append(event)
        if event[0] == "commit":
            out.append(current)
            current = []
    return out


def test_every_file_of_a_batch_is_written_and_synced_before_the_ledger_and_the_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = list(simulate_alerts(14, seed=51, history=0))
    records[5]["cutoutScience"] = b"not FITS"  # written without it: a batch with a missing one
    payloads = [encode_wire(record, latest_version()) for record in records]
    payloads.insert(9, b"\x00\x00\x00\x00\x01 not an alert")  # dead-lettered
    (tmp_path / "in").mkdir()
    for index, payload in enumerate(payloads):
        (tmp_path / "in" / f"{index:03d}.bin").write_bytes(payload)
    output = (tmp_path / "out").resolve()
    events: list[Event] = []
    record_calls(monkeypatch, events)
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(tmp_path / "in")], "output_dir": str(output), "batch_size": 4}))
    assert summary.exit_code == exitcodes.OK, summary.line()
    cutouts_of = {row["diaSourceId"]: [output / row[f"{kind}_cutout_path"]
                                       for kind in ("science", "template", "difference")
                                       if row[f"{kind}_cutout_path"]]
                  for row in csv_rows(output)}
    done = batches(events)
    assert len(done) == 4 and sum(event[1] for batch in done for event in batch
                                  if event[0] == "commit") == len(payloads)
    for number, batch in enumerate(done):
        kinds = [kind for kind, _ in batch]
        assert kinds[-3:] == ["sync", "ledger", "commit"], f"batch {number}: {kinds}"
        synced = batch[-3][1]
        assert synced == Path("/") or output.is_relative_to(synced) or synced == output, synced
        written = {path for kind, path in batch[:-3] if kind == "write"}
        ids, csv_lengths, deadletters = batch[-2][1]
        for dia_source_id, csv_key in ids:
            assert output / csv_key in written, f"batch {number}: {csv_key} not written first"
            missing = set(cutouts_of[dia_source_id]) - written
            assert not missing, f"batch {number}: cutouts recorded before written: {missing}"
        assert {output / key for key in csv_lengths} <= written
        for name, _reason in deadletters:
            assert {output / "deadletter" / f"{name}{suffix}" for suffix in (".bin", ".json")
                    } <= written, f"batch {number}: dead letter {name} recorded before written"
    assert sum(len(batch[-2][1][2]) for batch in done) == 1
