"""`--preset babamul`: Babamul's one-record Avro containers (tests/babamul_standin.py builds
them as BOOM does) written once each with the values of the Rubin packet they came from where
Babamul carries them, cutouts from Babamul's API with the token, and every alert whose
extendedness statistics could come from one source only counted and named."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.decode.babamul import NO_HISTORY_EXTENDEDNESS, babamul_records
from lsst_alert_pipeline.errors import ConfigurationError
from lsst_alert_pipeline.ops.status import collect, status_lines
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.sinks.csv import CUTOUT_PATH_COLUMNS

from .alerts import csv_rows
from .babamul_standin import TOKEN, BabamulApi, babamul_stream, client_decode
from .conftest import real_files
from .test_brokers_fink import archive_rows

KINDS = ("science", "template", "difference")
WIRE_V10 = "rubin/derived_wire_v10_0/*.wire"
TOPIC = "babamul.lsst.no-ztf-match.hostless"
CREDENTIALS = {"LSST_ALERTS_BABAMUL_USERNAME": "babamul-ada",
               "LSST_ALERTS_BABAMUL_PASSWORD": "kafka-secret"}


def test_the_stand_in_messages_read_with_babamuls_client_logic_to_boom_records() -> None:
    stream = babamul_stream()
    assert stream.records
    for value, record, packet in zip(stream.values(), stream.records, stream.packets,
                                     strict=True):
        assert value.startswith(b"Obj\x01")
        read = client_decode(value)
        assert read["candid"] == packet["diaSource"]["diaSourceId"] == record["candid"]
        assert read["candidate"]["extendedness"] == packet["diaSource"]["extendedness"] or (
            math.isnan(packet["diaSource"]["extendedness"]))
        assert all("extendedness" not in point for point in read["prv_candidates"])


def test_the_association_is_babamuls_ssobjectid_never_the_objectid_form() -> None:
    stream = babamul_stream()
    for value, packet in zip(stream.values(), stream.packets, strict=True):
        (alert,) = babamul_records(None, value)
        rubin_ss = packet["diaSource"]["ssObjectId"]
        assert alert.hasSSSource is (rubin_ss not in (None, 0))
        assert alert.diaSourceId == packet["diaSource"]["diaSourceId"]
        has_history = bool(packet.get("prvDiaSources"))
        assert (alert.extra.get("incomplete") == NO_HISTORY_EXTENDEDNESS) is has_history
    assert any(p["diaSource"]["ssObjectId"] for p in stream.packets)  # both kinds are here
    assert any(not p["diaSource"]["ssObjectId"] for p in stream.packets)


def babamul_settings(broker, output: Path, api_url: str, **extra: Any):
    # Tansu speaks no SASL: the preset's SASL_PLAINTEXT + SCRAM-SHA-512 is checked in the
    # configuration test below; here a flag overrides the protocol, as a user's flag would.
    return config.load(environ={**CREDENTIALS, "LSST_ALERTS_BABAMUL_API_URL": api_url,
                                "LSST_ALERTS_BABAMUL_API_TOKEN": TOKEN}, flags={
        "preset": "babamul", "topics": ["no-ztf-match.hostless"], "output_dir": str(output),
        "idle_timeout": 20, "kafka": {"bootstrap.servers": broker.bootstrap,
                                      "group.id": f"g-{output.name}",
                                      "security.protocol": "PLAINTEXT",
                                      "auto.offset.reset": "earliest",
                                      "session.timeout.ms": 6000}, **extra})


@pytest.mark.kafka
def test_babamul_preset_writes_each_alert_once_with_cutouts_from_its_api(
        broker, tmp_path: Path) -> None:
    stream = babamul_stream()
    broker.create_topic(TOPIC, 1)
    broker.produce(TOPIC, stream.values())
    packets = {p["diaSource"]["diaSourceId"]: p for p in stream.packets}
    ids = list(packets)
    unknown, gzipped = ids[0], ids[1]
    rubin_out, out = tmp_path / "rubin", tmp_path / "babamul"
    wire_folder = str(real_files(WIRE_V10)[0].parent)
    assert consumer.consume(config.load(environ={}, flags={
        "from_paths": [wire_folder], "output_dir": str(rubin_out)})).exit_code == exitcodes.OK
    rubin_rows = {row["diaSourceId"]: row for row in csv_rows(rubin_out)}
    with BabamulApi() as api:
        for candid in ids[1:]:
            api.store(candid, {kind: packets[candid][f"cutout{kind.title()}"] for kind in KINDS},
                      gzipped=candid == gzipped)
        summary = consumer.consume(babamul_settings(broker, out, api.base_url,
                                                    local_filter=False))
    assert summary.exit_code == exitcodes.OK and summary.alerts_written == len(ids)
    with_history = [i for i in ids if packets[i].get("prvDiaSources")]
    assert with_history and summary.incomplete == {NO_HISTORY_EXTENDEDNESS: len(with_history)}
    rows = {int(row["diaSourceId"]): row for row in csv_rows(out)}
    assert sorted(rows) == sorted(ids)  # each once
    same = ("alertId", "diaSourceId", "ra", "dec", "mjd", "filterName", "psFlux", "psFluxErr")
    for candid, row in rows.items():
        rubin = rubin_rows[str(candid)]
        assert {k: row[k] for k in same} == {k: rubin[k] for k in same}
        # Babamul writes null where Rubin writes 0 for "no diaObject"; the id otherwise
        assert row["diaObjectId"] == ("" if rubin["diaObjectId"] == "0" else rubin["diaObjectId"])
        own = packets[candid]["diaSource"]["extendedness"]
        stats = [row[f"extendedness{s}"] for s in ("Median", "Min", "Max")]
        if candid not in with_history:  # nothing lacking: the Rubin packet's statistics
            assert stats == [rubin[f"extendedness{s}"] for s in ("Median", "Min", "Max")]
        elif own is None or math.isnan(own):
            assert stats == ["", "", ""]
        else:  # the triggering source's value alone (the history has none)
            assert [float(value) for value in stats] == [pytest.approx(own)] * 3
        if candid != unknown:
            for kind, column in zip(KINDS, CUTOUT_PATH_COLUMNS, strict=True):
                assert (out / row[column]).read_bytes() == \
                    packets[candid][f"cutout{kind.title()}"]
    with sqlite3.connect(out / "state" / "ledger.sqlite") as db:
        gone = db.execute("SELECT kind, state, reason FROM missing_cutouts WHERE "
                          "dia_source_id = ?", (str(unknown),)).fetchall()
    assert sorted(kind for kind, _, _ in gone) == sorted(KINDS)
    assert all(state == "gone" and "HTTP 404" in reason for _, state, reason in gone)
    assert f"  {len(with_history)} alerts written without: {NO_HISTORY_EXTENDEDNESS}" in \
        status_lines(collect(out))
    archived = archive_rows(out)
    assert all(archived[i]["broker"] == "babamul" and archived[i]["topic"] == TOPIC
               for i in ids)


def test_babamul_preset_is_scram_sha_512_with_the_clients_username_rules() -> None:
    settings = config.load(environ={**CREDENTIALS, "LSST_ALERTS_BABAMUL_API_TOKEN": TOKEN},
                           flags={"preset": "babamul", "topics": ["ztf-match.hosted"],
                                  "kafka": {"group.id": "mine"}})
    assert settings.topics == ["babamul.lsst.ztf-match.hosted"]
    assert settings.kafka["security.protocol"] == "SASL_PLAINTEXT"
    assert settings.kafka["sasl.mechanisms"] == "SCRAM-SHA-512"
    assert settings.kafka["bootstrap.servers"] == "kaboom.caltech.edu:9093"
    assert settings.kafka["auto.offset.reset"] == "latest"
    assert settings.kafka["group.id"] == "babamul-ada-mine"  # as AlertConsumer prefixes it
    shown = config.masked(settings)
    assert shown["broker_api"]["babamul_api_token"] == "***"
    assert shown["kafka"]["sasl.password"] == "***"
    for environ, match in ((CREDENTIALS | {"LSST_ALERTS_BABAMUL_USERNAME": "ada@uni.edu"},
                            "starting with 'babamul-'"),
                           (CREDENTIALS | {"LSST_ALERTS_BABAMUL_PASSWORD": "bbml_x"},
                            "API token"),
                           ({}, "needs its Kafka username and password")):
        with pytest.raises(ConfigurationError, match=match):
            config.load(environ=environ, flags={"preset": "babamul", "topics": ["x.y"]})
    with pytest.raises(ConfigurationError, match="carry ZTF alerts"):
        config.load(environ=CREDENTIALS, flags={"preset": "babamul",
                                               "topics": ["babamul.ztf.lsst-match.hosted"]})
