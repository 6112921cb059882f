"""Commands of the consumer and its output directory: `consume`, `config check`/`get`, `offsets`,
`topics`, `status`, `cleanup` and `merge`."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import config, exitcodes
from ..errors import ConfigurationError
from .notify import check_notify, start_notifier
from .options import (
    collection_options,
    collection_settings,
    consumer_options,
    print_rows,
    require_collection,
    settings_from,
    setup_logging,
    sources_from,
)

if TYPE_CHECKING:
    from ..pipeline.outcome import RunSummary

log = logging.getLogger("lsst_alert_pipeline")


@click.command()
@consumer_options
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.pass_context
def consume(ctx: click.Context, log_level: str, **params: Any) -> None:
    """Consume alerts into daily CSV files and FITS cutouts, each alert exactly once.

    Stops by itself when caught up (lag 0 on every partition), at --max-messages or --duration,
    or on SIGINT/SIGTERM after committing the current batch. Exit statuses: EXIT_STATUSES.

    \b
    Examples:
      lsst-alerts consume --bootstrap-servers broker:9092 --topic lsst-extendedness-filtered
      lsst-alerts consume --preset antares --topic my_stream   # key/secret from environment
      lsst-alerts consume --from incoming/ --output-dir lsst_alerts
      lsst-alerts consume --config brokers.toml   # each [[sources]] table in turn
    """
    # The handlers come first: a SIGTERM from cron or systemd while the settings are read and
    # the pipeline is imported must end the run cleanly (exit 4), not kill it mid-start-up.
    stop = threading.Event()
    received: list[str] = []
    running = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        received.append(signal.Signals(signum).name)
        if running.is_set():
            log.info("%s received: finishing the current batch, committing, then stopping",
                     received[-1])
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    setup_logging(log_level)
    unread = (params.get("config_file"), params.get("notify_urls") or (), params.get("output_dir"))
    try:
        sources = sources_from(ctx, params)
    except SystemExit as exit_:  # settings_from said what to fix; tell the URLs still readable
        if isinstance(exit_.__context__, ConfigurationError):
            from ..notify.unread import tell_unread_settings

            tell_unread_settings(exit_.__context__, *unread)
        raise
    from ..pipeline import consume as consumer  # decoders, sources and sinks: the slow import

    if stop.is_set():
        log.info("LSST Alert Consumer finished (exit %d, %s): %s received before the run "
                 "started; nothing read, nothing committed", exitcodes.INTERRUPTED,
                 exitcodes.MEANING[exitcodes.INTERRUPTED], received[0])
        sys.exit(exitcodes.INTERRUPTED)
    running.set()
    # [notify] is the file's top level ([[sources]] tables may not set it): one notifier.
    settings = sources[0] if isinstance(sources, list) else sources
    notifier = start_notifier(settings)
    if isinstance(sources, list):
        from ..pipeline.sources_run import consume_sources

        log.info("LSST Alert Consumer starting: %d [[sources]] in turn -> %s", len(sources),
                 settings.output_dir)
        outcome = consume_sources(sources, stop, notifier, log_partitions)
        log.info("LSST Alert Consumer finished (exit %d, %s, the worst of the sources'): %s",
                 outcome.exit_code, exitcodes.MEANING.get(outcome.exit_code, "?"),
                 outcome.line())
        sys.exit(outcome.exit_code)
    log.info("LSST Alert Consumer starting: %s -> %s", settings.source_label, settings.output_dir)
    summary = consumer.consume(settings, stop, observer=notifier)
    log_partitions(summary)
    log.info("LSST Alert Consumer finished (exit %d, %s): %s", summary.exit_code,
             exitcodes.MEANING.get(summary.exit_code, "?"), summary.line())
    sys.exit(summary.exit_code)


def log_partitions(summary: RunSummary) -> None:
    """One line per partition a run read: where its offsets stand."""
    for row in summary.partitions:
        log.info("partition %s/%s: read %s, committed %s, high watermark %s, lag %s, "
                 "lost to retention %s", row["topic"], row["partition"], row["read"],
                 row["committed"], row["high"], row["lag"], row["lost_to_retention"])


# The statuses come from their one home, exitcodes.py (the wrapper's own 9 and compact's 10
# are not consume's).
consume.help = (consume.help or "").replace("EXIT_STATUSES", exitcodes.listing(
    exclude=(exitcodes.RETENTION_FAILED, exitcodes.ARCHIVE_DAMAGED)))


@click.group("config")
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
    sources = sources_from(ctx, params)
    if isinstance(sources, list):  # each [[sources]] table's effective settings, in order
        check_notify(sources[0])
        click.echo(json.dumps({"sources": [config.masked(settings) for settings in sources]},
                              indent=2, default=str))
        return
    check_notify(sources)
    click.echo(json.dumps(config.masked(sources), indent=2, default=str))


@config_group.command("get")
@click.argument("key")
@consumer_options
@click.pass_context
def config_get(ctx: click.Context, key: str, **params: Any) -> None:
    """Print one effective setting alone on a line, for scripts (secrets masked).

    KEY is a setting's name as `config check` shows it. output_dir is printed absolute, as
    the current folder resolves it; an unset one as an empty line; lists and tables
    as JSON.

    \b
    Example (what run_lsst_consumer.sh asks):
      lsst-alerts config get output_dir
    """
    values = config.masked(settings_from(ctx, params, require_source=False))
    if key not in values:
        click.echo(f"configuration error: no setting {key!r}; known: {', '.join(values)}",
                   err=True)
        sys.exit(exitcodes.CONFIG_ERROR)
    value = values[key]
    if key == "output_dir":
        value = os.path.abspath(value)
    if value is None:
        value = ""  # unset: an empty line, for `[ -z "$(...)" ]`
    click.echo(value if isinstance(value, str) else json.dumps(value, default=str))


@click.command()
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

    settings = settings_from(ctx, params)
    try:
        rows = describe_group(settings.kafka, settings.topics)
    except ConfigurationError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(exitcodes.CONFIG_ERROR)
    except KafkaException as exc:
        click.echo(f"cannot read the group's offsets: {exc}", err=True)
        sys.exit(exitcodes.BROKER_UNREACHABLE)
    print_rows(rows, ("topic", "partition", "committed", "low", "high", "lag",
                       "lost_to_retention"), as_json)


@click.command()
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

    settings = settings_from(ctx, params)
    prefix = "client." if settings.preset == "antares" else ""
    try:
        rows = list_topics(settings.kafka, prefix)
    except KafkaException as exc:
        click.echo(f"cannot list topics: {exc}", err=True)
        sys.exit(exitcodes.BROKER_UNREACHABLE)
    print_rows(rows, ("topic", "partitions", "messages"), as_json)


@click.command()
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True,
              help="Delete CSV files, cutouts, dead letters and archive files older "
              "than this many days (at least 1).")
@collection_options
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@click.option("--verbose", "-v", is_flag=True, help="Also list each file, one per line.")
@click.option("--check", is_flag=True, help="Only validate the options and exit (0, or 2 "
              "with the reason); run_lsst_consumer.sh checks RETENTION_DAYS so before a run.")
def cleanup(days: int, config_file: Path | None, output_dir: Path | None, dry_run: bool,
            verbose: bool, check: bool) -> None:
    """Apply retention to the output directory (what run_lsst_consumer.sh calls after a run).

    Never deletes today's files or anything outside the output directory. Prints one summary
    line (files and MB per kind, the nights their names cover); --verbose lists the files.

    \b
    Example:
      lsst-alerts cleanup --days 60 --output-dir lsst_alerts --dry-run --verbose
    """
    if check:
        return
    from ..ops.retention import cleanup as run_cleanup
    from ..pipeline.outputdir import AlreadyRunning, OutputError

    settings = collection_settings(config_file, output_dir)
    try:
        report = run_cleanup(settings.output_dir, days, dry_run)
    except AlreadyRunning as exc:
        click.echo(f"{exc}; retention runs after it", err=True)
        sys.exit(exitcodes.ALREADY_RUNNING)
    except OutputError as exc:
        click.echo(f"retention stopped: {exc}", err=True)
        sys.exit(exitcodes.OUTPUT_ERROR)
    if verbose:
        for name in report.removed:
            click.echo(("would remove " if dry_run else "removed ") + name)
    click.echo(report.line(dry_run))


@click.command("fill-cutouts")
@collection_options
@click.option("--member", help="Scale-out: fill this member's cutouts (members/NAME/).")
def fill_cutouts(config_file: Path | None, output_dir: Path | None, member: str | None) -> None:
    """Fetch again the ANTARES cutouts recorded as missing for now.

    A cutout is missing for now when the REST API failed on the way (timeout, reset, 5xx) while
    its alert was written; its CSV row already names the file. A 404 or a broken file is
    missing for good and is not asked for again. The next `consume --fetch-cutouts` does the
    same before it reads new alerts; this does it on demand.

    \b
    Example:
      lsst-alerts fill-cutouts --output-dir lsst_alerts
    """
    from ..pipeline.fill_cutouts import fill_cutouts as fill
    from ..pipeline.outputdir import AlreadyRunning
    from ..sources.antares_thumbnails import AntaresThumbnails

    # [antares] api_url, timeout, retries and concurrency come from the same settings.
    settings = collection_settings(config_file, output_dir, member=member)
    fetcher = AntaresThumbnails(settings.antares_api_url, settings.antares_timeout,
                                settings.antares_retries, settings.antares_concurrency)
    try:
        summary = fill(settings.output_dir, fetcher, settings.member)
    except AlreadyRunning as exc:
        click.echo(f"{exc}; run fill-cutouts after it", err=True)
        sys.exit(exitcodes.ALREADY_RUNNING)
    finally:
        fetcher.close()
    click.echo(summary.line())


@click.command()
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
    from ..ops.status import collect, status_lines

    settings = settings_from(ctx, params, require_source=False)
    require_collection(settings)
    facts = collect(settings.output_dir, kafka=None if no_broker else settings.kafka,
                    topics=settings.topics)
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    for line in status_lines(facts):
        click.echo(line)


@click.command()
@collection_options
def merge(config_file: Path | None, output_dir: Path | None) -> None:
    """Append the group's members' new rows to OUTPUT_DIR/data/, each alert once.

    Never rewrites or deletes a row; refuses while a consumer writes to the root.

    \b
    Example (two consumers sharing the work of one topic):
      lsst-alerts consume --member a --output-dir lsst_alerts ... &
      lsst-alerts consume --member b --output-dir lsst_alerts ...
      lsst-alerts merge --output-dir lsst_alerts
    """
    from ..ops.merge import merge as run_merge
    from ..pipeline.outputdir import AlreadyRunning

    output_dir = collection_settings(config_file, output_dir).output_dir
    try:
        report = run_merge(output_dir)
    except AlreadyRunning as exc:
        click.echo(f"{exc}; merge when it has finished", err=True)
        sys.exit(exitcodes.ALREADY_RUNNING)
    for name, rows in report.nights.items():
        click.echo(f"{output_dir / 'data' / name}: {rows:,} alerts added")
    click.echo(f"merged {len(report.members)} members, {sum(report.nights.values()):,} alerts "
               f"added, {report.duplicates:,} already in the root's files")
