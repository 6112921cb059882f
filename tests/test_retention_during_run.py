"""Offsets the broker's retention deletes while a run reads them: counted, recorded, exit 8, and
`status` shows the new position (real test broker).

Tansu keeps every record whatever the topic says (tried: a topic created with retention.ms=1000,
retention.bytes=100, segment.ms=100 keeps its low watermark at 0 after seconds), and it has no
DeleteRecords. So the one broker feature missing is simulated at its narrowest point, once the
run has read the first offsets: the low watermark the source reads stands at LOW, and the
consumer's fetch position is moved to LOW by a seek, which is what librdkafka does on its own
when a fetch gets OFFSET_OUT_OF_RANGE (auto.offset.reset=earliest: a reset to the log start, no
error event). Fetching, committing and the group are the real broker's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from lsst_alert_pipeline import exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline.ledger import Ledger
from lsst_alert_pipeline.sources.kafka import KafkaSource

from .alerts import csv_rows, many_real_alerts
from .reliability.figures import FIGURES
from .test_replay_catchup import settings_for


def retention_after(monkeypatch, topic: str, read: int, low: int) -> dict[str, Any]:
    """Once `read` messages of partition 0 are taken, retention has deleted everything below
    `low`: the watermark says so and the consumer jumps there. Returns where the run stood."""
    real_take, real_watermarks = KafkaSource._take, KafkaSource.watermarks
    state: dict[str, Any] = {"deleted": False, "expected": None}

    def take(self, polled, into):
        size = real_take(self, polled, into)
        taken = [m.offset for m in into if m.topic == topic]
        if not state["deleted"] and self.read.get((topic, 0), 0) >= read:
            state["deleted"], state["expected"] = True, max(taken) + 1
            self.consumer.seek(TopicPartition(topic, 0, low))
        return size

    def watermarks(self, tp):
        real_low, high = real_watermarks(self, tp)
        return (max(real_low, low), high) if state["deleted"] else (real_low, high)

    monkeypatch.setattr(KafkaSource, "_take", take)
    monkeypatch.setattr(KafkaSource, "watermarks", watermarks)
    return state


def status_of(broker, topic: str, output: Path, group: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["status", "--json", "--output-dir", str(output),
                                       "--bootstrap-servers", broker.bootstrap, "--topic",
                                       topic, "--group-id", group])
    assert result.exit_code == 0, result.output
    facts: dict[str, Any] = json.loads(result.stdout)
    return facts


@pytest.mark.kafka
def test_offsets_deleted_while_reading_are_counted_recorded_and_end_in_exit_8(
        alert_packets, broker, topic, tmp_path: Path, monkeypatch) -> None:
    broker.produce(topic, many_real_alerts(30, first_id=6_100_000_000))
    where = retention_after(monkeypatch, topic, read=10, low=22)
    summary = consumer.consume(settings_for(broker, topic, tmp_path, "midrun", batch_size=5))
    expected = where["expected"]
    assert expected is not None and 10 <= expected < 22
    assert summary.exit_code == exitcodes.RETENTION_LOSS, summary.line()
    assert summary.lost_to_retention == 22 - expected
    FIGURES["retention_while_reading"] += 1
    assert summary.alerts_written == expected + 8 == len(csv_rows(tmp_path))  # then 22..29
    assert (summary.partitions[0]["committed"], summary.partitions[0]["lag"],
            summary.partitions[0]["lost_to_retention"]) == (30, 0, 22 - expected)
    ledger = Ledger(tmp_path / "state" / "ledger.sqlite")
    assert [(loss["from"], loss["to"], loss["lost"]) for loss in ledger.retention_losses()] == [
        (expected, 22, 22 - expected)]
    ledger.close()
    facts = status_of(broker, topic, tmp_path, "midrun")
    assert facts["lost_to_retention"] == 22 - expected
    assert facts["partitions"][0]["committed"] == 30
    assert [(loss["from"], loss["to"]) for loss in facts["retention_losses"]] == [(expected, 21)]
    text = CliRunner().invoke(main, ["status", "--output-dir", str(tmp_path), "--no-broker"])
    assert f"{topic}/0: offsets {expected} to 21 ({22 - expected} alerts) deleted by the " \
        "broker before they were read" in text.output


@pytest.mark.kafka
def test_a_loss_at_the_end_of_what_is_held_moves_the_committed_offset_past_it(
        alert_packets, broker, topic, tmp_path: Path, monkeypatch) -> None:
    # Retention deletes everything unread: no message comes after the loss to commit, yet the
    # group's offset must move past it, or `status` shows the old position and the next run
    # counts the same loss again.
    broker.produce(topic, many_real_alerts(20, first_id=6_200_000_000))
    where = retention_after(monkeypatch, topic, read=10, low=20)
    summary = consumer.consume(settings_for(broker, topic, tmp_path, "tail", batch_size=5))
    lost = 20 - where["expected"]
    assert summary.exit_code == exitcodes.RETENTION_LOSS and summary.lost_to_retention == lost
    FIGURES["retention_while_reading"] += 1
    assert summary.partitions[0]["committed"] == 20
    facts = status_of(broker, topic, tmp_path, "tail")
    assert facts["partitions"][0]["committed"] == 20 and facts["partitions"][0]["lag"] == 0
    assert facts["lost_to_retention"] == lost
    again = consumer.consume(settings_for(broker, topic, tmp_path, "tail"))
    assert again.exit_code == exitcodes.OK and again.lost_to_retention == 0, again.line()
    assert status_of(broker, topic, tmp_path, "tail")["lost_to_retention"] == lost


@pytest.mark.kafka
def test_an_out_of_range_error_event_counts_the_loss_and_reads_on(
        alert_packets, broker, topic, tmp_path: Path, monkeypatch, caplog) -> None:
    # With auto.offset.reset=error librdkafka stops the partition and hands the application an
    # _AUTO_OFFSET_RESET error at the offset it could not fetch. Tansu never answers a fetch with
    # OFFSET_OUT_OF_RANGE (not even past the end: it returns nothing), so that one event is
    # built as librdkafka builds it and handed to the source among the real broker's messages.
    broker.produce(topic, many_real_alerts(30, first_id=6_300_000_000))
    real_take, real_watermarks = KafkaSource._take, KafkaSource.watermarks
    state: dict[str, Any] = {"at": None}

    def take(self, polled, into):
        size = real_take(self, polled, into)
        if state["at"] is None and self.read.get((topic, 0), 0) >= 10:
            state["at"] = max(m.offset for m in into if m.topic == topic) + 1
            event = Message(topic=topic, partition=0, offset=state["at"],
                            error=KafkaError(KafkaError._AUTO_OFFSET_RESET))
            real_take(self, [event], into)
        return size

    def watermarks(self, tp):
        real_low, high = real_watermarks(self, tp)
        return (max(real_low, 22), high) if state["at"] is not None else (real_low, high)

    monkeypatch.setattr(KafkaSource, "_take", take)
    monkeypatch.setattr(KafkaSource, "watermarks", watermarks)
    group = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "outofrange"})
    group.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)  # a known start
    group.close()
    settings = settings_for(broker, topic, tmp_path, "outofrange", batch_size=5)
    settings.kafka["auto.offset.reset"] = "error"
    summary = consumer.consume(settings)
    at = state["at"]
    assert summary.exit_code == exitcodes.RETENTION_LOSS, summary.line()
    assert summary.lost_to_retention == 22 - at and summary.alerts_written == at + 8
    FIGURES["retention_while_reading"] += 1
    assert f"{22 - at} alerts (offsets {at} to 21) were deleted by the broker's retention" in \
        caplog.text
