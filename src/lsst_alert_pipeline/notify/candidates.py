"""Candidates: new alerts matching `--notify-when SQL`, each named in a message once, ever.

The expression is a DuckDB boolean over the archive's columns (docs/notifications.md). It is
checked at start-up against the columns an archive can have, evaluated on each durable batch's
new alerts (their Parquet files, after the batch's ledger commit), and every match is recorded
in the ledger's notify_candidates table: a rerun, a replay or a second broker delivering the
same diaSourceId writes nothing new, and the table's primary key refuses a second entry anyway.
"""

from __future__ import annotations

import functools
import logging
import re
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from ..decode.schemas import bundled_schema, bundled_versions, named_types
from ..errors import ConfigurationError, QueryError
from ..pipeline.ledger import Ledger
from ..sinks.archive_read import archive_connection, first_line, sql_list
from ..sinks.archive_rows import SOURCE_TYPES, SPEC_TYPES

log = logging.getLogger("lsst_alert_pipeline.notify")

KEY = "notify.when"
# What every candidate's line shows; the expression's own columns are added after these.
SHOWN = ("diaSourceId", "diaObjectId", "ra", "dec", "filterName")
AVRO_TYPES = {"double": "DOUBLE", "float": "DOUBLE", "long": "BIGINT", "int": "BIGINT",
              "string": "VARCHAR", "boolean": "BOOLEAN"}
POLARS_TYPES = {"Float64": "DOUBLE", "Int64": "BIGINT", "Int32": "INTEGER",
                "Boolean": "BOOLEAN", "String": "VARCHAR", "Binary": "BLOB"}
# The packet's records the archive flattens under their name (sinks/archive_rows.py).
FLATTENED = ("diaObject", "ssSource", "ssObject", "MPCORB", "mpc_orbits")
ID_CHUNK = 50_000


def _avro_type(kind: Any) -> str | None:
    branches = [b for b in (kind if isinstance(kind, list) else [kind]) if b != "null"]
    return AVRO_TYPES.get(branches[0]) if len(branches) == 1 and isinstance(branches[0], str) \
        else None


@functools.cache
def schema_columns() -> dict[str, str]:
    """The columns an archive of any bundled schema can have, with DuckDB types."""
    columns: dict[str, str] = {}
    for version in bundled_versions():
        for name, record in named_types(bundled_schema(version)).items():
            short = name.rsplit(".", 1)[-1]
            prefix = "" if short == "diaSource" else f"{short}_" if short in FLATTENED else None
            if prefix is None:
                continue
            for item in record.get("fields", []):
                if kind := _avro_type(item["type"]):
                    columns.setdefault(prefix + item["name"], kind)
    return columns


def known_columns(output_dir: Path) -> dict[str, str]:
    """Spec, source and bundled-schema columns, and those the archive already holds."""
    columns = dict(schema_columns())
    for name, kind in {**SPEC_TYPES, **SOURCE_TYPES}.items():
        columns[name] = POLARS_TYPES.get(str(kind), "VARCHAR")
    columns["dayObs"] = "DATE"
    try:
        with archive_connection(output_dir) as db:
            for name, kind, *_ in db.execute("DESCRIBE alerts").fetchall():
                columns.setdefault(name, kind)
    except (QueryError, duckdb.Error):  # no archive yet: the schemas' columns stand
        pass
    return columns


def check_expression(expression: str, columns: dict[str, str]) -> None:
    """ConfigurationError naming notify.when unless the expression is one boolean DuckDB can
    evaluate over these columns."""
    query = f"SELECT * FROM alerts WHERE ({expression})"
    try:
        if len(duckdb.extract_statements(query)) != 1:
            raise ConfigurationError(f"{KEY} = {expression!r}: one expression, no ';'")
        db = duckdb.connect()
        try:
            db.execute("CREATE TABLE alerts (" + ", ".join(
                f'"{name}" {kind}' for name, kind in columns.items()) + ")")
            db.execute(query).fetchall()
        finally:
            db.close()
    except duckdb.Error as exc:
        raise ConfigurationError(
            f"{KEY} = {expression!r} is not a boolean over the archive's columns: "
            f"{first_line(exc)} (docs/notifications.md lists the columns)") from exc


def referenced(expression: str, columns: Sequence[str]) -> list[str]:
    """The columns the expression names, beyond those every line shows (as written)."""
    return [name for name in columns if name not in SHOWN
            and re.search(rf'(?<![\w."]){re.escape(name)}(?![\w"])|"{re.escape(name)}"',
                          expression, re.IGNORECASE)]


def preview_path(output_dir: Path, dia_source_id: str) -> Path | None:
    """The alert's preview PNG (`lsst-alerts show`, or a night's report) if one was drawn."""
    found = [output_dir / "previews" / f"{dia_source_id}.png",
             *sorted(output_dir.glob(f"reports/*/previews/{dia_source_id}.png"))]
    return next((path for path in found if path.is_file()), None)


def line_of(row: dict[str, Any], values: Sequence[str], output_dir: Path) -> str:
    """How a message names one candidate."""
    def show(value: Any) -> str:
        return f"{value:.6g}" if isinstance(value, float) else str(value)

    text = (f"diaSourceId {row['diaSourceId']} (diaObjectId {row.get('diaObjectId')}) "
            f"ra {show(row.get('ra'))} dec {show(row.get('dec'))} "
            f"band {row.get('filterName') or '?'}")
    if values:
        text += ": " + ", ".join(f"{name}={show(row.get(name))}" for name in values)
    if preview := preview_path(output_dir, str(row["diaSourceId"])):
        text += f"; preview {preview}"
    return text


def evaluate(files: Sequence[Path], ids: Sequence[str], expression: str,
             values: Sequence[str], output_dir: Path) -> dict[str, str]:
    """{diaSourceId: line} of those `ids` in these Parquet files that match the expression."""
    if not files or not ids:
        return {}
    wanted = [*SHOWN, *values]
    db = duckdb.connect()
    try:
        db.execute("CREATE TEMP TABLE wanted (id BIGINT)")
        for start in range(0, len(ids), ID_CHUNK):
            db.executemany("INSERT INTO wanted VALUES (?)",
                           [(int(i),) for i in ids[start:start + ID_CHUNK]])
        scan = (f"read_parquet({sql_list(list(files))}, union_by_name = true, "
                "hive_partitioning = true)")
        cursor = db.execute(
            f"SELECT {', '.join(f'a.{chr(34)}{c}{chr(34)}' for c in wanted)} FROM {scan} a "
            f"WHERE a.diaSourceId IN (SELECT id FROM wanted) AND ({expression})")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    except duckdb.BinderException as exc:
        # e.g. ANTARES locus alerts carry the spec columns only: no snr to compare
        log.warning("%s could not be evaluated on %d new alerts: %s; none of them is named",
                    KEY, len(ids), first_line(exc))
        return {}
    finally:
        db.close()
    return {str(row["diaSourceId"]): line_of(row, values, output_dir) for row in rows}


class CandidateBook:
    """The ledger's record of candidates: which matched, which a delivered message named."""

    def __init__(self, ledger: Ledger, expression: str):
        self.ledger = ledger
        self.expression = expression

    def checked_through(self) -> int | None:
        row = self.ledger.db.execute(
            "SELECT through_rowid FROM notify_checked WHERE expression = ?",
            (self.expression,)).fetchone()
        return None if row is None else int(row[0])

    def newest_alert(self) -> int:
        return int(self.ledger.db.execute(
            "SELECT COALESCE(MAX(rowid), 0) FROM alerts").fetchone()[0])

    def unchecked(self) -> list[str]:
        """Alerts recorded after the last check (a crash between a batch's commit and its
        check, or a run without --notify-when); none on the first use of an expression."""
        through = self.checked_through()
        if through is None:
            self.record({}, self.newest_alert())
            return []
        return [row[0] for row in self.ledger.db.execute(
            "SELECT dia_source_id FROM alerts WHERE rowid > ?", (through,))]

    def through_of(self, ids: Sequence[str]) -> int:
        rows = self.ledger.db.execute(
            f"SELECT COALESCE(MAX(rowid), 0) FROM alerts WHERE dia_source_id IN "
            f"({','.join('?' * len(ids))})", list(ids)).fetchone() if ids else (0,)
        return int(rows[0])

    def record(self, matched: dict[str, str], through: int) -> None:
        """New matches (an alert already named stays as it was) and how far alerts are
        checked, in one transaction."""
        now = time.time()
        with self.ledger.transaction() as db:
            db.executemany("INSERT OR IGNORE INTO notify_candidates VALUES (?, ?, NULL, ?)",
                           [(key, now, line) for key, line in matched.items()])
            db.execute("INSERT INTO notify_checked VALUES (?, ?) ON CONFLICT(expression) DO "
                       "UPDATE SET through_rowid = MAX(through_rowid, excluded.through_rowid)",
                       (self.expression, through))

    def pending(self) -> list[tuple[str, str]]:
        """(diaSourceId, line) of every match no delivered message named yet, oldest first."""
        return [(row[0], row[1]) for row in self.ledger.db.execute(
            "SELECT dia_source_id, line FROM notify_candidates WHERE notified_at IS NULL "
            "ORDER BY matched_at, dia_source_id")]

    def notified(self, ids: Sequence[str]) -> None:
        now = time.time()
        with self.ledger.transaction() as db:
            db.executemany("UPDATE notify_candidates SET notified_at = ? "
                           "WHERE dia_source_id = ? AND notified_at IS NULL",
                           [(now, key) for key in ids])


def candidate_message(pending: Sequence[tuple[str, str]], cap: int) -> tuple[str, str]:
    """(title, body) naming the first `cap` candidates and counting the rest."""
    named = pending[:cap]
    title = f"lsst-alerts: {len(pending):,} new candidate{'s' * (len(pending) != 1)}"
    body = "\n".join(f"- {line}" for _, line in named)
    if len(pending) > cap:
        body += (f"\n... and {len(pending) - cap:,} more matching {KEY} (lsst-alerts query "
                 "lists them)")
    return title, body


def ledger_candidates(ledger_path: Path, since: float, until: float) -> list[str]:
    """The diaSourceIds matched between two times (the digest's night), oldest first."""
    db = sqlite3.connect(f"file:{ledger_path}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute(
            "SELECT dia_source_id FROM notify_candidates WHERE matched_at >= ? AND "
            "matched_at < ? ORDER BY matched_at", (since, until))]
    except sqlite3.OperationalError:  # a ledger from before notifications
        return []
    finally:
        db.close()
