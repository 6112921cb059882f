"""The nightly report: one folder with index.html and PNGs that opens from disk, no server.

Every link is relative and points at a file written into the same folder, so the folder can be
copied or mailed as it is. Thumbnails and previews are bounded (max_alerts) because Rubin sends
millions of alerts a night; counts and plots still cover every alert of the night."""

from __future__ import annotations

import datetime as dt
import html
import math
import os
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib import image as mpl_image
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..decode.times import MJD_UNIX_EPOCH
from ..sinks.csv import csv_name
from .cutouts import load_cutout, scaled_for_display
from .lightcurve import light_curves, plot_light_curve
from .nights import Alert, histories, night_csv, read_night
from .preview import BAND_COLOURS, band_order, draw_preview, fmt, new_figure, save_figure

SS_COLOURS = {"yes": "#d95f02", "no": "#1b9e77", "unknown": "#7570b3"}
THUMBNAIL_ZOOM = 3
# Plotting millions of points gains nothing visible and costs minutes; thin the sky map.
SKY_MAP_MAX_POINTS = 200_000


@dataclass
class Night:
    """What the plots need from every alert of a night, in compact arrays, plus the first few."""

    date: str
    total: int = 0
    hours: Counter[int] = field(default_factory=Counter)  # key: whole hours since MJD 0
    bands: Counter[str] = field(default_factory=Counter)
    extendedness: dict[str, array] = field(default_factory=dict)
    ra: array = field(default_factory=lambda: array("d"))
    dec: array = field(default_factory=lambda: array("d"))
    ss_source: list[str] = field(default_factory=list)
    shown: list[Alert] = field(default_factory=list)


def summarize_night(date: str, alerts: Iterable[Alert], max_alerts: int) -> Night:
    """One pass over the night's alerts: counts, plot values, and the first max_alerts alerts."""
    night = Night(date=date)
    for alert in alerts:
        night.total += 1
        if alert.mjd is not None:
            night.hours[math.floor(alert.mjd * 24)] += 1
        night.bands[alert.band or "?"] += 1
        if alert.extendedness_median is not None:
            night.extendedness.setdefault(alert.ss_source, array("d")).append(
                alert.extendedness_median)
        if alert.ra is not None and alert.dec is not None:
            night.ra.append(alert.ra)
            night.dec.append(alert.dec)
            night.ss_source.append(alert.ss_source)
        if len(night.shown) < max_alerts:
            night.shown.append(alert)
    return night


def hour_label(hour_key: int) -> str:
    moment = dt.datetime(1970, 1, 1) + dt.timedelta(hours=hour_key - MJD_UNIX_EPOCH * 24)
    return moment.strftime("%H")


def hourly_counts(hours: Counter[int]) -> list[tuple[str, int]]:
    """(UTC hour, alerts) in time order with empty hours kept: a night crosses UTC midnight, so
    23 comes before 00."""
    if not hours:
        return []
    return [(hour_label(k), hours[k]) for k in range(min(hours), max(hours) + 1)]


def finish_counts(figure: Figure, axes: Axes, xlabel: str, title: str, out: Path) -> Path:
    """Label a chart of alert counts (whole numbers on the y axis) and save it."""
    axes.set_xlabel(xlabel)
    axes.set_ylabel("alerts")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title(title)
    figure.tight_layout()
    return save_figure(figure, out)


def plot_hours(night: Night, out: Path) -> Path:
    figure = new_figure(6, 3.2)
    axes = figure.add_subplot()
    counts = hourly_counts(night.hours)
    if counts:
        axes.bar(range(len(counts)), [n for _, n in counts], color="#4477aa")
        axes.set_xticks(range(len(counts)), [label for label, _ in counts])
    return finish_counts(figure, axes, "hour (UTC, from mjd)", "alerts per hour", out)


def plot_bands(night: Night, out: Path) -> Path:
    figure = new_figure(6, 3.2)
    axes = figure.add_subplot()
    bands = sorted(night.bands, key=band_order)
    axes.bar(bands, [night.bands[b] for b in bands],
             color=[BAND_COLOURS.get(b, "#888888") for b in bands])
    return finish_counts(figure, axes, "band (filterName)", "alerts per band", out)


def plot_extendedness(night: Night, out: Path) -> Path:
    """extendednessMedian histogram, one outline per SSSource answer."""
    figure = new_figure(6, 3.2)
    axes = figure.add_subplot()
    bins = [i / 20 for i in range(21)]
    for answer in ("yes", "no", "unknown"):
        values = night.extendedness.get(answer)
        if values:
            axes.hist(np.asarray(values), bins=bins, histtype="step", lw=2,
                      color=SS_COLOURS[answer], label=f"SSSource {answer} ({len(values)})")
    if not night.extendedness:
        axes.text(0.5, 0.5, "no extendedness values this night", transform=axes.transAxes,
                  ha="center", va="center")
    else:
        axes.legend(fontsize=8)
    return finish_counts(figure, axes, "extendednessMedian", "extendedness median by SSSource", out)


def mollweide_x(ra_deg: np.ndarray) -> np.ndarray:
    """RA to Mollweide longitude in radians, east to the left as on the sky."""
    wrapped = (np.asarray(ra_deg) + 180.0) % 360.0 - 180.0
    return np.radians(-wrapped)


def plot_sky(night: Night, out: Path) -> Path:
    figure = new_figure(8, 4.4)
    axes = figure.add_subplot(projection="mollweide")
    ra, dec = np.asarray(night.ra), np.asarray(night.dec)
    answers = np.asarray(night.ss_source)
    step = max(1, len(ra) // SKY_MAP_MAX_POINTS)
    marker_size = 16 if len(ra) < 1000 else 2
    for answer in ("no", "yes", "unknown"):
        chosen = (answers == answer)[::step] if len(answers) else np.zeros(0, bool)
        if chosen.any():
            axes.scatter(mollweide_x(ra[::step][chosen]), np.radians(dec[::step][chosen]),
                         s=marker_size, color=SS_COLOURS[answer], label=f"SSSource {answer}")
    ticks = np.arange(-150, 181, 30)
    axes.set_xticks(np.radians(ticks), [f"{(-t) % 360:d}°" for t in ticks], fontsize=7)
    axes.grid(True, alpha=0.4)
    axes.set_title("positions (RA, Dec; Mollweide)" +
                   (f", every {step}th alert" if step > 1 else ""), pad=14)
    if len(ra):
        axes.legend(loc="lower right", fontsize=7, bbox_to_anchor=(1.05, -0.05))
    figure.subplots_adjust(left=0.04, right=0.96, top=0.88, bottom=0.06)
    return save_figure(figure, out)


def write_thumbnail(path: Path, out: Path) -> Path | None:
    """A small PNG of one cutout (zscale + asinh, north up as stored), or None without one."""
    cutout = load_cutout(path)
    if cutout is None:
        return None
    pixels = np.nan_to_num(scaled_for_display(cutout.image), nan=0.0)
    pixels = np.kron(pixels, np.ones((THUMBNAIL_ZOOM, THUMBNAIL_ZOOM)))
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_name(f".tmp-{out.name}")
    mpl_image.imsave(temp, pixels, cmap="gray", vmin=0.0, vmax=1.0, origin="lower",
                     format="png")
    os.replace(temp, out)
    return out


def archived_light_curves(output_dir: Path, shown: Sequence[Alert],
                          folder: Path) -> dict[int, Path]:
    """lightcurves/<diaObjectId>.png for each shown object the archive holds (not the
    solar-system alerts' diaObjectId 0); {} without an archive."""
    wanted = {a.dia_object_id for a in shown if a.dia_object_id and a.ss_source != "yes"}
    written = {}
    for dia_object_id, points in light_curves(output_dir, wanted).items():
        if points:
            written[dia_object_id] = plot_light_curve(points, dia_object_id,
                                                      folder / f"{dia_object_id}.png")
    return written


def link(path: Path, folder: Path) -> str:
    """A relative URL from index.html's folder, escaped for an attribute."""
    return html.escape(path.relative_to(folder).as_posix(), quote=True)


def alert_row_html(alert: Alert, folder: Path, thumbnails: dict[str, Path | None],
                   preview: Path, light_curve: Path | None = None) -> str:
    e = html.escape
    cells = []
    for kind, thumb in thumbnails.items():
        if thumb is None:
            cells.append('<td class="thumb none">no cutout</td>')
        else:
            cells.append(f'<td class="thumb"><a href="{link(preview, folder)}">'
                         f'<img src="{link(thumb, folder)}" alt="{e(kind)}" '
                         f'title="{e(kind)}" width="72" height="72"></a></td>')
    utc = alert.observed_utc
    dia_object = e(fmt(alert.dia_object_id, "d"))
    if light_curve is not None:
        dia_object = (f'<a href="{link(light_curve, folder)}" title="light curve from the '
                      f'archive">{dia_object}</a>')
    values = [
        f'<a href="{link(preview, folder)}">{e(str(alert.dia_source_id))}</a>',
        e(alert.alert_id), dia_object, e(alert.band or "—"),
        e(fmt(alert.mjd, ".5f")), e(utc.strftime("%H:%M:%S") if utc else "—"),
        e(f"{fmt(alert.ps_flux)} ± {fmt(alert.ps_flux_err)}"),
        e(fmt(alert.extendedness_median, ".3f")), e(fmt(alert.extendedness_min, ".3f")),
        e(fmt(alert.extendedness_max, ".3f")),
        e(alert.ss_source + (f" ({alert.ss_object_id})" if alert.ss_object_id else "")),
    ]
    return "<tr>" + "".join(cells) + "".join(f"<td>{v}</td>" for v in values) + "</tr>"


TABLE_HEAD = ("science", "template", "difference", "diaSourceId", "alertId", "diaObjectId",
              "band", "mjd", "UTC", "psFlux ± err (nJy)", "ext. median", "ext. min",
              "ext. max", "SSSource")

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.5em; }
.plots img { max-width: 48%; margin: 0.3em; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 2px 5px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; position: sticky; top: 0; }
td.thumb { padding: 1px; text-align: center; }
td.none { color: #888; width: 72px; font-size: 0.8em; }
.note { background: #fff6d6; border: 1px solid #e0c060; padding: 0.5em; }
"""


def page_html(night: Night, folder: Path, plots: Sequence[Path], rows: Sequence[str],
              csv_file: str) -> str:
    """The whole page; every text that came from data is escaped by the caller or here."""
    e = html.escape
    shown = len(night.shown)
    note = ""
    if night.total > shown:
        note = (f'<p class="note">The night has {night.total:,} alerts; the table shows the '
                f"first {shown:,} (in the CSV's order) with thumbnails and previews. "
                f"All {night.total:,} are counted in the plots and listed in "
                f"<code>data/{e(csv_file)}</code>.</p>")
    images = "".join(
        f'<img src="{link(p, folder)}" alt="{e(p.stem)}" class="{e(p.stem)}">' for p in plots)
    bands = ", ".join(f"{e(b)}: {n:,}" for b, n in sorted(night.bands.items(),
                                                          key=lambda i: band_order(i[0])))
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>LSST alerts, night {e(night.date)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>LSST alerts, night {e(night.date)} (dayObs)</h1>
<p>{night.total:,} alerts from <code>data/{e(csv_file)}</code>; per band: {bands or "—"}.
SSSource is the CSV's <code>hasSSSource</code> column when present, otherwise derived from
<code>diaObjectId</code> (0 for solar-system alerts in Rubin data). Generated {e(generated)}.</p>
{note}
<h2>Counts and distributions</h2>
<div class="plots">{images}</div>
<h2>Alerts</h2>
<p>Click a thumbnail or a diaSourceId for the full preview (cutouts with north/east arrows and
scale bar, key values, light curve when the object has other alerts). A diaObjectId links to
the object's whole light curve from the archive (every detection and forced point it holds,
across nights; <code>lsst-alerts lightcurve ID</code> prints it).</p>
<table>
<thead><tr>{"".join(f"<th>{e(h)}</th>" for h in TABLE_HEAD)}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
</body>
</html>
"""


def write_report(output_dir: Path, date: str | None = None, out: Path | None = None,
                 max_alerts: int = 500) -> Path:
    """Write one night's report folder (default DIR/reports/<date>/); returns index.html's path.

    Raises NightNotFound when there is no CSV for the night (or none at all)."""
    output_dir = Path(output_dir)
    csv_path = night_csv(output_dir, date)
    night_date = csv_path.name.removeprefix("lsst_alerts_").removesuffix(".csv")
    folder = Path(out) if out else output_dir / "reports" / night_date
    folder.mkdir(parents=True, exist_ok=True)
    night = summarize_night(night_date, read_night(csv_path), max(0, max_alerts))
    plots = [plot_hours(night, folder / "hours.png"), plot_bands(night, folder / "bands.png"),
             plot_extendedness(night, folder / "extendedness.png"),
             plot_sky(night, folder / "sky.png")]
    object_rows = histories(output_dir, night.shown)
    curves = archived_light_curves(output_dir, night.shown, folder / "lightcurves")
    rows = []
    for alert in night.shown:
        name = str(alert.dia_source_id)
        thumbnails = {
            kind: write_thumbnail(output_dir / path, folder / "thumbnails" / f"{name}_{kind}.png")
            if path else None
            for kind, path in alert.cutout_paths.items()
        }
        history = object_rows.get(alert.object_key, [alert]) if alert.object_key else [alert]
        preview = draw_preview(output_dir, alert, history, folder / "previews" / f"{name}.png")
        rows.append(alert_row_html(alert, folder, thumbnails, preview,
                                   curves.get(alert.dia_object_id or 0)))
    index = folder / "index.html"
    temp = folder / ".tmp-index.html"
    temp.write_text(page_html(night, folder, plots, rows, csv_name(night_date)), encoding="utf-8")
    os.replace(temp, index)
    return index
