"""The ledger: which alerts are durably written, how long each CSV file durably is, run history.

It lives in the output directory (`state/ledger.sqlite`). It is what makes a redelivered or
replayed alert a no-op (each alert exactly once) and what recovery truncates CSV files back to.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..sinks.ledger_read import connect_read_only
from .ledger_schema import (  # noqa: F401 - the ledger's row types, imported from here too
    ARCHIVE_FILE_COLUMNS,
    SCHEMA_VERSION,
    ArchiveFile,
    BatchRecord,
    DeadLetter,
    Delivery,
    MissingCutoutRow,
    OffsetRange,
    WrittenAlert,
    migrate,
    pack_ids,
    unpack_ids,
)


class AlertsTaken(Exception):  # noqa: N818
    """Another member recorded some of a batch's alerts first; nothing of the batch was."""

    def __init__(self, ids: set[str]):
        super().__init__(f"{len(ids)} alerts of the batch were recorded by another member first")
        self.ids = ids


def offset_ranges(positions: Iterable[tuple[str | None, int | None, int | None]]
                  ) -> list[OffsetRange]:
    """Per partition, the first and last offset of a batch's messages and how many it held
    (messages without a Kafka position, from files, have none)."""
    spans: dict[tuple[str, int], list[int]] = {}
    for topic, partition, offset in positions:
        if topic is None or partition is None or offset is None:
            continue
        span = spans.setdefault((topic, partition), [offset, offset, 0])
        span[0], span[1], span[2] = min(span[0], offset), max(span[1], offset), span[2] + 1
    return [OffsetRange(topic, partition, first, last, count)
            for (topic, partition), (first, last, count) in sorted(spans.items())]


Span = tuple[int, int]  # offsets [first, end)


def minus(spans: list[Span], taken: Iterable[Span]) -> list[Span]:
    """The parts of `spans` that no span of `taken` holds."""
    for low, high in taken:
        spans = [piece for a, b in spans
                 for piece in ((a, min(b, low)), (max(a, high), b)) if piece[1] > piece[0]]
    return spans


def uncounted(first: int, end: int, known: Iterable[Span]) -> list[Span]:
    """The parts of offsets [first, end) that none of the `known` [from, to) ranges holds."""
    return minus([(first, end)] if end > first else [], known)


def known_in(db: sqlite3.Connection, dia_source_ids: Iterable[str]) -> set[str]:
    """Those of the ids the ledger's alerts table holds."""
    ids = list(dia_source_ids)
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        rows = db.execute(
            f"SELECT dia_source_id FROM alerts WHERE dia_source_id IN ({marks})", chunk)
        found.update(row[0] for row in rows)
    return found


def covered(db: sqlite3.Connection, group: str | None = None,
            partition: tuple[str, int] | None = None) -> list[dict[str, Any]]:
    """The recorded offset ranges merged where they touch or overlap (Ledger.offsets_covered),
    of one group's batches and one partition when given."""
    where: list[str] = []
    args: list[str | int] = []
    if group is not None:
        where.append("group_id = ?")
        args.append(group)
    if partition is not None:
        where.append("topic = ? AND partition = ?")
        args.extend(partition)
    rows = db.execute(
        "SELECT topic, partition, first_offset, last_offset FROM offset_ranges "
        f"{'WHERE ' + ' AND '.join(where) if where else ''} "
        "ORDER BY topic, partition, first_offset, last_offset", args).fetchall()
    merged: list[dict[str, Any]] = []
    for topic, partition_, first, last in rows:
        tail = merged[-1] if merged else None
        same = tail is not None and (tail["topic"], tail["partition"]) == (topic, partition_)
        if tail is not None and same and first <= tail["last"] + 1:
            tail["last"] = max(tail["last"], last)
            tail["batches"] += 1
        else:
            merged.append({"topic": topic, "partition": partition_, "first": first,
                           "last": last, "batches": 1})
    return merged


def covered_through(path: Path, group: str, topic: str, partition: int,
                    offset: int) -> int | None:
    """The last offset of the contiguous range of batches the group recorded that holds
    `offset` (None when none does). Opens its own connection: Kafka calls this from its
    rebalance callback, on another thread than the one writing batches."""
    db = sqlite3.connect(path, timeout=60)
    try:
        for span in covered(db, group, (topic, partition)):
            if span["first"] <= offset <= span["last"]:
                return int(span["last"])
        return None
    finally:
        db.close()


class Ledger:
    """The ledger's one connection. It runs in autocommit mode (`isolation_level=None`), so
    every change of more than one statement goes through `transaction()`, which begins one
    explicitly: `with connection:` alone would begin none."""

    def __init__(self, path: Path, read_only: bool = False):
        """Open (creating and migrating) the ledger; `read_only` opens an existing one as
        connect_read_only does: no file is created, nothing migrated, every write refused."""
        self.path = path
        if read_only:
            self.db = connect_read_only(path)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Members of a group share one ledger: writers wait for each other's short commits.
        self.db = sqlite3.connect(path, isolation_level=None, timeout=60)
        # FULL: a committed batch survives power loss; WAL keeps commits to one fsync.
        self._set_wal(deadline=time.monotonic() + 60)
        self.db.execute("PRAGMA synchronous=FULL")
        self.migrate()

    def _set_wal(self, deadline: float) -> None:
        """Put the ledger in WAL mode. Members starting together: switching a new ledger's
        journal mode needs it to themselves, and SQLite answers "database is locked" at once
        rather than waiting out the busy timeout while another member migrates it."""
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: the write lock is taken at once, so a check
        and the change it guards cannot interleave with another member's); rolled back on any
        exception, committed otherwise."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.rollback()
            raise
        self.db.commit()

    def migrate(self) -> None:
        """Bring the schema to the version this release writes (ledger_schema.MIGRATIONS)."""
        with self.transaction() as db:
            migrate(db, self.path)

    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self.db.close()

    def known(self, dia_source_ids: Iterable[str]) -> set[str]:
        """Those of the ids already durably written."""
        return known_in(self.db, dia_source_ids)

    def csv_lengths(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT name, length FROM csv_files").fetchall())

    def record_batch(self, batch: BatchRecord) -> None:
        """Mark a batch durable in one transaction: alert ids, CSV lengths, dead letters, the
        cutouts it could not fetch, the archive's new files, the Kafka offsets it covered and each
        delivery it read.

        Raises AlertsTaken, recording nothing, when another member of the group recorded some of
        the alerts since this batch asked `known()` (a partition moved in a rebalance while the
        batch was written): the check and the insert are one exclusive transaction, so of two
        members that wrote the same alert exactly one has it recorded."""
        now = time.time()
        with self.transaction() as db:
            taken = known_in(db, (alert.dia_source_id for alert in batch.written))
            if taken:
                raise AlertsTaken(taken)  # the transaction is rolled back
            db.executemany(f"INSERT OR REPLACE INTO archive_files ({ARCHIVE_FILE_COLUMNS}) "
                           "VALUES (?, ?, ?, ?, ?)", list(batch.archive_files))
            db.executemany("INSERT OR IGNORE INTO alerts VALUES (?, ?, ?)",
                           [(*alert, now) for alert in batch.written])
            db.executemany("INSERT INTO csv_files VALUES (?, ?) "
                           "ON CONFLICT(name) DO UPDATE SET length=excluded.length",
                           list(batch.csv_lengths.items()))
            db.executemany("INSERT OR REPLACE INTO deadletters VALUES (?, ?, ?)",
                           [(*dead, now) for dead in batch.deadletters])
            db.executemany(
                "INSERT OR REPLACE INTO missing_cutouts VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                [(*row, now) for row in batch.missing_cutouts])
            db.executemany(
                "INSERT INTO offset_ranges (topic, partition, first_offset, last_offset, "
                "messages, output, written_at, group_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(*span, batch.output, now, batch.group) for span in batch.offset_ranges])
            db.executemany(
                'INSERT INTO deliveries (dia_source_id, broker, topic, partition, "offset", '
                "received, verdict) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*delivery[:5], now, delivery.verdict) for delivery in batch.deliveries])

    def missing_cutouts(self, state: str | None = None) -> list[dict[str, Any]]:
        """The recorded missing cutouts (of one state), oldest first."""
        where, args = ("WHERE state = ?", (state,)) if state else ("", ())
        rows = self.db.execute(
            "SELECT dia_source_id, kind, antares_alert_id, path, state, reason, attempts "
            f"FROM missing_cutouts {where} ORDER BY noticed_at, dia_source_id, kind", args)
        names = ("dia_source_id", "kind", "antares_alert_id", "path", "state", "reason",
                 "attempts")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def settle_missing_cutouts(self, filled: Iterable[tuple[str, str]],
                               still: Iterable[tuple[str, str, str, str]]) -> None:
        """After fill-cutouts: forget the filled ones; note the new state and reason of the rest
        ((dia_source_id, kind, state, reason)), one more attempt each."""
        with self.transaction() as db:
            db.executemany("DELETE FROM missing_cutouts WHERE dia_source_id=? AND kind=?",
                           list(filled))
            db.executemany(
                "UPDATE missing_cutouts SET state=?, reason=?, attempts=attempts+1 "
                "WHERE dia_source_id=? AND kind=?",
                [(state, reason, dia_source_id, kind)
                 for dia_source_id, kind, state, reason in still])

    def register_csv(self, name: str, length: int) -> None:
        """Note a CSV file's durable length before a batch first appends to it, so recovery
        knows where it stood; files the ledger never registered are never touched."""
        self.db.execute("INSERT OR IGNORE INTO csv_files VALUES (?, ?)", (name, length))

    def forget_csv(self, name: str) -> None:
        """Retention removed a CSV file: its alerts stay known, so a replay does not revive it."""
        with self.transaction() as db:
            db.execute("DELETE FROM csv_files WHERE name = ?", (name,))
            db.execute("DELETE FROM merged_through WHERE name = ?", (name,))

    def retire_nights(self, output: str, alerts: dict[str, int], csv_files: Iterable[str],
                      archive_files: Iterable[str], alert_ids: Iterable[str]) -> None:
        """Retention retires these nights of `output` (night -> its alerts): in one transaction,
        record them and stop vouching for their CSV files, archive files and missing cutouts.
        Their alerts stay known, so a replay does not write them again."""
        now = time.time()
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO retired_nights VALUES (?, ?, ?, ?)",
                           [(output, night, count, now) for night, count in alerts.items()])
            names = [(name,) for name in csv_files]
            db.executemany("DELETE FROM csv_files WHERE name = ?", names)
            db.executemany("DELETE FROM merged_through WHERE name = ?", names)
            db.executemany("DELETE FROM archive_files WHERE name = ?",
                           [(name,) for name in archive_files])
            db.executemany("DELETE FROM missing_cutouts WHERE dia_source_id = ?",
                           [(dia_source_id,) for dia_source_id in alert_ids])

    def retired_nights(self, output: str | None = "") -> dict[str, int]:
        """The nights retention retired (of one output; None: of all), with their alerts."""
        where, args = ("WHERE output = ?", (output,)) if output is not None else ("", ())
        try:
            rows = self.db.execute(f"SELECT day_obs, SUM(alerts) FROM retired_nights {where} "
                                   "GROUP BY day_obs ORDER BY day_obs", args).fetchall()
        except sqlite3.OperationalError:  # a ledger older than schema 3, opened read-only
            return {}
        return {night: int(count) for night, count in rows}

    def retired_by_output(self) -> dict[str, set[str]]:
        """Per output ('' or 'members/NAME'), the nights retention retired."""
        try:
            rows = self.db.execute("SELECT output, day_obs FROM retired_nights").fetchall()
        except sqlite3.OperationalError:  # a ledger older than schema 3, opened read-only
            return {}
        found: dict[str, set[str]] = {}
        for output, night in rows:
            found.setdefault(output, set()).add(night)
        return found

    def homes(self, dia_source_ids: Iterable[str]) -> dict[str, str]:
        """The CSV file (path from the ledger's root) each of these alerts is vouched for in."""
        ids = list(dia_source_ids)
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(
                f"SELECT dia_source_id, csv_file FROM alerts WHERE dia_source_id IN ({marks})",
                chunk).fetchall())
        return found

    def homed_in(self, csv_file: str) -> set[str]:
        """Every alert the ledger vouches for in this CSV file."""
        rows = self.db.execute("SELECT dia_source_id FROM alerts WHERE csv_file = ?", (csv_file,))
        return {row[0] for row in rows}

    def merged_through(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT name, length FROM merged_through").fetchall())

    def record_merge(self, moved: list[str], target: str, target_length: int, source: str,
                     source_through: int) -> None:
        """In one transaction: these alerts now live in `target`, which is this long, and the
        member's `source` file is merged through `source_through` bytes."""
        with self.transaction() as db:
            db.executemany("UPDATE alerts SET csv_file = ? WHERE dia_source_id = ?",
                           [(target, dia_source_id) for dia_source_id in moved])
            db.execute("INSERT INTO csv_files VALUES (?, ?) "
                       "ON CONFLICT(name) DO UPDATE SET length=excluded.length",
                       (target, target_length))
            db.execute("INSERT INTO merged_through VALUES (?, ?) "
                       "ON CONFLICT(name) DO UPDATE SET length=excluded.length",
                       (source, source_through))

    def archive_files(self) -> dict[str, int]:
        """The archive's durable files (paths from the ledger's root) and their alert counts."""
        return dict(self.db.execute("SELECT name, alerts FROM archive_files").fetchall())

    def archive_listing(self) -> list[ArchiveFile]:
        """Every listed archive file with its checksum and alerts (None where not recorded)."""
        rows = self.db.execute(f"SELECT {ARCHIVE_FILE_COLUMNS} FROM archive_files ORDER BY name")
        return [ArchiveFile(*row) for row in rows]

    @contextmanager
    def archive_transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction held while archive files are swapped or swept: recovery and
        `compact` (which may run beside a consumer) never see each other's half-done step."""
        with self.transaction() as db:
            yield db

    def replace_archive_files(self, db: sqlite3.Connection, removed: Iterable[str],
                              added: Iterable[ArchiveFile]) -> None:
        """Inside archive_transaction: the listed files change (compaction, retention, repair)."""
        db.executemany("DELETE FROM archive_files WHERE name = ?", [(n,) for n in removed])
        db.executemany(f"INSERT OR REPLACE INTO archive_files ({ARCHIVE_FILE_COLUMNS}) "
                       "VALUES (?, ?, ?, ?, ?)", [ArchiveFile(*file) for file in added])

    def record_retention_losses(self, losses: list[dict[str, int | str]]) -> None:
        """Record offsets lost to retention, each offset once: a loss a run found while
        reading, then the next run at assignment (its commit past it failed), counts once."""
        now = time.time()
        with self.transaction() as db:
            for loss in losses:
                topic, partition = str(loss["topic"]), int(loss["partition"])
                known = db.execute(
                    "SELECT from_offset, to_offset FROM retention_losses "
                    "WHERE topic = ? AND partition = ?", (topic, partition)).fetchall()
                db.executemany(
                    "INSERT INTO retention_losses VALUES (?, ?, ?, ?, ?, ?)",
                    [(topic, partition, first, end, end - first, now) for first, end in
                     uncounted(int(loss["from"]), int(loss["to"]), known)])

    def retention_losses(self) -> list[dict[str, Any]]:
        """Every recorded loss, oldest first: topic, partition, offsets [from, to), lost."""
        rows = self.db.execute(
            "SELECT topic, partition, from_offset, to_offset, lost, noticed_at "
            "FROM retention_losses ORDER BY noticed_at, topic, partition, from_offset")
        names = ("topic", "partition", "from", "to", "lost", "noticed_at")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def retention_lost(self) -> int:
        row = self.db.execute("SELECT COALESCE(SUM(lost), 0) FROM retention_losses").fetchone()
        return int(row[0])

    def offsets_covered(self, group: str | None = None) -> list[dict[str, Any]]:
        """Per partition: the recorded offset ranges (of one group's batches, or all), merged
        where they touch or overlap (a batch redelivered after a crash is recorded twice), and
        how many batches recorded each."""
        return covered(self.db, group)

    def deadletter_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM deadletters").fetchone()[0])

    def alert_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])

    def start_run(self) -> int:
        cursor = self.db.execute("INSERT INTO runs (started_at) VALUES (?)", (time.time(),))
        return int(cursor.lastrowid or 0)

    def end_run(self, run_id: int, outcome: str, exit_code: int, summary: dict[str, Any]) -> None:
        self.db.execute(
            "UPDATE runs SET ended_at=?, outcome=?, exit_code=?, summary=? WHERE id=?",
            (time.time(), outcome, exit_code, json.dumps(summary), run_id))

    def last_run(self) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT started_at, ended_at, outcome, exit_code, summary FROM runs "
            "ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return {"started_at": row[0], "ended_at": row[1], "outcome": row[2],
                "exit_code": row[3], "summary": json.loads(row[4]) if row[4] else None}
