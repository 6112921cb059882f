"""The light curve plot of an object from the archive: flux against time per band."""

from __future__ import annotations

from pathlib import Path

from ..ops.lightcurve import LightCurvePoint
from ..ops.query import QueryError
from .preview import BAND_COLOURS, band_order, new_figure, save_figure


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
