"""Property tests: bad bytes only ever raise InvalidMessage; every bundled schema round-trips."""

from __future__ import annotations

import datetime as dt
import io
import math
import struct
import zlib
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsst_alert_pipeline.decode.formats import decode_message, detect_format
from lsst_alert_pipeline.decode.normalize import normalize
from lsst_alert_pipeline.decode.schemas import (
    bundled_schema,
    bundled_versions,
    parsed_bundled_schema,
    schema_id_for,
)
from lsst_alert_pipeline.errors import InvalidMessage, UnknownSchemaError

from .conftest import real_files

PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=True),
    "double": st.floats(allow_nan=True),
    "string": st.text(max_size=8),
    "bytes": st.binary(max_size=16),
}


def strategy_for(schema: Any) -> st.SearchStrategy[Any]:
    """A hypothesis strategy for values of an expanded (reference-free) Avro schema."""
    if isinstance(schema, str):
        return PRIMITIVES[schema]
    if isinstance(schema, list):
        return st.one_of([strategy_for(branch) for branch in schema])
    kind = schema["type"]
    if schema.get("logicalType") in ("timestamp-millis", "timestamp-micros"):
        return st.datetimes(
            min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2100, 1, 1),
            timezones=st.just(dt.UTC),
        ).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))
    if kind == "record":
        return st.fixed_dictionaries(
            {field["name"]: strategy_for(field["type"]) for field in schema["fields"]})
    if kind == "array":
        return st.lists(strategy_for(schema["items"]), max_size=3)
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "map":
        return st.dictionaries(st.text(max_size=4), strategy_for(schema["values"]), max_size=2)
    return strategy_for(kind)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def wire(version: str, record: dict[str, Any]) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, parsed_bundled_schema(version), record)
    return b"\x00" + struct.pack(">I", schema_id_for(version)) + body.getvalue()


@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
@pytest.mark.parametrize("version", bundled_versions())
def test_every_bundled_schema_round_trips(version: str) -> None:
    expanded = fastavro.schema.expand_schema(bundled_schema(version))

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy_for(expanded))
    def round_trip(record: dict[str, Any]) -> None:
        (alert,) = decode_message(wire(version, record))
        assert alert.schema_version == version and alert.schema_id == schema_id_for(version)
        assert same(record, alert.record)
        normalized = normalize(alert)
        assert normalized.diaSourceId == record["diaSource"]["diaSourceId"]
        for name in ("extendednessMedian", "psFlux", "ra", "dec"):
            value = getattr(normalized, name)
            assert value is None or math.isfinite(value)

    round_trip()


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_raise_only_invalid_message(payload: bytes) -> None:
    try:
        for alert in decode_message(payload):
            normalize(alert)
    except InvalidMessage as exc:
        assert exc.payload == payload or exc.payload == b""
        assert exc.reason


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["9.0", "10.0", "11.1", "7.3"]), st.binary(max_size=300))
def test_garbage_after_a_valid_header_is_invalid_message(version: str, body: bytes) -> None:
    payload = b"\x00" + struct.pack(">I", schema_id_for(version)) + body
    with pytest.raises(InvalidMessage):
        decode_message(payload)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_truncated_real_packets_are_invalid_messages(data: st.DataObject) -> None:
    files = real_files("rubin/derived_wire_v9_0/*.wire", "rubin/derived_wire_v10_0/*.wire",
                       "rubin/fink_client_v10_0/*.avro", "rubin/boom_wire/*.avro")
    assert files, "real_files gives the real packets or the simulated ones"
    payload = data.draw(st.sampled_from(files)).read_bytes()
    cut = data.draw(st.integers(1, len(payload) - 1))
    with pytest.raises(InvalidMessage) as caught:
        for alert in decode_message(payload[:cut]):
            normalize(alert)
    assert caught.value.payload == payload[:cut]


def test_unknown_schema_id_names_the_known_ones() -> None:
    with pytest.raises(UnknownSchemaError) as caught:
        decode_message(b"\x00\x00\x00\x03\x09" + b"\x02" * 20)
    assert "unknown schema id 777" in caught.value.reason
    assert "1101" in caught.value.reason


def test_wrong_magic_byte_and_empty_message() -> None:
    with pytest.raises(InvalidMessage, match="leading bytes 01"):
        detect_format(b"\x01\x00\x00\x03\x84rest")
    with pytest.raises(InvalidMessage, match="empty"):
        detect_format(b"")


def test_zlib_bomb_is_refused() -> None:
    bomb = zlib.compress(b"\x00" * (40 * 1024 * 1024), 9)
    with pytest.raises(InvalidMessage, match="zlib bomb"):
        decode_message(bomb)


def test_zlib_that_is_not_bson_is_invalid() -> None:
    with pytest.raises(InvalidMessage, match="BSON"):
        decode_message(zlib.compress(b"not bson at all"))
