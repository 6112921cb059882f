"""What several commands share: the consumer's settings flags and how they become Settings,
logging set-up, table printing, and the exit statuses of the commands other than consume."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .. import config, exitcodes
from ..config import Settings
from ..errors import ConfigurationError

EXIT_BAD_INPUT = 1  # inspect / filter-test: some alert could not be decoded or errored
EXIT_NOT_DELIVERED = 3  # simulate to Kafka: some messages were not delivered


class MaskSecrets(logging.Filter):
    """No log line shows a URL's credentials, whoever logged it (config.mask_secrets)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = config.mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def setup_logging(level: str) -> None:
    """Log lines with a timestamp to stderr, at the level named (DEBUG ... ERROR)."""
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%Y-%m-%dT%H:%M:%S%z", stream=sys.stderr, force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(MaskSecrets())
    # One line per HTTP request (httpx logs each at INFO: the ANTARES cutout requests, four
    # per alert) buries the run's own lines; failures still come through as warnings.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def kafka_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    """-X KEY=VALUE flags as a dict of librdkafka properties."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="-X")
        out[key.strip()] = value
    return out


def consumer_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The settings flags shared by `consume`, `config check`, `offsets`, `topics`, `status`."""
    options = [
        click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                     help=CONFIG_HELP),
        click.option("--from", "from_paths", multiple=True, type=click.Path(),
                     help="Read alert files or folders instead of Kafka."),
        click.option("--output-dir", type=click.Path(path_type=Path),
                     help="Where data/, cutouts/ go (default: output_dir of the configuration "
                     "file or LSST_ALERTS_OUTPUT_DIR, else ./lsst_alerts)."),
        click.option("--bootstrap-servers", help="Kafka bootstrap.servers."),
        click.option("--topic", "topics", multiple=True, help="Topic(s) to read."),
        click.option("--group-id", help="Kafka consumer group (group.id)."),
        click.option("--preset", type=click.Choice(list(config.PRESETS)),
                     help="antares: SASL_SSL + PLAIN, ANTARES's CA, client. topic prefix; "
                     "fink, lasair, babamul: a broker's LSST stream (docs/brokers.md)."),
        click.option("--filter", "filter_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="The filter file to run locally (default: the bundled one)."),
        click.option("--local-filter/--no-local-filter", "local_filter", default=None,
                     help="Run the filter on each alert before writing it (on for the "
                     "fink preset; off for antares, whose stream ANTARES filtered)."),
        click.option("-X", "kafka_pairs", multiple=True, metavar="KEY=VALUE",
                     help="Any librdkafka property, e.g. -X security.protocol=SASL_SSL."),
        click.option("--batch-size", type=int, help="Messages per durable batch (500)."),
        click.option("--batch-seconds", type=float, help="A batch holds about this many "
                     "seconds of writing, fewer messages when cutouts come from a slow API (30)."),
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
        click.option("--notify", "notify_urls", multiple=True, metavar="URL",
                     help="Tell this apprise URL of failed runs and new candidates "
                     "(repeatable; docs/notifications.md)."),
        click.option("--notify-when", "notify_when", metavar="SQL",
                     help="Name each new alert matching this SQL over the archive's columns "
                     "once, e.g. 'extendednessMedian > 0.9 AND snr > 20'."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


CONFIG_HELP = "TOML configuration file (default ./lsst_alerts.toml if present)."
OUTPUT_DIR_HELP = ("The collection (default: output_dir of the configuration file or "
                   "LSST_ALERTS_OUTPUT_DIR, else ./lsst_alerts).")


def collection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--config and --output-dir, for the commands that read or tend an existing collection
    (query, lightcurve, show, report, cleanup, fill-cutouts, merge, compact); resolved by
    collection_settings."""
    command = click.option("--output-dir", type=click.Path(path_type=Path),
                           help=OUTPUT_DIR_HELP)(command)
    return click.option("--config", "config_file",
                        type=click.Path(dir_okay=False, path_type=Path), help=CONFIG_HELP)(command)


def resolve(ctx: click.Context | None, config_file: Path | None, flags: dict[str, Any],
            require_source: bool) -> Settings:
    """Every command's settings, one way: flags > environment (LSST_ALERTS_*) > configuration
    file (--config, LSST_ALERTS_CONFIG or ./lsst_alerts.toml) > lsst_alert_consumer.py's base
    settings (ctx.obj) > defaults, by config.load; exits 2 on a configuration error."""
    base = ((ctx.find_root().obj if ctx is not None else None) or {}).get("base_settings")
    try:
        return config.load(config_file, flags=flags, base=base, require_source=require_source)
    except ConfigurationError as exc:
        fail_configuration(exc)
        raise AssertionError("unreachable") from exc


def fail_configuration(exc: ConfigurationError) -> None:
    """Say what to fix in one line and exit 2."""
    click.echo(f"configuration error: {config.mask_secrets(str(exc))}", err=True)
    sys.exit(exitcodes.CONFIG_ERROR)


def require_collection(settings: Settings, readable: tuple[str, ...] = ()) -> None:
    """Exit 2, creating nothing, when settings.output_dir holds no collection (a typo)."""
    from ..pipeline.outputdir import require_collection as check

    try:
        check(settings.output_dir, readable)
    except ConfigurationError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exitcodes.CONFIG_ERROR)


def collection_settings(config_file: Path | None, output_dir: Path | None,
                        readable: tuple[str, ...] = (), **flags: Any) -> Settings:
    """The settings of a command on an existing collection (resolve()), refused (exit 2) when
    the output directory they name holds none: only consume creates a collection."""
    settings = resolve(click.get_current_context(silent=True), config_file,
                       {"output_dir": output_dir, **flags}, require_source=False)
    require_collection(settings, readable)
    return settings


def settings_from(ctx: click.Context, params: dict[str, Any],
                  require_source: bool = True) -> Settings:
    """The validated Settings of consumer_options' flags over the file, environment and base
    settings (lsst_alert_consumer.py passes those as ctx.obj), by resolve(); exits 2 on a
    configuration error."""
    return resolve(ctx, *flags_from(params), require_source)


def sources_from(ctx: click.Context, params: dict[str, Any]) -> list[Settings] | Settings:
    """The Settings of each [[sources]] table of the file (config_file.load_sources), or the
    one source's as settings_from gives them when the file has none; exits 2 on a
    configuration error."""
    from ..config_file import load_sources

    config_file, flags = flags_from(params)
    base = (ctx.find_root().obj or {}).get("base_settings")
    try:
        sources = load_sources(config_file, flags=flags, base=base)
    except ConfigurationError as exc:
        fail_configuration(exc)
        raise AssertionError("unreachable") from exc
    return sources or resolve(ctx, config_file, flags, require_source=True)


def flags_from(params: dict[str, Any]) -> tuple[Path | None, dict[str, Any]]:
    """--config, and the other consumer_options' flags as config.load takes them."""
    kafka = kafka_pairs(params.pop("kafka_pairs"))
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
    return config_file, flags


def ids_as_text(value: Any, name: str = "") -> Any:
    """Every integer under a name ending in Id or _id as a string, in nested values too.

    Rubin's ids are 64-bit; JSON readers that hold numbers as doubles (jq, JavaScript) change
    those past 2**53 (170093876573794089 becomes 170093876573794080). Strings stay exact."""
    if isinstance(value, dict):
        return {key: ids_as_text(item, key) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [ids_as_text(item, name) for item in value]
    if (isinstance(value, int) and not isinstance(value, bool)
            and (name.endswith("Id") or name.endswith("_id"))):
        return str(value)
    return value


class NightDate(click.ParamType):
    """A night (dayObs) as YYYYMMDD or YYYY-MM-DD, every command alike; a date."""

    name = "YYYYMMDD"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> dt.date:
        if isinstance(value, dt.date):
            return value
        text = str(value).strip()
        for form in ("%Y%m%d", "%Y-%m-%d"):
            try:
                return dt.datetime.strptime(text, form).date()
            except ValueError:
                continue
        self.fail(f"{value!r} is not a date: use YYYYMMDD or YYYY-MM-DD (e.g. 20260305)",
                  param, ctx)


def print_rows(rows: list[dict[str, Any]], columns: tuple[str, ...], as_json: bool) -> None:
    """Rows as JSON Lines, or as a table with aligned columns."""
    if as_json:
        for row in rows:
            click.echo(json.dumps(ids_as_text(row)))
        return
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) if rows else len(c) for c in columns]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        click.echo("  ".join(str(row[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))
