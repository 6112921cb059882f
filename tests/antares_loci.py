"""ANTARES stream messages as real ANTARES would send them: Rubin packets (real ones from
../shared/real-alerts when present, simulated from the official schemas otherwise) run through
the filter in the real DevKit, each passing locus published by relay.locus_message."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import fastavro
from confluent_kafka import Message

from lsst_alert_pipeline.decode.formats import DecodedAlert, decode_message, wire_schema_id
from lsst_alert_pipeline.decode.schemas import latest_version, parsed_bundled_schema, version_for
from lsst_alert_pipeline.filter.antares_extendedness_filter import LsstExtendednessFilter
from lsst_alert_pipeline.filter.devkit_run import FilterResult, run_on_alert
from lsst_alert_pipeline.filter.relay import locus_message
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts

from .conftest import real_files

# The locus properties ANTARES maintains itself (docs/antares.md; the keys
# DevKitLocus.model_post_init lists as ANTARES's internal ones).
ANTARES_LOCUS_PROPERTIES = {
    "num_alerts", "num_mag_values", "survey",
    *(f"{role}_alert_{what}" for role in ("newest", "oldest", "brightest")
      for what in ("id", "magnitude", "observation_time")),
}
DECLARED = {prop["name"] for prop in LsstExtendednessFilter.OUTPUT_LOCUS_PROPERTIES}


def lsst_wire_packets() -> list[bytes]:
    """Real Rubin wire packets when the shared folder is there, simulated ones otherwise."""
    real = [path.read_bytes() for path in real_files("rubin/derived_wire_v9_0/*.wire",
                                                     "rubin/derived_wire_v10_0/*.wire")]
    if real:
        return real
    version = latest_version()
    return [encode_wire(alert, version)
            for alert in simulate_alerts(40, sso_fraction=0.3, seed=5, history=(0, 30))]


def relayed(payloads: list[bytes]) -> Iterator[tuple[DecodedAlert, FilterResult, bytes]]:
    """(alert, the DevKit's result, the stream message) for every alert the filter passes."""
    filter_instance = LsstExtendednessFilter()
    for payload in payloads:
        for alert in decode_message(payload):
            result = run_on_alert(filter_instance, alert, "packet")
            if result.passed:
                yield alert, result, locus_message(alert, result.new_tags, result.new_properties)


def parsed_by_antares_client(payload: bytes, topic: str = "client.test") -> Any:
    """The message as antares-client's own stream parser reads it (an antares_client Locus)."""
    from lsst_alert_pipeline.antares_adapter import parse_stream_message

    return parse_stream_message(Message(value=payload, topic=topic))


def sso_packet() -> bytes:
    """A solar-system wire packet (real when available) with a finite extendedness."""
    for payload in lsst_wire_packets():
        alert = decode_message(payload)[0]
        if alert.record["diaSource"].get("ssObjectId") not in (0, None):
            return edited(payload, extendedness=0.4)
    raise AssertionError("no solar-system packet")


def edited(payload: bytes, **dia_source: Any) -> bytes:
    """The wire packet with some diaSource fields changed (history rows left as they are)."""
    schema = parsed_bundled_schema(version_for(wire_schema_id(payload)))
    record = fastavro.schemaless_reader(io.BytesIO(payload[5:]), schema, None)
    assert isinstance(record, dict)
    record["diaSource"].update(dia_source)
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, record)
    return payload[:5] + body.getvalue()
