"""The consumer's batch loop: `Pipeline.deliver` writes and commits one batch, `run` repeats it.

For each batch (`deliver`): write cutouts, CSV rows and dead letters (no sync) -> one sync of the
output file system -> record the batch in the ledger (one SQLite commit) -> commit Kafka offsets.
Meanwhile a prefetch thread polls and decodes the next batch (one ahead, so memory is bounded).
A crash anywhere in between leaves rows the ledger does not vouch for; `OutputDir.recover` cuts
them off at the next start and the broker delivers those messages again (docs/architecture.md,
Where each guarantee is enforced).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .. import exitcodes
from ..decode.batch import Outcome
from ..decode.brokers import INCOMPLETE
from ..decode.inflation import DEFAULT_MAX_INFLATED_BYTES
from ..decode.normalize import CUTOUT_KINDS, AlertRecord
from ..decode.schemas import SchemaSource
from ..decode.values import blank_unusable
from ..errors import InvalidMessage
from ..sinks.archive import ArchiveSink
from ..sinks.archive_rows import ArchivedAlert
from ..sinks.csv import SPEC_COLUMNS, DailyCsv, spec_row
from ..sinks.cutouts import check_fits, cutout_name, observation_stamp, write_cutout
from ..sinks.deadletter import write_deadletter
from ..sources.base import Message, Source
from .contention import MAX_ATTEMPTS, give_way, partitions_of, say_given_way
from .cutout_fetch import AntaresAlertIds, missing_cutout, say_missing, usable_cutouts
from .deliveries import DEAD_LETTERED, batch_deliveries
from .hooks import fault_point
from .ledger import (
    AlertsTaken,
    ArchiveFile,
    BatchRecord,
    DeadLetter,
    WrittenAlert,
    offset_ranges,
    pack_ids,
)
from .memory import release_freed_memory
from .options import RunOptions
from .outcome import BatchOutcome, RunSummary
from .outputdir import OutputDir, OutputError
from .prefetch import Prefetcher
from .progress import Progress
from .screen import FILTERED_OUT, BrokerRun, decode_batch, kept_alerts
from .stages import WAIT, StageClock

if TYPE_CHECKING:
    from ..sources.antares_thumbnails import FetchedCutouts, MissingState

log = logging.getLogger(__name__)


class CutoutFetcher(Protocol):
    """Fetches the cutouts of alerts whose messages carry none (ANTARES locus messages)."""

    def fetch_alerts(self, wanted: list[tuple[str, tuple[str, ...]]],
                     deadline: float | None = None) -> list[FetchedCutouts]: ...


Decoded = Outcome  # an alert's normalized records, or why it has none


class BatchObserver(Protocol):
    """Told of each batch once it is durable and committed (notify/: candidates); it never
    raises and never changes the batch."""

    def batch_durable(self, output: OutputDir, outcome: BatchOutcome) -> None: ...


class Pipeline:
    def __init__(self, output: OutputDir, schemas: SchemaSource | None = None,
                 extra_columns: tuple[str, ...] = (), fetch_cutouts: CutoutFetcher | None = None,
                 fetch_budget: float = 120.0, alert_id_format: str = "{diaSourceId}",
                 max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES, archive: bool = True,
                 observer: BatchObserver | None = None, broker: BrokerRun | None = None):
        self.output = output
        self.broker = broker  # who delivers: its decoder, label and local filter (screen.py)
        self.schemas = schemas or SchemaSource()
        self.extra_columns = extra_columns
        self.csv = DailyCsv(output.data, (*SPEC_COLUMNS, *extra_columns))
        self.fetch_cutouts = fetch_cutouts
        self.fetch_budget = fetch_budget  # seconds a batch may spend retrying the cutout API
        self.alert_ids = AntaresAlertIds(alert_id_format)
        self.archive = ArchiveSink(output.archive, lambda: fault_point("archive-file-written")) \
            if archive else None
        self.registered_csv: set[str] = set()
        self.max_inflated_bytes = max_inflated_bytes
        self.observer = observer
        self.clock = StageClock()  # where the time goes (stages.py)

    def decode(self, messages: list[Message]) -> list[Decoded]:
        """`screen`, then `prepare`: what the prefetch and encoding threads do, in one call."""
        self.prepare(messages, results := self.screen(messages))
        return results

    def screen(self, messages: list[Message]) -> list[Decoded]:
        """Decode, normalize and run the local filter (no I/O: the prefetch thread runs this)."""
        with self.clock.timing("prefetch", "decode and filter"):
            return decode_batch(messages, self.schemas, self.max_inflated_bytes,
                                self.archive is not None, self.broker)

    def prepare(self, messages: list[Message], results: list[Decoded]) -> None:
        """Encode the archive files of the alerts the filter keeps, under temp names."""
        if self.archive is not None:
            with self.clock.timing("encoding", "archive encoding"):
                self.archive.prepare(messages, kept_alerts(results),
                                     dt.datetime.now(dt.UTC).strftime("%Y%m%d"))

    def deliver(self, source: Source, messages: list[Message],
                decoded: list[Decoded] | None = None,
                recorded: Callable[[BatchOutcome], None] | None = None) -> BatchOutcome:
        """The one place that orders writes, the sync, the ledger and the offset commit;
        `recorded` hears of the batch once the ledger holds it (even if the commit then fails)."""
        assert self.output.ledger is not None
        if decoded is None:
            decoded = self.decode(messages)
        spans = offset_ranges((m.topic, m.partition, m.offset) for m in messages)
        for attempt in range(MAX_ATTEMPTS):
            try:
                with self.clock.timing("writing", "cutouts and CSV"):
                    outcome = self.write(messages, decoded)
                fault_point("after-write")
                with self.clock.timing("writing", "sync", WAIT):
                    self.output.make_durable()
                fault_point("after-sync")
            except OSError as exc:
                raise OutputError(f"writing to {self.output.root} failed: {exc}") from exc
            try:
                with self.clock.timing("writing", "ledger"):
                    self.output.ledger.record_batch(BatchRecord(
                        outcome.written, outcome.csv_lengths, outcome.deadletters,
                        outcome.missing, outcome.archive_files, spans,
                        self.output.output_name, source.group_id,
                        batch_deliveries(messages, decoded, outcome, self.broker)))
                break
            except AlertsTaken as lost:  # a rebalance: another member recorded them first
                say_given_way(self.output, partitions_of(messages, decoded, lost.ids),
                              lost.ids, attempt)
                try:
                    give_way(self.output, [file.name for file in outcome.archive_files],
                             outcome.cutout_files, lost.ids)
                except OSError as exc:
                    raise OutputError(f"undoing a batch in {self.output.root} failed: "
                                      f"{exc}") from exc
        else:
            raise OutputError(f"{self.output.root}: another member recorded alerts of this batch "
                              f"{MAX_ATTEMPTS} times in a row; nothing of it was committed, a "
                              "later run writes what is left")
        fault_point("after-ledger")
        if recorded is not None:
            recorded(outcome)
        with self.clock.timing("writing", "offset commit", WAIT):
            source.commit(messages)
        fault_point("after-commit")
        if self.observer is not None:
            with self.clock.timing("writing", "notifications"):
                self.observer.batch_durable(self.output, outcome)
        return outcome

    def write(self, messages: list[Message],
              results: list[Decoded] | None = None) -> BatchOutcome:
        """Skip what the ledger knows and write files for the rest (not yet durable)."""
        assert self.output.ledger is not None
        outcome = BatchOutcome()
        decoded: list[tuple[Message, int, AlertRecord]] = []
        if results is None:
            results = self.decode(messages)
        for message, result in zip(messages, results, strict=True):
            if isinstance(result, InvalidMessage):
                self._dead(outcome, message, message.origin, result)
                continue
            decoded.extend((message, index, record) for index, record in enumerate(result))
        ids = [str(record.diaSourceId) for _, _, record in decoded]
        known = self.output.ledger.known(ids)
        fetched = self._fetch(decoded, known)
        processed_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        today = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
        rows: dict[str, list[list[Any]]] = {}
        archived: list[ArchivedAlert] = []
        for message, index, record in decoded:
            key = str(record.diaSourceId)
            if FILTERED_OUT in record.extra:
                outcome.filtered_out += 1
                continue
            if key in known:
                outcome.already_written += 1
                continue
            origin = message.origin if index == 0 else f"{message.origin}#{index}"
            try:
                blanked = blank_unusable(record)
                row = self._write_alert(record, processed_at, outcome, fetched.get(key))
            except InvalidMessage as exc:
                self._dead(outcome, message, origin, exc, record)
                continue
            except OSError:
                raise  # the output failed (full disk, permissions): a failure of the system
            except Exception as exc:  # one alert's unforeseen value must not stop the run
                failure = InvalidMessage(f"alert {key} could not be written: "
                                         f"{type(exc).__name__}: {exc}")
                failure.__cause__ = exc
                self._dead(outcome, message, origin, failure, record)
                continue
            if blanked:
                outcome.blanked += len(blanked)
                log.warning("%s: wrote alert %s with blank values: %s", origin, key,
                            "; ".join(blanked))
            known.add(key)
            if why := record.extra.get(INCOMPLETE):  # the broker did not carry every value
                outcome.incomplete[why] = outcome.incomplete.get(why, 0) + 1
            archived.append(ArchivedAlert(message, index, record))
            day = record.day_obs or today
            name = self.csv.file_for(day)  # never under another header (extra_columns changed)
            rows.setdefault(name, []).append(row)
            outcome.written.append(WrittenAlert(key, self.output.csv_key(name)))
        for name in rows.keys() - self.registered_csv:
            path = self.output.data / name
            self.output.ledger.register_csv(self.output.csv_key(name),
                                            path.stat().st_size if path.exists() else 0)
            self.registered_csv.add(name)
        lengths = self.csv.append(rows)
        outcome.csv_lengths = {self.output.csv_key(name): n for name, n in lengths.items()}
        if self.archive is not None and archived:
            # Per alert: a value no archive column can hold is null in that alert's row
            # (logged and counted), never a failure of the batch.
            archive = self.archive.write(archived, today)
            outcome.archive_files = [ArchiveFile(self.output.ledger_key(f.path), f.rows, f.columns,
                                                 f.sha256, pack_ids(f.dia_source_ids))
                                     for f in archive.files]
            outcome.blanked += len(archive.unusable)
        if self.archive is not None:
            self.archive.discard(results)
        return outcome

    def _fetch(self, decoded: list[tuple[Message, int, AlertRecord]],
               known: set[str]) -> dict[str, FetchedCutouts]:
        """The cutouts of the batch's new alerts that carry none, fetched all at once."""
        if self.fetch_cutouts is None:
            return {}
        wanted: dict[str, AlertRecord] = {}
        for _, _, record in decoded:
            key = str(record.diaSourceId)
            usable_id = isinstance(record.diaSourceId, int) and record.diaSourceId > 0
            if usable_id and key not in known and not any(record.cutouts.values()):
                wanted.setdefault(key, record)
        if not wanted:
            return {}
        deadline = time.monotonic() + self.fetch_budget
        with self.clock.timing("writing", "cutout API", WAIT):
            results = self.fetch_cutouts.fetch_alerts(
                [(self.alert_ids(record), CUTOUT_KINDS) for record in wanted.values()],
                deadline)
        say_missing(results)
        return dict(zip(wanted, results, strict=True))

    def _write_alert(self, record: AlertRecord, processed_at: str, outcome: BatchOutcome,
                     fetched: FetchedCutouts | None = None) -> list[Any]:
        if not isinstance(record.diaSourceId, int) or record.diaSourceId <= 0:
            raise InvalidMessage(f"alert has no usable diaSourceId ({record.diaSourceId!r})")
        cutouts = record.cutouts
        missing: dict[str, tuple[MissingState, str]] = {}
        if fetched is not None:
            # A cutout the API did not give (or gave broken) is missing, never a dead letter.
            cutouts, missing = usable_cutouts(fetched)
        cutouts = dict(cutouts)
        for kind, blob in cutouts.items():
            try:
                if blob:
                    check_fits(kind, blob)
            except InvalidMessage as exc:  # the row is still worth having: cutout missing
                log.warning("alert %s: %s; its %s cutout is left out", record.diaSourceId,
                            exc.reason, kind)
                blob = None
            cutouts[kind] = blob or None
        stamp = observation_stamp(record.mjd)
        paths = []
        for kind, blob in cutouts.items():
            if blob is None:
                outcome.missing_cutouts += 1
                name = cutout_name(record.diaSourceId, kind, stamp)
                gap = missing_cutout(self.output, record, kind, name, missing.get(kind), fetched)
                if gap is not None:
                    outcome.missing.append(gap)
                # A cutout missing for now gets its path already: fill-cutouts puts it there.
                paths.append(f"cutouts/{name}" if gap is not None and gap.state == "later"
                             else "")
                continue
            name = cutout_name(record.diaSourceId, kind, stamp)
            write_cutout(self.output.cutouts, name, blob)
            outcome.cutout_files.setdefault(str(record.diaSourceId), []).append(name)
            paths.append(f"cutouts/{name}")
        row = spec_row(record, paths, processed_at)
        extras = {"dayObs": record.day_obs, **{name: getattr(record, name, None)
                                                for name in self.extra_columns
                                                if name != "dayObs"}}
        row.extend(extras.get(name) for name in self.extra_columns)
        return row

    def _dead(self, outcome: BatchOutcome, message: Message, origin: str,
              exc: InvalidMessage, record: AlertRecord | None = None) -> None:
        details: dict[str, Any] = {}
        named = ""
        if record is not None:  # decoded: name the alert, not only where its bytes came from
            details.update(diaSourceId=record.diaSourceId, diaObjectId=record.diaObjectId)
            record.extra[DEAD_LETTERED] = True  # its delivery's verdict (deliveries.py)
            named = f" (diaSourceId {record.diaSourceId}, diaObjectId {record.diaObjectId})"
        if exc.schema_id is not None:
            details["schema_id"] = exc.schema_id
        if exc.__cause__ is not None:
            details["exception"] = f"{type(exc.__cause__).__name__}: {exc.__cause__}"
        name = write_deadletter(self.output.deadletter, origin, message.payload, exc.reason,
                                details)
        outcome.deadletters.append(DeadLetter(name, exc.reason))
        log.warning("dead-lettered %s%s: %s", origin, named, exc.reason)


def run(source: Source, pipeline: Pipeline, options: RunOptions,
        stop: threading.Event | None = None, progress: Progress | None = None,
        summary: RunSummary | None = None) -> RunSummary:
    """Consume batches until caught up, a limit, a signal or a failure; return the summary.

    The caller may pass the summary to fill, so that it still counts what was written when a
    failure (full disk, lost broker) ends the run with an exception."""
    stop = stop or threading.Event()
    progress = progress or Progress()
    summary = summary or RunSummary()
    started = time.monotonic()
    prefetch = Prefetcher(source, pipeline.screen, options,
                          slow_start=pipeline.fetch_cutouts is not None, clock=pipeline.clock,
                          prepare=pipeline.prepare if pipeline.archive is not None else None)
    try:
        _consume_batches(source, pipeline, options, stop, progress, summary, prefetch, started)
    finally:
        summary.elapsed = time.monotonic() - started  # true on a failure too
        prefetch.close()
        if pipeline.archive is not None:  # the archive files of a batch decoded, not written
            pipeline.archive.discard_all()
    progress.finish()
    summary.elapsed = time.monotonic() - started
    summary.stages = pipeline.clock.as_dict()
    if summary.messages:
        log.info("where the time went: %s", pipeline.clock.line())
    # Losses found while the last batches were read go to the ledger; then the offsets move
    # past them even when nothing came after (else `status` shows the old position and the
    # next run counts the loss again).
    record_losses(source, pipeline)
    if source.retention_lost() and summary.exit_code != exitcodes.BROKER_UNREACHABLE:
        try:
            source.commit([])
        except Exception as exc:  # the loss is in the ledger; the next run sees it at assignment
            log.warning("could not commit past the offsets lost to retention: %s", exc)
    try:
        summary.partitions = source.partition_report()
    except Exception as exc:  # the lag is a report; a broker gone at the end must not hide why
        log.warning("could not read the partitions' lag at the end of the run: %s", exc)
    summary.lost_to_retention = source.retention_lost()
    if summary.lost_to_retention and summary.exit_code == exitcodes.OK:
        summary.exit_code = exitcodes.RETENTION_LOSS
    if every_message_dead(summary):
        # Nothing written from a stream that sent something is a broken run (a schema or
        # format the consumer cannot read), not a success; it outranks 8, whose count stays
        # in the summary line.
        log.error("every one of the %d messages read was dead-lettered and none written: "
                  "%s holds each with its reason (.json); their offsets are committed",
                  summary.messages, pipeline.output.deadletter)
        summary.exit_code = exitcodes.ALL_DEADLETTERED
    return summary


def every_message_dead(summary: RunSummary) -> bool:
    """Messages were read, some dead-lettered, and no alert came of the rest (written, already
    on disk or turned away by the local filter), on a run that would otherwise succeed."""
    return (summary.exit_code in (exitcodes.OK, exitcodes.RETENTION_LOSS)
            and summary.messages > 0 and summary.deadlettered > 0
            and summary.alerts_written + summary.already_written + summary.filtered_out == 0)


def record_losses(source: Source, pipeline: Pipeline) -> None:
    """Put in the ledger the offsets the source found deleted by retention since last asked:
    before the batch that reads past them is committed."""
    assert pipeline.output.ledger is not None
    if losses := source.new_retention_losses():
        pipeline.output.ledger.record_retention_losses(losses)


def _consume_batches(source: Source, pipeline: Pipeline, options: RunOptions,
                     stop: threading.Event, progress: Progress, summary: RunSummary,
                     prefetch: Prefetcher, started: float) -> None:
    last_message = started
    holding = False  # memory freed by written batches, kept for the next ones (memory.py)
    while True:
        now = time.monotonic()
        if stop.is_set():
            summary.outcome, summary.exit_code = "interrupted", exitcodes.INTERRUPTED
            break
        if options.max_messages is not None and summary.messages >= options.max_messages:
            summary.outcome = "message limit reached"
            break
        if options.duration is not None and now - started >= options.duration:
            summary.outcome = "duration limit reached"
            break
        with pipeline.clock.timing("writing", "waiting for a batch" if summary.messages
                                   else "waiting for the first batch", WAIT):
            batch, decoded = prefetch.next(options.poll_timeout)
        if batch:
            if summary.messages == 0:
                summary.joined_after = time.monotonic() - started
            delivering = time.monotonic()
            record_losses(source, pipeline)
            try:
                outcome = pipeline.deliver(source, batch, decoded,
                                           recorded=functools.partial(summary.add, len(batch)))
            finally:
                prefetch.written(len(batch), time.monotonic() - delivering)
            log.info("%s", outcome.line(batch, time.monotonic() - delivering))
            last_message = time.monotonic()
            progress.update(summary.alerts_written, summary.already_written,
                            summary.deadlettered, summary.messages, source.backlog)
            del batch, decoded
            holding = True
            continue
        if holding:  # the stream is idle: hand the batches' memory back
            release_freed_memory()
            holding = False
        if source.caught_up():
            summary.outcome = "caught up"
            break
        down_for = source.broker_down_for()
        if down_for > options.broker_timeout:
            summary.outcome, summary.exit_code = ("broker unreachable",
                                                  exitcodes.BROKER_UNREACHABLE)
            break
        if down_for > 0:
            continue  # librdkafka reconnects with backoff; the broker timeout bounds the wait
        if now - last_message >= options.idle_timeout:
            summary.outcome, summary.exit_code = "stalled", exitcodes.STALLED
            break
