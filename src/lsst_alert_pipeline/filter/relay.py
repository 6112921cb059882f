"""The local stand-in for ANTARES: Rubin alerts in, the filter run on each, passing alerts out.

`simulate -> relay -> consume` runs the whole two-part chain on one machine. Passing alerts are
published as their original wire bytes, or as what ANTARES itself publishes (docs/antares.md,
Stream messages): the locus, zlib-compressed BSON `{id, ra, dec, properties, tags, catalogs}`
with the locus centroid as ra/dec and, as properties, ANTARES's own locus properties plus what
the filter set; no alert properties, no history, no cutouts. Offsets of a Kafka source are
committed after the producer has delivered.
"""

from __future__ import annotations

import io
import logging
import struct
import threading
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import fastavro
from antares_devkit.models import BaseFilter

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
    source.connect()
    return source


def relay(source: Source, producer: Any, topic: str, filter_class: type[BaseFilter],
          relay_format: RelayFormat = "wire", batch_size: int = 200,
          stop: threading.Event | None = None, idle_timeout: float = 30.0) -> RelaySummary:
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
        for message, alerts in zip(batch, decode_packets([m.payload for m in batch]),
                                   strict=True):
            summary.messages += 1
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
                produce_waiting(producer, topic, payload, key=str(result.diaSourceId).encode())
        if producer.flush(60):
            raise RuntimeError("the relay's producer could not deliver within 60 s")
        source.commit(batch)
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
        close = getattr(source, "close", None)  # the Source protocol does not promise one
        if close is not None:
            close()
