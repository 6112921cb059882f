"""One alert at a glance: science, template and difference cutouts, key values, light curve.

Figures are built with matplotlib's object API on the Agg canvas, never pyplot, so rendering
leaves no global figure state behind (safe in a library and in long report runs)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .cutouts import (
    Cutout,
    load_cutout,
    north_east,
    pixel_scale_arcsec,
    scale_bar_arcsec,
    scaled_for_display,
)
from .nights import CUTOUT_KINDS, Alert, find_alert, history_of

# Rubin's band colours (rubin_sim plotting convention), so light curves read like Rubin's own.
BAND_COLOURS = {"u": "#1600ea", "g": "#31de1f", "r": "#b52626", "i": "#370201",
                "z": "#ba52ff", "y": "#61a2b3"}
LIGHT_CURVE = "light curve"
# A dark rim keeps yellow and white labels legible on bright sky.
OUTLINE = [patheffects.withStroke(linewidth=2.5, foreground="black")]


def new_figure(width: float, height: float, dpi: int = 100) -> Figure:
    figure = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, out: Path) -> Path:
    """Write the PNG under a temporary name, then rename: a browser never sees half a file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_name(f".tmp-{out.name}")
    figure.savefig(temp, format="png")
    os.replace(temp, out)
    return out


def fmt(value: float | int | None, spec: str = ".4g") -> str:
    return "—" if value is None else format(value, spec)


def caption(alert: Alert) -> str:
    """The key values, three lines, in the CSV's vocabulary."""
    when = alert.observed_utc
    utc = when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else "—"
    ss = alert.ss_source + (f" (ssObjectId {alert.ss_object_id})" if alert.ss_object_id else "")
    return (
        f"alertId {alert.alert_id}   diaSourceId {alert.dia_source_id}   "
        f"diaObjectId {fmt(alert.dia_object_id, 'd')}\n"
        f"band {alert.band or '—'}   mjd {fmt(alert.mjd, '.5f')} ({utc})   "
        f"night {alert.night}\n"
        f"psFlux {fmt(alert.ps_flux)} ± {fmt(alert.ps_flux_err)} nJy   "
        f"extendedness median {fmt(alert.extendedness_median, '.3f')} "
        f"min {fmt(alert.extendedness_min, '.3f')} max {fmt(alert.extendedness_max, '.3f')}   "
        f"SSSource {ss}"
    )


def compass_corner(directions: tuple[np.ndarray, np.ndarray]) -> tuple[int, int]:
    """The image corner (x side, y side: -1 low, +1 high) the arrows point away from, so they
    cross empty sky instead of the source at the centre."""
    mean = directions[0] + directions[1]
    return (1 if mean[0] < 0 else -1), (1 if mean[1] < 0 else -1)


def compass_origin(corner: tuple[int, int], directions: tuple[np.ndarray, np.ndarray],
                   length: float, size: tuple[int, int]) -> np.ndarray:
    """The arrows' common start, pushed into the corner as far as their labels still fit."""
    reach = 1.35 * length * np.array(directions)  # label positions relative to the origin
    margin = 1.5
    origin = []
    for axis in (0, 1):
        low = margin - min(0.0, float(reach[:, axis].min()))
        high = size[axis] - 1 - margin - max(0.0, float(reach[:, axis].max()))
        origin.append(high if corner[axis] == 1 else low)
    return np.array(origin)


def draw_compass(axes: Axes, cutout: Cutout) -> tuple[int, int] | None:
    """North and east arrows from a corner, when the WCS says which way they point."""
    if cutout.wcs is None:
        return None
    directions = north_east(cutout.wcs, cutout.image.shape)
    if directions is None:
        return None
    height, width = cutout.image.shape
    corner = compass_corner(directions)
    length = 0.18 * min(height, width)
    origin = compass_origin(corner, directions, length, (width, height))
    for label, vector in zip(("N", "E"), directions, strict=True):
        tip = origin + length * vector
        axes.annotate("", xy=tuple(tip), xytext=tuple(origin),
                      arrowprops={"arrowstyle": "->", "color": "yellow", "lw": 1.5})
        text_at = origin + 1.35 * length * vector
        axes.text(text_at[0], text_at[1], label, color="yellow", fontsize=9,
                  ha="center", va="center", fontweight="bold", path_effects=OUTLINE)
    return corner


def draw_scale_bar(axes: Axes, cutout: Cutout, compass: tuple[int, int] | None) -> None:
    """A bar of a round number of arcseconds, from the WCS pixel scale."""
    if cutout.wcs is None:
        return
    scale = pixel_scale_arcsec(cutout.wcs)
    if not np.isfinite(scale) or scale <= 0:
        return
    height, width = cutout.image.shape
    arcsec = scale_bar_arcsec(width * scale)
    pixels = arcsec / scale
    # Bottom left, unless the compass sits there.
    x0 = width * 0.94 - pixels if compass == (-1, -1) else 0.06 * width
    y0 = 0.06 * height
    axes.plot([x0, x0 + pixels], [y0, y0], color="white", lw=2.5, solid_capstyle="butt",
              path_effects=OUTLINE)
    axes.text(x0 + pixels / 2, y0 + 0.03 * height, f'{arcsec:g}"', color="white", fontsize=9,
              ha="center", va="bottom", path_effects=OUTLINE)


def draw_cutout(axes: Axes, kind: str, cutout: Cutout | None) -> None:
    """The image (zscale + asinh, FITS orientation: origin lower), or an empty 'no cutout' panel."""
    axes.set_label(kind)
    axes.set_title(kind)
    axes.set_xticks([])
    axes.set_yticks([])
    if cutout is None:
        axes.set_facecolor("#eeeeee")
        axes.set_aspect("equal")
        axes.text(0.5, 0.5, "no cutout", transform=axes.transAxes, ha="center", va="center",
                  fontsize=12, color="#555555")
        return
    axes.imshow(scaled_for_display(cutout.image), origin="lower", cmap="gray",
                vmin=0.0, vmax=1.0, interpolation="nearest")
    draw_scale_bar(axes, cutout, draw_compass(axes, cutout))


def draw_light_curve(axes: Axes, history: Sequence[Alert], alert: Alert) -> None:
    """psFlux against mjd per band with error bars; the alert shown is circled."""
    axes.set_label(LIGHT_CURVE)
    for band in sorted({row.band for row in history}, key=band_order):
        points = [(r.mjd, r.ps_flux, r.ps_flux_err or 0.0) for r in history
                  if r.band == band and r.mjd is not None and r.ps_flux is not None]
        if not points:
            continue
        mjd, flux, flux_err = np.array(points, dtype=float).T
        axes.errorbar(mjd, flux,
                      yerr=flux_err, fmt="o", ms=4, capsize=2,
                      color=BAND_COLOURS.get(band, "#444444"), label=band or "?")
    if alert.mjd is not None and alert.ps_flux is not None:
        axes.plot([alert.mjd], [alert.ps_flux], "o", ms=11, mfc="none", mec="black",
                  label="this alert")
    axes.axhline(0.0, color="#999999", lw=0.8)
    axes.ticklabel_format(axis="x", useOffset=False, style="plain")
    axes.set_xlabel("mjd")
    axes.set_ylabel("psFlux (nJy)")
    key = alert.object_key
    axes.set_title(f"light curve of {key[0]} {key[1]} ({len(history)} alerts)" if key
                   else "light curve")
    axes.legend(loc="best", fontsize=8)


def band_order(band: str) -> int:
    return "ugrizy".find(band) if band in "ugrizy" and band else 99


def preview_figure(alert: Alert, cutouts: dict[str, Cutout | None],
                   history: Sequence[Alert]) -> Figure:
    """Three cutout panels side by side, plus a light curve when the object has other rows."""
    with_curve = len(history) > 1
    figure = new_figure(12, 8.6 if with_curve else 4.8)
    grid = figure.add_gridspec(2 if with_curve else 1, 3,
                               height_ratios=[1.0, 0.8] if with_curve else [1.0])
    for column, kind in enumerate(CUTOUT_KINDS):
        draw_cutout(figure.add_subplot(grid[0, column]), kind, cutouts.get(kind))
    if with_curve:
        draw_light_curve(figure.add_subplot(grid[1, :]), history, alert)
    figure.text(0.5, 0.01, caption(alert), ha="center", va="bottom", fontsize=9,
                family="monospace")
    figure.subplots_adjust(left=0.06, right=0.98, top=0.94,
                           bottom=0.15 if with_curve else 0.17, hspace=0.3)
    return figure


def alert_cutouts(output_dir: Path, alert: Alert) -> dict[str, Cutout | None]:
    """The alert's cutouts; paths in the CSV are relative to the output directory."""
    return {kind: load_cutout(output_dir / path) if path else None
            for kind, path in alert.cutout_paths.items()}


def draw_preview(output_dir: Path, alert: Alert, history: Sequence[Alert], out: Path) -> Path:
    figure = preview_figure(alert, alert_cutouts(output_dir, alert), history)
    return save_figure(figure, out)


def render_preview(output_dir: Path, dia_source_id: int, out: Path | None = None) -> Path:
    """Render one alert's preview PNG (default DIR/previews/<diaSourceId>.png); returns its path.

    Raises AlertNotFound when no CSV row has this diaSourceId."""
    output_dir = Path(output_dir)
    alert = find_alert(output_dir, int(dia_source_id))
    target = Path(out) if out else output_dir / "previews" / f"{alert.dia_source_id}.png"
    return draw_preview(output_dir, alert, history_of(output_dir, alert), target)
