"""The chain on one machine: relay (filter) -> Kafka -> consume, as wire bytes and as ANTARES
locus messages whose cutouts come from a local stand-in for the ANTARES REST API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.normalize import normalize
from lsst_alert_pipeline.filter.devkit_run import run_filter
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.sinks.csv import cell

from .alerts import csv_rows
from .antares_standin import AntaresStandin, serve, streamed_alerts

pytestmark = pytest.mark.kafka
FOLDERS = ("rubin/derived_wire_v9_0", "rubin/derived_wire_v10_0")


def consume_topic(broker, topic: str, output: Path, **extra):
    flags = {"topics": [topic], "output_dir": str(output), "idle_timeout": 20,
             "kafka": {"bootstrap.servers": broker.bootstrap, "group.id": f"g-{topic}",
                       "session.timeout.ms": 6000}, **extra}
    return consumer.consume(config.load(environ={}, flags=flags))


def passing_ids(alert_packets: Path) -> set[int]:
    results = run_filter([alert_packets / folder for folder in FOLDERS])
    return {r.diaSourceId for r in results if r.passed and r.diaSourceId is not None}


def relay(broker, alert_packets: Path, topic: str, relay_format: str) -> str:
    args = ["relay", "--to", f"kafka://{broker.bootstrap}/{topic}", "--format", relay_format]
    output = ""
    for folder in FOLDERS:
        result = CliRunner().invoke(main, [*args, "--from", str(alert_packets / folder)])
        assert result.exit_code == 0, result.output
        output += result.output
    return output


def test_relay_publishes_exactly_the_passing_alerts_as_wire_bytes(alert_packets, broker, topic,
                                                                  tmp_path: Path) -> None:
    expected = passing_ids(alert_packets)
    assert expected, "the default filter (REQUIRE_SSSOURCE=True) passes the real SSO alerts"
    printed = relay(broker, alert_packets, topic, "wire")
    assert "relayed" in printed
    summary = consume_topic(broker, topic, tmp_path)
    assert summary.exit_code == exitcodes.OK
    assert {int(row["diaSourceId"]) for row in csv_rows(tmp_path)} == expected


@pytest.fixture
def thumbnails(alert_packets: Path, antares_api: AntaresStandin) -> Iterator[AntaresStandin]:
    """The stand-in REST API serving the cutouts of every passing alert under the ANTARES alert
    id the filter records, except one passing alert the API does not know (a 404)."""
    payloads = [p.read_bytes() for folder in FOLDERS
                for p in sorted((alert_packets / folder).glob("*.wire"))]
    antares_api.latency = 0.0
    antares_api.unknown = max(passing_ids(alert_packets))  # real packets: 169298433340342300
    serve(antares_api, [alert for alert in streamed_alerts(payloads)
                        if alert.dia_source_id != antares_api.unknown])
    yield antares_api


def test_antares_locus_stream_with_cutouts_from_the_rest_api(alert_packets, broker, topic,
                                                             thumbnails, tmp_path: Path) -> None:
    expected = passing_ids(alert_packets)
    relay(broker, alert_packets, topic, "antares")
    summary = consume_topic(broker, topic, tmp_path, antares_fetch_cutouts=True,
                            antares_api_url=thumbnails.base_url, antares_retries=1)
    assert summary.exit_code == exitcodes.OK, summary.line()
    rows = {int(row["diaSourceId"]): row for row in csv_rows(tmp_path)}
    assert set(rows) == expected
    assert summary.missing_cutouts == 3
    for path in [p for folder in FOLDERS for p in sorted((alert_packets / folder).glob("*.wire"))]:
        record = normalize(decode_message(path.read_bytes())[0])
        if record.diaSourceId not in expected:
            continue
        row = rows[record.diaSourceId]
        for column in ("ra", "dec", "mjd", "filterName", "psFlux", "psFluxErr",
                       "extendednessMedian", "extendednessMin", "extendednessMax"):
            assert row[column] == cell(getattr(record, column)), column
        if record.diaSourceId == thumbnails.unknown:
            assert row["science_cutout_path"] == ""
            continue
        for kind in ("science", "template", "difference"):
            assert (tmp_path / row[f"{kind}_cutout_path"]).read_bytes() == record.cutouts[kind]
    # a 404: asked once, never retried
    assert thumbnails.requests_for(f"lsst_diaSource:{thumbnails.unknown}") == 1


def test_relay_reads_raw_alerts_from_a_kafka_topic(alert_packets, broker, topic,
                                                   tmp_path: Path) -> None:
    raw = [p.read_bytes() for folder in FOLDERS
           for p in sorted((alert_packets / folder).glob("*.wire"))]
    raw_topic = f"{topic}-raw"
    broker.create_topic(raw_topic, 1)
    broker.produce(raw_topic, raw)
    result = CliRunner().invoke(main, [
        "relay", "--from", f"kafka://{broker.bootstrap}/{raw_topic}",
        "--to", f"kafka://{broker.bootstrap}/{topic}", "--group-id", f"relay-{topic}"])
    assert result.exit_code == 0, result.output
    expected = passing_ids(alert_packets)
    assert f"relayed {len(expected)} of {len(raw)} alerts" in result.output
    summary = consume_topic(broker, topic, tmp_path)
    assert {int(row["diaSourceId"]) for row in csv_rows(tmp_path)} == expected
    assert summary.exit_code == exitcodes.OK
