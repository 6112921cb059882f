"""`verify --repair` with the broker: read again the offsets the broker still holds and write
what the disk lost, through the consumer's own pipeline.

The ledger's covered offsets (and those committed but never written) are re-read by a consumer
that is assigned partitions and never commits (it does not join the group). Each batch goes
through `Pipeline.deliver` with a source whose commit does nothing, so the ledger skips every
alert still whole and writes exactly those `verify` forgot. A cutout broken under a whole row is
written again from the packet in place (a new row would duplicate the alert). The Parquet
archive is left alone: `verify` does not check it, and rewriting would duplicate its rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from ..decode.normalize import AlertRecord
from ..decode.schemas import ForcedSchema, SchemaSource
from ..errors import InvalidMessage
from ..pipeline.ledger import Span
from ..pipeline.outputdir import OutputDir
from ..pipeline.run import Pipeline
from ..sinks.cutouts import check_fits, write_cutout
from ..sources.base import Brokerless, Message
from ..sources.kafka_settings import CONSUMER_DEFAULTS, librdkafka_config
from .verify_broker import PartitionCheck, group_of, within, words

BATCH = 200
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
    reread: int = 0  # messages read again from the broker
    alerts: int = 0  # alerts written again
    cutouts: int = 0  # cutout files written again
    gone: list[str] = field(default_factory=list)  # forgotten alerts that did not come back
    deleted: list[str] = field(default_factory=list)  # "topic/partition: offsets" not held

    def as_dict(self) -> dict[str, Any]:
        return {"reread": self.reread, "alerts": self.alerts, "cutouts": self.cutouts,
                "gone_for_good": self.gone, "offsets_deleted_by_the_broker": self.deleted}


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


def refill(output: OutputDir, settings: Settings, checks: list[PartitionCheck],
           forgotten: set[str], broken_cutouts: dict[str, list[tuple[str, str]]]) -> Refill:
    """Re-read what the broker still holds of the checked partitions and write what is gone."""
    assert output.ledger is not None
    schemas = ForcedSchema(settings.schema) if settings.schema else SchemaSource(
        settings.schema_registry_url)
    pipeline = Pipeline(output, schemas, tuple(settings.extra_columns), archive=False,
                        max_inflated_bytes=settings.max_inflated_bytes)
    result = Refill()
    spans: dict[tuple[str, int], list[Span]] = {}
    for check in checks:
        wanted = sorted(check.covered + check.not_on_disk)
        spans[(check.topic, check.partition)] = within(wanted, check.low, check.high)
        deleted = within(wanted, 0, check.low)
        if deleted:
            result.deleted.append(f"{check.topic}/{check.partition}: {words(deleted)}")
    pending = {key: list(kinds) for key, kinds in broken_cutouts.items()}
    source = NoCommit(group_of(settings.kafka))
    for batch in reread(settings.kafka, spans):
        decoded = pipeline.decode(batch)
        outcome = pipeline.deliver(source, batch, decoded)
        result.reread += len(batch)
        result.alerts += len(outcome.written)
        records = [record for item in decoded if isinstance(item, list) for record in item]
        result.cutouts += rewrite_cutouts(output.ledger_root, records, pending)
    output.make_durable()
    back = output.ledger.known(forgotten)
    result.gone = sorted(forgotten - back) + sorted(pending)
    return result
