"""The local stand-in for ANTARES: Rubin alerts in, the filter run on each, passing alerts out.

`simulate -> relay -> consume` runs the whole two-part chain on one machine. Passing alerts are
published as their original wire bytes, or as what ANTARES itself publishes (docs/antares.md,
Stream messages): the locus, zlib-compressed BSON `{id, ra, dec, properties, tags, catalogs}`
with the locus centroid as ra/dec and, as properties, ANTARES's own locus properties plus what
the filter set; no alert properties, no history, no cutouts. An input offset is committed only
once the broker acknowledged every output of that message and of those before it in its
partition (delivery reports): an output that failed (broker gone, message too large, topic
refused) stops the relay with its input uncommitted, so a rerun relays it again (at least once;
the consumer writes each alert once).
"""

from __future__ import annotations

import io
import logging
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import fastavro
from antares_devkit.models import BaseFilter
from confluent_kafka import KafkaException

from ..decode.batch import decode_packets
from ..decode.formats import DecodedAlert
from ..decode.schemas import parsed_bundled_schema, schema_id_for
from ..errors import InvalidMessage
from ..sinks.kafka_topic import produce_waiting
from ..sources.base import Message, Source
from .devkit_locus import locus_dict
from .devkit_run import run_on_alert

log = logging.getLogger(__name__)
RelayFormat = Literal["wire", "antares"]


class RelayDeliveryError(RuntimeError):
    """The broker did not acknowledge an output: the relay stopped before committing its input."""


@dataclass
class Deliveries:
    """Which input messages of a batch still wait for, or failed, a delivery report."""

    outstanding: dict[int, int] = field(default_factory=dict)  # batch index -> outputs waited
    failed: dict[int, str] = field(default_factory=dict)  # batch index -> the broker's error
    relayed: int = 0  # messages of the batch filtered and produced (the rest wait for a rerun)

    def expect(self, index: int) -> Callable[[Any, Any], None]:
        """The delivery callback of one output of input message `index`."""
        self.outstanding[index] = self.outstanding.get(index, 0) + 1

        def delivered(err: Any, _message: Any) -> None:
            self.outstanding[index] -= 1
            if err is not None:
                self.failed.setdefault(index, str(err))
        return delivered


def acknowledged(batch: list[Message], deliveries: Deliveries
                 ) -> tuple[list[Message], tuple[Message, str] | None]:
    """(the messages that may be committed, the first that may not and why): per partition,
    those before the first message with an output failed or not yet acknowledged."""
    blocked: set[tuple[str | None, int | None]] = set()
    ready: list[Message] = []
    first: tuple[Message, str] | None = None
    for index, message in enumerate(batch):
        partition = (message.topic, message.partition)
        if partition in blocked:
            continue
        why = deliveries.failed.get(index) or (
            "not acknowledged in time" if deliveries.outstanding.get(index) else
            "not relayed" if index >= deliveries.relayed else None)
        if why is None:
            ready.append(message)
            continue
        blocked.add(partition)
        first = first or (message, why)
    return ready, first


@dataclass
class RelaySummary:
    messages: int = 0
    alerts: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errored: int = 0
    undecodable: int = 0

    def line(self) -> str:
        return (f"relayed {self.passed:,} of {self.alerts:,} alerts ({self.failed:,} failed the "
                f"filter, {self.skipped:,} skipped, {self.errored:,} errored, "
                f"{self.undecodable:,} undecodable messages)")


def wire_bytes(message: Message, alert: DecodedAlert, alerts_in_message: int) -> bytes:
    """The alert as Rubin's wire format: the original bytes when the message was one."""
    if alert.source_format == "wire" and alerts_in_message == 1:
        return message.payload
    if alert.schema_version is None:
        raise InvalidMessage("cannot re-encode an alert of unknown schema version as wire format")
    body = io.BytesIO()
    fastavro.schemaless_writer(body, parsed_bundled_schema(alert.schema_version), alert.record)
    return b"\x00" + struct.pack(">I", schema_id_for(alert.schema_version)) + body.getvalue()


def locus_document(alert: DecodedAlert, tags: list[str],
                   new_properties: dict[str, Any]) -> dict[str, Any]:
    """The locus ANTARES would publish for a passing alert: centroid, ANTARES's own locus
    properties and the filter's, tags; nothing of the alert itself."""
    locus = locus_dict(alert.record, alert.schema_version)
    return {"id": locus["id"], "ra": float(locus["ra"]), "dec": float(locus["dec"]),
            "properties": {**locus["internal_properties"], **new_properties},
            "tags": list(tags), "catalogs": []}


def locus_message(alert: DecodedAlert, tags: list[str], new_properties: dict[str, Any]) -> bytes:
    """The ANTARES stream message of the alert's locus: zlib-compressed BSON."""
    import bson

    dumps = getattr(bson, "dumps", None) or bson.encode
    return zlib.compress(dumps(locus_document(alert, tags, new_properties)))


def open_source(from_: str, group_id: str) -> Source:
    """The relay's input: kafka://HOST:PORT/TOPIC (connected, in consumer group `group_id`), or
    alert files and folders. Raises ConfigurationError, FileNotFoundError or BrokerUnreachable."""
    from ..sources.files import FileSource
    from ..sources.kafka import KafkaSource
    from ..sources.kafka_url import is_kafka_url, parse_kafka_url

    if not is_kafka_url(from_):
        return FileSource([from_])
    bootstrap, topic = parse_kafka_url(from_)
    source = KafkaSource({"bootstrap.servers": bootstrap, "group.id": group_id}, [topic])
    source.connect(timeout=15.0)
    return source


def relay(source: Source, producer: Any, topic: str, filter_class: type[BaseFilter],
          relay_format: RelayFormat = "wire", batch_size: int = 200,
          stop: threading.Event | None = None, idle_timeout: float = 30.0,
          flush_timeout: float = 60.0) -> RelaySummary:
    """Run the filter over every alert the source gives; publish the passing ones."""
    import time

    stop = stop or threading.Event()
    filter_instance = filter_class()
    summary = RelaySummary()
    last_message = time.monotonic()
    while not stop.is_set():
        batch = source.poll_batch(batch_size, 1.0)
        if not batch:
            if source.caught_up() or time.monotonic() - last_message > idle_timeout:
                break
            continue
        last_message = time.monotonic()
        deliveries = Deliveries()
        for index, (message, alerts) in enumerate(
                zip(batch, decode_packets([m.payload for m in batch]), strict=True)):
            if deliveries.failed:
                break  # refused before sending: publish nothing after it, commit up to it
            summary.messages += 1
            deliveries.relayed = index + 1
            if isinstance(alerts, InvalidMessage):
                summary.undecodable += 1
                log.warning("relay: %s cannot be decoded: %s", message.origin, alerts.reason)
                continue
            for alert in alerts:
                summary.alerts += 1
                result = run_on_alert(filter_instance, alert, message.origin)
                setattr(summary, result.outcome, getattr(summary, result.outcome) + 1)
                if not result.passed:
                    continue
                payload = (wire_bytes(message, alert, len(alerts)) if relay_format == "wire"
                           else locus_message(alert, result.new_tags, result.new_properties))
                try:
                    produce_waiting(producer, topic, payload,
                                    key=str(result.diaSourceId).encode(),
                                    on_delivery=deliveries.expect(index))
                except KafkaException as exc:  # refused at once, e.g. over message.max.bytes
                    deliveries.failed.setdefault(index, str(exc))
                    break
        producer.flush(flush_timeout)
        ready, refused = acknowledged(batch, deliveries)
        source.commit(ready)
        if refused is not None:
            message, why = refused
            raise RelayDeliveryError(
                f"relay stopped: the broker did not take the output of {message.origin} for "
                f"topic {topic} ({why}); that input and the later ones of its partition are not "
                "committed, so the next relay run publishes them again")
    return summary


def relay_between(from_: str, to: str, filter_class: type[BaseFilter],
                  relay_format: RelayFormat = "wire",
                  group_id: str = "lsst-alerts-relay") -> RelaySummary:
    """`lsst-alerts relay`: open the input and the kafka:// output named, relay, close the input.
    Raises ConfigurationError, FileNotFoundError or BrokerUnreachable before relaying anything."""
    from confluent_kafka import Producer

    from ..sources.kafka_url import parse_kafka_url

    bootstrap, topic = parse_kafka_url(to)  # a bad --to is refused before connecting anywhere
    source = open_source(from_, group_id)
    # A history-heavy alert is ~300 KB; leave room above librdkafka's 1 MB default.
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 10_000_000})
    try:
        return relay(source, producer, topic, filter_class, relay_format)
    finally:
        source.close()
