"""Commands to look at what came in: `show` one alert, `report` one night, and the `demo` that
makes a night to look at."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from .options import NightDate, collection_options, collection_settings


@click.command()
@click.argument("dia_source_id", type=int)
@collection_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="PNG to write (default DIR/previews/<diaSourceId>.png).")
def show(dia_source_id: int, config_file: Path | None, output_dir: Path | None,
         out: Path | None) -> None:
    """Render one alert's cutouts, key values and light curve to a PNG; print its path.

    \b
    Example:
      lsst-alerts show 170094456480989258 --output-dir lsst_alerts
    """
    from ..look import render_preview

    settings = collection_settings(config_file, output_dir, readable=("data",))
    click.echo(render_preview(settings.output_dir, dia_source_id, out))


@click.command()
@click.option("--date", type=NightDate(),
              help="Night (dayObs) to report, YYYYMMDD or YYYY-MM-DD (default: newest CSV).")
@collection_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for index.html and PNGs (default DIR/reports/<date>/).")
@click.option("--max-alerts", type=click.IntRange(min=0), default=500, show_default=True,
              help="At most this many alerts get thumbnails and previews.")
def report(date: dt.date | None, config_file: Path | None, output_dir: Path | None,
           out: Path | None, max_alerts: int) -> None:
    """Write a static HTML report of one night (opens from disk); print index.html's path.

    \b
    Example:
      lsst-alerts report --date 20260305 --output-dir lsst_alerts
    """
    from ..look import write_report

    settings = collection_settings(config_file, output_dir, readable=("data",))
    click.echo(write_report(settings.output_dir, None if date is None else date.strftime("%Y%m%d"),
                            out, max_alerts))


@click.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="./lsst_alerts_demo",
              show_default=True, help="Folder for everything the demo writes.")
@click.option("--count", type=click.IntRange(min=1), default=3000, show_default=True,
              help="Alerts in the simulated night.")
@click.option("--seed", type=int, default=None, help="Random seed [default: fixed].")
def demo(out_dir: str, count: int, seed: int | None) -> None:
    """Simulate a night of alerts and run them through the pipeline, no broker needed.

    \b
    Example:
      lsst-alerts demo --out /tmp/demo --count 500
    """
    from ..demo import DEMO_SEED, run_demo

    report = run_demo(out_dir, count, DEMO_SEED if seed is None else seed, log=click.echo)
    click.echo(f"demo done in {report.seconds:.1f} s: {report.written_csv:,} alerts written "
               f"to {report.output}")
    if report.exit_code:
        sys.exit(report.exit_code)
