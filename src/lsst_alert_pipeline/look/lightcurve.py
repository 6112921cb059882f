"""An object's light curve from the archive alone: every detection and forced point, once,
and its plot (flux against time per band).

Each alert repeats up to a year of the object's history, so the same measurement arrives in many
alerts: detections are kept once per diaSourceId (the triggering diaSource and its
prvDiaSources), forced photometry once per visit (prvDiaForcedSources); where alerts disagree
(a reprocessed measurement) the value from the newest alert wins. History fields are read by
their v5+ schema names (midpointMjdTai, band, psfFlux, psfFluxErr).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ..sinks.archive_read import QueryError, has_archive, with_archive
from .preview import BAND_COLOURS, band_order, new_figure, save_figure

COLUMNS = ("mjd", "band", "flux", "fluxErr", "detection", "diaSourceId", "visit")


@dataclass(frozen=True)
class LightCurvePoint:
    mjd: float
    band: str | None
    flux: float | None
    fluxErr: float | None  # noqa: N815 - the archive's naming
    detection: bool
    diaSourceId: int | None  # noqa: N815 - None for a forced point
    visit: int | None


def _columns(db: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in db.execute("DESCRIBE alerts").fetchall()}


def light_curve_sql(columns: set[str]) -> str:
    """The query for one object (parameter 1: diaObjectId) over the archive's columns."""
    visit = "visit" if "visit" in columns else "NULL::BIGINT"
    parts = [f"""SELECT mjd, filterName AS band, psFlux AS flux, psFluxErr AS fluxErr,
                 true AS detection, diaSourceId, {visit} AS visit, mjd AS seen
             FROM mine"""]
    if "prvDiaSources" in columns:
        parts.append("""SELECT s.midpointMjdTai, s.band, s.psfFlux, s.psfFluxErr, true,
                 s.diaSourceId, s.visit, seen
             FROM (SELECT unnest(prvDiaSources) AS s, mjd AS seen FROM mine)""")
    detections = " UNION ALL ".join(parts)
    forced = ""
    if "prvDiaForcedSources" in columns:
        forced = """UNION ALL SELECT * EXCLUDE (seen) FROM (
             SELECT f.midpointMjdTai AS mjd, f.band, f.psfFlux AS flux,
                    f.psfFluxErr AS fluxErr, false AS detection, NULL::BIGINT AS diaSourceId,
                    f.visit, seen
             FROM (SELECT unnest(prvDiaForcedSources) AS f, mjd AS seen FROM mine))
             QUALIFY row_number() OVER (PARTITION BY visit ORDER BY seen DESC) = 1"""
    return f"""WITH mine AS (SELECT * FROM alerts WHERE diaObjectId = ?),
        detected AS ({detections})
        SELECT * FROM (
            SELECT * EXCLUDE (seen) FROM detected
            QUALIFY row_number() OVER (PARTITION BY diaSourceId ORDER BY seen DESC) = 1
            {forced})
        ORDER BY mjd, detection DESC, band, diaSourceId, visit"""


def light_curve(output_dir: Path, dia_object_id: int) -> list[LightCurvePoint]:
    """Every detection and forced point of the object in the archive, sorted by time."""
    def work(db: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
        return db.execute(light_curve_sql(_columns(db)), [dia_object_id]).fetchall()

    rows = with_archive(output_dir, work)
    return [LightCurvePoint(*row) for row in rows if row[0] is not None]


def light_curves(output_dir: Path, dia_object_ids: Iterable[int]) -> dict[int, list[
        LightCurvePoint]]:
    """The light curves of many objects over one connection (the nightly report's); {} when
    nothing is archived."""
    wanted = sorted(set(dia_object_ids))

    def work(db: duckdb.DuckDBPyConnection) -> dict[int, list[LightCurvePoint]]:
        sql = light_curve_sql(_columns(db))
        return {dia_object_id: [LightCurvePoint(*row) for row in
                                db.execute(sql, [dia_object_id]).fetchall() if row[0] is not None]
                for dia_object_id in wanted}

    if not wanted or not has_archive(output_dir):
        return {}
    return with_archive(output_dir, work)


def plot_light_curve(points: list[LightCurvePoint], dia_object_id: int, path: Path) -> Path:
    """Flux against time per band with error bars; detections filled, forced points open."""
    if not points:
        raise QueryError(f"no points for diaObjectId {dia_object_id} in the archive")
    figure = new_figure(7.0, 4.0)
    axes = figure.add_subplot(1, 1, 1)
    bands = sorted({p.band or "?" for p in points}, key=band_order)
    for band in bands:
        colour = BAND_COLOURS.get(band, "#444444")
        for detection, marker, face in ((True, "o", colour), (False, "s", "none")):
            chosen = [p for p in points if (p.band or "?") == band and p.detection == detection
                      and p.flux is not None]
            if not chosen:
                continue
            axes.errorbar([p.mjd for p in chosen], [p.flux or 0.0 for p in chosen],
                          yerr=[p.fluxErr or 0.0 for p in chosen], fmt=marker, color=colour,
                          markerfacecolor=face, markersize=4, elinewidth=0.8, capsize=0,
                          label=f"{band} {'detected' if detection else 'forced'}")
    axes.axhline(0.0, color="#999999", linewidth=0.6)
    axes.set_xlabel("MJD (TAI)")
    axes.set_ylabel("difference flux (nJy)")
    axes.set_title(f"diaObject {dia_object_id}: {sum(p.detection for p in points)} detections, "
                   f"{sum(not p.detection for p in points)} forced points", fontsize=9)
    axes.legend(fontsize=7, ncol=2, loc="best")
    return save_figure(figure, path)
