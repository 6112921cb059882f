"""Commands that tell the user what happened: `notify --test` and `digest`; and the notifier
`consume` runs with (docs/notifications.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import config, exitcodes
from ..config import Settings
from ..errors import ConfigurationError
from .options import EXIT_NOT_DELIVERED, setup_logging

if TYPE_CHECKING:
    from ..notify.notifier import Notifier


def check_notify(settings: Settings) -> None:
    """`config check`: a bad --notify-when exits 2 like any other setting."""
    from ..notify.notifier import Notifier

    try:
        Notifier.checked(settings)
    except ConfigurationError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(exitcodes.CONFIG_ERROR)


def start_notifier(settings: Settings) -> Notifier | None:
    """`consume`'s notifier; a bad --notify-when exits 2 (after telling the URLs)."""
    from ..notify.notifier import Notifier

    try:
        return Notifier.start(settings)
    except ConfigurationError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(exitcodes.CONFIG_ERROR)


def notify_settings(config_file: Path | None, urls: tuple[str, ...],
                    output_dir: Path | None = None) -> Settings:
    flags = {"notify_urls": list(urls), "output_dir": output_dir}
    try:
        settings = config.load(config_file, flags=flags, require_source=False)
    except ConfigurationError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(exitcodes.CONFIG_ERROR)
    return settings


CONFIG_OPTION = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
    help="TOML configuration file ([notify] urls, ...; default ./lsst_alerts.toml).")
NOTIFY_OPTION = click.option(
    "--notify", "urls", multiple=True, metavar="URL",
    help="An apprise URL (repeatable); replaces [notify] urls and LSST_ALERTS_NOTIFY.")


@click.command()
@click.option("--test", "test", is_flag=True, help="Send a test message to every URL.")
@CONFIG_OPTION
@NOTIFY_OPTION
def notify(test: bool, config_file: Path | None, urls: tuple[str, ...]) -> None:
    """Check the notification URLs: print, per URL (secrets masked), whether it was delivered.

    Exits 3 when any URL did not take the message, 2 when none is configured.

    \b
    Example:
      lsst-alerts notify --test --notify 'mailto://me:PASS@smtp.example.org?to=me@example.org'
    """
    from ..notify.send import send

    if not test:
        raise click.UsageError("say what to send: --test")
    setup_logging("WARNING")
    settings = notify_settings(config_file, urls)
    if not settings.notify_urls:
        click.echo("configuration error: no notification URL: give --notify URL, [notify] urls "
                   "or LSST_ALERTS_NOTIFY", err=True)
        sys.exit(exitcodes.CONFIG_ERROR)
    import socket

    deliveries = send(settings.notify_urls, "lsst-alerts: test message",
                      f"A test of the notifications of lsst-alerts on {socket.gethostname()}.",
                      timeout=settings.notify_timeout)
    for delivery in deliveries:
        click.echo(f"delivered      {delivery.url}" if delivery.delivered else
                   f"NOT delivered  {delivery.url}: {delivery.reason}")
    if not all(d.delivered for d in deliveries):
        sys.exit(EXIT_NOT_DELIVERED)


@click.command()
@click.option("--output-dir", type=click.Path(path_type=Path),
              help="The consumer's output directory (default ./lsst_alerts).")
@click.option("--date", help="The night (dayObs, YYYYMMDD); default: the night just ended.")
@click.option("--report/--no-report", default=True, show_default=True,
              help="Write (or reuse) the night's HTML report and attach its overview image.")
@CONFIG_OPTION
@NOTIFY_OPTION
def digest(output_dir: Path | None, date: str | None, report: bool, config_file: Path | None,
           urls: tuple[str, ...]) -> None:
    """Send the night's summary to the notification URLs, and print it.

    Alerts written, per band, solar-system or not, per broker (Kafka topic), the top candidates
    ([notify] digest_order, digest_top, when), dead letters, missing cutouts, retention losses
    and the report's path; the report's sky map attached where the channel takes files.
    Exits 3 when a URL did not take it.

    \b
    Example (cron, after the night's consume):
      lsst-alerts digest --output-dir lsst_alerts --notify 'mailto://...'
    """
    from ..notify.digest import collect_digest, digest_message
    from ..notify.send import send
    from ..ops.status import current_day_obs

    if date is not None and not (len(date) == 8 and date.isdigit()):
        raise click.BadParameter(f"{date!r} is not YYYYMMDD", param_hint="--date")
    setup_logging("WARNING")
    settings = notify_settings(config_file, urls, output_dir)
    night = collect_digest(settings.output_dir, date or current_day_obs(),
                           settings.notify_digest_order, settings.notify_digest_top,
                           settings.notify_when, report)
    title, body = digest_message(night)
    click.echo(f"{title}\n\n{body}")
    if not settings.notify_urls:
        return
    attachments = [night.overview] if night.overview else []
    deliveries = send(settings.notify_urls, title, body, attachments, settings.notify_timeout)
    for delivery in deliveries:
        click.echo(f"delivered      {delivery.url}" if delivery.delivered else
                   f"NOT delivered  {delivery.url}: {delivery.reason}", err=True)
    if not all(d.delivered for d in deliveries):
        sys.exit(EXIT_NOT_DELIVERED)
