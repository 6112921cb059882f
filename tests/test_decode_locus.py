"""ANTARES stream messages: both variants antares-client reads, normalized from properties."""

from __future__ import annotations

import zlib

import bson
import pytest

from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.normalize import normalize
from lsst_alert_pipeline.errors import InvalidMessage

PROPERTIES = {
    "extfilter_dia_source_id": 170094456480989258,
    "extfilter_dia_object_id": 0,
    "extfilter_mjd": 61105.095800699935,
    "extfilter_band": "i",
    "extfilter_ps_flux": 15362.61328125,
    "extfilter_ps_flux_err": 266.5,
    "extfilter_extendedness_median": 0.0238,
    "extfilter_extendedness_min": 0.0238,
    "extfilter_extendedness_max": 0.0238,
    "extfilter_extendedness_count": 1,
    "extfilter_has_sssource": 1,
    "extfilter_ss_object_id": "21163624394469969",
    "lsst_diaSource_ra": 62.1,
    "lsst_diaSource_dec": -47.2,
    "num_alerts": 1,
}


def message(document: dict) -> bytes:
    dumps = getattr(bson, "dumps", None) or bson.encode
    return zlib.compress(dumps(document))


def test_current_locus_message_normalizes_from_filter_properties() -> None:
    (alert,) = decode_message(message({"id": "ANT2026abc", "ra": 62.0, "dec": -47.0,
                                       "properties": PROPERTIES, "tags": ["x"],
                                       "catalogs": []}))
    record = normalize(alert)
    assert alert.kind == "antares"
    assert record.diaSourceId == record.alertId == 170094456480989258
    assert record.ra == 62.1 and record.dec == -47.2  # the alert's, not the locus centre
    assert record.filterName == "i" and record.mjd == pytest.approx(61105.0958007)
    assert record.extendednessMedian == 0.0238 and record.extendednessCount == 1
    assert record.hasSSSource is True and record.ssObjectId == 21163624394469969
    assert record.extra["locusId"] == "ANT2026abc"
    assert record.cutoutScience is None


def test_old_nested_variant_and_ant_properties_fallback() -> None:
    properties = {"lsst_diaSource_diaSourceId": "42", "lsst_diaSource_ssObjectId": 0,
                  "ant_mjd": 61000.5, "ant_passband": "r"}
    (alert,) = decode_message(message({"data": {"id": "ANT1", "attributes": {
        "ra": 10.0, "dec": -5.0, "properties": properties, "tags": []}}}))
    record = normalize(alert)
    assert record.diaSourceId == 42 and record.ra == 10.0 and record.dec == -5.0
    assert record.mjd == 61000.5 and record.filterName == "r"
    assert record.hasSSSource is False and record.ssObjectId is None
    assert record.extendednessMedian is None


def test_a_locus_missing_its_position_is_named() -> None:
    with pytest.raises(InvalidMessage, match="'ra'"):
        decode_message(message({"id": "ANT1", "dec": 1.0, "properties": {}}))
