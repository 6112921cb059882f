"""Alert fixtures built from real packets: the wire files as they are, and renumbered copies."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import fastavro

from lsst_alert_pipeline.decode.schemas import parsed_bundled_schema, version_for

from .conftest import real_files


def real_wire_payloads() -> list[bytes]:
    return [p.read_bytes() for p in real_files("rubin/derived_wire_v9_0/*.wire",
                                                "rubin/derived_wire_v10_0/*.wire",
                                                "rubin/boom_wire/*.avro")]


def renumbered(payload: bytes, new_id: int, mjd: float | None = None) -> bytes:
    """The same real alert under another diaSourceId (and, if given, observed at another MJD)."""
    schema_id = struct.unpack_from(">I", payload, 1)[0]
    schema = parsed_bundled_schema(version_for(schema_id))
    record = fastavro.schemaless_reader(io.BytesIO(payload[5:]), schema, None)
    assert isinstance(record, dict)
    record["diaSource"]["diaSourceId"] = new_id
    for key in ("diaSourceId", "alertId"):
        if key in record:
            record[key] = new_id
    if mjd is not None:
        record["diaSource"]["midpointMjdTai"] = mjd
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, record)
    return payload[:5] + out.getvalue()


def many_real_alerts(count: int, first_id: int = 9_000_000_000) -> list[bytes]:
    """`count` wire alerts: the real ones, then renumbered copies of them."""
    base = real_wire_payloads()
    out = list(base[:count])
    index = 0
    while len(out) < count:
        out.append(renumbered(base[index % len(base)], first_id + index))
        index += 1
    return out


def csv_rows(output: Path) -> list[dict[str, str]]:
    import csv

    rows: list[dict[str, str]] = []
    for path in sorted((output / "data").glob("lsst_alerts_*.csv")):
        with open(path, newline="") as handle:
            rows.extend(csv.DictReader(handle))
    return rows
