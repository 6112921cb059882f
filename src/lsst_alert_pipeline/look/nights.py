"""Reading what the consumer wrote: the nightly CSV files, one alert per row.

SSSource: the `hasSSSource` column when the consumer wrote it; otherwise derived from
`diaObjectId`, which Rubin sets to 0 exactly for solar-system alerts (docs/formats.md, Rubin
alert facts); "unknown" only when neither is there.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..decode.times import utc_of_mjd
from ..errors import NotFound
from ..sinks.csv import csv_name, night_parts, part_of

CUTOUT_KINDS = ("science", "template", "difference")


class AlertNotFound(NotFound):
    """No CSV row in the output directory has this diaSourceId."""


class NightNotFound(NotFound):
    """No CSV file for the asked night (or no CSV at all)."""


@dataclass(frozen=True)
class Alert:
    """One CSV row, typed; empty cells are None."""

    alert_id: str
    dia_source_id: int
    dia_object_id: int | None
    ra: float | None
    dec: float | None
    mjd: float | None
    band: str
    ps_flux: float | None
    ps_flux_err: float | None
    extendedness_median: float | None
    extendedness_min: float | None
    extendedness_max: float | None
    cutout_paths: dict[str, str]
    ss_object_id: int | None
    ss_source: str  # "yes", "no" or "unknown"
    night: str

    @property
    def object_key(self) -> tuple[str, int] | None:
        """What ties an alert to its earlier rows: its DIAObject, or its SSObject if solar-system.

        Solar-system alerts all carry diaObjectId 0, so 0 never groups alerts together."""
        if self.ss_source == "yes" or self.dia_object_id == 0:
            return ("ssObjectId", self.ss_object_id) if self.ss_object_id else None
        return ("diaObjectId", self.dia_object_id) if self.dia_object_id else None

    @property
    def observed_utc(self) -> dt.datetime | None:
        if self.mjd is None:
            return None
        return utc_of_mjd(self.mjd)


def number(text: str | None) -> float | None:
    """A finite float, or None for an empty cell (the consumer writes null and NaN as empty)."""
    if not text:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def integer(text: str | None) -> int | None:
    return int(text) if text else None


def ss_source(row: dict[str, str]) -> str:
    """yes/no/unknown: hasSSSource if written, else ssObjectId, else diaObjectId == 0."""
    flag = (row.get("hasSSSource") or "").strip().lower()
    if flag in ("true", "false"):
        return "yes" if flag == "true" else "no"
    ss_object = (row.get("ssObjectId") or "").strip()
    if ss_object not in ("", "0"):
        return "yes"
    dia_object = (row.get("diaObjectId") or "").strip()
    if dia_object:
        return "yes" if dia_object == "0" else "no"
    return "unknown"


def alert_from_row(row: dict[str, str], night: str) -> Alert:
    return Alert(
        alert_id=row.get("alertId") or row["diaSourceId"],
        dia_source_id=int(row["diaSourceId"]),
        dia_object_id=integer(row.get("diaObjectId")),
        ra=number(row.get("ra")),
        dec=number(row.get("dec")),
        mjd=number(row.get("mjd")),
        band=row.get("filterName") or "",
        ps_flux=number(row.get("psFlux")),
        ps_flux_err=number(row.get("psFluxErr")),
        extendedness_median=number(row.get("extendednessMedian")),
        extendedness_min=number(row.get("extendednessMin")),
        extendedness_max=number(row.get("extendednessMax")),
        cutout_paths={kind: row.get(f"{kind}_cutout_path") or "" for kind in CUTOUT_KINDS},
        ss_object_id=integer(row.get("ssObjectId")),
        ss_source=ss_source(row),
        night=night,
    )


def night_files(output_dir: Path) -> dict[str, Path]:
    """Every night's CSV, oldest first, keyed by dayObs (YYYYMMDD)."""
    found: dict[str, Path] = {}
    for path in sorted((output_dir / "data").glob("lsst_alerts_*.csv")):
        part = part_of(path.name)
        if part is not None and (part[0] not in found or part[1] == 1):
            found[part[0]] = path
    return dict(sorted(found.items()))


def read_night(path: Path) -> Iterator[Alert]:
    """Stream a night's alerts from its first CSV and the parts after it (a night goes on in
    `.2.csv` when its columns changed); millions of rows, so never a list here."""
    part = part_of(path.name)
    night = part[0] if part else ""
    for part_path in night_parts(path.parent, night) if part else [path]:
        with open(part_path, newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("diaSourceId"):
                    yield alert_from_row(row, night)


def night_csv(output_dir: Path, date: str | None) -> Path:
    """The CSV for one night (dayObs YYYYMMDD), or the newest when date is None."""
    nights = night_files(output_dir)
    if not nights:
        raise NightNotFound(f"no CSV files in {output_dir / 'data'}")
    if date is None:
        return nights[max(nights)]
    if date not in nights:
        raise NightNotFound(
            f"no {csv_name(date)} in {output_dir / 'data'}; nights there: {', '.join(nights)}")
    return nights[date]


def all_alerts(output_dir: Path) -> Iterator[Alert]:
    """Every alert of every night, newest night first (the likeliest place to look)."""
    for _night, path in sorted(night_files(output_dir).items(), reverse=True):
        yield from read_night(path)


def find_alert(output_dir: Path, dia_source_id: int) -> Alert:
    for alert in all_alerts(output_dir):
        if alert.dia_source_id == dia_source_id:
            return alert
    raise AlertNotFound(
        f"diaSourceId {dia_source_id} is in no CSV under {output_dir / 'data'}")


def histories(output_dir: Path, alerts: Iterable[Alert]) -> dict[tuple[str, int], list[Alert]]:
    """All rows, over every night, of the objects these alerts belong to, sorted by mjd.

    One streaming pass that keeps only the wanted objects, so memory follows the alerts asked
    about, not the size of the archive."""
    wanted = {key for alert in alerts if (key := alert.object_key) is not None}
    found: dict[tuple[str, int], list[Alert]] = {key: [] for key in wanted}
    if not wanted:
        return found
    for alert in all_alerts(output_dir):
        key = alert.object_key
        if key in found:
            found[key].append(alert)
    for rows in found.values():
        rows.sort(key=lambda a: (a.mjd if a.mjd is not None else math.inf, a.dia_source_id))
    return found


def history_of(output_dir: Path, alert: Alert) -> list[Alert]:
    key = alert.object_key
    if key is None:
        return [alert]
    return histories(output_dir, [alert]).get(key, [alert])
