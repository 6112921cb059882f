"""Commands on alerts themselves: `inspect` them, `simulate` them, run the filter on them
(`filter-test`), and `relay` the passing ones as ANTARES would."""

from __future__ import annotations

import json
import sys

import click

from .. import exitcodes
from ..decode.batch import decode_files
from ..decode.normalize import INSPECT_COLUMNS
from ..errors import ConfigurationError, InvalidMessage
from .options import EXIT_BAD_INPUT, EXIT_NOT_DELIVERED, ids_as_text, setup_logging


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="One JSON object per alert (JSON Lines); "
              "ids as strings, since 64-bit ids lose digits as JSON numbers.")
def inspect(paths: tuple[str, ...], as_json: bool) -> None:
    """Decode alert files (wire format, Avro container, ANTARES locus) and print normalized records.

    \b
    Example:
      lsst-alerts inspect ../shared/real-alerts/rubin/derived_wire_v10_0
      lsst-alerts inspect --json alerts/ | head -3
    """
    if not as_json:
        click.echo("  ".join(INSPECT_COLUMNS))
    files = bad = 0
    try:
        for path, outcome in decode_files(paths):
            files += 1
            if isinstance(outcome, InvalidMessage):
                bad += 1
                click.echo(f"error: {path}: {outcome.reason}", err=True)
                continue
            for record in outcome:
                click.echo(json.dumps(ids_as_text(record.as_json())) if as_json
                           else record.inspect_row())
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    if bad:
        click.echo(f"{bad} of {files} files could not be decoded", err=True)
        sys.exit(EXIT_BAD_INPUT)


@click.command()
@click.option("--count", type=click.IntRange(min=1), default=1000, show_default=True,
              help="How many alerts.")
@click.option("--out", required=True,
              help="A folder (wire files), an .avro file (--format ocf) or kafka://HOST:PORT/TOPIC.")
@click.option("--schema", "schema_version", default=None,
              help="Alert schema version, 7.0 or later [default: the latest bundled].")
@click.option("--sso-fraction", type=click.FloatRange(0.0, 1.0), default=0.1, show_default=True,
              help="Share of solar-system alerts.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed: the same seed writes byte-identical alerts.")
@click.option("--format", "output_format", type=click.Choice(["wire", "ocf"]), default="wire",
              show_default=True, help="One wire-format file per alert, or one Avro container.")
@click.option("--history", type=click.IntRange(min=0), default=None,
              help="Give every non-solar-system alert this many prvDiaSources [default: a "
                   "realistic mix, 0-5 for new transients, 100-400 for variable stars].")
def simulate(count: int, out: str, schema_version: str | None, sso_fraction: float, seed: int,
             output_format: str, history: int | None) -> None:
    """Simulate realistic Rubin alerts: wire-format files, an Avro container, or a Kafka topic.

    \b
    Examples:
      lsst-alerts simulate --count 1000 --out alerts/
      lsst-alerts simulate --count 50 --schema 9.0 --format ocf --out night.avro
      lsst-alerts simulate --count 100000 --out kafka://localhost:9092/lsst-alerts
    """
    from ..decode.schemas import latest_version
    from ..simulate import simulated_versions
    from ..simulate.output import simulate_to
    from ..simulate.publish import parse_kafka_url

    version = schema_version or latest_version()
    if version not in simulated_versions():
        raise click.BadParameter(f"choose one of {', '.join(simulated_versions())}",
                                 param_hint="--schema")
    try:
        target = parse_kafka_url(out)
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc), param_hint="--out") from exc
    if target is not None and output_format == "ocf":
        raise click.BadParameter("a Kafka topic takes wire-format messages only",
                                 param_hint="--format")
    with click.progressbar(length=count, label="simulating", file=sys.stderr) as bar:
        report = simulate_to(out, count, version, sso_fraction=sso_fraction, seed=seed,
                             history=history, output_format="ocf" if output_format == "ocf"
                             else "wire", on_alert=lambda: bar.update(1))
    click.echo(report.line())
    if report.errors:
        for error in report.errors[:10]:
            click.echo(f"error: {error}", err=True)
        click.echo(f"{len(report.errors):,} messages were not delivered", err=True)
        sys.exit(EXIT_NOT_DELIVERED)


@click.command("filter-test")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--filter",
    "filter_path",
    type=click.Path(dir_okay=False),
    help="Filter file to run (default: the bundled antares_extendedness_filter.py).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per alert (JSON Lines).")
@click.option("--devkit", is_flag=True,
              help="Build every alert's full DevKit locus (the reference; ~10x slower).")
def filter_test(paths: tuple[str, ...], filter_path: str | None, as_json: bool,
                devkit: bool) -> None:
    """Run the ANTARES filter on alert files: the DevKit's verdict on each, as ANTARES gives it.

    Prints passed / failed / skipped / errored counts, the reason for each failure and the
    filter's time per locus. The filter file's own code decides on a light locus read straight
    from the batch decoder; --devkit builds the DevKit's full locus for every alert instead (a
    filter file edited beyond its constants always runs that way). Exits 1 only if an alert
    errored.

    \b
    Example:
      lsst-alerts filter-test ../shared/real-alerts/rubin/derived_wire_v10_0
      lsst-alerts filter-test --filter my_filter.py --json alerts/ | head -3
    """
    # Imported here: the DevKit pulls in pandas and astropy, which the other commands never need.
    from ..filter.devkit_run import load_filter, run_filter, slack_channel_warning, summarize
    from ..filter.fast import FastFilter
    from ..filter.fast import run_filter as run_fast

    try:
        filter_class = load_filter(filter_path)
    except Exception as exc:  # a user's filter file can fail to import in any way: say why
        raise click.ClickException(f"cannot load the filter {filter_path}: {exc!r}") from exc
    if warning := slack_channel_warning(filter_class):
        click.echo(warning, err=True)
    fast_filter = None if devkit else FastFilter(filter_class)
    if fast_filter is not None and fast_filter.fallback:
        click.echo(f"{fast_filter.fallback}: every alert runs through the DevKit", err=True)
    results = []
    try:
        for result in (run_filter(paths, filter_class) if fast_filter is None
                       else run_fast(paths, fast_filter)):
            results.append(result)
            click.echo(json.dumps(result.as_json()) if as_json else result.line())
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    summary = summarize(results)
    # After a fallback, said once above, the closing line is --devkit's.
    fast = fast_filter is not None and not fast_filter.fallback
    click.echo(summary.line(filter_class.__name__, fast_filter.paths_line() if fast_filter
                            and fast else None), err=as_json)
    if summary.counts["errored"]:
        sys.exit(EXIT_BAD_INPUT)


@click.command()
@click.option("--from", "from_", required=True,
              help="Alert files or folder, or kafka://HOST:PORT/TOPIC of raw Rubin alerts.")
@click.option("--to", "to", required=True, help="kafka://HOST:PORT/TOPIC for passing alerts.")
@click.option("--format", "relay_format", type=click.Choice(["wire", "antares"]),
              default="wire", show_default=True,
              help="wire: the original Rubin bytes; antares: ANTARES locus messages.")
@click.option("--filter", "filter_path", type=click.Path(dir_okay=False),
              help="Filter file (default: the bundled antares_extendedness_filter.py).")
@click.option("--group-id", default="lsst-alerts-relay", show_default=True,
              help="Consumer group when reading from Kafka.")
def relay(from_: str, to: str, relay_format: str, filter_path: str | None,
          group_id: str) -> None:
    """Run the filter over raw Rubin alerts and publish what passes: ANTARES, on one machine.

    \b
    Example (the whole chain on one machine):
      lsst-alerts simulate --count 500 --out incoming/
      lsst-alerts relay --from incoming/ --to kafka://127.0.0.1:9092/lsst-extendedness-filtered
      lsst-alerts consume --bootstrap-servers 127.0.0.1:9092 --topic lsst-extendedness-filtered
    """
    from ..filter.devkit_run import load_filter
    from ..filter.relay import RelayDeliveryError, relay_between
    from ..sources.kafka import BrokerUnreachable

    setup_logging("INFO")
    try:
        summary = relay_between(from_, to, load_filter(filter_path),
                                "antares" if relay_format == "antares" else "wire", group_id)
    except (ConfigurationError, FileNotFoundError) as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(exitcodes.CONFIG_ERROR)
    except (BrokerUnreachable, RelayDeliveryError) as exc:
        click.echo(str(exc), err=True)
        sys.exit(exitcodes.BROKER_UNREACHABLE)
    click.echo(summary.line())
