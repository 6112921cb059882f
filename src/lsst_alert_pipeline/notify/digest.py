"""The morning digest: one night's summary as a message, with the report's overview image
where the channel takes attachments (docs/notifications.md)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ..errors import QueryError
from ..look.nights import NightNotFound, night_csv, read_night
from ..look.report import write_report
from ..sinks.archive_read import LEDGER, first_line, with_archive
from .candidates import SHOWN, known_columns, line_of, referenced

# The report's image that shows the night at a glance (look/report.py writes it).
OVERVIEW = "sky.png"
# How many alerts the digest's report draws previews for when it writes one.
REPORT_ALERTS = 100


@dataclass
class Digest:
    night: str  # dayObs, YYYYMMDD
    alerts: int = 0
    bands: Counter[str] = field(default_factory=Counter)
    solar_system: Counter[str] = field(default_factory=Counter)  # yes / no / unknown
    brokers: dict[str, int] = field(default_factory=dict)  # per topic, or 'all'
    top: list[str] = field(default_factory=list)
    top_note: str = ""
    deadletters: int = 0
    missing_cutouts: int = 0
    lost_to_retention: int = 0
    report: Path | None = None

    @property
    def overview(self) -> Path | None:
        image = self.report.parent / OVERVIEW if self.report else None
        return image if image is not None and image.is_file() else None


def night_window(night: str) -> tuple[float, float]:
    """The UTC-12h day of a dayObs as Unix times: what the ledger recorded for that night."""
    start = dt.datetime.strptime(night, "%Y%m%d").replace(hour=12, tzinfo=dt.UTC)
    return start.timestamp(), (start + dt.timedelta(days=1)).timestamp()


def ledger_counts(output_dir: Path, night: str) -> tuple[int, int, int]:
    """(dead letters, missing cutouts, alerts lost to retention) recorded during the night."""
    path = output_dir / LEDGER
    if not path.is_file():
        return 0, 0, 0
    since, until = night_window(night)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    try:
        return tuple(int(db.execute(query, (since, until)).fetchone()[0]) for query in (
            "SELECT COUNT(*) FROM deadletters WHERE written_at >= ? AND written_at < ?",
            "SELECT COUNT(*) FROM missing_cutouts WHERE noticed_at >= ? AND noticed_at < ?",
            "SELECT COALESCE(SUM(lost), 0) FROM retention_losses "
            "WHERE noticed_at >= ? AND noticed_at < ?"))  # type: ignore[return-value]
    finally:
        db.close()


def archive_facts(output_dir: Path, night: str, order: str, top: int,
                  expression: str | None) -> tuple[dict[str, int], list[str], str]:
    """Alerts per broker (per Kafka topic until the archive names brokers) and the night's top
    alerts by `order` among those matching `expression`, from the archive."""
    day = f"{night[:4]}-{night[4:6]}-{night[6:]}"
    values = referenced(f"{order} {expression or ''}", list(known_columns(output_dir)))
    wanted = ", ".join(f'"{name}"' for name in dict.fromkeys([*SHOWN, *values]))
    if len(duckdb.extract_statements(f"SELECT 1 ORDER BY {order}")) != 1:
        raise QueryError(f"notify.digest_order = {order!r}: one ORDER BY list, no ';'")

    def work(db: duckdb.DuckDBPyConnection) -> tuple[dict[str, int], list[dict[str, object]]]:
        tonight = f"CAST(dayObs AS VARCHAR) = '{day}'"
        brokers = dict(db.execute(
            f"SELECT COALESCE(topic, 'all'), COUNT(*) FROM alerts WHERE {tonight} "
            "GROUP BY 1 ORDER BY 2 DESC").fetchall())
        cursor = db.execute(f"SELECT {wanted} FROM alerts WHERE {tonight} AND "
                            f"({expression or 'TRUE'}) ORDER BY {order} LIMIT {int(top)}")
        names = [d[0] for d in cursor.description]
        return brokers, [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    brokers, rows = with_archive(output_dir, work)
    lines = [line_of(row, values, output_dir) for row in rows]
    what = "matching notify.when" if expression else "of the night"
    return brokers, lines, f"top {len(lines)} {what} by {order}"


def collect_digest(output_dir: Path, night: str | None = None,
                   order: str = "extendednessMedian DESC", top: int = 10,
                   expression: str | None = None, report: bool = True) -> Digest:
    """Everything the digest says about one night (the newest when none is given).

    A night without a CSV is a night without alerts: its digest says 0 (and why); with no
    night given and no CSV at all, NightNotFound."""
    try:
        csv_path = night_csv(output_dir, night)
    except NightNotFound:
        if night is None:
            raise
        digest = Digest(night, brokers={})
        digest.deadletters, digest.missing_cutouts, digest.lost_to_retention = \
            ledger_counts(output_dir, night)
        digest.top_note = f"no alerts were written for this night in {output_dir / 'data'}"
        return digest
    night = csv_path.name.removeprefix("lsst_alerts_").removesuffix(".csv")[:8]
    digest = Digest(night)
    for alert in read_night(csv_path):
        digest.alerts += 1
        digest.bands[alert.band or "?"] += 1
        digest.solar_system[alert.ss_source] += 1
    try:
        digest.brokers, digest.top, digest.top_note = archive_facts(
            output_dir, night, order, top, expression)
    except (QueryError, duckdb.Error) as exc:
        digest.brokers = {"all": digest.alerts}
        digest.top_note = f"no top candidates: {first_line(exc)}"
    digest.deadletters, digest.missing_cutouts, digest.lost_to_retention = \
        ledger_counts(output_dir, night)
    if report:
        existing = output_dir / "reports" / night / "index.html"
        digest.report = existing if existing.is_file() else write_report(
            output_dir, night, max_alerts=REPORT_ALERTS)
    return digest


def digest_message(digest: Digest) -> tuple[str, str]:
    """(title, body) of the digest."""
    def counts(counter: dict[str, int]) -> str:
        return ", ".join(f"{key} {n:,}" for key, n in counter.items()) or "none"

    night = f"{digest.night[:4]}-{digest.night[4:6]}-{digest.night[6:]}"
    title = f"lsst-alerts digest for the night of {night}: {digest.alerts:,} alerts"
    lines = [
        f"Alerts written: {digest.alerts:,}",
        f"Per band: {counts(dict(sorted(digest.bands.items())))}",
        "Solar-system association: " + counts({
            f"{label}": digest.solar_system.get(key, 0) for key, label in
            (("yes", "yes"), ("no", "no"), ("unknown", "unknown"))
            if digest.solar_system.get(key)}),
        f"Per broker (Kafka topic): {counts(digest.brokers)}",
        f"Dead letters: {digest.deadletters:,}",
        f"Missing cutouts: {digest.missing_cutouts:,}",
        f"Lost to retention: {digest.lost_to_retention:,}",
        f"Report: {digest.report.resolve() if digest.report else 'not written'}",
        "",
        f"{digest.top_note[:1].upper()}{digest.top_note[1:]}:" if digest.top else
        digest.top_note,
        *(f"- {line}" for line in digest.top),
    ]
    return title, "\n".join(line for line in lines if line is not None)
