"""Fink's LSST stream: the Kafka key is the value's Avro writer schema (JSON), the value schemaless
Avro written with it, as fink-client's `AlertConsumer.process_message` reads them.

The schema is Spark's (record `topLevelRecord`, unions `[T, "null"]`), and Spark writes a null
record as a record whose every field is null: `ssSource` is there on every alert, so the
association is read from its `ssObjectId`, never from its presence (docs/brokers.md). The Rubin
fields become the Rubin packet that normalize_rubin reads (the same record the Rubin alert
gives); Fink's own fields (`clf`, `xm`, `pred`, `lc_features`, ...) go to the archive as
`fink_<name>`.
"""

from __future__ import annotations

import functools
import io
import json
import re
from typing import Any

import fastavro

from ..errors import InvalidMessage
from .formats import DecodedAlert
from .normalize import AlertRecord, normalize_rubin
from .schemas import bundled_schema, bundled_versions

# Where a broker record keeps what the archive adds to the alert's row (sinks/archive_rows.py)
# and the Rubin-shaped packet the local filter builds its locus from (pipeline/run.py).
BROKER_COLUMNS = "broker_columns"
PACKET = "packet"
# Where a record's extra says what its broker did not carry (counted per run, docs/brokers.md).
INCOMPLETE = "incomplete"
FINK_PREFIX = "fink_"
_RECORD_VERSION = re.compile(r"v(\d+)_(\d+)")
NO_SS_OBJECT = (None, 0, "0", "")


@functools.cache
def rubin_field_names(version: str | None) -> frozenset[str]:
    """The top-level fields of a Rubin alert of this schema version (of every bundled version
    when the version is unknown): what is not among them is the broker's own."""
    versions = [version] if version in bundled_versions() else list(bundled_versions())
    return frozenset(field["name"] for v in versions for field in bundled_schema(v)["fields"])


@functools.lru_cache(maxsize=8)
def writer_schema(key: bytes) -> Any:
    """The parsed Avro schema a Fink key holds (fink-client: parse_schema(json.loads(key)))."""
    return fastavro.parse_schema(json.loads(key.decode("utf8")), named_schemas={})


def schema_version(record: dict[str, Any]) -> str | None:
    """The Rubin schema version Fink names in `lsst_schema_version` ("lsst.v10_0.alert")."""
    value = record.get("lsst_schema_version")
    match = _RECORD_VERSION.search(str(value)) if value else None
    return f"{int(match.group(1))}.{int(match.group(2))}" if match else None


def decode_fink(key: bytes | None, value: bytes) -> DecodedAlert:
    """One Fink message as the record fink-client returns; InvalidMessage naming the problem."""
    if not key:
        raise InvalidMessage("Fink message without a key: Fink puts the Avro writer schema of "
                             "the value in the key (is this a Fink topic?)", value)
    try:
        schema = writer_schema(key)
    except Exception as exc:
        raise InvalidMessage(f"the key of this Fink message is not an Avro schema as JSON: "
                             f"{type(exc).__name__}: {exc}", value) from exc
    body = io.BytesIO(value)
    try:
        record = fastavro.schemaless_reader(body, schema, None)
    except Exception as exc:
        raise InvalidMessage(f"Fink value does not match the writer schema in its key: "
                             f"{type(exc).__name__}: {exc} (truncated or corrupt)", value) from exc
    if body.tell() != len(value):
        raise InvalidMessage(f"{len(value) - body.tell()} bytes left after the Fink value's Avro "
                             "body: it was not written with the schema in its key", value)
    if not isinstance(record, dict) or not isinstance(record.get("diaSource"), dict):
        raise InvalidMessage("Fink value holds no Rubin alert (no diaSource record)", value)
    return DecodedAlert("rubin", record, "fink", schema_version(record))


def spark_null(value: Any) -> Any:
    """None for a record Spark wrote for a null one (every field null), the value otherwise."""
    if isinstance(value, dict) and all(item is None for item in value.values()):
        return None
    return value


def rubin_packet(record: dict[str, Any], version: str | None) -> dict[str, Any]:
    """The Rubin alert inside a Fink record: Rubin's fields, null records null again, and
    `ssSource` only when it names a solar-system object."""
    names = rubin_field_names(version)
    packet = {name: spark_null(value) for name, value in record.items() if name in names}
    ss_source = record.get("ssSource")
    if not isinstance(ss_source, dict) or ss_source.get("ssObjectId") in NO_SS_OBJECT:
        packet["ssSource"] = None
    return packet


def broker_values(record: dict[str, Any], version: str | None) -> dict[str, Any]:
    """Fink's own fields, named `fink_<field>` for the archive."""
    names = rubin_field_names(version)
    return {FINK_PREFIX + name: value for name, value in record.items() if name not in names}


def fink_records(key: bytes | None, value: bytes) -> list[AlertRecord]:
    """The normalized record of one Fink message (with its packet for the local filter)."""
    decoded = decode_fink(key, value)
    packet = rubin_packet(decoded.record, decoded.schema_version)
    alert = normalize_rubin(packet, decoded.schema_version)  # diaObjectId too
    alert.extra[BROKER_COLUMNS] = broker_values(decoded.record, decoded.schema_version)
    alert.extra[PACKET] = DecodedAlert("rubin", packet, "fink", decoded.schema_version)
    return [alert]
