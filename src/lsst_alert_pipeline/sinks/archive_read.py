"""Reading the archive back: its durable files (the ledger's list) and a DuckDB view `alerts`.

The files read are those the ledger lists: exactly the durable ones, never a file of a batch
that crashed before its ledger commit (recovery deletes those at the next start) nor both the
parts and the merged file of a compaction (the ledger swaps them in one transaction). An
archive copied without its state/ folder is read by globbing its Parquet files instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from ..errors import QueryError
from .archive import ARCHIVE_FOLDER, columns_fingerprint, file_sha256
from .atomic import TEMP_PREFIX
from .ledger_read import connect_read_only

log = logging.getLogger(__name__)

T = TypeVar("T")
LEDGER = Path("state") / "ledger.sqlite"
# DuckDB's words for a listed file that a compaction or cleanup removed since it was listed.
MISSING_FILE = ("No such file", "No files found")
RETRIES = 5
PARQUET_MAGIC = b"PAR1"  # the first and last 4 bytes of every Parquet file
# DuckDB's errors for bytes it cannot decode (not for bad SQL: that is a Parser, Binder or
# Catalog error); a broken page also gives a plain duckdb.Error ("Out of buffer").
READ_ERRORS = (duckdb.InvalidInputException, duckdb.InternalException,
               duckdb.SerializationException, duckdb.IOException)


@dataclass(frozen=True)
class ListedFile:
    """An archive file the ledger lists: its alerts, columns fingerprint and checksum."""

    path: Path
    alerts: int | None  # None when the folder is read without its ledger
    columns: str
    sha256: str | None = None


def listed_files(output_dir: Path) -> list[ListedFile] | None:
    """The archive files the ledger lists, or None when there is no ledger (a copied archive)."""
    ledger = output_dir / LEDGER
    if not ledger.is_file():
        return None
    # Read-only: a collection on a read-only disk is queried too. Only a missing table (a
    # ledger from before the archive existed) means no archive; any other error is raised,
    # never taken for an empty archive.
    db = connect_read_only(ledger)
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(archive_files)")}
        checksum = "sha256" if "sha256" in columns else "NULL"
        listed = (db.execute(f"SELECT name, alerts, columns, {checksum} FROM archive_files "
                             "ORDER BY name").fetchall() if columns else [])
    finally:
        db.close()
    return [ListedFile(output_dir / name, alerts, columns_, sha256)
            for name, alerts, columns_, sha256 in listed]


def unreadable(path: Path) -> str | None:
    """Why DuckDB cannot open this Parquet file, found cheaply (it is there, and both ends have
    Parquet's magic bytes: a file cut short has none at its end); None when it looks whole."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(4)
            handle.seek(max(size - 4, 0))
            tail = handle.read(4)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if size < 12 or head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
        return f"not a whole Parquet file ({size:,} bytes, no footer)"
    return None


def say_skipped(output_dir: Path, file: ListedFile, why: str) -> None:
    """The one warning a reading command gives for a file it leaves out."""
    held = "" if file.alerts is None else f" (it held {file.alerts:,} alerts)"
    log.warning("archive file %s is %s%s: left out of what follows; `lsst-alerts verify "
                "--output-dir %s` names its alerts and `verify --repair` writes them again",
                file.path, why, held, output_dir)


def readable_groups(output_dir: Path, leave_out: dict[Path, str] | None = None
                    ) -> list[list[Path]]:
    """The archive's durable Parquet files (the ledger's list, else every file on disk) that
    can be read, grouped by their columns: each group is one DuckDB scan, and only differing
    groups pay for union by name (measured: SELECT * of one object 4x slower with
    union_by_name). A listed file that is missing or cut short is left out, with one warning;
    so is each file of `leave_out` (path -> why), which a failed read found damaged."""
    leave_out = {} if leave_out is None else leave_out
    groups: dict[str, list[Path]] = {}
    listed = listed_files(output_dir)
    if listed is None:
        found = [*output_dir.glob(f"{ARCHIVE_FOLDER}/dayObs=*/*.parquet"),
                 *output_dir.glob(f"members/*/{ARCHIVE_FOLDER}/dayObs=*/*.parquet")]
        listed = []
        for path in sorted(p for p in found if not p.name.startswith(TEMP_PREFIX)):
            try:
                listed.append(ListedFile(path, None, columns_fingerprint(path)))
            except Exception:  # noqa: BLE001 - polars raises several kinds for a broken footer
                leave_out.setdefault(path, "not a readable Parquet file")
                say_skipped(output_dir, ListedFile(path, None, ""), leave_out[path])
    for file in listed:
        why = leave_out.get(file.path)
        if why is None and (why := unreadable(file.path)) is not None:
            leave_out[file.path] = why
            say_skipped(output_dir, file, why)
        if why is None:
            groups.setdefault(file.columns, []).append(file.path)
    return list(groups.values())


def archive_health(output_dir: Path) -> dict[str, Any]:
    """What `status` says of the archive: listed files and alerts, and the listed files that
    are missing or cut short (found cheaply; `verify` reads them all)."""
    listed = listed_files(output_dir) or []
    damaged = [{"file": file.path.relative_to(output_dir).as_posix(), "alerts": file.alerts,
                "problem": why} for file in listed if (why := unreadable(file.path))]
    return {"files": len(listed), "alerts": sum(file.alerts or 0 for file in listed),
            "damaged": damaged}


def archive_file_groups(output_dir: Path) -> list[list[Path]]:
    """The archive's readable durable files, grouped by their columns (readable_groups)."""
    return readable_groups(output_dir)


def damaged_by_checksum(output_dir: Path) -> dict[Path, str]:
    """The listed files whose sha256 no longer matches the ledger's (a flipped byte); read in
    full, so only when a query failed without naming the file it could not read."""
    damaged: dict[Path, str] = {}
    for file in listed_files(output_dir) or []:
        if file.sha256 is None or unreadable(file.path) is not None:
            continue
        if file_sha256(file.path) != file.sha256:
            damaged[file.path] = "damaged (its sha256 differs from the ledger's)"
            say_skipped(output_dir, file, damaged[file.path])
    return damaged


def has_archive(output_dir: Path) -> bool:
    """Whether anything is archived here (readable or not: the readers say what is not)."""
    listed = listed_files(output_dir)
    if listed is not None:
        return bool(listed)
    return any(output_dir.glob(f"{ARCHIVE_FOLDER}/dayObs=*/*.parquet")) or any(
        output_dir.glob(f"members/*/{ARCHIVE_FOLDER}/dayObs=*/*.parquet"))


def archive_files(output_dir: Path) -> list[Path]:
    """The archive's durable Parquet files, sorted."""
    return sorted(path for group in readable_groups(output_dir) for path in group)


def sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


@contextmanager
def archive_connection(output_dir: Path, leave_out: dict[Path, str] | None = None
                       ) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with the view `alerts` over the readable archive of output_dir."""
    groups = readable_groups(output_dir, leave_out)
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


def reading_error(exc: BaseException) -> bool:
    """Whether DuckDB failed on the bytes it read rather than on the SQL."""
    return type(exc) is duckdb.Error or isinstance(exc, READ_ERRORS)


def named_file(exc: BaseException, candidates: Iterable[Path]) -> Path | None:
    """The archive file a DuckDB error names, if it names one."""
    text = str(exc)
    return next((path for path in candidates if f"'{path}'" in text or f'"{path}"' in text),
                None)


def with_archive(output_dir: Path, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """Run work on the archive's connection; a compaction that removed a file meanwhile makes
    it read the ledger's list again; a damaged file is left out (one warning each) and the work
    runs again over the rest; any other DuckDB error becomes a one-line QueryError."""
    leave_out: dict[Path, str] = {}
    checked_sums = False
    changed = 0  # times the listing changed under the read
    while True:  # each pass leaves out one more file, or counts a change
        listed = [file.path for file in listed_files(output_dir) or []]
        try:
            with archive_connection(output_dir, leave_out) as db:
                return work(db)
        except duckdb.Error as exc:
            if isinstance(exc, duckdb.IOException) and any(
                    text in str(exc) for text in MISSING_FILE):
                changed += 1
                if changed < RETRIES:
                    continue
                raise QueryError(f"the archive of {output_dir} kept changing while it was "
                                 "read (a compaction or cleanup): run the command again") from exc
            culprit = named_file(exc, listed)
            if culprit is not None and culprit not in leave_out:
                leave_out[culprit] = f"not readable ({first_line(exc)})"
                say_skipped(output_dir, ListedFile(culprit, held(output_dir, culprit), ""),
                            leave_out[culprit])
                continue
            if reading_error(exc) and not checked_sums:
                # DuckDB names no file for a broken page ("Out of buffer"): the ledger's
                # checksums tell which file changed since it was written.
                checked_sums = True
                found = damaged_by_checksum(output_dir)
                if found.keys() - leave_out.keys():
                    leave_out.update(found)
                    continue
            raise QueryError(first_line(exc)) from exc


def held(output_dir: Path, path: Path) -> int | None:
    """How many alerts the ledger says this file held."""
    return next((file.alerts for file in listed_files(output_dir) or [] if file.path == path),
                None)
