"""What ANTARES publishes is a locus, not an alert: the relay sends exactly that shape, parsed by
antares-client's own parser, and the consumer fills the CSV from the filter's extfilter_*
properties alone (docs/antares.md)."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import astropy.units as u
import bson
import pytest
from astropy.coordinates import SkyCoord

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.normalize import normalize
from lsst_alert_pipeline.decode.schemas import field_names_for
from lsst_alert_pipeline.filter import antares_extendedness_filter as extfilter
from lsst_alert_pipeline.filter.devkit_locus import locus_dia_sources
from lsst_alert_pipeline.pipeline import consume as consumer

from .alerts import csv_rows
from .antares_loci import (
    ANTARES_LOCUS_PROPERTIES,
    DECLARED,
    lsst_wire_packets,
    parsed_by_antares_client,
    relayed,
)

FIELDS_FROM_THE_ALERT = ("diaSourceId", "diaObjectId", "ra", "dec", "mjd", "filterName", "psFlux",
                         "psFluxErr", "extendednessMedian", "extendednessMin", "extendednessMax",
                         "extendednessCount", "ssObjectId", "hasSSSource", "snr", "reliability")


@pytest.fixture(scope="module", params=[True, False], ids=["require-sso", "exclude-sso"])
def messages(request):
    """Every passing locus's message, with the filter requiring and excluding SSSource (the
    latter passes loci with history, whose centroid is not the triggering position)."""
    original = extfilter.REQUIRE_SSSOURCE
    extfilter.REQUIRE_SSSOURCE = request.param
    try:
        found = list(relayed(lsst_wire_packets()))
    finally:
        extfilter.REQUIRE_SSSOURCE = original
    assert found, "some packets pass the filter"
    return found


def test_every_relay_message_is_read_by_antares_clients_own_parser(messages) -> None:
    for _alert, result, payload in messages:
        locus = parsed_by_antares_client(payload)
        document = bson.loads(zlib.decompress(payload))
        assert set(document) == {"id", "ra", "dec", "properties", "tags", "catalogs"}
        assert locus.locus_id == document["id"]
        assert locus.properties == document["properties"]
        assert locus.tags == [extfilter.OUTPUT_TAG] == result.new_tags


def test_no_alert_property_is_in_a_stream_message(messages) -> None:
    for _alert, result, payload in messages:
        properties = parsed_by_antares_client(payload).properties
        assert not [name for name in properties if name.startswith(("lsst_", "ant_"))]
        assert set(properties) <= ANTARES_LOCUS_PROPERTIES | DECLARED
        assert set(properties) & DECLARED == set(result.new_properties)


def test_position_is_the_centroid_of_the_locus_alerts(messages) -> None:
    moved = 0
    for alert, _result, payload in messages:
        locus = parsed_by_antares_client(payload)
        names = field_names_for(alert.schema_version, alert.record["diaSource"])
        sources = locus_dia_sources(alert.record, names)
        mean = SkyCoord([s["ra"] for s in sources] * u.deg,
                        [s[names.dec] for s in sources] * u.deg).cartesian.mean()
        expected = SkyCoord(mean)
        assert SkyCoord(locus.ra * u.deg, locus.dec * u.deg).separation(expected).arcsec < 1e-6
        trigger = alert.record["diaSource"]
        moved += (locus.ra, locus.dec) != (trigger["ra"], trigger[names.dec])
        assert locus.properties["num_alerts"] == len(sources)
        assert locus.properties["newest_alert_id"] == f"lsst_diaSource:{trigger['diaSourceId']}"
        assert locus.properties["newest_alert_observation_time"] == trigger[names.mjd]
    assert moved, "some passing loci have history, so their centroid is not the DIASource"


def test_consumer_reads_the_triggering_diasource_not_the_centroid(messages) -> None:
    for alert, _result, payload in messages:
        (decoded,) = decode_message(payload)
        received, sent = normalize(decoded), normalize(alert)
        for name in FIELDS_FROM_THE_ALERT:
            assert getattr(received, name) == getattr(sent, name), name
        assert received.extra["antaresAlertId"] == f"lsst_diaSource:{sent.diaSourceId}"


def test_ids_travel_as_text_and_come_back_exact(messages) -> None:
    for _alert, _result, payload in messages:
        properties = parsed_by_antares_client(payload).properties
        for name in ("extfilter_dia_source_id", "extfilter_dia_object_id",
                     "extfilter_ss_object_id", "extfilter_alert_id"):
            assert isinstance(properties[name], str), name
        record = normalize(decode_message(payload)[0])
        assert record.diaSourceId == int(properties["extfilter_dia_source_id"])
        assert str(record.diaSourceId) == properties["extfilter_dia_source_id"]


def test_every_extfilter_name_the_consumer_reads_is_declared_with_its_type() -> None:
    from lsst_alert_pipeline.decode.normalize import LOCUS_PROPERTIES

    declared = {prop["name"]: prop["type"]
                for prop in extfilter.LsstExtendednessFilter.OUTPUT_LOCUS_PROPERTIES}
    assert set(LOCUS_PROPERTIES.values()) <= set(declared)
    for name in ("dia_source_id", "dia_object_id", "ss_object_id", "alert_id"):
        assert declared[f"extfilter_{name}"] == "str"


def _old_filter_message(alert, result) -> bytes:
    """The locus as a filter version before the ra/dec/snr/reliability properties sent it."""
    from lsst_alert_pipeline.filter.relay import locus_document

    kept = {name: value for name, value in result.new_properties.items()
            if name not in ("extfilter_ra", "extfilter_dec", "extfilter_snr",
                            "extfilter_reliability")}
    document = locus_document(alert, result.new_tags, kept)
    return zlib.compress(bson.dumps(document))


def test_a_locus_from_an_older_filter_gets_the_centroid_blank_cells_and_one_log_line(
        messages, tmp_path: Path, caplog) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for index, (alert, result, _payload) in enumerate(messages):
        (folder / f"{index}.zlib").write_bytes(_old_filter_message(alert, result))
    settings = config.load(environ={}, flags={
        "from_paths": [str(folder)], "output_dir": str(tmp_path / "out"),
        "extra_columns": ["snr", "reliability"]})
    with caplog.at_level(logging.WARNING):
        summary = consumer.consume(settings)
    assert summary.exit_code == exitcodes.OK, summary.line()
    rows = {int(row["diaSourceId"]): row for row in csv_rows(tmp_path / "out")}
    assert len(rows) == len(messages)
    for alert, _result, payload in messages:
        locus = parsed_by_antares_client(payload)
        row = rows[normalize(alert).diaSourceId]
        assert (float(row["ra"]), float(row["dec"])) == (locus.ra, locus.dec)
        assert row["snr"] == row["reliability"] == ""
        assert row["mjd"] != "" and row["extendednessMedian"] != ""
    lines = [r.getMessage() for r in caplog.records if "ANTARES loci" in r.getMessage()]
    assert len(lines) == 1
    count = len(messages)
    assert lines[0].startswith(f"{count} of {count} ANTARES loci lacked extfilter_* properties")
    assert f"extfilter_snr {count}" in lines[0] and f"extfilter_ra {count}" in lines[0]
    assert f"{count} had no extfilter_ra/extfilter_dec" in lines[0]


def test_loci_carrying_every_property_log_no_gap(messages, tmp_path: Path, caplog) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    complete = [payload for alert, _result, payload in messages
                if all(getattr(normalize(alert), name) is not None
                       for name in FIELDS_FROM_THE_ALERT if name != "ssObjectId")]
    assert complete, "some packets carry every value the CSV wants"
    for index, payload in enumerate(complete):
        (folder / f"{index}.zlib").write_bytes(payload)
    settings = config.load(environ={}, flags={"from_paths": [str(folder)],
                                              "output_dir": str(tmp_path / "out")})
    with caplog.at_level(logging.WARNING):
        assert consumer.consume(settings).exit_code == exitcodes.OK
    assert not [r for r in caplog.records if "ANTARES loci" in r.getMessage()]
