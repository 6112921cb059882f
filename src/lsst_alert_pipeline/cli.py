"""The `lsst-alerts` command line: parses, calls the library, prints. No logic lives here."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from . import __version__
from .decode import decode_message
from .errors import InvalidMessage
from .normalize import normalize
from .sources import alert_files

EXIT_OK = 0
EXIT_BAD_INPUT = 1


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lsst-alerts")
def main() -> None:
    """Filter LSST alerts on ANTARES and collect what passes into daily CSV files and cutouts."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="One JSON object per alert (JSON Lines).")
def inspect(paths: tuple[str, ...], as_json: bool) -> None:
    """Decode alert files (wire format, Avro container, ANTARES locus) and print normalized records.

    \b
    Example:
      lsst-alerts inspect ../shared/real-alerts/rubin/derived_wire_v10_0
      lsst-alerts inspect --json alerts/ | head -3
    """
    shown = ("alertId", "diaSourceId", "filterName", "mjd", "psFlux", "extendednessMedian",
             "extendednessMin", "extendednessMax", "hasSSSource")
    if not as_json:
        click.echo("  ".join(shown))
    bad = 0
    try:
        files = list(alert_files(paths))
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    for path in files:
        try:
            records = [normalize(alert) for alert in decode_message(path.read_bytes())]
        except InvalidMessage as exc:
            bad += 1
            click.echo(f"error: {path}: {exc.reason}", err=True)
            continue
        for record in records:
            if as_json:
                click.echo(json.dumps(record.as_json()))
            else:
                click.echo("  ".join(_cell(getattr(record, name)) for name in shown))
    if bad:
        click.echo(f"{bad} of {len(files)} files could not be decoded", err=True)
        sys.exit(EXIT_BAD_INPUT)


