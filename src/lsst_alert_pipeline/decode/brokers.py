"""Decoders of the brokers' LSST streams, chosen by the run's preset, not by leading bytes.

A Fink value is schemaless Avro whose schema is in the Kafka key, so its first byte may be
anything (even the 0x00 of the Confluent wire format): the preset says what a message is
(docs/brokers.md). Each decoder returns the normalized records of one message, each holding
the Rubin-shaped packet the local filter reads (`PACKET`), the broker's own fields for the
archive (`BROKER_COLUMNS`) and, when the broker did not carry all the alert's CSV values, what
it lacked (`INCOMPLETE`); or raises InvalidMessage.
"""

from __future__ import annotations

from collections.abc import Callable

from .babamul import babamul_records
from .fink import BROKER_COLUMNS, INCOMPLETE, PACKET, fink_records
from .lasair import lasair_records
from .normalize import AlertRecord

BrokerDecoder = Callable[[bytes | None, bytes], list[AlertRecord]]

DECODERS: dict[str, BrokerDecoder] = {"fink": fink_records, "lasair": lasair_records,
                                      "babamul": babamul_records}

__all__ = ["BROKER_COLUMNS", "DECODERS", "INCOMPLETE", "PACKET", "BrokerDecoder",
           "broker_decoder"]


def broker_decoder(broker: str | None) -> BrokerDecoder | None:
    """The decoder of a broker's stream; None for a stream whose bytes say their format."""
    return DECODERS.get(broker) if broker else None
