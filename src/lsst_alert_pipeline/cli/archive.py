"""`lsst-alerts query`, `lightcurve` and `compact`: the Parquet archive from the command line."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import sys
from collections.abc import Sequence
from dataclasses import astuple
from pathlib import Path
from typing import Any

import click

from .. import exitcodes
from ..errors import ArchiveDamaged
from ..ops.query import EXAMPLES, QueryError
from .options import NightDate, collection_options, collection_settings, ids_as_text

FORMATS = click.Choice(["table", "csv", "json"])
FORMAT_HELP = ("json: one object per row (JSON Lines), ids (columns named ...Id) as strings, "
               "since 64-bit ids lose digits as JSON numbers; bytes in base64.")
TABLE_CELL_WIDTH = 40
_EXAMPLE_TEXT = "\n".join(f"  # {what}\n  lsst-alerts query \"{sql}\"" for what, sql in EXAMPLES)


def _plain(value: Any) -> Any:
    """A value JSON can hold: bytes as base64, dates as ISO text, nested values kept."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value)):,} bytes>"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | dict):
        return json.dumps(_plain(value))
    return str(value)


def print_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], form: str) -> None:
    """Rows as an aligned table, CSV, or JSON Lines (one object per row)."""
    if form == "json":
        for row in rows:
            click.echo(json.dumps(ids_as_text({c: _plain(v)
                                               for c, v in zip(columns, row, strict=True)})))
        return
    if form == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_text(v) for v in row] for row in rows)
        return
    cells = [[_text(v) for v in row] for row in rows]
    cells = [[c if len(c) <= TABLE_CELL_WIDTH else c[:TABLE_CELL_WIDTH - 1] + "…" for c in row]
             for row in cells]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]
    click.echo("  ".join(name.ljust(w) for name, w in zip(columns, widths, strict=True)))
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    click.echo(f"({len(rows):,} rows)", err=True)


def _fail(exc: QueryError) -> None:
    click.echo(f"query error: {exc}", err=True)
    sys.exit(exitcodes.CONFIG_ERROR)


@click.command(epilog=f"\b\nExamples:\n{_EXAMPLE_TEXT}")
@click.argument("sql")
@collection_options
@click.option("--format", "form", type=FORMATS, default="table", show_default=True,
              help=FORMAT_HELP)
def query(sql: str, config_file: Path | None, output_dir: Path | None, form: str) -> None:
    """Run SQL over the archive (DuckDB, embedded) as the table `alerts`.

    Its columns: the CSV's (alertId, diaSourceId, diaObjectId, ra, dec, mjd, filterName,
    psFlux, psFluxErr, extendednessMedian/Min/Max), every diaSource field under its schema
    name, diaObject_* fields, prvDiaSources and prvDiaForcedSources (lists of structs), dayObs,
    topic/partition/offset and packet (the message's exact bytes). Bad SQL exits with code 2.
    """
    from ..ops.query import run_query

    settings = collection_settings(config_file, output_dir, readable=("archive",))
    try:
        result = run_query(settings.output_dir, sql)
    except QueryError as exc:
        _fail(exc)
        return
    print_rows(result.columns, result.rows, form)


@click.command()
@click.argument("dia_object_id", type=int)
@collection_options
@click.option("--format", "form", type=FORMATS, default="table", show_default=True,
              help=FORMAT_HELP)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw flux against time per band with error bars into this PNG.")
def lightcurve(dia_object_id: int, config_file: Path | None, output_dir: Path | None, form: str,
               plot: Path | None) -> None:
    """Every detection and forced point of one diaObject across all archived nights.

    Detections once per diaSourceId (the triggering diaSource and prvDiaSources), forced
    photometry (prvDiaForcedSources) once per visit, sorted by time.

    \b
    Example:
      lsst-alerts lightcurve 313893023095193658 --plot lc.png

    diaObjectId 0 is Rubin's "no object" (every solar-system alert): it is refused; query a
    solar-system object by its ssObjectId instead.
    """
    from ..look.lightcurve import COLUMNS, light_curve

    if dia_object_id == 0:
        raise click.BadParameter(
            "0 is Rubin's \"no object\", the diaObjectId of every solar-system alert, not one "
            "object; query a solar-system object by its ssObjectId, e.g. lsst-alerts query "
            "\"SELECT diaSourceId, mjd, band, psfFlux FROM alerts WHERE ssObjectId = N\"",
            param_hint="DIA_OBJECT_ID")
    if plot is not None and plot.suffix.lower() != ".png":
        raise click.BadParameter(f"{plot}: the plot is written as PNG; name the file .png",
                                 param_hint="--plot")
    settings = collection_settings(config_file, output_dir, readable=("archive",))
    try:
        points = light_curve(settings.output_dir, dia_object_id)
        if plot is not None:
            from ..look.lightcurve import plot_light_curve

            plot_light_curve(points, dia_object_id, plot)
    except QueryError as exc:
        _fail(exc)
        return
    if not points:
        click.echo(f"no points for diaObjectId {dia_object_id} in the archive", err=True)
        sys.exit(exitcodes.CONFIG_ERROR)
    print_rows(COLUMNS, [astuple(point) for point in points], form)
    if plot is not None:
        click.echo(f"wrote {plot}", err=True)


@click.command()
@collection_options
@click.option("--date", type=NightDate(), help="Only this night (dayObs), YYYYMMDD or YYYY-MM-DD.")
def compact(config_file: Path | None, output_dir: Path | None, date: dt.date | None) -> None:
    """Merge each night's small archive files into one (safe while a consumer runs).

    A night with a missing or damaged file is not merged (merging would drop its rows): the
    other nights are, and the command exits 10 naming the file; `verify --repair` mends it.

    \b
    Example:
      lsst-alerts compact --output-dir lsst_alerts
    """
    from ..ops.compact import compact as run_compact

    settings = collection_settings(config_file, output_dir)
    report = run_compact(settings.output_dir, None if date is None else date.isoformat())
    click.echo(report.line())
    if report.refused:
        raise ArchiveDamaged("; ".join(report.refused))
