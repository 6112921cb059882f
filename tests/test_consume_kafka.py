"""The consumer against a real Kafka-protocol broker: outputs, exactly once, failures named."""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import pytest
from astropy.io import fits

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.normalize import normalize
from lsst_alert_pipeline.decode.schemas import parsed_bundled_schema, version_for
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline.ledger import Ledger
from lsst_alert_pipeline.sinks.csv import SPEC_COLUMNS

from .alerts import csv_rows, many_real_alerts, real_wire_payloads

pytestmark = pytest.mark.kafka


def raw_record(payload: bytes) -> dict[str, Any]:
    """A wire packet read by plain fastavro with the schema its id names."""
    schema_id = int.from_bytes(payload[1:5], "big")
    raw = fastavro.schemaless_reader(io.BytesIO(payload[5:]),
                                     parsed_bundled_schema(version_for(schema_id)), None)
    assert isinstance(raw, dict)
    return raw


def independent_values(payload: bytes) -> dict[str, Any]:
    """The spec's first 12 columns from the packet by plain fastavro and numpy, away from the
    consumer's decoding, naming and statistics code."""
    raw = raw_record(payload)
    source = raw["diaSource"]
    old = "midPointTai" in source  # v3-v6 names

    def number(value: Any) -> Any:
        return None if value is None or not math.isfinite(value) else value

    by_id = {source["diaSourceId"]: source.get("extendedness")}
    for previous in raw.get("prvDiaSources") or []:
        by_id.setdefault(previous["diaSourceId"], previous.get("extendedness"))
    finite = np.array([v for v in by_id.values() if v is not None and math.isfinite(v)])
    return {
        "alertId": raw.get("alertId") or source["diaSourceId"],
        "diaSourceId": source["diaSourceId"], "diaObjectId": source.get("diaObjectId"),
        "ra": number(source["ra"]), "dec": number(source["decl" if old else "dec"]),
        "mjd": number(source["midPointTai" if old else "midpointMjdTai"]),
        "filterName": source["filterName" if old else "band"],
        "psFlux": number(source["psFlux" if old else "psfFlux"]),
        "psFluxErr": number(source["psFluxErr" if old else "psfFluxErr"]),
        "extendednessMedian": float(np.median(finite)) if finite.size else None,
        "extendednessMin": float(finite.min()) if finite.size else None,
        "extendednessMax": float(finite.max()) if finite.size else None,
    }


def settings_for(broker, topic: str, output: Path, **extra):
    flags = {"topics": [topic], "output_dir": str(output), "idle_timeout": 20,
             "kafka": {"bootstrap.servers": broker.bootstrap, "group.id": f"g-{topic}",
                       "session.timeout.ms": 6000}}
    flags.update(extra)
    return config.load(environ={}, flags=flags)


def test_consume_writes_every_alert_once_with_exact_values(alert_packets, broker, topic,
                                                           tmp_path: Path) -> None:
    payloads = many_real_alerts(60)
    broker.produce(topic, payloads)
    summary = consumer.consume(settings_for(broker, topic, tmp_path))
    assert summary.exit_code == exitcodes.OK and summary.outcome == "caught up"
    assert summary.alerts_written == 60 and summary.deadlettered == 0
    rows = csv_rows(tmp_path)
    assert len(rows) == 60
    for path in (tmp_path / "data").glob("*.csv"):
        assert path.read_text().splitlines()[0] == ",".join(SPEC_COLUMNS)
    by_id = {row["diaSourceId"]: row for row in rows}
    for payload in payloads:
        record = normalize(decode_message(payload)[0])
        row = by_id[str(record.diaSourceId)]
        for column, value in independent_values(payload).items():
            if value is None:
                assert row[column] == "", (column, row[column])
            elif isinstance(value, str | int):
                assert row[column] == str(value), column
            else:
                assert float(row[column]) == value, (column, row[column], value)
        for kind, blob in record.cutouts.items():
            written = (tmp_path / row[f"{kind}_cutout_path"]).read_bytes()
            assert written == blob
            with fits.open(io.BytesIO(written)) as hdus:
                assert hdus[0].data is not None
    assert summary.partitions[0]["lag"] == 0
    # Every consumed offset is recorded once, with the output that holds what it produced.
    ledger = Ledger(tmp_path / "state" / "ledger.sqlite")
    [covered] = ledger.offsets_covered()
    assert (covered["topic"], covered["partition"], covered["first"], covered["last"]) == (
        topic, 0, 0, 59)
    assert ledger.db.execute("SELECT SUM(messages), MIN(output), MAX(output) "
                             "FROM offset_ranges").fetchone() == (60, "", "")
    ledger.close()
    again = consumer.consume(settings_for(broker, topic, tmp_path))
    assert again.exit_code == exitcodes.OK and again.alerts_written == 0
    assert len(csv_rows(tmp_path)) == 60


def test_replaying_the_topic_into_the_same_output_adds_nothing(alert_packets, broker, topic,
                                                               tmp_path: Path) -> None:
    broker.produce(topic, real_wire_payloads())
    first = consumer.consume(settings_for(broker, topic, tmp_path))
    before = {p: p.read_bytes() for p in (tmp_path / "data").glob("*.csv")}
    replay = settings_for(broker, topic, tmp_path)
    replay.kafka["group.id"] = "a-new-group-reads-from-the-start"
    second = consumer.consume(replay)
    assert first.alerts_written == len(real_wire_payloads())
    assert second.alerts_written == 0 and second.already_written == first.alerts_written
    assert {p: p.read_bytes() for p in (tmp_path / "data").glob("*.csv")} == before


def test_poison_messages_are_dead_lettered_and_committed(alert_packets, broker, topic,
                                                         tmp_path: Path) -> None:
    good = real_wire_payloads()[:3]
    poison = [b"\x00\x00\x00\x03\x84" + b"\x01" * 40, b"garbage", good[0][:500]]
    broker.produce(topic, [good[0], poison[0], good[1], poison[1], poison[2], good[2]])
    summary = consumer.consume(settings_for(broker, topic, tmp_path))
    assert summary.exit_code == exitcodes.OK
    assert summary.alerts_written == 3 and summary.deadlettered == 3
    kept = sorted((tmp_path / "deadletter").glob("*.bin"))
    assert sorted(p.read_bytes() for p in kept) == sorted(poison)
    reasons = [p.with_suffix(".json").read_text() for p in kept]
    assert any("schema id 900" in r for r in reasons)
    assert any("leading bytes" in r for r in reasons)
    assert summary.partitions[0]["lag"] == 0


def test_misconfigured_authentication_fails_fast(broker, topic, tmp_path: Path) -> None:
    settings = settings_for(broker, topic, tmp_path, broker_timeout=5)
    settings.kafka.update({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
                           "sasl.username": "key", "sasl.password": "wrong-secret"})
    started = time.monotonic()
    summary = consumer.consume(settings)
    assert summary.exit_code == exitcodes.BROKER_UNREACHABLE
    assert time.monotonic() - started < 40
    assert not list((tmp_path / "data").glob("*.csv"))


def test_unreachable_broker_exits_with_its_status(tmp_path: Path) -> None:
    from lsst_alert_pipeline.testing.broker import free_port

    settings = config.load(environ={}, flags={
        "output_dir": str(tmp_path), "broker_timeout": 3,
        "kafka": {"bootstrap.servers": f"127.0.0.1:{free_port()}"}})
    summary = consumer.consume(settings)
    assert summary.exit_code == exitcodes.BROKER_UNREACHABLE


def test_sigterm_mid_run_then_restart_writes_every_alert_once(alert_packets, broker, topic,
                                                              tmp_path: Path) -> None:
    payloads = many_real_alerts(400)
    broker.produce(topic, payloads)
    command = [sys.executable, "-m", "lsst_alert_pipeline.cli", "consume", "--bootstrap-servers",
               broker.bootstrap, "--topic", topic, "--output-dir", str(tmp_path),
               "--batch-size", "20", "-X", "session.timeout.ms=6000", "--idle-timeout", "20"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list((tmp_path / "cutouts").glob("*"))) < 60:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == exitcodes.INTERRUPTED, stderr
    assert "SIGTERM received" in stderr
    interrupted_rows = len(csv_rows(tmp_path))
    assert 0 < interrupted_rows < 400
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120,
                              env={**os.environ})
    assert finished.returncode == exitcodes.OK, finished.stderr
    ids = [row["diaSourceId"] for row in csv_rows(tmp_path)]
    assert len(ids) == len(set(ids)) == 400


def test_csv_has_no_nan_text_and_reads_back(alert_packets, broker, topic, tmp_path: Path) -> None:
    broker.produce(topic, real_wire_payloads())
    consumer.consume(settings_for(broker, topic, tmp_path, extra_columns=["ssObjectId",
                                                                          "hasSSSource"]))
    for path in (tmp_path / "data").glob("*.csv"):
        text = path.read_text()
        assert "nan" not in text.lower()
        header = next(csv.reader(io.StringIO(text)))
        assert header == [*SPEC_COLUMNS, "ssObjectId", "hasSSSource"]
    sso = [r for r in csv_rows(tmp_path) if r["hasSSSource"] == "true"]
    # the real packets hold 6 solar-system alerts; counted here from the raw records
    expected = {str(raw["diaSource"]["diaSourceId"]) for raw in map(raw_record,
                                                                   real_wire_payloads())
                if raw["diaSource"].get("ssObjectId") or raw.get("ssSource")}
    assert {r["diaSourceId"] for r in sso} == expected and all(r["ssObjectId"] for r in sso)


def commit_offset(broker, group: str, topic: str, offset: int) -> None:
    """Set a group's committed offset on partition 0, as a member whose commit was lost left it."""
    from confluent_kafka import Consumer, TopicPartition

    probe = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        probe.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        probe.close()


def test_a_new_owner_resumes_after_what_the_ledger_records_not_the_committed_offset(
        broker, topic, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broker.produce(topic, many_real_alerts(30))
    first = consumer.consume(settings_for(broker, topic, tmp_path))
    assert first.exit_code == exitcodes.OK and first.messages == 30
    # The batches of offsets 10-29 were recorded, but their commit never reached the group.
    commit_offset(broker, f"g-{topic}", topic, 10)
    with caplog.at_level(logging.INFO, logger="lsst_alert_pipeline"):
        resumed = consumer.consume(settings_for(broker, topic, tmp_path))
    assert resumed.exit_code == exitcodes.OK
    assert resumed.messages == 0 and resumed.partitions[0]["committed"] == 30
    assert (f"{topic}/0: offsets 10 to 29 are already written to the output (recorded in its "
            "ledger, not yet committed); going on from offset 30") in caplog.text
    # --reset-offsets asks for a replay: it reads again what the ledger records (and skips it).
    replay = consumer.consume(settings_for(broker, topic, tmp_path, reset_offsets="earliest"))
    assert replay.messages == 30 and replay.already_written == 30
    assert len(csv_rows(tmp_path)) == 30
