"""Turn the bytes of one message or file into decoded alerts, choosing the format by leading bytes.

Formats (docs/formats.md, Wire formats): Confluent wire format (0x00 + uint32 schema id + schemaless
Avro), Avro Object Container Files, and ANTARES locus messages (zlib-compressed BSON). Anything
else raises InvalidMessage carrying the bytes and the reason.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import fastavro

from ..errors import InvalidMessage
from .inflation import DEFAULT_MAX_INFLATED_BYTES, check_container
from .schemas import SchemaSource

Kind = Literal["rubin", "ztf", "antares"]
SourceFormat = Literal["wire", "ocf", "antares"]
# Streams whose bytes do not say what they are: chosen by the run's preset (decode/brokers.py).
BrokerFormat = Literal["fink", "lasair", "babamul"]

OCF_MAGIC = b"Obj\x01"
# Second byte of a zlib header for the four compression levels zlib writes.
_ZLIB_FLAGS = {0x01, 0x5E, 0x9C, 0xDA}
# A locus message is a few KB; anything inflating past this is hostile (a zlib/BSON bomb).
MAX_LOCUS_BYTES = 16 * 1024 * 1024
_RECORD_VERSION = re.compile(r"v(\d+)_(\d+)")

_default_schemas = SchemaSource()


@dataclass(slots=True)
class DecodedAlert:
    """One alert as its format carried it: an Avro record (Rubin or ZTF) or an ANTARES locus."""

    kind: Kind
    record: dict[str, Any]
    source_format: SourceFormat | BrokerFormat
    schema_version: str | None = None
    schema_id: int | None = None


def detect_format(payload: bytes) -> SourceFormat:
    """The format named by the leading bytes, or InvalidMessage saying why none fits."""
    if len(payload) == 0:
        raise InvalidMessage("empty message", payload)
    if payload[:4] == OCF_MAGIC:
        return "ocf"
    if payload[0] == 0x00:
        if len(payload) < 6:
            raise InvalidMessage(
                f"truncated Confluent wire-format message: {len(payload)} bytes, "
                "need a 5-byte header and an Avro body",
                payload,
            )
        return "wire"
    if payload[0] == 0x78 and len(payload) > 1 and payload[1] in _ZLIB_FLAGS:
        return "antares"
    raise InvalidMessage(
        f"not an alert: leading bytes {payload[:4].hex()} are neither the Confluent wire format "
        "(00 + schema id), an Avro container file (4f626a01) nor an ANTARES zlib stream (78..)",
        payload,
    )


def decode_message(payload: bytes, schemas: SchemaSource | None = None,
                   max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES) -> list[DecodedAlert]:
    """All alerts in one Kafka message or file; InvalidMessage if any part of it is bad."""
    fmt = detect_format(payload)
    if fmt == "wire":
        return [decode_wire(payload, schemas or _default_schemas)]
    if fmt == "ocf":
        return list(iter_container(payload, max_inflated_bytes))
    return [decode_locus(payload)]


def wire_schema_id(payload: bytes) -> int:
    return int(struct.unpack_from(">I", payload, 1)[0])


def decode_wire(payload: bytes, schemas: SchemaSource) -> DecodedAlert:
    schema_id = wire_schema_id(payload)
    version, parsed = schemas.lookup(schema_id)
    body = io.BytesIO(payload)
    body.seek(5)
    try:
        record = fastavro.schemaless_reader(body, parsed, None)
    except Exception as exc:
        raise InvalidMessage(
            f"Avro body does not match schema id {schema_id} (version {version}): "
            f"{type(exc).__name__}: {exc}; the message may be truncated or written with another "
            "schema (try --schema)",
            payload,
            schema_id=schema_id,
        ) from exc
    left = len(payload) - body.tell()
    if left:
        raise InvalidMessage(
            f"{left} bytes left after the Avro body of schema id {schema_id} (version {version}): "
            "the message was written with another schema (try --schema)",
            payload,
            schema_id=schema_id,
        )
    if not isinstance(record, dict):
        raise InvalidMessage(f"schema id {schema_id} does not describe an alert record", payload)
    return DecodedAlert("rubin", record, "wire", version, schema_id)


def iter_container(payload: bytes, max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES
                   ) -> Iterator[DecodedAlert]:
    """Alerts of an Avro container file, whatever its record name, nullability or extra fields
    (refused before inflating when its compressed blocks would inflate past the limit)."""
    check_container(payload, max_inflated_bytes)
    try:
        reader = fastavro.reader(io.BytesIO(payload))
    except Exception as exc:
        raise InvalidMessage(
            f"not a readable Avro container file: {type(exc).__name__}: {exc}", payload
        ) from exc
    writer_schema = reader.writer_schema
    name = str(writer_schema.get("name", "")) if isinstance(writer_schema, dict) else ""
    field_names = (
        {f["name"] for f in writer_schema.get("fields", [])}
        if isinstance(writer_schema, dict)
        else set()
    )
    if "candidate" in field_names:
        kind: Kind = "ztf"
    elif "diaSource" in field_names:
        kind = "rubin"
    else:
        raise InvalidMessage(
            f"Avro container file with record {name!r} holds neither Rubin alerts (diaSource) "
            "nor ZTF alerts (candidate)",
            payload,
        )
    match = _RECORD_VERSION.search(name)
    version = f"{int(match.group(1))}.{int(match.group(2))}" if match else None
    index = 0
    try:
        for record in reader:
            if not isinstance(record, dict):
                raise InvalidMessage(f"record {index} is not an alert record", payload)
            record_version = version or _version_from_broker_field(record)
            yield DecodedAlert(kind, record, "ocf", record_version)
            index += 1
    except InvalidMessage:
        raise
    except Exception as exc:
        raise InvalidMessage(
            f"Avro container file breaks at record {index}: {type(exc).__name__}: {exc} "
            "(truncated or corrupt block)",
            payload,
        ) from exc


def _version_from_broker_field(record: dict[str, Any]) -> str | None:
    # Broker copies (fink) name the Rubin schema in an extra field, e.g. "lsst.v10_0.alert".
    value = record.get("lsst_schema_version")
    match = _RECORD_VERSION.search(str(value)) if value else None
    return f"{int(match.group(1))}.{int(match.group(2))}" if match else None


def decode_locus(payload: bytes) -> DecodedAlert:
    """An ANTARES stream message: zlib-compressed BSON, in either variant antares-client reads."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(payload, MAX_LOCUS_BYTES)
    except zlib.error as exc:
        raise InvalidMessage(f"ANTARES message is not a valid zlib stream: {exc}", payload) from exc
    if inflater.unconsumed_tail:
        raise InvalidMessage(
            f"ANTARES message inflates past {MAX_LOCUS_BYTES} bytes: refused as a zlib bomb",
            payload,
        )
    if not inflater.eof:
        raise InvalidMessage("ANTARES message is a truncated zlib stream", payload)
    try:
        document = _bson_loads(raw)
    except Exception as exc:
        raise InvalidMessage(
            f"ANTARES message does not hold a BSON document: {type(exc).__name__}: {exc}", payload
        ) from exc
    return DecodedAlert("antares", _locus_fields(document, payload), "antares")


def _bson_loads(raw: bytes) -> dict[str, Any]:
    import bson  # the standalone package antares-client uses; pymongo's bson has decode()

    loads = getattr(bson, "loads", None) or bson.decode
    document = loads(raw)
    if not isinstance(document, dict):
        raise ValueError("top level is not a document")
    return document


def _locus_fields(document: dict[str, Any], payload: bytes) -> dict[str, Any]:
    """Validate a locus with antares-client's own message models and flatten the old variant."""
    from pydantic import ValidationError

    from ..antares_adapter import LocusMessageToUsers, OldMarshmallowLocusFromKafka

    try:
        if "data" in document:
            old = OldMarshmallowLocusFromKafka.model_validate(document)
            attributes = old.data.attributes
            return {
                "id": old.data.id,
                "ra": attributes.ra,
                "dec": attributes.dec,
                "properties": attributes.properties,
                "tags": attributes.tags,
                "catalogs": attributes.catalogs,
            }
        return LocusMessageToUsers.model_validate(document).model_dump()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidMessage(
            f"ANTARES locus message is missing or has a bad field '{where}': {first['msg']}",
            payload,
        ) from exc
