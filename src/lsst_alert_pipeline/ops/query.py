"""`lsst-alerts query`: SQL over the archive with DuckDB, embedded, as the table `alerts`, and
over the ledger's record of every delivery as the table `deliveries` (docs/brokers.md)."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ..sinks.archive_read import LEDGER, QueryError, has_archive, with_archive
from ..sinks.ledger_read import connect_read_only

__all__ = ["EXAMPLES", "QueryError", "QueryResult", "run_query"]

EXAMPLES = (
    ("alerts of one night",
     "SELECT diaSourceId, ra, dec, mjd, filterName, psFlux FROM alerts "
     "WHERE dayObs = '2026-03-05' ORDER BY mjd"),
    ("an object's detections",
     "SELECT diaSourceId, mjd, filterName, psFlux, psFluxErr FROM alerts "
     "WHERE diaObjectId = 313893023095193658 ORDER BY mjd"),
    ("the most extended objects",
     "SELECT diaObjectId, max(extendednessMedian) AS ext, count(*) AS alerts FROM alerts "
     "GROUP BY diaObjectId ORDER BY ext DESC NULLS LAST LIMIT 10"),
    ("counts per band", "SELECT filterName, count(*) FROM alerts GROUP BY filterName ORDER BY 1"),
    ("alerts each broker delivered",
     "SELECT broker, count(DISTINCT diaSourceId) FROM deliveries GROUP BY broker"),
)
DELIVERIES = re.compile(r"\bdeliveries\b", re.IGNORECASE)
# The ledger's deliveries as the query sees them (the sqlite extension of DuckDB is downloaded
# at first use, so the rows are read here and handed over as a relation: offline works too).
DELIVERIES_VIEW = """
CREATE VIEW deliveries AS SELECT TRY_CAST(dia_source_id AS BIGINT) AS diaSourceId, broker,
    topic, "partition", "offset", to_timestamp(received) AS received, verdict
FROM deliveries_rows
"""
DELIVERY_COLUMNS = {"dia_source_id": "str", "broker": "str", "topic": "str",
                    "partition": "int", "offset": "int", "received": "float", "verdict": "str"}


def delivery_rows(output_dir: Path) -> list[tuple[Any, ...]]:
    """Every delivery the ledger records (none for a ledger older than the table)."""
    ledger = output_dir / LEDGER
    if not ledger.is_file():
        return []
    db = connect_read_only(ledger)
    try:
        return db.execute('SELECT dia_source_id, broker, topic, partition, "offset", received, '
                          "verdict FROM deliveries ORDER BY rowid").fetchall()
    except sqlite3.OperationalError:  # no such table: a ledger of schema 5 or older, read-only
        return []
    finally:
        db.close()


def add_deliveries(db: duckdb.DuckDBPyConnection, output_dir: Path) -> None:
    """The view `deliveries` over the ledger's rows."""
    import polars as pl

    types = {"str": pl.Utf8, "int": pl.Int64, "float": pl.Float64}
    frame = pl.DataFrame(delivery_rows(output_dir), orient="row",
                         schema={name: types[kind] for name, kind in DELIVERY_COLUMNS.items()})
    db.register("deliveries_rows", frame)
    db.execute(DELIVERIES_VIEW)


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def run_query(output_dir: Path, sql: str, parameters: list[Any] | None = None) -> QueryResult:
    """Run one SQL statement over the archive; the columns and every row."""
    if not sql.strip().strip(";").strip():
        raise QueryError("no SQL statement given: e.g. \"SELECT count(*) FROM alerts\"")
    wants_deliveries = DELIVERIES.search(sql) is not None

    def work(db: duckdb.DuckDBPyConnection) -> QueryResult:
        if wants_deliveries:  # read only when asked: a collection's deliveries are many
            add_deliveries(db, output_dir)
        relation = db.execute(sql, parameters or [])
        if relation is None:  # DuckDB's answer to text that holds no statement (a comment)
            raise QueryError("no SQL statement given: e.g. \"SELECT count(*) FROM alerts\"")
        columns = [item[0] for item in relation.description or []]
        return QueryResult(columns, relation.fetchall())

    if wants_deliveries and not has_archive(output_dir):  # consumed with --no-archive
        db = duckdb.connect()
        try:
            return work(db)
        except duckdb.Error as exc:
            raise QueryError(str(exc).strip().splitlines()[0]) from exc
        finally:
            db.close()
    return with_archive(output_dir, work)
