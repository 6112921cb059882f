"""Reading the archive back: its durable files (the ledger's list) and a DuckDB view `alerts`.

The files read are those the ledger lists: exactly the durable ones, never a file of a batch
that crashed before its ledger commit (recovery deletes those at the next start) nor both the
parts and the merged file of a compaction (the ledger swaps them in one transaction). An
archive copied without its state/ folder is read by globbing its Parquet files instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

from ..errors import QueryError
from .archive import ARCHIVE_FOLDER, columns_fingerprint
from .atomic import TEMP_PREFIX
from .ledger_read import connect_read_only

T = TypeVar("T")
LEDGER = Path("state") / "ledger.sqlite"
# DuckDB's words for a listed file that a compaction or cleanup removed since it was listed.
MISSING_FILE = ("No such file", "No files found")
RETRIES = 5


def archive_file_groups(output_dir: Path) -> list[list[Path]]:
    """The archive's durable Parquet files (the ledger's list, else every file on disk),
    grouped by their columns: each group is one DuckDB scan, and only differing groups pay
    for union by name (measured: SELECT * of one object 4x slower with union_by_name)."""
    ledger = output_dir / LEDGER
    groups: dict[str, list[Path]] = {}
    if ledger.is_file():
        # Read-only: a collection on a read-only disk is queried too. Only a missing table (a
        # ledger from before the archive existed) means no archive; any other error is raised,
        # never taken for an empty archive.
        db = connect_read_only(ledger)
        try:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            listed = (db.execute("SELECT name, columns FROM archive_files ORDER BY name")
                      .fetchall() if "archive_files" in tables else [])
        finally:
            db.close()
        for name, columns in listed:
            groups.setdefault(columns, []).append(output_dir / name)
        return list(groups.values())
    found = [*output_dir.glob(f"{ARCHIVE_FOLDER}/dayObs=*/*.parquet"),
             *output_dir.glob(f"members/*/{ARCHIVE_FOLDER}/dayObs=*/*.parquet")]
    for path in sorted(p for p in found if not p.name.startswith(TEMP_PREFIX)):
        groups.setdefault(columns_fingerprint(path), []).append(path)
    return list(groups.values())


def archive_files(output_dir: Path) -> list[Path]:
    """The archive's durable Parquet files, sorted."""
    return sorted(path for group in archive_file_groups(output_dir) for path in group)


def sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


@contextmanager
def archive_connection(output_dir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with the view `alerts` over the archive of output_dir."""
    groups = archive_file_groups(output_dir)
    if not groups:
        raise QueryError(f"no archived alerts in {output_dir / ARCHIVE_FOLDER} (consume with "
                         "the archive on, the default, first)")
    db = duckdb.connect()
    try:
        # Files of different schema versions have different columns: one scan per group of
        # alike files, unioned by name.
        scans = [f"SELECT * FROM read_parquet({sql_list(files)}, hive_partitioning = true)"
                 for files in groups]
        db.execute("CREATE VIEW alerts AS " + " UNION ALL BY NAME ".join(scans))
        yield db
    finally:
        db.close()


def first_line(exc: BaseException) -> str:
    """DuckDB's message, first line (it names the problem; the rest is a caret diagram)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def with_archive(output_dir: Path, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """Run work on the archive's connection; a compaction that removed a file meanwhile makes
    it read the ledger's list again; any DuckDB error becomes a one-line QueryError."""
    for attempt in range(1, RETRIES + 1):
        try:
            with archive_connection(output_dir) as db:
                return work(db)
        except duckdb.IOException as exc:
            if attempt < RETRIES and any(text in str(exc) for text in MISSING_FILE):
                continue
            raise QueryError(first_line(exc)) from exc
        except duckdb.Error as exc:
            raise QueryError(first_line(exc)) from exc
    raise AssertionError("unreachable")
