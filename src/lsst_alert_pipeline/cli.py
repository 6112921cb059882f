"""The `lsst-alerts` command line: parses, calls the library, prints. No logic lives here."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .decode import decode_message
from .errors import InvalidMessage
from .normalize import normalize
from .sources import alert_files

if TYPE_CHECKING:
    from .filtering import FilterResult

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


def _filter_line(result: FilterResult) -> str:
    took = "" if result.seconds is None else f" ({result.seconds * 1000:.2f} ms)"
    return f"{result.outcome}: {result.diaSourceId or result.path}{took}: {result.reason}"


@main.command("filter-test")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--filter",
    "filter_path",
    type=click.Path(dir_okay=False),
    help="Filter file to run (default: the bundled antares_extendedness_filter.py).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per alert (JSON Lines).")
def filter_test(paths: tuple[str, ...], filter_path: str | None, as_json: bool) -> None:
    """Run the ANTARES filter through the real DevKit on alert files, as ANTARES would.

    Prints passed / failed / skipped / errored counts, the reason for each failure and the time
    per locus as the DevKit's filter_report measures it. Exits 1 only if an alert errored.

    \b
    Example:
      lsst-alerts filter-test ../shared/real-alerts/rubin/derived_wire_v10_0
      lsst-alerts filter-test --filter my_filter.py --json alerts/ | head -3
    """
    # Imported here: the DevKit pulls in pandas and astropy, which the other commands never need.
    from .filtering import load_filter, run_filter, summarize

    try:
        filter_class = load_filter(filter_path)
    except Exception as exc:  # a user's filter file can fail to import in any way: say why
        raise click.ClickException(f"cannot load the filter {filter_path}: {exc!r}") from exc
    results = []
    try:
        for result in run_filter(paths, filter_class):
            results.append(result)
            click.echo(json.dumps(result.as_json()) if as_json else _filter_line(result))
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    summary = summarize(results)
    counts = summary.counts
    line = ", ".join(f"{counts[name]} {name}" for name in counts)
    if summary.median_seconds is not None and summary.max_seconds is not None:
        line += (
            f"; DevKit time per locus: median {summary.median_seconds * 1000:.2f} ms, "
            f"max {summary.max_seconds * 1000:.2f} ms"
        )
    click.echo(f"{filter_class.__name__}: {line}", err=as_json)
    if counts["errored"]:
        sys.exit(EXIT_BAD_INPUT)
