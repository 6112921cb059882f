"""Decoding every real packet in ../shared/real-alerts into the normalized record."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import fastavro
import numpy as np
import pytest
from click.testing import CliRunner

from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.normalize import AlertRecord, normalize
from lsst_alert_pipeline.decode.schemas import parsed_bundled_schema, version_for

from .conftest import have_real_alerts, real_files


def records_of(path: Path) -> list[AlertRecord]:
    return [normalize(alert) for alert in decode_message(path.read_bytes())]


def only(path: Path) -> AlertRecord:
    (record,) = records_of(path)
    return record


def test_every_real_packet_decodes(alert_packets: Path) -> None:
    counts = {}
    for path in real_files("rubin/*/*.avro", "rubin/*/*.wire", "ztf/*.avro"):
        records = records_of(path)
        counts[path.name] = len(records)
        for record in records:
            assert isinstance(record.diaSourceId, int) and record.diaSourceId > 0
            assert record.ra is not None and 0 <= record.ra < 360
            assert record.dec is not None and -90 <= record.dec <= 90
            assert record.filterName in {"u", "g", "r", "i", "z", "y"}
            assert record.mjd is not None and 50000 < record.mjd < 70000
    assert counts["part-2-918301.avro"] == 7
    assert counts["schema_701.avro"] == 10
    # the real folder's 60 files; the simulated one has one ZTF packet and fewer broker copies
    assert len(counts) == (60 if have_real_alerts() else 56)


def test_v10_wire_variable_star_values(alert_packets: Path) -> None:
    record = only(alert_packets / "rubin/derived_wire_v10_0/170094456248729605.v10_0.wire")
    assert record.alertId == record.diaSourceId == 170094456248729605
    assert record.diaObjectId == 313893023095193658
    assert record.ra == pytest.approx(62.51766199253057, abs=1e-12)
    assert record.dec == pytest.approx(-47.78624726515006, abs=1e-12)
    assert record.mjd == pytest.approx(61105.093643486834)
    assert record.filterName == "i"
    assert record.psFlux == pytest.approx(8130.5458984375)
    assert record.psFluxErr == pytest.approx(513.67578125)
    assert record.extendednessMedian == pytest.approx(0.3783394545316696)
    assert record.extendednessMin == pytest.approx(4.520520064943412e-07)
    assert record.extendednessMax == 1.0
    assert record.extendednessCount == 292
    assert record.hasSSSource is False and record.ssObjectId is None
    assert record.schemaVersion == "10.0"
    assert [len(b or b"") for b in record.cutouts.values()] == [34560, 46080, 34560]


def test_v10_solar_system_alert(alert_packets: Path) -> None:
    record = only(alert_packets / "rubin/derived_wire_v10_0/170094456480989258.v10_0.wire")
    assert record.hasSSSource is True
    assert record.ssObjectId == 21163624394469969
    assert record.diaObjectId == 0
    assert record.extendednessMedian == pytest.approx(0.02388470619916916)
    assert record.extendednessCount == 1


def test_v9_wire_values_and_ssobjectid_zero(alert_packets: Path) -> None:
    record = only(alert_packets / "rubin/derived_wire_v9_0/169298433314652171.v9_0.wire")
    assert record.diaObjectId == 169298432639893512
    assert record.psFlux == pytest.approx(362229.40625)
    assert record.extendednessMedian == pytest.approx(0.0006929337760084309)
    assert record.extendednessMin == pytest.approx(0.00013962651428300887)
    assert record.extendednessMax == pytest.approx(0.0012462410377338529)
    # ssObjectId is 0 on the wire: no association, and it must not read as one.
    assert record.ssObjectId is None and record.hasSSSource is False
    nan_ext = only(alert_packets / "rubin/derived_wire_v9_0/169298432605814947.v9_0.wire")
    assert nan_ext.extendednessMedian is None and nan_ext.extendednessCount == 0
    sso = only(alert_packets / "rubin/derived_wire_v9_0/169298432645136561.v9_0.wire")
    assert sso.hasSSSource is True and sso.ssObjectId == 21164719644750924
    assert sso.diaObjectId == 0


def test_v9_broker_copy_equals_wire_packet(alert_packets: Path) -> None:
    """The fink OCF copy (topLevelRecord, nullable everything) reads as the wire packet does."""
    for wire in real_files("rubin/derived_wire_v9_0/*.wire"):
        dia_source_id = wire.name.split(".")[0]
        (ocf,) = real_files(f"rubin/fink_broker_v9_0/{dia_source_id}_*.avro")
        a, b = only(wire), only(ocf)
        for name in ("alertId", "diaSourceId", "diaObjectId", "ra", "dec", "mjd", "filterName",
                     "psFlux", "psFluxErr", "extendednessMedian", "extendednessMin",
                     "extendednessMax", "ssObjectId", "hasSSSource", "cutoutScience",
                     "cutoutTemplate", "cutoutDifference"):
            assert getattr(a, name) == getattr(b, name), (wire.name, name)


def test_v10_broker_copy_with_all_null_sssource_is_not_solar_system(alert_packets: Path) -> None:
    records = {r.diaSourceId: r for r in records_of(
        alert_packets / "rubin/fink_client_v10_0/part-2-918301.avro")}
    assert records[170094456272322680].hasSSSource is False
    assert records[170094456480989258].hasSSSource is True
    for wire in real_files("rubin/derived_wire_v10_0/*.wire"):
        w = only(wire)
        assert records[w.diaSourceId].extendednessMedian == w.extendednessMedian
        assert records[w.diaSourceId].hasSSSource == w.hasSSSource


def test_v7_alert_id_and_old_broker_copies(alert_packets: Path) -> None:
    record = only(alert_packets / "rubin/boom_wire/lsst_schema703_3527242430321524769.avro")
    assert record.schemaVersion == "7.3"
    assert record.alertId == 3527242430321524769
    assert record.filterName == "g" and record.psFlux == pytest.approx(1485.483642578125)
    assert record.extendednessMedian is None
    v74 = only(alert_packets /
               "rubin/fink_broker_v7_4/58804293150441527_58804293150441527.avro")
    assert v74.alertId == 58804293150441527
    assert v74.extendednessMedian == pytest.approx(0.4750067889690399)
    assert v74.extendednessMin == pytest.approx(0.2556994557380676)
    assert v74.extendednessMax == pytest.approx(0.516466498374939)
    assert v74.extendednessCount == 6
    ampel = records_of(alert_packets / "rubin/ampel_v7_1_nocutouts/schema_701.avro")
    assert all(r.cutoutScience is None for r in ampel)
    assert ampel[0].diaSourceId == 25409118864932952 and ampel[0].filterName == "g"


def test_ztf_alerts_map_to_the_same_fields(alert_packets: Path) -> None:
    record = only(alert_packets / "ztf/boom_ztf_2695378462115010012.avro")
    assert record.survey == "ztf"
    assert record.diaObjectId == "ZTF18abudxnw"
    assert record.filterName == "r"
    assert record.mjd == pytest.approx(60449.37846060004)
    assert record.cutoutScience is not None and record.cutoutScience[:6] == b"SIMPLE"


def test_statistics_match_an_independent_full_decode(alert_packets: Path) -> None:
    """Recompute the statistics with plain fastavro and numpy, away from our code paths."""
    for wire in real_files("rubin/derived_wire_v9_0/*.wire", "rubin/derived_wire_v10_0/*.wire"):
        payload = wire.read_bytes()
        schema_id = int.from_bytes(payload[1:5], "big")
        raw = fastavro.schemaless_reader(io.BytesIO(payload[5:]),
                                         parsed_bundled_schema(version_for(schema_id)), None)
        values = [raw["diaSource"]["extendedness"]] + [
            p["extendedness"] for p in raw["prvDiaSources"] or []]
        finite = np.array([v for v in values if v is not None and math.isfinite(v)])
        record = only(wire)
        if finite.size == 0:
            assert record.extendednessMedian is None
        else:
            assert record.extendednessMedian == pytest.approx(float(np.median(finite)))
            assert record.extendednessMin == finite.min()
            assert record.extendednessMax == finite.max()
        assert record.cutoutDifference == raw["cutoutDifference"]


def test_inspect_json_prints_every_alert_then_reports_bad_files(alert_packets: Path,
                                                                 tmp_path: Path) -> None:
    bad = tmp_path / "bad.avro"
    bad.write_bytes(b"\x00\x00\x00\x03\x84\x01\x02")
    result = CliRunner().invoke(main, ["inspect", "--json",
                                       str(alert_packets / "rubin/derived_wire_v10_0"), str(bad)])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 7
    assert set(lines[0]) == {"alertId", "diaSourceId", "diaObjectId", "ra", "dec", "mjd",
                             "filterName", "psFlux", "psFluxErr", "extendednessMedian",
                             "extendednessMin", "extendednessMax", "ssObjectId", "hasSSSource",
                             "cutoutScience", "cutoutTemplate", "cutoutDifference"}
    first = sorted((alert_packets / "rubin/derived_wire_v10_0").glob("*.wire"))[0]
    assert lines[0]["cutoutTemplate"] == len(only(first).cutoutTemplate or b"")
    assert "bad.avro" in result.stderr and "schema id 900" in result.stderr
