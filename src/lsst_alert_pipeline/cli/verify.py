"""`lsst-alerts verify`: check every alert the ledger vouches for against the files, and each
partition's committed offsets against what the ledger recorded."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from .. import exitcodes
from .options import consumer_options, print_rows, require_collection, settings_from

if TYPE_CHECKING:
    from ..ops.verify import VerifyReport

PARTITION_COLUMNS = ("partition", "low", "high", "committed", "lag", "covered",
                     "covered_not_committed", "lost_to_retention", "before_first_range",
                     "not_on_disk")


@click.command()
@consumer_options
@click.option("--repair", is_flag=True, help="Forget the ledger entries of alerts not whole on "
              "disk; with the Kafka settings, re-read what the broker still holds (with --from "
              "DIR, read the alert files) and write them, broken cutouts and the alerts of "
              "damaged archive files again, and list what is gone for good.")
@click.option("--json", "as_json", is_flag=True, help="The tables and problems as JSON.")
@click.pass_context
def verify(ctx: click.Context, repair: bool, as_json: bool, **params: Any) -> None:
    """Check each alert in the ledger (its CSV row once, its cutouts valid FITS), per night;
    each archive file (there, whole, its sha256, columns, row count and alerts as recorded);
    with the Kafka settings (as for consume), each partition's committed offset against the
    offsets the ledger covers, per partition.

    Exits 0 when everything is whole, 1 when something is not (each problem is listed, each
    damaged archive file with the alerts it held), and 1 when the group committed offsets that
    are not on disk.

    \b
    Examples:
      lsst-alerts verify --output-dir lsst_alerts
      lsst-alerts verify --output-dir lsst_alerts --bootstrap-servers broker:9092 \\
          --topic lsst-extendedness-filtered --group-id my-group
      lsst-alerts verify --output-dir lsst_alerts --config lsst_alerts.toml --repair
      lsst-alerts verify --output-dir lsst_alerts --repair --from saved_alerts/
    """
    from ..ops.verify import verify as run_verify
    from ..pipeline.outputdir import AlreadyRunning

    settings = settings_from(ctx, params, require_source=False)
    require_collection(settings)
    try:
        report = run_verify(settings.output_dir, repair, settings)
    except AlreadyRunning as exc:
        click.echo(f"{exc}; verify when it has finished", err=True)
        sys.exit(exitcodes.ALREADY_RUNNING)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        say(report)
    sys.exit(0 if report.ok else 1)


def say(report: VerifyReport) -> None:
    """The report as tables and sentences."""
    click.echo(f"{'night':<10} {'in ledger':>10} {'whole':>10} {'retired':>10} {'problems':>9}")
    for check in report.nights.values():
        click.echo(f"{check.night:<10} {check.in_ledger:>10,} {check.whole:>10,} "
                   f"{check.retired:>10,} {len(check.problems):>9,}")
    for check in report.nights.values():
        for problem in check.problems:
            click.echo(f"  {check.night}: {problem}")
    click.echo("")
    if report.partitions is None:
        click.echo(report.partition_note)
    else:
        rows = [{**row, "partition": f"{row['topic']}/{row['partition']}"}
                for row in (check.as_dict() for check in report.partitions)]
        print_rows(rows, PARTITION_COLUMNS, False)
        for topic in report.missing_topics:
            click.echo(f"topic {topic}, which the ledger recorded offsets of, is not on the "
                       "broker: nothing of it can be compared or read again")
        if report.not_on_disk:
            click.echo(f"{report.not_on_disk:,} offsets were committed but are not on disk "
                       "(not_on_disk): their alerts were never written; --repair re-reads those "
                       "the broker still holds")
    if report.forgotten:
        click.echo(f"forgot {report.forgotten:,} broken alerts in the ledger" + (
            "" if report.refill else ": replay with --reset-offsets earliest (or verify "
            "--repair with the Kafka settings) to write again those the broker still holds; the "
            "rest are gone for good"))
    if report.broken_cutouts and report.refill is None:
        click.echo(f"{len(report.broken_cutouts):,} alerts have broken cutouts under whole rows: "
                   "verify --repair with the Kafka settings writes them again from the broker")
    say_archive(report)
    if report.refill is not None:
        refill = report.refill
        where = ("the broker still holds" if refill.source == "the broker"
                 else f"from {refill.source}")
        click.echo(f"re-read {refill.reread:,} messages {where}: wrote "
                   f"{refill.alerts:,} alerts and {refill.cutouts:,} cutouts again, and "
                   f"{refill.archived:,} alerts to the archive")
        for line in refill.deleted:
            click.echo(f"  deleted by the broker's retention, gone for good: {line}")
        for path in refill.set_aside:
            click.echo(f"  damaged archive file moved to {path}")
        if refill.gone:
            click.echo(f"{len(refill.gone):,} alerts are gone for good ({refill.source} no "
                       f"longer holds them): {', '.join(refill.gone[:20])}"
                       + (" ..." if len(refill.gone) > 20 else ""))
        if refill.archive_gone:
            click.echo(f"{len(refill.archive_gone):,} alerts of damaged archive files are gone "
                       f"for good from the archive ({refill.source} no longer holds them)")
        for dia_source_id, left in list(refill.survivors.items())[:20]:
            click.echo(f"  {dia_source_id}: what survives: {', '.join(left) or 'nothing'}")
    if report.repair_note:
        click.echo(report.repair_note)
    if report.refill is not None:
        click.echo("repaired: everything is whole again" if report.ok else
                   f"repaired what {report.refill.source} still held; the rest above is gone "
                   "for good")
    else:
        click.echo("everything is whole" if report.ok else
                   "some alerts the ledger or the group's offsets vouch for are not whole on disk")


def say_archive(report: VerifyReport) -> None:
    """The archive's audit: files, damaged ones with their alerts, unchecked ones."""
    archive = report.archive
    if archive is None:
        return
    click.echo(f"archive: {archive.files:,} files, {archive.alerts:,} alerts, "
               f"{len(archive.damaged):,} damaged")
    for damaged in archive.damaged:
        click.echo(f"  damaged: {damaged.line()}")
    for dia_source_id, names in list(archive.twice.items())[:20]:
        click.echo(f"  alert {dia_source_id} is archived in more than one file: "
                   f"{', '.join(names)}")
    if archive.unchecked:
        click.echo(f"  {len(archive.unchecked):,} archive files unchecked: listed before the "
                   "ledger recorded checksums (read and counted, not compared)")
    if archive.damaged and report.refill is None:
        click.echo("verify --repair with the Kafka settings (or --from DIR with the alert files) "
                   "writes the damaged files' alerts to the archive again")
    for name in report.unrepairable if report.refill is not None else []:
        click.echo(f"  {name}: not repaired, the ledger does not say which alerts it held")
