"""ANTARES stream messages: both variants antares-client reads, built by running the filter in
the real DevKit (tests/antares_loci.py), normalized from the filter's properties."""

from __future__ import annotations

import zlib

import bson
import pytest

from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.normalize import normalize
from lsst_alert_pipeline.errors import InvalidMessage

from .antares_loci import lsst_wire_packets, parsed_by_antares_client, relayed


def message(document: dict) -> bytes:
    return zlib.compress(bson.dumps(document))


def test_the_older_nested_variant_reads_the_same_as_the_current_one() -> None:
    alert, _result, payload = next(relayed(lsst_wire_packets()))
    current = bson.loads(zlib.decompress(payload))
    attributes = {key: current[key] for key in ("ra", "dec", "properties", "tags", "catalogs")}
    older = message({"data": {"id": current["id"], "attributes": attributes}})
    assert parsed_by_antares_client(older).properties == current["properties"]
    (from_older,) = decode_message(older)
    (from_current,) = decode_message(payload)
    assert normalize(from_older) == normalize(from_current)
    assert normalize(from_older).diaSourceId == normalize(alert).diaSourceId


def test_a_locus_missing_its_position_is_named() -> None:
    with pytest.raises(InvalidMessage, match="'ra'"):
        decode_message(message({"id": "ANT1", "dec": 1.0, "properties": {}}))


def test_a_locus_without_the_filters_properties_has_no_diasource_id() -> None:
    """A locus some other filter tagged carries no extfilter_* values: nothing to key a row by
    (the pipeline dead-letters it, naming the missing diaSourceId)."""
    (alert,) = decode_message(message({"id": "ANT1", "ra": 10.0, "dec": -5.0,
                                       "properties": {"num_alerts": 3}, "tags": ["other"]}))
    record = normalize(alert)
    assert record.diaSourceId is None
    assert (record.ra, record.dec) == (10.0, -5.0)
