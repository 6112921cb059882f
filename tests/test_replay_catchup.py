"""Catching up means lag 0, replays add nothing, retention loss is reported (real test broker).

Every test here produces one record per batch: Tansu 0.6's high watermark is only exact then
(CONTRIBUTING.md, The test broker). The consumer itself is written for real Kafka semantics."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.sources.kafka import KafkaSource

from .alerts import csv_rows, many_real_alerts, real_wire_payloads, renumbered


def settings_for(broker, topic: str, output: Path, group: str, **extra):
    return config.load(environ={}, flags={
        "topics": [topic], "output_dir": str(output), "idle_timeout": 20,
        "kafka": {"bootstrap.servers": broker.bootstrap, "group.id": group,
                  "session.timeout.ms": 6000}, **extra})


def checksums(output: Path) -> dict[str, str]:
    return {str(p.relative_to(output)): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in ("data", "cutouts") for p in sorted((output / folder).iterdir())}


@pytest.mark.kafka
def test_uneven_partitions_end_at_lag_zero_and_every_alert_once(real_alerts, broker,
                                                                tmp_path: Path) -> None:
    topic = "uneven-four"
    broker.create_topic(topic, 4)
    payloads = many_real_alerts(240, first_id=7_000_000_000)
    broker.produce(topic, payloads[:200], partition=0)
    broker.produce(topic, payloads[200:205], partition=1)
    # Partition 2 stays empty; partition 3 only receives alerts while the first run goes on.
    late = payloads[205:240]
    feeding = threading.Thread(target=lambda: (time.sleep(4), broker.produce(
        topic, late, partition=3)))
    feeding.start()
    first = consumer.consume(settings_for(broker, topic, tmp_path, "uneven", batch_size=50))
    feeding.join()
    assert first.exit_code == exitcodes.OK and first.outcome == "caught up", first.line()
    lag = {row["partition"]: row["lag"] for row in first.partitions}
    assert lag[0] == lag[1] == lag[2] == 0
    second = consumer.consume(settings_for(broker, topic, tmp_path, "uneven"))
    assert second.exit_code == exitcodes.OK
    assert {row["partition"]: row["lag"] for row in second.partitions} == {0: 0, 1: 0, 2: 0, 3: 0}
    ids = [row["diaSourceId"] for row in csv_rows(tmp_path)]
    assert len(ids) == len(set(ids)) == 240
    result = CliRunner().invoke(main, ["offsets", "--json", "--bootstrap-servers",
                                       broker.bootstrap, "--topic", topic, "--group-id",
                                       "uneven"])
    assert result.exit_code == 0, result.output
    rows = {r["partition"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert {p: (r["committed"], r["high"], r["lag"]) for p, r in rows.items()} == {
        0: (200, 200, 0), 1: (5, 5, 0), 2: (-1, 0, 0), 3: (35, 35, 0)}
    listed = CliRunner().invoke(main, ["topics", "--json", "--bootstrap-servers",
                                       broker.bootstrap])
    assert {"topic": topic, "partitions": 4, "messages": 240} in [
        json.loads(line) for line in listed.stdout.splitlines()]


@pytest.mark.kafka
def test_replay_from_earliest_changes_nothing_and_a_fresh_replay_is_identical(
        real_alerts, broker, topic, tmp_path: Path) -> None:
    broker.produce(topic, real_wire_payloads())
    first_dir, fresh_dir = tmp_path / "first", tmp_path / "fresh"
    assert consumer.consume(settings_for(broker, topic, first_dir, "replay")).exit_code == 0
    before = checksums(first_dir)
    again = consumer.consume(settings_for(broker, topic, first_dir, "replay",
                                          reset_offsets="earliest"))
    assert again.exit_code == 0 and again.messages == len(real_wire_payloads())
    assert again.alerts_written == 0
    assert checksums(first_dir) == before
    assert consumer.consume(settings_for(broker, topic, fresh_dir, "replay",
                                         reset_offsets="earliest")).exit_code == 0
    strip = [{k: v for k, v in row.items() if k != "timestamp"} for row in csv_rows(first_dir)]
    assert [{k: v for k, v in row.items() if k != "timestamp"}
            for row in csv_rows(fresh_dir)] == strip
    assert {k: v for k, v in checksums(fresh_dir).items() if k.startswith("cutouts")} == {
        k: v for k, v in before.items() if k.startswith("cutouts")}


@pytest.mark.kafka
def test_reset_to_a_time_seeks_where_offsets_for_times_answers(real_alerts, broker, topic,
                                                               tmp_path: Path) -> None:
    # Tansu answers offset 0 for every time, so the seek lands at the start; the choice of
    # offset for a given answer is tested without a broker in test_offsets.py.
    broker.produce(topic, real_wire_payloads()[:5])
    assert consumer.consume(settings_for(broker, topic, tmp_path, "timed")).alerts_written == 5
    replay = consumer.consume(settings_for(broker, topic, tmp_path, "timed",
                                           reset_offsets="2020-01-01T00:00:00Z"))
    assert replay.messages == 5 and replay.alerts_written == 0 and replay.already_written == 5


@pytest.mark.kafka
def test_offsets_deleted_by_retention_are_reported_with_their_count(
        real_alerts, broker, topic, tmp_path: Path, monkeypatch) -> None:
    payloads = many_real_alerts(30, first_id=6_000_000_000)
    broker.produce(topic, payloads[:10])
    assert consumer.consume(settings_for(broker, topic, tmp_path, "retention")).exit_code == 0
    broker.produce(topic, payloads[10:])
    # Tansu cannot delete records, so the broker's answer is changed at the source boundary:
    # the low watermark now stands at 22, as if retention had deleted offsets 10..21 unread.
    real_watermarks = KafkaSource.watermarks

    def after_retention(self, tp):
        low, high = real_watermarks(self, tp)
        return max(low, 22), high

    monkeypatch.setattr(KafkaSource, "watermarks", after_retention)
    summary = consumer.consume(settings_for(broker, topic, tmp_path, "retention"))
    assert summary.exit_code == exitcodes.RETENTION_LOSS
    assert summary.lost_to_retention == 12
    assert summary.alerts_written == 8  # offsets 22..29
    assert len(csv_rows(tmp_path)) == 18


def test_a_night_across_utc_midnight_lands_in_one_csv(real_alerts, tmp_path: Path) -> None:
    base = (real_alerts / "rubin/derived_wire_v9_0/169298432598474793.v9_0.wire").read_bytes()
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    # 2026-02-10 23:30 UTC and 2026-02-11 08:30 UTC: one Chilean night, dayObs 20260210.
    for index, mjd in enumerate((61081.979, 61082.354)):
        (incoming / f"{index}.wire").write_bytes(renumbered(base, 5_000_000_000 + index, mjd))
    out = tmp_path / "out"
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(incoming)], "output_dir": str(out)}))
    assert summary.alerts_written == 2
    assert [p.name for p in (out / "data").iterdir()] == ["lsst_alerts_20260210.csv"]
    stamps = sorted(p.name.split("_", 2)[2] for p in (out / "cutouts").glob("*_science_*"))
    assert stamps == ["20260210_232945.fits", "20260211_082945.fits"]
