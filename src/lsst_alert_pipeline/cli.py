"""The `lsst-alerts` command line: parses, calls the library, prints. No logic lives here."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click

from . import __version__
from .decode import decode_message
from .errors import ConfigurationError, InvalidMessage
from .normalize import normalize
from .sources import alert_files

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_NOT_DELIVERED = 3


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




def _advancing(alerts: Iterable[dict[str, Any]], bar: Any) -> Iterator[dict[str, Any]]:
    for alert in alerts:
        yield alert
        bar.update(1)


@main.command()
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
    from .publish import parse_kafka_url, publish
    from .schemas import latest_version
    from .simulate import (
        dia_source_id_of,
        encode_wire,
        iter_wire_files,
        simulate_alerts,
        simulated_versions,
        write_container,
    )

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
    alerts = simulate_alerts(count, schema_version=version, sso_fraction=sso_fraction, seed=seed,
                             history=history)
    started = time.monotonic()
    written_bytes = 0
    errors: list[str] = []
    with click.progressbar(length=count, label="simulating", file=sys.stderr) as bar:
        if target is not None:
            messages = ((str(dia_source_id_of(a)).encode("ascii"), encode_wire(a, version))
                        for a in alerts)
            report = publish(messages, target, on_sent=lambda: bar.update(1))
            errors = report.errors
        elif output_format == "ocf":
            write_container(_advancing(alerts, bar), out, version)
            written_bytes = Path(out).stat().st_size
        else:
            for path in iter_wire_files(alerts, out, version):
                written_bytes += path.stat().st_size
                bar.update(1)
    seconds = max(time.monotonic() - started, 1e-9)
    size = f", {written_bytes / count / 1024:,.0f} KB per alert" if written_bytes else ""
    click.echo(f"simulated {count:,} alerts (schema {version}, seed {seed}) to {out} "
               f"in {seconds:.1f} s ({count / seconds:,.0f} alerts/s{size})")
    if errors:
        for error in errors[:10]:
            click.echo(f"error: {error}", err=True)
        click.echo(f"{len(errors):,} messages were not delivered", err=True)
        sys.exit(EXIT_NOT_DELIVERED)


@main.command()
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
    from .demo import DEMO_SEED, run_demo

    report = run_demo(out_dir, count, DEMO_SEED if seed is None else seed, log=click.echo)
    click.echo(f"demo done in {report.seconds:.1f} s: {report.written:,} alerts in "
               f"{report.incoming}")
    if report.bad:
        sys.exit(EXIT_BAD_INPUT)
