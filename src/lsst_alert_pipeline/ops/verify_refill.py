"""`verify --repair` with the broker: read again the offsets the broker still holds and write
what the disk lost, through the consumer's own pipeline.

The ledger's covered offsets (and those committed but never written) are re-read by a consumer
that is assigned partitions and never commits (it does not join the group). Each batch goes
through `Pipeline.deliver` with a source whose commit does nothing, so the ledger skips every
alert still whole and writes exactly those `verify` forgot. A cutout broken under a whole row is
written again from the packet in place (a new row would duplicate the alert). The alerts of a
damaged archive file (the ledger records which) are written to new archive files, which replace
it in the ledger's list in one transaction. `--repair --from DIR` reads alert files instead of
the broker, the same way (docs/archive.md).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from ..decode.batch import decode_and_normalize
from ..decode.normalize import AlertRecord
from ..decode.schemas import ForcedSchema, SchemaSource
from ..errors import ConfigurationError, InvalidMessage
from ..pipeline.ledger import ArchiveFile, Span, pack_ids
from ..pipeline.outputdir import OutputDir
from ..pipeline.run import Pipeline
from ..sinks.archive import ArchiveSink, WrittenFile
from ..sinks.archive_rows import ArchivedAlert
from ..sinks.cutouts import check_fits, write_cutout
from ..sources.base import Brokerless, Message
from ..sources.files import FileSource
from ..sources.kafka_settings import CONSUMER_DEFAULTS, librdkafka_config
from .verify_broker import PartitionCheck, group_of, within, words

BATCH = 200
REPAIRED_PREFIX = "repair+"  # an archive file `verify --repair` wrote: never a name in use
IDLE_SECONDS = 10.0  # a partition that sends nothing for this long has no more to give


class NoCommit(Brokerless):
    """The re-read's source for `Pipeline.deliver`: the group's offsets are never touched
    (its batches are recorded in the ledger as the group's, which read them first)."""

    def __init__(self, group_id: str):
        self.group_id = group_id

    def poll_batch(self, max_messages: int, timeout: float) -> list[Message]:
        return []

    def commit(self, messages: list[Message]) -> None:
        """Nothing to commit: the re-read is not the group's."""

    def caught_up(self) -> bool:
        return True


@dataclass
class Refill:
    source: str = "the broker"  # where the alerts were read again from
    reread: int = 0  # messages read again
    alerts: int = 0  # alerts written again
    cutouts: int = 0  # cutout files written again
    archived: int = 0  # alerts of damaged archive files written to the archive again
    gone: list[str] = field(default_factory=list)  # forgotten alerts that did not come back
    deleted: list[str] = field(default_factory=list)  # "topic/partition: offsets" not held
    archive_gone: list[str] = field(default_factory=list)  # archived alerts that did not
    # diaSourceId -> what is left of an alert gone for good (its CSV row, cutouts, archive row)
    survivors: dict[str, list[str]] = field(default_factory=dict)
    set_aside: list[str] = field(default_factory=list)  # damaged files moved to state/damaged/

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "reread": self.reread, "alerts": self.alerts,
                "cutouts": self.cutouts, "archived": self.archived,
                "gone_for_good": self.gone, "offsets_deleted_by_the_broker": self.deleted,
                "archive_gone_for_good": self.archive_gone, "what_survives": self.survivors,
                "damaged_files_set_aside": self.set_aside}


def reread(kafka: dict[str, Any], spans: dict[tuple[str, int], list[Span]]
           ) -> Iterator[list[Message]]:
    """The messages at these offsets that the broker still holds, in batches."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer({**CONSUMER_DEFAULTS, **librdkafka_config(kafka),
                         "enable.auto.commit": False, "enable.auto.offset.store": False,
                         "enable.partition.eof": True})
    try:
        for (topic, partition), wanted in sorted(spans.items()):
            for first, end in wanted:
                consumer.assign([TopicPartition(topic, partition, first)])
                batch: list[Message] = []
                position, quiet_since = first, time.monotonic()
                while position < end and time.monotonic() - quiet_since < IDLE_SECONDS:
                    polled = consumer.consume(min(BATCH, end - position), timeout=1.0)
                    for message in polled:
                        error = message.error()
                        if error is not None:
                            if error.code() == KafkaError._PARTITION_EOF:
                                position = end  # nothing more is held
                            continue
                        offset = int(message.offset() or 0)
                        position = offset + 1
                        if offset < end:
                            batch.append(Message(message.value() or b"",
                                                 f"{topic}/{partition}/{offset}", topic,
                                                 partition, offset))
                    if polled:
                        quiet_since = time.monotonic()
                    if len(batch) >= BATCH:
                        yield batch
                        batch = []
                if batch:
                    yield batch
                consumer.unassign()
    finally:
        consumer.close()


def rewrite_cutouts(root: Path, records: list[AlertRecord],
                    broken: dict[str, list[tuple[str, str]]]) -> int:
    """Write again, from their packets, the cutouts `verify` found broken under whole rows
    (broken: diaSourceId -> [(kind, path from the ledger's root)]); how many were written."""
    written = 0
    for record in records:
        left = []
        for kind, path in broken.pop(str(record.diaSourceId), []):
            blob = record.cutouts.get(kind)
            try:
                if not blob:
                    raise InvalidMessage(f"no {kind} cutout in the packet")
                check_fits(kind, blob)
            except InvalidMessage:
                left.append((kind, path))  # the packet does not have it whole either
                continue
            target = root / path
            write_cutout(target.parent, target.name, blob)
            written += 1
        if left:
            broken[str(record.diaSourceId)] = left
    return written


def broker_batches(settings: Settings, checks: list[PartitionCheck], result: Refill
                   ) -> Iterator[list[Message]]:
    """The checked partitions' offsets the ledger covers (or the group committed without
    writing) that the broker still holds; those it deleted go to result.deleted."""
    spans: dict[tuple[str, int], list[Span]] = {}
    for check in checks:
        wanted = sorted(check.covered + check.not_on_disk)
        spans[(check.topic, check.partition)] = within(wanted, check.low, check.high)
        deleted = within(wanted, 0, check.low)
        if deleted:
            result.deleted.append(f"{check.topic}/{check.partition}: {words(deleted)}")
    return reread(settings.kafka, spans)


def file_batches(paths: list[str]) -> Iterator[list[Message]]:
    """Every alert file under the paths (`verify --repair --from DIR`), in batches; a path
    that does not exist is refused before anything is read or changed."""
    try:
        files = FileSource(paths)
    except FileNotFoundError as exc:
        raise ConfigurationError(f"verify --repair --from: {exc}") from exc

    def batches() -> Iterator[list[Message]]:
        while batch := files.poll_batch(BATCH, 0.0):
            yield batch
    return batches()


def refill(output: OutputDir, settings: Settings, batches: Iterable[list[Message]],
           forgotten: set[str], broken_cutouts: dict[str, list[tuple[str, str]]],
           archive_wanted: dict[int, str], result: Refill) -> Refill:
    """Write again, from the batches read again, the alerts `verify` forgot (CSV rows and
    cutouts, through the pipeline's own delivery: the ledger skips every alert still whole),
    the cutouts broken under whole rows, and the alerts of damaged archive files
    (archive_wanted: diaSourceId -> its damaged file, already set aside), each once: the new
    archive files are listed, and the damaged ones unlisted, in one ledger transaction."""
    assert output.ledger is not None
    schemas = ForcedSchema(settings.schema) if settings.schema else SchemaSource(
        settings.schema_registry_url)
    # The archive is written here, not by the pipeline: an alert whose CSV row was broken may
    # still be whole in the archive, and one whose archive file was damaged have a whole row.
    pipeline = Pipeline(output, schemas, tuple(settings.extra_columns), archive=False,
                        max_inflated_bytes=settings.max_inflated_bytes)
    sink = ArchiveSink(output.archive)
    pending = {key: list(kinds) for key, kinds in broken_cutouts.items()}
    to_archive = dict(archive_wanted)
    written: list[WrittenFile] = []
    source = NoCommit(group_of(settings.kafka) if not settings.from_paths else "")
    today = dt.datetime.now(dt.UTC).strftime("%Y%m%d")
    for batch in batches:
        decoded = decode_and_normalize([message.payload for message in batch], schemas,
                                       settings.max_inflated_bytes, whole=bool(to_archive))
        outcome = pipeline.deliver(source, batch, decoded)
        result.reread += len(batch)
        result.alerts += len(outcome.written)
        records = [record for item in decoded if isinstance(item, list) for record in item]
        result.cutouts += rewrite_cutouts(output.ledger_root, records, pending)
        chosen = []
        for message, item in zip(batch, decoded, strict=True):
            for index, record in enumerate(item if isinstance(item, list) else []):
                number = record.diaSourceId
                if number is not None and to_archive.pop(number, None) is not None:  # once
                    chosen.append(ArchivedAlert(message, index, record))
        if chosen:
            written.extend(sink.write(chosen, today, prefix=REPAIRED_PREFIX).files)
    output.make_durable()
    damaged = sorted(set(archive_wanted.values()))
    if damaged or written:
        with output.ledger.archive_transaction() as db:
            output.ledger.replace_archive_files(db, damaged, [ArchiveFile(
                output.ledger_key(file.path), file.rows, file.columns, file.sha256,
                pack_ids(file.dia_source_ids)) for file in written])
    result.archived = sum(file.rows for file in written)
    back = output.ledger.known(forgotten)
    result.gone = sorted(forgotten - back) + sorted(pending)
    result.archive_gone = sorted(str(i) for i in to_archive)
    return result
