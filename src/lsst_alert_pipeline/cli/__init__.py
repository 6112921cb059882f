"""The `lsst-alerts` command line: parses, calls the library, prints. No logic lives here."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import __version__, config, exitcodes
from ..config import Settings
from ..decode.formats import decode_message
from ..decode.normalize import normalize
from ..errors import ConfigurationError, InvalidMessage
from ..pipeline import consume as consumer
from ..sources.files import alert_files

if TYPE_CHECKING:
    from ..filter.devkit_run import FilterResult

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_NOT_DELIVERED = 3
log = logging.getLogger("lsst_alert_pipeline")


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




def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%Y-%m-%dT%H:%M:%S%z", stream=sys.stderr, force=True)


def _kafka_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="-X")
        out[key.strip()] = value
    return out


def consumer_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The settings flags shared by `consume` and `config check`."""
    options = [
        click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                     help="TOML configuration file (default ./lsst_alerts.toml if present)."),
        click.option("--from", "from_paths", multiple=True, type=click.Path(),
                     help="Read alert files or folders instead of Kafka."),
        click.option("--output-dir", type=click.Path(path_type=Path),
                     help="Where data/, cutouts/ go (default ./lsst_alerts)."),
        click.option("--bootstrap-servers", help="Kafka bootstrap.servers."),
        click.option("--topic", "topics", multiple=True, help="Topic(s) to read."),
        click.option("--group-id", help="Kafka consumer group (group.id)."),
        click.option("--preset", type=click.Choice(["antares"]),
                     help="antares: SASL_SSL + PLAIN, ANTARES's CA, client. topic prefix."),
        click.option("-X", "kafka_pairs", multiple=True, metavar="KEY=VALUE",
                     help="Any librdkafka property, e.g. -X security.protocol=SASL_SSL."),
        click.option("--batch-size", type=int, help="Messages per durable batch (500)."),
        click.option("--max-messages", type=int, help="Stop after this many messages."),
        click.option("--duration", type=float, help="Stop after this many seconds."),
        click.option("--idle-timeout", type=float,
                     help="Give up after this many seconds without a message while lag > 0."),
        click.option("--broker-timeout", type=float,
                     help="Give up after the broker is unreachable this long (300 s)."),
        click.option("--extra-columns", help="Extra CSV columns, comma separated: "
                     "ssObjectId,hasSSSource,snr,reliability,dayObs,extendednessCount."),
        click.option("--schema", help="Force the reader schema: a bundled version or .avsc."),
        click.option("--member", help="Scale-out: this consumer's name in the group; it "
                     "writes members/NAME/ and shares the output directory's ledger."),
        click.option("--reset-offsets", help="Move the group's offsets first: earliest, latest "
                     "or an ISO-8601 time (first offset at or after it)."),
        click.option("--archive/--no-archive", "archive", default=None,
                     help="Keep every alert whole in OUTPUT_DIR/archive/ as Parquet (on)."),
        click.option("--fetch-cutouts/--no-fetch-cutouts", "antares_fetch_cutouts",
                     default=None, help="ANTARES stream: fetch cutouts from the REST API."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _settings(ctx: click.Context, params: dict[str, Any], require_source: bool = True) -> Settings:
    kafka = _kafka_pairs(params.pop("kafka_pairs"))
    if params.get("bootstrap_servers"):
        kafka["bootstrap.servers"] = params.pop("bootstrap_servers")
    if params.get("group_id"):
        kafka["group.id"] = params.pop("group_id")
    params.pop("bootstrap_servers", None)
    params.pop("group_id", None)
    config_file = params.pop("config_file")
    flags = {k: v for k, v in params.items() if v is not None}
    if kafka:
        flags["kafka"] = kafka
    base = (ctx.obj or {}).get("base_settings")
    try:
        return config.load(config_file, flags=flags, base=base, require_source=require_source)
    except ConfigurationError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(exitcodes.CONFIG_ERROR)


@main.command()
@consumer_options
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.pass_context
def consume(ctx: click.Context, log_level: str, **params: Any) -> None:
    """Consume alerts into daily CSV files and FITS cutouts, each alert exactly once.

    Stops by itself when caught up (lag 0 on every partition), at --max-messages or --duration,
    or on SIGINT/SIGTERM after committing the current batch. Exit statuses: 0 success,
    1 internal error, 2 configuration error, 3 broker unreachable, 4 interrupted,
    5 output not writable, 6 already running, 7 stalled before catching up,
    8 caught up but alerts were lost to the broker's retention.

    \b
    Examples:
      lsst-alerts consume --bootstrap-servers broker:9092 --topic lsst-extendedness-filtered
      lsst-alerts consume --preset antares --topic my_stream   # key/secret from environment
      lsst-alerts consume --from incoming/ --output-dir lsst_alerts
    """
    _setup_logging(log_level)
    settings = _settings(ctx, params)
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        log.info("%s received: finishing the current batch, committing, then stopping",
                 signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    source = ", ".join(settings.from_paths) if settings.from_paths else (
        f"{settings.kafka.get('bootstrap.servers')} topics {', '.join(settings.topics)}")
    log.info("LSST Alert Consumer starting: %s -> %s", source, settings.output_dir)
    summary = consumer.consume(settings, stop)
    for row in summary.partitions:
        log.info("partition %s/%s: read %s, committed %s, high watermark %s, lag %s",
                 row["topic"], row["partition"], row["read"], row["committed"], row["high"],
                 row["lag"])
    log.info("LSST Alert Consumer finished (exit %d, %s): %s", summary.exit_code,
             exitcodes.MEANING.get(summary.exit_code, "?"), summary.line())
    sys.exit(summary.exit_code)


@main.group("config")
def config_group() -> None:
    """Show and check the effective configuration."""


@config_group.command("check")
@consumer_options
@click.pass_context
def config_check(ctx: click.Context, **params: Any) -> None:
    """Print the effective configuration (secrets masked) after validating it.

    \b
    Example:
      LSST_ALERTS_KAFKA_SASL_PASSWORD=... lsst-alerts config check --preset antares --topic s
    """
    settings = _settings(ctx, params)
    click.echo(json.dumps(config.masked(settings), indent=2, default=str))



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
    from ..filter.devkit_run import load_filter, run_filter, summarize

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

@main.command()
@click.argument("dia_source_id", type=int)
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("lsst_alerts"), show_default=True,
              help="The consumer's output directory (data/, cutouts/).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="PNG to write (default DIR/previews/<diaSourceId>.png).")
def show(dia_source_id: int, output_dir: Path, out: Path | None) -> None:
    """Render one alert's cutouts, key values and light curve to a PNG; print its path.

    \b
    Example:
      lsst-alerts show 170094456480989258 --output-dir lsst_alerts
    """
    from ..look import AlertNotFound, render_preview

    try:
        click.echo(render_preview(output_dir, dia_source_id, out))
    except AlertNotFound as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.option("--date", metavar="YYYYMMDD", help="Night (dayObs) to report (default: newest CSV).")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("lsst_alerts"), show_default=True,
              help="The consumer's output directory (data/, cutouts/).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for index.html and PNGs (default DIR/reports/<date>/).")
@click.option("--max-alerts", type=click.IntRange(min=0), default=500, show_default=True,
              help="At most this many alerts get thumbnails and previews.")
def report(date: str | None, output_dir: Path, out: Path | None, max_alerts: int) -> None:
    """Write a static HTML report of one night (opens from disk); print index.html's path.

    \b
    Example:
      lsst-alerts report --date 20260305 --output-dir lsst_alerts
    """
    from ..look import NightNotFound, write_report

    if date is not None and not (len(date) == 8 and date.isdigit()):
        raise click.BadParameter(f"{date!r} is not YYYYMMDD", param_hint="--date")
    try:
        click.echo(write_report(output_dir, date, out, max_alerts))
    except NightNotFound as exc:
        raise click.ClickException(str(exc)) from exc



@main.command()
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
    from confluent_kafka import Producer

    from ..filter.devkit_run import load_filter
    from ..filter.relay import relay as run_relay
    from ..sources.files import FileSource
    from ..sources.kafka import BrokerUnreachable, KafkaSource
    from ..sources.kafka_url import is_kafka_url, parse_kafka_url

    _setup_logging("INFO")
    try:
        bootstrap, topic = parse_kafka_url(to)
        source: Any
        if is_kafka_url(from_):
            in_bootstrap, in_topic = parse_kafka_url(from_)
            source = KafkaSource({"bootstrap.servers": in_bootstrap, "group.id": group_id},
                                 [in_topic])
            source.connect()
        else:
            source = FileSource([from_])
    except (ConfigurationError, FileNotFoundError) as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(exitcodes.CONFIG_ERROR)
    except BrokerUnreachable as exc:
        click.echo(str(exc), err=True)
        sys.exit(exitcodes.BROKER_UNREACHABLE)
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 10_000_000})
    summary = run_relay(source, producer, topic, load_filter(filter_path),
                        "antares" if relay_format == "antares" else "wire")
    if hasattr(source, "close"):
        source.close()
    click.echo(summary.line())


def _print_rows(rows: list[dict[str, Any]], columns: tuple[str, ...], as_json: bool) -> None:
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) if rows else len(c) for c in columns]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        click.echo("  ".join(str(row[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))


@main.command()
@consumer_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per partition.")
@click.pass_context
def offsets(ctx: click.Context, as_json: bool, **params: Any) -> None:
    """Committed offset, watermarks, lag and alerts lost to retention for the consumer group.

    \b
    Example:
      lsst-alerts offsets --bootstrap-servers broker:9092 --topic lsst-extendedness-filtered
    """
    from confluent_kafka import KafkaException

    from ..sources.offsets import describe_group

    settings = _settings(ctx, params)
    try:
        rows = describe_group(settings.kafka, settings.topics)
    except ConfigurationError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(exitcodes.CONFIG_ERROR)
    except KafkaException as exc:
        click.echo(f"cannot read the group's offsets: {exc}", err=True)
        sys.exit(exitcodes.BROKER_UNREACHABLE)
    _print_rows(rows, ("topic", "partition", "committed", "low", "high", "lag",
                       "lost_to_retention"), as_json)


@main.command()
@consumer_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per topic.")
@click.pass_context
def topics(ctx: click.Context, as_json: bool, **params: Any) -> None:
    """The topics the credentials can see, with partition and message counts.

    \b
    Example:
      lsst-alerts topics --preset antares    # lists the client. streams
    """
    from confluent_kafka import KafkaException

    from ..sources.offsets import list_topics

    settings = _settings(ctx, params)
    prefix = "client." if settings.preset == "antares" else ""
    try:
        rows = list_topics(settings.kafka, prefix)
    except KafkaException as exc:
        click.echo(f"cannot list topics: {exc}", err=True)
        sys.exit(exitcodes.BROKER_UNREACHABLE)
    _print_rows(rows, ("topic", "partitions", "messages"), as_json)


@main.command()
@click.option("--days", type=int, default=30, show_default=True,
              help="Delete CSV files, cutouts, dead letters and archive files older than this many "
              "days.")
@click.option("--output-dir", type=click.Path(path_type=Path), default=Path("lsst_alerts"),
              show_default=True)
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
def cleanup(days: int, output_dir: Path, dry_run: bool) -> None:
    """Apply retention to the output directory (what run_lsst_consumer.sh calls after a run).

    Never deletes today's files or anything outside the output directory.

    \b
    Example:
      lsst-alerts cleanup --days 60 --output-dir lsst_alerts --dry-run
    """
    from ..ops.retention import cleanup as run_cleanup
    from ..pipeline.outputdir import AlreadyRunning

    if days < 1:
        raise click.BadParameter("must be at least 1", param_hint="--days")
    try:
        report = run_cleanup(output_dir, days, dry_run)
    except AlreadyRunning as exc:
        click.echo(f"{exc}; retention runs after it", err=True)
        sys.exit(exitcodes.ALREADY_RUNNING)
    for name in report.removed:
        click.echo(("would remove " if dry_run else "removed ") + name)
    click.echo(report.line(dry_run))


@main.command()
@consumer_options
@click.option("--json", "as_json", is_flag=True, help="Everything as one JSON object.")
@click.option("--no-broker", is_flag=True, help="Do not ask the broker for lag.")
@click.pass_context
def status(ctx: click.Context, as_json: bool, no_broker: bool, **params: Any) -> None:
    """Tonight's alert count, the last week, cutout storage, last run, dead letters and lag.

    "Today" is tonight's observing night (dayObs, UTC-12h), the date the CSV files are named by.

    \b
    Example:
      lsst-alerts status --output-dir lsst_alerts --json
    """
    from ..ops.status import collect

    settings = _settings(ctx, params, require_source=False)
    facts = collect(settings.output_dir, kafka=None if no_broker else settings.kafka,
                    topics=settings.topics)
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    click.echo(f"output: {facts['output_dir']}")
    click.echo(f"tonight (dayObs {facts['day_obs']}): {facts['alerts_today']:,} alerts")
    for day, count in facts["alerts_per_day"].items():
        click.echo(f"  {day}: {count:,}")
    click.echo(f"cutouts: {facts['cutout_files']:,} files, {facts['cutout_bytes'] / 1e6:,.1f} MB")
    run = facts["last_run"]
    click.echo("last run: " + ("none" if run is None else
                               f"{run['started']} -> {run['outcome']} (exit {run['exit_code']})"))
    click.echo(f"dead letters: {facts['deadlettered']:,}; lost to retention: "
               f"{facts['lost_to_retention']:,}")
    if isinstance(facts["partitions"], list):
        for row in facts["partitions"]:
            click.echo(f"  {row['topic']}/{row['partition']}: committed {row['committed']}, "
                       f"high {row['high']}, lag {row['lag']}")
    elif facts["partitions"]:
        click.echo(str(facts["partitions"]))


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
    from ..decode.schemas import latest_version
    from ..simulate.packets import (
        dia_source_id_of,
        encode_wire,
        iter_wire_files,
        simulate_alerts,
        simulated_versions,
        write_container,
    )
    from ..simulate.publish import parse_kafka_url, publish

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
    from ..demo import DEMO_SEED, run_demo

    report = run_demo(out_dir, count, DEMO_SEED if seed is None else seed, log=click.echo)
    click.echo(f"demo done in {report.seconds:.1f} s: {report.written_csv:,} alerts written "
               f"to {report.output}")
    if report.exit_code:
        sys.exit(report.exit_code)



@main.command()
@click.option("--output-dir", type=click.Path(path_type=Path), default=Path("lsst_alerts"),
              show_default=True, help="The root the members (--member NAME) write under.")
def merge(output_dir: Path) -> None:
    """Gather the CSV files of a group's members into OUTPUT_DIR/data/, each alert once.

    \b
    Example (two consumers sharing the work of one topic):
      lsst-alerts consume --member a --output-dir lsst_alerts ... &
      lsst-alerts consume --member b --output-dir lsst_alerts ...
      lsst-alerts merge --output-dir lsst_alerts
    """
    from ..ops.merge import merge as run_merge

    try:
        report = run_merge(output_dir)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    for name, rows in report.nights.items():
        click.echo(f"{output_dir / 'data' / name}: {rows:,} alerts")
    click.echo(f"merged {len(report.members)} members, {sum(report.nights.values()):,} alerts, "
               f"{report.duplicates:,} duplicate rows dropped")


from . import archive as _archive  # noqa: E402, F401 - registers query, lightcurve, compact

if __name__ == "__main__":
    main()
