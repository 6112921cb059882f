"""`lsst-alerts query`: SQL over the archive with DuckDB, embedded, as the table `alerts`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ..sinks.archive_read import QueryError, with_archive

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
)


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def run_query(output_dir: Path, sql: str, parameters: list[Any] | None = None) -> QueryResult:
    """Run one SQL statement over the archive; the columns and every row."""
    if not sql.strip().strip(";").strip():
        raise QueryError("no SQL statement given: e.g. \"SELECT count(*) FROM alerts\"")
    def work(db: duckdb.DuckDBPyConnection) -> QueryResult:
        relation = db.execute(sql, parameters or [])
        if relation is None:  # DuckDB's answer to text that holds no statement (a comment)
            raise QueryError("no SQL statement given: e.g. \"SELECT count(*) FROM alerts\"")
        columns = [item[0] for item in relation.description or []]
        return QueryResult(columns, relation.fetchall())

    return with_archive(output_dir, work)
