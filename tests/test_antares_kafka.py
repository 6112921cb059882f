"""ANTARES locus messages through a real Kafka-protocol broker, cutouts from the local REST API
stand-in: every alert's three cutouts written as the packet's bytes, and a consumer whose batches
take longer than max.poll.interval.ms stays in its group and writes each alert once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline.run import RunSummary

from .alerts import csv_rows
from .antares_standin import KINDS, AntaresStandin, serve, streamed_alerts, wire_payloads

pytestmark = pytest.mark.kafka


def consume_topic(broker, topic: str, output: Path, standin: AntaresStandin,
                  **extra) -> RunSummary:
    kafka = {"bootstrap.servers": broker.bootstrap, "group.id": f"g-{topic}",
             "session.timeout.ms": 6000, **extra.pop("kafka", {})}
    flags = {"topics": [topic], "output_dir": str(output), "idle_timeout": 30, "kafka": kafka,
             "antares_fetch_cutouts": True, "antares_api_url": standin.base_url, **extra}
    return consumer.consume(config.load(environ={}, flags=flags))


def test_locus_stream_gets_three_plain_fits_cutouts_identical_to_the_packets(
        broker, topic, antares_api, tmp_path: Path) -> None:
    alerts = list(streamed_alerts(wire_payloads(simulated=30)))
    serve(antares_api, alerts)  # gzipped, gzipped under a FITS filemime, and plain
    broker.produce(topic, [alert.locus_message for alert in alerts])
    summary = consume_topic(broker, topic, tmp_path, antares_api)
    assert summary.exit_code == exitcodes.OK, summary.line()
    assert summary.deadlettered == 0 and summary.missing_cutouts == 0
    rows = {int(row["diaSourceId"]): row for row in csv_rows(tmp_path)}
    assert set(rows) == {alert.dia_source_id for alert in alerts}
    for alert in alerts:
        for kind in KINDS:
            written = (tmp_path / rows[alert.dia_source_id][f"{kind}_cutout_path"]).read_bytes()
            assert written == alert.cutouts[kind]
            assert written.startswith(b"SIMPLE  =")


def test_batches_slower_than_max_poll_interval_keep_the_group_and_write_each_alert_once(
        broker, topic, antares_api, tmp_path: Path, caplog) -> None:
    # Three batches: the third is polled after a pause, so a resume that lost librdkafka's
    # read-ahead would show here as missing alerts.
    alerts = list(streamed_alerts(wire_payloads(simulated=45)))[:36]
    assert len(alerts) == 36
    serve(antares_api, alerts)
    # 12 alerts x 4 requests x 0.5 s over 2 connections: each batch takes at least 12 s, more
    # than the 10 s max.poll.interval.ms below. Without polling meanwhile, librdkafka leaves
    # the group, the commit is refused and the batch comes again.
    antares_api.latency = 0.5
    broker.produce(topic, [alert.locus_message for alert in alerts])
    caplog.set_level(logging.INFO)
    summary = consume_topic(broker, topic, tmp_path, antares_api, batch_size=12,
                            batch_seconds=300, antares_concurrency=2,
                            kafka={"max.poll.interval.ms": 10000})
    assert summary.exit_code == exitcodes.OK, summary.line()
    assert summary.elapsed >= 36
    ids = [int(row["diaSourceId"]) for row in csv_rows(tmp_path)]
    assert sorted(ids) == sorted(alert.dia_source_id for alert in alerts)
    assert summary.already_written == 0 and summary.missing_cutouts == 0
    assert [row["lag"] for row in summary.partitions] == [0]
    assert "refused by a rebalance" not in caplog.text
    assert "moved to another consumer" not in caplog.text
