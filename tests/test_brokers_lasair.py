"""`--preset lasair`: Lasair's JSON messages (tests/lasair_standin.py builds them as Lasair's
producer does) written once each with the values of the Rubin packet they came from, their
cutouts fetched from Lasair's /fits/ pages, "lite" and plain output set aside naming what they
lack."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.decode.lasair import LITE_REASON, PLAIN_REASON, lasair_records
from lsst_alert_pipeline.errors import ConfigurationError, InvalidMessage
from lsst_alert_pipeline.filter.devkit_run import BUNDLED_FILTER, load_filter, run_filter
from lsst_alert_pipeline.ops.status import collect, status_lines
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.sinks.csv import CUTOUT_PATH_COLUMNS

from .alerts import csv_rows
from .conftest import real_files
from .fink_standin import fink_stream
from .lasair_standin import (
    SAMPLE,
    WIRE_V10,
    LasairPages,
    client_decode,
    lasair_alert,
    lasair_stream,
    rubin_packets,
)
from .test_brokers_fink import archive_rows

KINDS = ("science", "template", "difference")


def lasair_settings(broker, topic: str, output: Path, api_url: str, **extra: Any):
    return config.load(environ={"LSST_ALERTS_LASAIR_API_URL": api_url}, flags={
        "preset": "lasair", "topics": [topic], "output_dir": str(output), "idle_timeout": 20,
        "kafka": {"bootstrap.servers": broker.bootstrap, "group.id": f"g-{topic}-{output.name}",
                  "session.timeout.ms": 6000}, **extra})


def ledger_missing(output: Path) -> dict[tuple[str, str], tuple[str, str]]:
    with sqlite3.connect(output / "state" / "ledger.sqlite") as db:
        rows = db.execute("SELECT dia_source_id, kind, state, reason FROM missing_cutouts")
        return {(i, kind): (state, reason) for i, kind, state, reason in rows}


def test_the_stand_in_messages_have_the_shape_of_lasairs_own_sample_alert() -> None:
    stream = lasair_stream()
    assert stream.alerts and stream.skipped  # the v10 files hold both kinds
    for value in stream.values():
        row = client_decode(value)
        alert = row["alert"]
        assert {"diaObjectId", "UTC"} <= row.keys()
        sources = alert["diaSourcesList"]
        mjds = [source["midpointMjdTai"] for source in sources]
        assert mjds == sorted(mjds, reverse=True)  # newest first
        for record in [alert["diaObject"], *sources, *alert["diaForcedSourcesList"]]:
            assert "decl" in record and "dec" not in record
    if SAMPLE.exists():  # lasair-lsst's own test alert: the same keys, annotations dropped
        sample = json.loads(SAMPLE.read_text())
        built = client_decode(stream.values()[0])["alert"]
        assert set(built) == set(sample) - {"annotations"}
        assert set(sample["diaObject"]) <= set(built["diaObject"]) | {"decl"}
        assert "decl" in sample["diaSourcesList"][0] and "dec" not in sample["diaSourcesList"][0]


def sample_alert() -> dict[str, Any]:
    """Lasair's real sample alert (NaN in many fields) or, on a clean clone, a built one with
    a NaN extendedness put in."""
    if SAMPLE.exists():
        alert: dict[str, Any] = json.loads(SAMPLE.read_text())
        alert.pop("annotations", None)
        return alert
    built = lasair_stream().alerts[0]
    built["diaSourcesList"][-1]["extendedness"] = math.nan
    return built


def test_a_full_message_with_nan_decodes_to_its_newest_source_and_whole_history() -> None:
    alert = sample_alert()
    value = json.dumps({"diaObjectId": alert["diaObject"]["diaObjectId"], "UTC": "x",
                        "alert": alert}).encode()
    assert b"NaN" in value
    (record,) = lasair_records(None, value)
    newest = alert["diaSourcesList"][0]
    assert record.diaSourceId == newest["diaSourceId"]
    assert record.dec == newest["decl"] and record.mjd == newest["midpointMjdTai"]
    finite = [s["extendedness"] for s in alert["diaSourcesList"]
              if s["extendedness"] is not None and math.isfinite(s["extendedness"])]
    assert record.extendednessCount == len(finite)
    assert record.extendednessMin == min(finite) and record.extendednessMax == max(finite)
    # Lasair sends no ssSource; the association is the diaSource's own ssObjectId
    assert record.hasSSSource is (newest["ssObjectId"] not in (None, 0))
    assert record.extra["broker_columns"]["lasair_UTC"] == "x"


def test_lite_and_plain_output_are_set_aside_saying_what_they_lack() -> None:
    stream = lasair_stream()
    with pytest.raises(InvalidMessage) as lite:
        lasair_records(None, stream.values("lite")[0])
    assert lite.value.reason == LITE_REASON and "no diaSourceId" in LITE_REASON
    with pytest.raises(InvalidMessage) as plain:
        lasair_records(None, stream.values("plain")[0])
    assert plain.value.reason == PLAIN_REASON and "'full' output" in PLAIN_REASON


def test_lasair_preset_is_plain_kafka_from_the_earliest_offset_with_lasair_topics() -> None:
    settings = config.load(environ={"LSST_ALERTS_LASAIR_API_URL": "http://x"},
                           flags={"preset": "lasair", "topics": ["2Hasabsmag"],
                                  "kafka": {"bootstrap.servers": "lasair:9092"}})
    assert settings.topics == ["lasair_2Hasabsmag"]
    assert "security.protocol" not in settings.kafka
    assert settings.kafka["auto.offset.reset"] == "earliest"
    assert settings.kafka["group.id"] != config.SHARED_GROUP_ID
    assert settings.broker_api == {"lasair_api_url": "http://x"}
    with pytest.raises(ConfigurationError, match="takes no credentials"):
        config.load(environ={"LSST_ALERTS_LASAIR_USERNAME": "ada"},
                    flags={"preset": "lasair", "topics": ["x"],
                           "kafka": {"bootstrap.servers": "lasair:9092"}})


@pytest.fixture(scope="module")
def lasair_topic(broker) -> str:
    stream = lasair_stream()
    broker.create_topic("lasair_7extended", 1)
    broker.produce("lasair_7extended", stream.values("full"))
    return "lasair_7extended"


@pytest.mark.kafka
def test_lasair_preset_writes_each_alert_once_with_its_rubin_values_and_fetched_cutouts(
        broker, lasair_topic: str, tmp_path: Path) -> None:
    stream = lasair_stream()
    packets = {p["diaSource"]["diaSourceId"]: p for p in stream.packets}
    ids = stream.trigger_ids()
    assert sorted(ids) == sorted(packets)  # Lasair names each alert by its triggering source
    empty, failing, served = ids[0], ids[1], ids[2:]
    rubin_out, lasair_out = tmp_path / "rubin", tmp_path / "lasair"
    wire_folder = str(real_files(WIRE_V10)[0].parent)
    assert consumer.consume(config.load(environ={}, flags={
        "from_paths": [wire_folder], "output_dir": str(rubin_out)})).exit_code == exitcodes.OK
    rubin_rows = {row["diaSourceId"]: row for row in csv_rows(rubin_out)}
    with LasairPages() as pages:
        for dia_source_id in [failing, *served]:
            pages.store(dia_source_id, {kind: packets[dia_source_id][f"cutout{kind.title()}"]
                                        for kind in KINDS})
        pages.fail(failing)
        summary = consumer.consume(lasair_settings(broker, lasair_topic, lasair_out,
                                                   pages.base_url, local_filter=False))
        assert summary.exit_code == exitcodes.OK
        assert summary.alerts_written == len(ids)
        again = consumer.consume(lasair_settings(broker, lasair_topic, lasair_out,
                                                 pages.base_url, local_filter=False))
        assert again.messages == 0  # offsets were committed after the outputs

    rows = csv_rows(lasair_out)
    assert sorted(int(row["diaSourceId"]) for row in rows) == sorted(ids)  # each once
    ignored = {"timestamp", *CUTOUT_PATH_COLUMNS}
    for row in rows:
        rubin = rubin_rows[row["diaSourceId"]]
        assert {k: v for k, v in row.items() if k not in ignored} == \
            {k: v for k, v in rubin.items() if k not in ignored}
    by_id = {int(row["diaSourceId"]): row for row in rows}
    for dia_source_id in served:
        for kind, column in zip(KINDS, CUTOUT_PATH_COLUMNS, strict=True):
            path = lasair_out / by_id[dia_source_id][column]
            assert path.read_bytes() == packets[dia_source_id][f"cutout{kind.title()}"]
    missing = ledger_missing(lasair_out)
    for kind in KINDS:
        state, reason = missing[(str(empty), kind)]
        assert state == "gone" and "empty body" in reason
        assert missing[(str(failing), kind)][0] == "later"
    assert all(not by_id[empty][column] for column in CUTOUT_PATH_COLUMNS)
    assert not list((lasair_out / "cutouts").glob(f"{empty}_*"))  # never an empty file
    archived = archive_rows(lasair_out)
    for dia_source_id in ids:
        row = archived[dia_source_id]
        assert row["broker"] == "lasair" and row["topic"] == lasair_topic
        assert row["lasair_diaObjectId"] == packets[dia_source_id]["diaObject"]["diaObjectId"]


@pytest.mark.kafka
def test_lite_output_writes_nothing_and_status_says_what_it_lacks(broker, tmp_path: Path
                                                                  ) -> None:
    stream = lasair_stream()
    broker.create_topic("lasair_7lite", 1)
    broker.produce("lasair_7lite", stream.values("lite"))
    with LasairPages() as pages:
        summary = consumer.consume(lasair_settings(broker, "lasair_7lite", tmp_path,
                                                   pages.base_url, local_filter=False))
    # every message a dead letter: the run says so in its status for cron to see
    assert summary.exit_code == exitcodes.ALL_DEADLETTERED
    assert summary.alerts_written == 0 and summary.deadlettered == len(stream.alerts)
    lines = status_lines(collect(tmp_path))
    assert f"  {len(stream.alerts)} x {LITE_REASON}" in lines


@pytest.mark.kafka
def test_lasair_run_writes_exactly_the_alerts_the_devkit_passes_on_their_rubin_packets(
        broker, lasair_topic: str, tmp_path: Path) -> None:
    # Lasair sends no solar-system alerts (the bundled filter would pass none): a user's own
    # filter on extended objects without one tells the sample's alerts apart.
    own = tmp_path / "extended_filter.py"
    own.write_text(BUNDLED_FILTER.read_text().replace(
        "REQUIRE_SSSOURCE = True", "REQUIRE_SSSOURCE = False").replace(
        "EXTENDEDNESS_MEDIAN_MIN = 0.0", "EXTENDEDNESS_MEDIAN_MIN = 0.2"))
    ids = {str(i) for i in lasair_stream().trigger_ids()}
    verdicts = [r for r in run_filter(real_files(WIRE_V10), load_filter(own))
                if str(r.diaSourceId) in ids]
    passed = {str(r.diaSourceId) for r in verdicts if r.passed}
    assert len(verdicts) == len(ids) and passed and passed != ids
    with LasairPages() as pages:
        summary = consumer.consume(lasair_settings(broker, lasair_topic, tmp_path / "out",
                                                   pages.base_url, filter_path=str(own)))
    assert summary.exit_code == exitcodes.OK
    assert {row["diaSourceId"] for row in csv_rows(tmp_path / "out")} == passed
    assert summary.filtered_out == len(ids) - len(passed)


def test_lasair_sends_no_alert_of_a_solar_system_object_only() -> None:
    sso = [p for p in rubin_packets() if not p.get("diaObject")]
    assert sso and all(lasair_alert(packet) is None for packet in sso)


@pytest.fixture(scope="module")
def fink_topic(broker) -> str:
    """The same night as Fink streams it: every alert of the sample, cutouts in the packet."""
    stream = fink_stream()
    broker.create_topic("fink_overlap_lsst", 1)
    broker.produce("fink_overlap_lsst", stream.values(), keys=stream.keys)
    return "fink_overlap_lsst"


@pytest.mark.kafka
@pytest.mark.parametrize("order", [("fink", "lasair"), ("lasair", "fink")])
def test_fink_and_lasair_into_one_output_write_each_alert_once_naming_the_first(
        broker, lasair_topic: str, fink_topic: str, tmp_path: Path,
        order: tuple[str, str]) -> None:
    fink = fink_stream()
    fink_ids = {record["diaSource"]["diaSourceId"] for record in fink.records}
    lasair_ids = set(lasair_stream().trigger_ids())
    assert lasair_ids < fink_ids  # Lasair sends the sample's alerts that have a diaObject
    output = tmp_path / f"first-{order[0]}"
    packets = {p["diaSource"]["diaSourceId"]: p for p in lasair_stream().packets}
    summaries = {}
    with LasairPages() as pages:
        for dia_source_id, packet in packets.items():
            pages.store(dia_source_id, {kind: packet[f"cutout{kind.title()}"] for kind in KINDS})
        for preset in order:
            settings = (lasair_settings(broker, lasair_topic, output, pages.base_url,
                                        local_filter=False) if preset == "lasair" else
                        config.load(environ={}, flags={
                            "preset": "fink", "topics": [fink_topic], "output_dir": str(output),
                            "idle_timeout": 20, "local_filter": False,
                            "kafka": {"bootstrap.servers": broker.bootstrap,
                                      "group.id": f"g-fink-{output.name}",
                                      "session.timeout.ms": 6000}}))
            summaries[preset] = consumer.consume(settings)
            assert summaries[preset].exit_code == exitcodes.OK
    first, second = order
    delivered = {"fink": fink_ids, "lasair": lasair_ids}
    assert summaries[first].alerts_written == len(delivered[first])
    assert summaries[second].already_written == len(delivered[first] & delivered[second])
    rows = csv_rows(output)
    assert sorted(int(row["diaSourceId"]) for row in rows) == sorted(fink_ids)  # each once
    assert all(row[column] for row in rows for column in CUTOUT_PATH_COLUMNS)  # with cutouts
    archived = archive_rows(output)
    assert {i: row["broker"] for i, row in archived.items()} == {
        i: first if i in delivered[first] else second for i in fink_ids}
