"""`verify`'s audit of the Parquet archive: every file the ledger lists, and every alert in it.

Each listed file must be there, whole (Parquet's magic bytes at both ends), with the sha256 the
ledger recorded when it was written (a flipped byte anywhere changes it), the columns and row
count the ledger recorded, and exactly the diaSourceIds the ledger recorded for it; no alert may
be in two files. Files listed before the ledger recorded checksums (schema version 5) are read
and counted but reported unchecked, never damaged for lack of a checksum (docs/archive.md).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from ..pipeline.ledger import ArchiveFile, unpack_ids
from ..sinks.archive import columns_fingerprint, file_sha256
from ..sinks.archive_read import unreadable

SHOWN_IDS = 20  # the ids a line of text names; --json lists every one


@dataclass
class DamagedFile:
    name: str  # path from the ledger's root
    why: str
    alerts: int  # as the ledger recorded
    dia_source_ids: list[int] | None  # those the ledger recorded; None: not recorded (old ledger)

    def line(self) -> str:
        if self.dia_source_ids is None:
            held = (f"it held {self.alerts:,} alerts, which ones the ledger does not say "
                    "(written before it recorded them)")
        else:
            shown = ", ".join(str(i) for i in self.dia_source_ids[:SHOWN_IDS])
            more = " ..." if len(self.dia_source_ids) > SHOWN_IDS else ""
            held = f"it held {self.alerts:,} alerts: {shown}{more}"
        return f"{self.name}: {self.why}; {held}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.name, "problem": self.why, "alerts": self.alerts,
                "dia_source_ids": self.dia_source_ids}


@dataclass
class ArchiveCheck:
    files: int = 0
    alerts: int = 0  # rows of the listed files, as the ledger recorded them
    damaged: list[DamagedFile] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # listed without a checksum
    twice: dict[int, list[str]] = field(default_factory=dict)  # id -> the files holding it
    without_copy: int = 0  # alerts in the ledger that no listed file holds (by recorded ids)

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.twice

    def as_dict(self) -> dict[str, Any]:
        return {"files": self.files, "alerts": self.alerts, "ok": self.ok,
                "damaged": [file.as_dict() for file in self.damaged],
                "unchecked": self.unchecked,
                "in_two_places": {str(k): v for k, v in sorted(self.twice.items())},
                "alerts_without_archive_copy": self.without_copy}


def file_problem(path: Path, listed: ArchiveFile) -> tuple[str | None, list[int]]:
    """Why a listed file is damaged (None when it is whole), and the ids read from it."""
    why = unreadable(path)
    if why is not None:
        return why, []
    if listed.sha256 is not None and file_sha256(path) != listed.sha256:
        return "its sha256 differs from the one recorded when it was written (changed since)", []
    try:
        rows = pq.ParquetFile(path).metadata.num_rows
        columns = columns_fingerprint(path)
        ids = [int(i) for i in pl.read_parquet(path, columns=["diaSourceId"])
               .get_column("diaSourceId")]
    except Exception as exc:  # noqa: BLE001 - pyarrow and polars raise many kinds for bad bytes
        return f"not readable as Parquet ({type(exc).__name__}: {str(exc)[:120]})", []
    if rows != listed.alerts:
        return f"{rows:,} rows, the ledger recorded {listed.alerts:,}", ids
    if columns != listed.columns:
        return "its columns differ from those the ledger recorded", ids
    recorded = unpack_ids(listed.dia_source_ids)
    if recorded is not None and Counter(recorded) != Counter(ids):
        return "its alerts differ from those the ledger recorded", ids
    return None, ids


def check_archive(root: Path, listing: list[ArchiveFile], db: sqlite3.Connection
                  ) -> ArchiveCheck:
    """Audit every listed file (root: the ledger's root) and where each alert is archived."""
    check = ArchiveCheck(files=len(listing))
    homes: dict[int, list[str]] = {}
    for listed in listing:
        check.alerts += listed.alerts
        if listed.sha256 is None:
            check.unchecked.append(listed.name)
        why, ids = file_problem(root / listed.name, listed)
        recorded = unpack_ids(listed.dia_source_ids)
        if why is not None:
            check.damaged.append(DamagedFile(listed.name, why, listed.alerts, recorded))
        for dia_source_id in ids if why is None else (recorded or []):
            homes.setdefault(dia_source_id, []).append(listed.name)
    check.twice = {i: names for i, names in homes.items() if len(names) > 1}
    if all(listed.dia_source_ids is not None for listed in listing):
        vouched = {int(row[0]) for row in db.execute("SELECT dia_source_id FROM alerts")
                   if str(row[0]).lstrip("-").isdigit()}
        check.without_copy = len(vouched - homes.keys())
    return check
