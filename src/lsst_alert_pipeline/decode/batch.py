"""Decode and normalize a batch of messages, choosing per message the fastest exact reader.

Every Rubin wire payload is read by fastavro up to and including the triggering diaSource (the
fields before prvDiaSources), which also gives the number of prvDiaSources. Light alerts are read
on by fastavro from there; alerts with a long history go to polars in one columnar batch per
schema (columnar.py). Both hand the same record shape to normalize_rubin, so both paths give the
same AlertRecord as a full decode (tests/test_decode_batch.py checks every real packet).
Every command that reads alerts decodes here: decode_files for records (inspect, consume),
decode_packet_files / decode_packets for the whole packet the DevKit locus needs (filter-test,
relay, the demo).
"""

from __future__ import annotations

import copy
import functools
import io
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro

from ..errors import InvalidMessage, PipelineError
from ..sources.files import alert_files
from .brokers import broker_decoder
from .columnar import (
    CUTOUT_FIELDS,
    NEEDED_AFTER_TRIGGER,
    container_header,
    read_after_trigger,
    read_whole,
    tails_of,
)
from .formats import DecodedAlert, decode_message, detect_format, wire_schema_id
from .inflation import DEFAULT_MAX_INFLATED_BYTES, read_long
from .normalize import AlertRecord, normalize, normalize_rubin
from .schemas import SchemaSource, bundled_schema, bundled_versions, inline_named_types

log = logging.getLogger(__name__)

# At this many previous DIASources polars' columnar read beats fastavro (measured on the real
# v9/v10 packets: ~0.5x at 0-2 rows, ~15x at 300-400 rows).
HEAVY_HISTORY = 24
COLUMNAR_GROUP = 8
# Where a record's extra holds (the batch's whole-packet frame of its version, its row), when
# decode_and_normalize was asked to read packets whole (the archive is on).
WHOLE_PACKET = "whole_packet"
# Files read and decoded at a time: enough for the columnar groups, ~1 MB each when heavy.
FILE_BATCH = 64

Outcome = list[AlertRecord] | InvalidMessage
Packets = list[DecodedAlert] | InvalidMessage


@dataclass(frozen=True)
class SplitSchema:
    """A bundled alert schema cut after the triggering diaSource."""

    prefix: Any
    suffix: Any
    suffix_reader: Any  # the suffix projected to what normalize_rubin reads (~10% faster)
    array_branch: int  # union branch of prvDiaSources that holds the array
    row_fields: int  # fields of one prvDiaSources row: its least size in bytes


@functools.cache
def split_schema(version: str) -> SplitSchema | None:
    schema = inline_named_types(bundled_schema(version))
    names = [field["name"] for field in schema["fields"]]
    if "diaSource" not in names or names[names.index("diaSource") + 1] != "prvDiaSources":
        return None
    cut = names.index("diaSource") + 1
    prefix = dict(schema, name=schema["name"] + "_prefix", fields=schema["fields"][:cut])
    suffix = dict(schema, name=schema["name"] + "_suffix", fields=schema["fields"][cut:])
    branches = schema["fields"][cut]["type"]
    array_branch = next(i for i, b in enumerate(branches)
                        if isinstance(b, dict) and b.get("type") == "array")
    row_fields = len(branches[array_branch]["items"]["fields"])
    reader = copy.deepcopy(suffix)
    reader["fields"] = [field for field in reader["fields"]
                        if field["name"] in NEEDED_AFTER_TRIGGER]
    history = reader["fields"][0]["type"][array_branch]["items"]
    history["fields"] = [field for field in history["fields"]
                         if field["name"] in ("diaSourceId", "extendedness")]
    for dia_object in (field for field in reader["fields"] if field["name"] == "diaObject"):
        for branch in dia_object["type"]:  # ["null", record]: its diaObjectId alone
            if isinstance(branch, dict) and branch.get("type") == "record":
                branch["fields"] = [f for f in branch["fields"] if f["name"] == "diaObjectId"]
    return SplitSchema(fastavro.parse_schema(prefix, named_schemas={}),
                       fastavro.parse_schema(suffix, named_schemas={}),
                       fastavro.parse_schema(reader, named_schemas={}), array_branch, row_fields)


def history_length(payload: bytes, position: int, array_branch: int) -> int:
    """Number of prvDiaSources in the first array block, read without decoding them."""
    branch, position = read_long(payload, position)
    if branch != array_branch:
        return 0
    count, _ = read_long(payload, position)
    return abs(count)


def decode_and_normalize(payloads: list[bytes], schemas: SchemaSource,
                         max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES,
                         whole: bool = False, broker: str | None = None,
                         keys: list[bytes | None] | None = None) -> list[Outcome]:
    """Per payload, its normalized alerts or the InvalidMessage saying why it has none.

    `whole` (the archive is on): also read every wire packet whole, one polars read per schema
    version, which then serves the history-heavy alerts too (one block of the whole batch reads
    ~3x faster than the columnar groups below); each record gets its row in extra.
    `broker` (a preset whose stream the bytes cannot name, brokers.py): its decoder reads each
    payload with its Kafka key."""
    decoder = broker_decoder(broker)
    if decoder is not None:
        return [_by_broker(decoder, key, payload)
                for key, payload in zip(keys or [None] * len(payloads), payloads, strict=True)]
    outcomes: list[Outcome | None] = [None] * len(payloads)
    heavy: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    light: dict[str, list[tuple[int, Any]]] = {}
    for index, payload in enumerate(payloads):
        try:
            split = _wire_split(payload, schemas)
            if split is None:
                outcomes[index] = [normalize(a) for a in
                                   decode_message(payload, schemas, max_inflated_bytes)]
                continue
            version, schema = split
            body = io.BytesIO(payload)
            body.seek(5)
            head = fastavro.schemaless_reader(body, schema.prefix, None)
            assert isinstance(head, dict)
            history = history_length(payload, body.tell(), schema.array_branch)
            # A count the payload cannot hold (each row takes a byte per field at least) is a
            # hostile or corrupt message: fastavro names it; polars could try to allocate it.
            if history >= HEAVY_HISTORY and history * schema.row_fields <= len(payload):
                head["_body"], head["_history"] = payload[5:], history
                heavy.setdefault(version, []).append((index, head))
                continue
            tail = fastavro.schemaless_reader(body, schema.suffix, schema.suffix_reader)
            if body.tell() != len(payload):
                raise ValueError(f"{len(payload) - body.tell()} bytes left after the Avro body")
            assert isinstance(tail, dict)
            outcomes[index] = [normalize_rubin({**head, **tail}, version)]
            if whole:
                light.setdefault(version, []).append((index, head["diaSource"]["diaSourceId"]))
        except InvalidMessage as exc:
            outcomes[index] = exc
        except PipelineError:
            raise  # the registry (a remote) failing is no fault of the message: stop the run
        except Exception:
            # Let the one-message path name the problem exactly (and keep the bytes).
            outcomes[index] = _one_by_one(payload, schemas, max_inflated_bytes)
    if whole:
        for version in light.keys() | heavy.keys():
            if _whole_batch(version, light.get(version, []), heavy.get(version, []), payloads,
                            outcomes):
                heavy.pop(version, None)
    for version, items in heavy.items():
        # Columnar reads in small groups: polars materializes every field of every history row,
        # ~5 MB per alert, so a whole batch at once would cost hundreds of MB.
        for start in range(0, len(items), COLUMNAR_GROUP):
            _columnar(version, items[start:start + COLUMNAR_GROUP], payloads, outcomes, schemas)
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


def _whole_batch(version: str, light: list[tuple[int, Any]],
                 heavy: list[tuple[int, dict[str, Any]]], payloads: list[bytes],
                 outcomes: list[Outcome | None]) -> bool:
    """Read a version's packets whole in one go; normalize its heavy alerts from that read and
    give every record its row. False when polars cannot (the columnar groups then do)."""
    order = sorted([(index, dia_source_id) for index, dia_source_id in light]
                   + [(index, head["diaSource"]["diaSourceId"]) for index, head in heavy])
    try:
        frame = read_whole(version, [memoryview(payloads[index])[5:] for index, _ in order],
                           [dia_source_id for _, dia_source_id in order], cutouts=True)
        rows = {index: row for row, (index, _) in enumerate(order)}
        _, columns = container_header(version)
        tails = tails_of(frame[[rows[index] for index, _ in heavy]], columns)
        for (index, head), tail in zip(heavy, tails, strict=True):
            # The same checks as the columnar groups: enough rows, and the body ends with the
            # fields read last (polars does not mind bytes left over).
            if len((tail["history"] or ((),))[0]) < head["_history"]:
                raise ValueError("prvDiaSources shorter than its first block count")
            if not payloads[index].endswith(encoded_tail(version, tail)):
                raise ValueError("the Avro body does not end with the fields read last")
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # polars panics (pyo3 PanicException) on some corrupt bodies
        log.debug("whole read of %d v%s alerts failed (%s)", len(order), version, exc)
        return False
    for (index, head), tail in zip(heavy, tails, strict=True):
        ids, values = tail.pop("history") or ((), ())
        del head["_body"], head["_history"]
        outcomes[index] = [normalize_rubin({**head, **tail}, version,
                                           zip(ids, values, strict=True))]
    kept = frame.drop(*(name for name in CUTOUT_FIELDS if name in frame.columns))
    for index, row in rows.items():
        outcome = outcomes[index]
        if isinstance(outcome, list):
            outcome[0].extra[WHOLE_PACKET] = (kept, row)
    return True


def _wire_split(payload: bytes, schemas: SchemaSource) -> tuple[str, SplitSchema] | None:
    """(version, split schema) for a wire payload of a bundled schema; None for anything else."""
    if detect_format(payload) != "wire" or type(schemas) is not SchemaSource or \
            schemas.registry_url:
        return None
    version, _ = schemas.lookup(wire_schema_id(payload))
    if version is None or version not in bundled_versions():
        return None
    split = split_schema(version)
    return None if split is None else (version, split)


def _one_by_one(payload: bytes, schemas: SchemaSource,
                max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES) -> Outcome:
    try:
        return [normalize(alert) for alert in
                decode_message(payload, schemas, max_inflated_bytes)]
    except InvalidMessage as exc:
        return exc
    except PipelineError:
        raise  # a failure of the system (the registry unreachable), not of this message
    except Exception as exc:  # one message's unforeseen value must not stop the run
        return unusable(payload, exc)


def _by_broker(decoder: Any, key: bytes | None, payload: bytes) -> Outcome:
    try:
        records: list[AlertRecord] = decoder(key, payload)
        return records
    except InvalidMessage as exc:
        return exc
    except Exception as exc:  # one message's unforeseen value must not stop the run
        return unusable(payload, exc)


def unusable(payload: bytes, exc: Exception) -> InvalidMessage:
    """The dead letter of a message that decoded but could not be normalized."""
    failure = InvalidMessage(
        f"alert could not be normalized: {type(exc).__name__}: {exc}", payload)
    failure.__cause__ = exc
    return failure


@functools.cache
def tail_schema(version: str) -> tuple[tuple[str, ...], Any]:
    """The cutouts that end the alert (read_after_trigger returns them), and their schema: bytes
    re-encode exactly, unlike floats, whose NaN payloads polars does not keep."""
    schema = inline_named_types(bundled_schema(version))
    _, columns = container_header(version)
    tail: list[dict[str, Any]] = []
    for field in reversed(schema["fields"]):
        if field["name"] not in columns or not field["name"].startswith("cutout"):
            break
        tail.insert(0, field)
    record = dict(schema, name=schema["name"] + "_tail", fields=tail)
    return tuple(field["name"] for field in tail), fastavro.parse_schema(record, named_schemas={})


def encoded_tail(version: str, values: dict[str, Any]) -> bytes:
    """The Avro encoding of the alert's last fields, from the values read."""
    names, schema = tail_schema(version)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, {name: values[name] for name in names})
    return buffer.getvalue()


def _columnar(version: str, items: list[tuple[int, dict[str, Any]]], payloads: list[bytes],
              outcomes: list[Outcome | None], schemas: SchemaSource) -> None:
    bodies = [head.pop("_body") for _, head in items]
    expected = [head.pop("_history") for _, head in items]
    try:
        tails = read_after_trigger(version, bodies)
        for tail, count, body in zip(tails, expected, bodies, strict=True):
            # The first array block already holds `count` rows: fewer means a misread body.
            if len((tail["history"] or ((),))[0]) < count:
                raise ValueError("prvDiaSources shorter than its first block count")
            # polars neither reports where a record ended nor minds bytes left in its block: the
            # body must end with the fields read last (the cutouts), or it was misread.
            if not body.endswith(encoded_tail(version, tail)):
                raise ValueError("the Avro body does not end with the fields read last")
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # polars panics (pyo3 PanicException) on some corrupt bodies
        # One bad payload spoils the columnar read of its batch: read those one by one.
        log.debug("columnar read of %d v%s alerts failed (%s); reading them one by one",
                  len(items), version, exc)
        for index, _ in items:
            outcomes[index] = _one_by_one(payloads[index], schemas)
        return
    for (index, head), tail in zip(items, tails, strict=True):
        ids, values = tail.pop("history") or ((), ())
        try:
            outcomes[index] = [normalize_rubin({**head, **tail}, version,
                                               zip(ids, values, strict=True))]
        except InvalidMessage as exc:
            outcomes[index] = exc
        except Exception as exc:  # one message's unforeseen value must not stop the run
            outcomes[index] = unusable(payloads[index], exc)


def decode_packets(payloads: list[bytes], schemas: SchemaSource | None = None) -> list[Packets]:
    """Per payload, every alert it holds as a whole decoded packet, or the InvalidMessage saying
    why it has none.

    The DevKit locus (filter-test, relay, the demo) carries every field of every prvDiaSources
    row as an ANTARES alert property, and a filter may read any of them: that needs the whole
    packet, which decode_and_normalize's fast path deliberately skips. normalize() on a packet
    gives its record from the decoded dict, without decoding it again."""
    out: list[Packets] = []
    for payload in payloads:
        try:
            out.append(decode_message(payload, schemas))
        except InvalidMessage as exc:
            out.append(exc)
    return out


def file_batches(paths: Iterable[str | os.PathLike[str]], batch_size: int = FILE_BATCH
                 ) -> Iterator[tuple[list[Path], list[bytes]]]:
    """The alert files named (folders searched, sorted), read `batch_size` at a time."""
    files = list(alert_files(paths))
    for start in range(0, len(files), batch_size):
        chosen = files[start:start + batch_size]
        yield chosen, [path.read_bytes() for path in chosen]


def decode_files(paths: Iterable[str | os.PathLike[str]], schemas: SchemaSource | None = None,
                 batch_size: int = FILE_BATCH) -> Iterator[tuple[Path, Outcome]]:
    """Each alert file with its normalized records, or the InvalidMessage saying why it has none,
    decoded in batches by decode_and_normalize (the consumer's decoder)."""
    schemas = schemas or SchemaSource()
    for files, payloads in file_batches(paths, batch_size):
        yield from zip(files, decode_and_normalize(payloads, schemas), strict=True)


def decode_packet_files(paths: Iterable[str | os.PathLike[str]],
                        schemas: SchemaSource | None = None,
                        batch_size: int = FILE_BATCH) -> Iterator[tuple[Path, Packets]]:
    """Each alert file with its whole decoded packets (see decode_packets), or why it has none."""
    for files, payloads in file_batches(paths, batch_size):
        yield from zip(files, decode_packets(payloads, schemas), strict=True)
