"""`lsst-alerts verify`: check every alert the ledger vouches for against the files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .. import exitcodes


@click.command()
@click.option("--output-dir", type=click.Path(path_type=Path), default=Path("lsst_alerts"),
              show_default=True)
@click.option("--repair", is_flag=True, help="Forget the ledger entries of alerts not whole on "
              "disk, so a replay (consume --reset-offsets earliest) writes them again.")
@click.option("--json", "as_json", is_flag=True, help="The table and problems as JSON.")
def verify(output_dir: Path, repair: bool, as_json: bool) -> None:
    """Check each alert in the ledger: its CSV row once, its cutouts present and valid FITS.

    Exits 0 when everything is whole, 1 when something is not (each problem is listed).

    \b
    Example:
      lsst-alerts verify --output-dir lsst_alerts
      lsst-alerts verify --output-dir lsst_alerts --repair
      lsst-alerts consume --reset-offsets earliest ...   # rewrites what the broker still holds
    """
    from ..ops.verify import verify as run_verify
    from ..pipeline.outputdir import AlreadyRunning

    try:
        report = run_verify(output_dir, repair)
    except AlreadyRunning as exc:
        click.echo(f"{exc}; verify when it has finished", err=True)
        sys.exit(exitcodes.ALREADY_RUNNING)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(f"{'night':<10} {'in ledger':>10} {'whole':>10} {'problems':>9}")
        for check in report.nights.values():
            click.echo(f"{check.night:<10} {check.in_ledger:>10,} {check.whole:>10,} "
                       f"{len(check.problems):>9,}")
        for check in report.nights.values():
            for problem in check.problems:
                click.echo(f"  {check.night}: {problem}")
        if report.forgotten:
            click.echo(f"forgot {report.forgotten:,} broken alerts in the ledger: replay with "
                       "--reset-offsets earliest to write again those the broker still holds; "
                       "the rest are gone for good")
        click.echo("everything the ledger vouches for is on disk" if report.ok else
                   "some alerts the ledger vouches for are not whole on disk")
    sys.exit(0 if report.ok else 1)
