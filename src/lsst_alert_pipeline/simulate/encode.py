"""Simulated alerts as bytes and files: Rubin's wire format (one .wire file per alert, or a Kafka
message) and Avro container files, byte-identical for a given seed."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import fastavro

from ..decode.schemas import parsed_bundled_schema, schema_id_for
from .history_rows import Rows, encode_array, encode_long
from .packets import alert_schema, avro_kind, branches_of, dia_source_id_of


def encode_body(alert: dict[str, Any], schema_version: str) -> bytes:
    """The schemaless Avro body of an alert, byte-identical to fastavro.schemaless_writer's."""
    schema = alert_schema(schema_version)
    buffer = io.BytesIO()
    for names, writer, array_type in schema.segments():
        value = alert[names[0]]
        if array_type is not None and isinstance(value, Rows):
            branches = branches_of(array_type)
            index = next(i for i, branch in enumerate(branches)
                         if avro_kind(schema.resolve(branch)) == "array")
            buffer.write(encode_long(index) if isinstance(array_type, list) else b"")
            buffer.write(encode_array(value))
        else:
            fastavro.schemaless_writer(buffer, writer, {name: alert[name] for name in names})
    return buffer.getvalue()


def encode_wire(alert: dict[str, Any], schema_version: str) -> bytes:
    """The alert as Rubin publishes it: 0x00, the uint32 schema id, the schemaless Avro body."""
    header = b"\x00" + struct.pack(">I", schema_id_for(schema_version))
    return header + encode_body(alert, schema_version)


def iter_wire_files(
    alerts: Iterable[dict[str, Any]], folder: str | os.PathLike[str], schema_version: str
) -> Iterator[Path]:
    """Write each alert to `<diaSourceId>.wire` in the folder, yielding each path when written."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    for alert in alerts:
        path = target / f"{dia_source_id_of(alert)}.wire"
        # A consumer may watch this folder: it must never see a half-written .wire file.
        partial = path.with_suffix(".wire.part")
        partial.write_bytes(encode_wire(alert, schema_version))
        os.replace(partial, path)
        yield path


def write_wire_files(
    alerts: Iterable[dict[str, Any]], folder: str | os.PathLike[str], schema_version: str
) -> list[Path]:
    """Write each alert to `<diaSourceId>.wire` in the folder; the paths written, in order."""
    return list(iter_wire_files(alerts, folder, schema_version))


def plain_alert(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert with history rows as lists of dicts, for tools that want plain containers."""
    return {k: list(v) if isinstance(v, Rows) else v for k, v in alert.items()}


def write_container(
    alerts: Iterable[dict[str, Any]], path: str | os.PathLike[str], schema_version: str
) -> int:
    """Write the alerts to one Avro container file with the official schema; how many written."""
    stream = iter(alerts)
    first = next(stream, None)
    ordered = itertools.chain([] if first is None else [first], stream)
    written = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal written
        for alert in ordered:
            written += 1
            yield plain_alert(alert)

    # fastavro draws a random sync marker; derive it from the content so a seed gives same bytes.
    key = f"{schema_version}:{'' if first is None else dia_source_id_of(first)}"
    sync_marker = hashlib.md5(key.encode()).digest()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with open(partial, "wb") as out:
        fastavro.writer(out, parsed_bundled_schema(schema_version), counted(),
                        sync_marker=sync_marker)
    os.replace(partial, target)
    return written
