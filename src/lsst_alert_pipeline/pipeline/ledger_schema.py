"""The ledger's schema, versioned (PRAGMA user_version), and the typed rows a batch records.

A ledger of any earlier release is brought forward step by step by `migrate`, each step in the
transaction that records the new version (docs/architecture.md, The ledger).
"""

from __future__ import annotations

import re
import sqlite3
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

# Version 1: the tables as the first versioned ledger has them (every earlier ledger holds them,
# made with IF NOT EXISTS, so version 1 applies to it unchanged).
SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS alerts (
    dia_source_id TEXT PRIMARY KEY,
    csv_file TEXT NOT NULL,  -- its path from the ledger's root
    written_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS csv_files (name TEXT PRIMARY KEY, length INTEGER NOT NULL);
-- csv_files.name is the path from the ledger's root: data/lsst_alerts_YYYYMMDD.csv
-- Parquet files of the archive that hold durable alerts; recovery deletes any other.
CREATE TABLE IF NOT EXISTS archive_files (
    name TEXT PRIMARY KEY,  -- path from the ledger's root: archive/dayObs=2026-03-05/...parquet
    alerts INTEGER NOT NULL,
    columns TEXT NOT NULL  -- fingerprint of its column names and types (ops/query.py)
);
CREATE TABLE IF NOT EXISTS merged_through (name TEXT PRIMARY KEY, length INTEGER NOT NULL);
-- how far `merge` has copied a member's CSV file into the root's (bytes from its start)
CREATE TABLE IF NOT EXISTS deadletters (
    name TEXT PRIMARY KEY, reason TEXT NOT NULL, written_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS retention_losses (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, from_offset INTEGER NOT NULL,
    to_offset INTEGER NOT NULL, lost INTEGER NOT NULL, noticed_at REAL NOT NULL
);
-- Cutouts the ANTARES REST API did not give. state 'later': the request failed on the way
-- (timeout, reset, 5xx) and fill-cutouts asks again; 'gone': the API answered it has none (404)
-- or served a broken file. Written in the batch's transaction, so as durable as the alert's row.
CREATE TABLE IF NOT EXISTS missing_cutouts (
    dia_source_id TEXT NOT NULL, kind TEXT NOT NULL, antares_alert_id TEXT NOT NULL,
    path TEXT NOT NULL,  -- where the file goes, from the ledger's root
    state TEXT NOT NULL, reason TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 1,
    noticed_at REAL NOT NULL, PRIMARY KEY (dia_source_id, kind)
);
-- The Kafka offsets each durable batch covered, per partition, with the output that holds what
-- they produced (Kafka Connect's pattern: the offset range is recorded with the data). Written in
-- the batch's transaction; `verify` compares it with the group's committed offsets.
CREATE TABLE IF NOT EXISTS offset_ranges (
    topic TEXT NOT NULL, partition INTEGER NOT NULL,
    first_offset INTEGER NOT NULL, last_offset INTEGER NOT NULL,
    messages INTEGER NOT NULL,  -- how many of the offsets in between the batch held
    output TEXT NOT NULL,  -- '' for the root, 'members/NAME' for a member
    written_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS offset_ranges_partition ON offset_ranges (topic, partition);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL,
    ended_at REAL,
    outcome TEXT,
    exit_code INTEGER,
    summary TEXT
);
"""




def _add_offset_group(db: sqlite3.Connection) -> None:
    """Version 2: offset ranges name the consumer group that read them ('' from files)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(offset_ranges)")}
    if "group_id" not in columns:  # a ledger of a release that added it before versioning
        db.execute("ALTER TABLE offset_ranges ADD COLUMN group_id TEXT NOT NULL DEFAULT ''")


# Version 3: nights retention retired as a whole (their alerts stay known: never revived).
RETIRED_NIGHTS = """
CREATE TABLE IF NOT EXISTS retired_nights (
    output TEXT NOT NULL,  -- '' for the root, 'members/NAME' for a member
    day_obs TEXT NOT NULL, alerts INTEGER NOT NULL, retired_at REAL NOT NULL,
    PRIMARY KEY (output, day_obs)
)
"""


# Version 4: the alerts `--notify-when` matched, each named once ever (notify/candidates.py).
# notified_at is NULL until a message naming (or counting) it was delivered, so the next run
# sends what a dead endpoint held back; notify_checked holds the alerts.rowid through which
# new alerts were evaluated, so a crash between a batch's commit and its check is caught up.
NOTIFIED_CANDIDATES = """
CREATE TABLE IF NOT EXISTS notify_candidates (
    dia_source_id TEXT PRIMARY KEY,
    matched_at REAL NOT NULL,
    notified_at REAL,
    line TEXT NOT NULL  -- how the message names it
);
CREATE TABLE IF NOT EXISTS notify_checked (
    expression TEXT PRIMARY KEY, through_rowid INTEGER NOT NULL
);
"""


def _add_archive_checksums(db: sqlite3.Connection) -> None:
    """Version 5: each archive file's sha256 and the diaSourceIds it holds (8-byte big-endian
    integers, in the file's order), so `verify` finds a flipped byte and names the alerts of a
    file that is gone. NULL in both for files listed before: `verify` reports them unchecked."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(archive_files)")}
    if "sha256" not in columns:
        db.execute("ALTER TABLE archive_files ADD COLUMN sha256 TEXT")
    if "dia_source_ids" not in columns:
        db.execute("ALTER TABLE archive_files ADD COLUMN dia_source_ids BLOB")


# Version 6: every delivery of an alert (docs/brokers.md): which broker's message (topic,
# partition, offset) brought it, when, and what became of it: 'written', 'already on disk',
# 'filtered out' or 'dead-lettered' (dia_source_id NULL when no alert could be read from the
# message). Written in the batch's transaction; `lsst-alerts query` shows it as `deliveries`.
DELIVERIES = """
CREATE TABLE IF NOT EXISTS deliveries (
    dia_source_id TEXT,
    broker TEXT NOT NULL,  -- the preset (fink, lasair, babamul, antares), 'kafka' or 'files'
    topic TEXT, partition INTEGER, "offset" INTEGER,  -- NULL from files
    received REAL NOT NULL,  -- when the batch holding it was recorded (Unix seconds)
    verdict TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_alert ON deliveries (dia_source_id);
CREATE INDEX IF NOT EXISTS deliveries_received ON deliveries (received)
"""


def _statements(script: str) -> Callable[[sqlite3.Connection], None]:
    def apply(db: sqlite3.Connection) -> None:
        # One statement at a time: executescript would commit the migration's transaction.
        for statement in re.sub(r"--[^\n]*", "", script).split(";"):
            if statement.strip():
                db.execute(statement)
    return apply


# The schema's history: MIGRATIONS[n - 1] takes a ledger from version n - 1 to n (PRAGMA
# user_version). Append, never edit: a ledger of any release is brought forward step by step.

MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _statements(SCHEMA_V1),
    _add_offset_group,
    _statements(RETIRED_NIGHTS),
    _statements(NOTIFIED_CANDIDATES),
    _add_archive_checksums,
    _statements(DELIVERIES),
]
SCHEMA_VERSION = len(MIGRATIONS)


class WrittenAlert(NamedTuple):
    dia_source_id: str
    csv_file: str  # its path from the ledger's root


class DeadLetter(NamedTuple):
    name: str
    reason: str


class MissingCutoutRow(NamedTuple):
    dia_source_id: str
    kind: str
    antares_alert_id: str
    path: str  # where the file goes, from the ledger's root
    state: str  # "later" or "gone"
    reason: str


class ArchiveFile(NamedTuple):
    name: str  # path from the ledger's root
    alerts: int
    columns: str  # fingerprint of its column names and types
    sha256: str | None = None  # of the whole file, as written (None: listed before version 5)
    dia_source_ids: bytes | None = None  # pack_ids() of the alerts it holds (None: unknown)


ARCHIVE_FILE_COLUMNS = "name, alerts, columns, sha256, dia_source_ids"


def pack_ids(dia_source_ids: Sequence[int]) -> bytes:
    """diaSourceIds as the ledger keeps them per archive file: 8 bytes each, big-endian."""
    return struct.pack(f">{len(dia_source_ids)}q", *dia_source_ids)


def unpack_ids(packed: bytes | None) -> list[int] | None:
    if packed is None:
        return None
    return list(struct.unpack(f">{len(packed) // 8}q", packed))


class Delivery(NamedTuple):
    dia_source_id: str | None  # None: a message no alert could be read from
    broker: str
    topic: str | None
    partition: int | None
    offset: int | None
    verdict: str  # written, already on disk, filtered out, dead-lettered


class OffsetRange(NamedTuple):
    topic: str
    partition: int
    first: int
    last: int
    messages: int  # how many of the offsets first..last the batch held


@dataclass(frozen=True)
class BatchRecord:
    """What one durable batch adds to the ledger, recorded in one transaction."""

    written: Sequence[WrittenAlert] = ()
    csv_lengths: Mapping[str, int] = field(default_factory=dict)
    deadletters: Sequence[DeadLetter] = ()
    missing_cutouts: Sequence[MissingCutoutRow] = ()
    archive_files: Sequence[ArchiveFile] = ()
    offset_ranges: Sequence[OffsetRange] = ()
    output: str = ""  # '' for the root, 'members/NAME' for a member
    group: str = ""  # the consumer group that read the batch ('' from files)
    deliveries: Sequence[Delivery] = ()  # each alert (or unreadable message) the batch read


def migrate(db: sqlite3.Connection, path: Path) -> None:
    """Inside a write transaction: bring the schema to SCHEMA_VERSION (members starting
    together: the second finds the work done)."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"{path}: the ledger is of schema version {version}, newer than this release knows "
            f"({SCHEMA_VERSION}); upgrade lsst-alert-pipeline")
    for step in range(version, SCHEMA_VERSION):
        MIGRATIONS[step](db)
    if version != SCHEMA_VERSION:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
