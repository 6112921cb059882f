"""The ledger's transactions are real and its schema is versioned (PRAGMA user_version)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lsst_alert_pipeline.pipeline.ledger import (
    SCHEMA_VERSION,
    BatchRecord,
    Ledger,
    OffsetRange,
    WrittenAlert,
)
from lsst_alert_pipeline.pipeline.ledger_schema import SCHEMA_V1


def fail_on_delete_from(path: Path, table: str) -> None:
    """A trigger that makes every DELETE from `table` fail (a disk error mid-change)."""
    db = sqlite3.connect(path)
    db.execute(f"CREATE TRIGGER refuse_{table} BEFORE DELETE ON {table} "
               "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
    db.commit()
    db.close()


def test_forgetting_a_csv_file_removes_both_of_its_rows_or_neither(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path)
    ledger.record_batch(BatchRecord([WrittenAlert("1", "data/a.csv")], {"data/a.csv": 100}))
    ledger.record_merge([], "data/a.csv", 100, "data/a.csv", 100)
    fail_on_delete_from(path, "merged_through")
    with pytest.raises(sqlite3.DatabaseError, match="disk I/O error"):
        ledger.forget_csv("data/a.csv")
    # The first DELETE (csv_files) was rolled back with the failed second one.
    assert ledger.csv_lengths() == {"data/a.csv": 100}
    assert ledger.merged_through() == {"data/a.csv": 100}
    assert not ledger.db.in_transaction
    ledger.close()


def test_a_batch_that_fails_midway_records_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path)
    db = sqlite3.connect(path)
    db.execute("CREATE TRIGGER refuse_ranges BEFORE INSERT ON offset_ranges "
               "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")
    db.commit()
    db.close()
    with pytest.raises(sqlite3.DatabaseError):
        ledger.record_batch(BatchRecord([WrittenAlert("7", "data/a.csv")], {"data/a.csv": 50},
                                        offset_ranges=[OffsetRange("t", 0, 0, 0, 1)]))
    assert ledger.known(["7"]) == set()
    assert ledger.csv_lengths() == {}
    ledger.close()


def old_ledger(path: Path, with_group: bool) -> None:
    """A ledger as a release before schema versions left it (user_version 0)."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_V1)
    if with_group:
        db.execute("ALTER TABLE offset_ranges ADD COLUMN group_id TEXT NOT NULL DEFAULT ''")
    db.execute("INSERT INTO alerts VALUES ('42', 'data/old.csv', 0)")
    db.execute("INSERT INTO offset_ranges (topic, partition, first_offset, last_offset, messages, "
               "output, written_at) VALUES ('t', 0, 0, 9, 10, '', 0)")
    db.commit()
    db.close()


@pytest.mark.parametrize("with_group", [False, True])
def test_a_ledger_of_an_earlier_release_is_migrated_keeping_its_rows(
        tmp_path: Path, with_group: bool) -> None:
    path = tmp_path / "ledger.sqlite"
    old_ledger(path, with_group)
    ledger = Ledger(path)
    assert ledger.schema_version() == SCHEMA_VERSION
    assert ledger.known(["42"]) == {"42"}
    ledger.record_batch(BatchRecord(offset_ranges=[OffsetRange("t", 0, 10, 19, 10)], group="g"))
    assert [(s["first"], s["last"]) for s in ledger.offsets_covered()] == [(0, 19)]
    assert [(s["first"], s["last"]) for s in ledger.offsets_covered("g")] == [(10, 19)]
    ledger.close()
    assert Ledger(path).schema_version() == SCHEMA_VERSION  # a second open changes nothing


def test_a_ledger_newer_than_this_release_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(sqlite3.DatabaseError, match="newer than this release"):
        Ledger(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    db.close()


def test_members_opening_a_new_ledger_at_once_all_get_it(tmp_path: Path) -> None:
    import threading

    failures: list[BaseException] = []

    def open_close(path: Path, start: threading.Barrier) -> None:
        start.wait()
        try:
            Ledger(path).close()
        except BaseException as exc:  # handed to the test's thread
            failures.append(exc)

    for attempt in range(30):
        path = tmp_path / f"ledger{attempt}.sqlite"
        start = threading.Barrier(4)
        members = [threading.Thread(target=open_close, args=(path, start)) for _ in range(4)]
        for member in members:
            member.start()
        for member in members:
            member.join()
    assert not failures, failures[:3]
