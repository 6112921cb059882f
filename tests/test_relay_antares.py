"""The chain on one machine: relay (filter) -> Kafka -> consume, as wire bytes and as ANTARES
locus messages whose cutouts come from a local stand-in for the ANTARES REST API."""

from __future__ import annotations

import http.server
import json
import threading
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


class ThumbnailServer(http.server.ThreadingHTTPServer):
    """Answers `GET /v2/alerts/{alert_id}/thumbnails` in the response shape antares-client
    parses ({"data": [{id, filemime, src, thumbnail_type}]}) and serves the files it names.
    A stand-in for the ANTARES REST API, which tests cannot reach."""

    def __init__(self, cutouts: dict[str, dict[str, bytes]]):
        self.cutouts = cutouts
        self.requests: list[str] = []
        self.unknown = ""  # the alert id it answers 404 for
        super().__init__(("127.0.0.1", 0), ThumbnailHandler)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ThumbnailHandler(http.server.BaseHTTPRequestHandler):
    server: ThumbnailServer

    def log_message(self, *args: object) -> None:
        """Quiet."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        self.server.requests.append(self.path)
        parts = self.path.strip("/").split("/")
        if parts[:2] == ["v2", "alerts"] and parts[-1] == "thumbnails":
            alert_id = parts[2]
            if alert_id not in self.server.cutouts:
                return self._send(404, b'{"errors": [{"title": "Not found"}]}', "application/json")
            data = [{"id": f"{alert_id}_{kind}", "filemime": "application/fits",
                     "src": f"{self.server.base}/files/{alert_id}/{kind}",
                     "thumbnail_type": kind} for kind in self.server.cutouts[alert_id]]
            body = json.dumps({"data": data, "links": {"self": self.path, "next": None}})
            return self._send(200, body.encode(), "application/vnd.api+json")
        if parts[0] == "files":
            return self._send(200, self.server.cutouts[parts[1]][parts[2]], "application/fits")
        return self._send(404, b"{}", "application/json")

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def thumbnails(alert_packets: Path) -> Iterator[ThumbnailServer]:
    cutouts = {}
    for folder in FOLDERS:
        for path in sorted((alert_packets / folder).glob("*.wire")):
            record = normalize(decode_message(path.read_bytes())[0])
            cutouts[str(record.diaSourceId)] = {k: v for k, v in record.cutouts.items() if v}
    # One passing alert the API does not know: its cutouts are missing, counted, paths empty.
    server = ThumbnailServer(cutouts)
    server.unknown = str(max(passing_ids(alert_packets)))  # real: 169298433340342300
    cutouts.pop(server.unknown)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_antares_locus_stream_with_cutouts_from_the_rest_api(alert_packets, broker, topic,
                                                             thumbnails, tmp_path: Path) -> None:
    expected = passing_ids(alert_packets)
    relay(broker, alert_packets, topic, "antares")
    summary = consume_topic(broker, topic, tmp_path, antares_fetch_cutouts=True,
                            antares_api_url=f"{thumbnails.base}/v2/", antares_retries=1)
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
        if str(record.diaSourceId) == thumbnails.unknown:
            assert row["science_cutout_path"] == ""
            continue
        for kind in ("science", "template", "difference"):
            assert (tmp_path / row[f"{kind}_cutout_path"]).read_bytes() == record.cutouts[kind]
    assert any(r.endswith(f"/{thumbnails.unknown}/thumbnails") for r in thumbnails.requests)


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
