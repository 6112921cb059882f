"""A Schema Registry that cannot be reached stops the run (exit 3, nothing committed); the next
run goes on. Only what the registry answers is unknown (404), or garbage, is dead-lettered."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.decode.batch import decode_and_normalize
from lsst_alert_pipeline.decode.schemas import SchemaSource
from lsst_alert_pipeline.errors import BrokerUnreachable, DependencyUnreachable
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts
from lsst_alert_pipeline.sources.offsets import describe_group

from .alerts import csv_rows
from .schema_registry import SchemaRegistry, free_port

VERSION = "10.0"
UNKNOWN_ID = 777  # the local registry holds 900 and 1000 only


def wire_alerts(count: int, seed: int = 29) -> list[bytes]:
    return [encode_wire(alert, VERSION) for alert in
            simulate_alerts(count, schema_version=VERSION, seed=seed, history=(0, 3))]


def settings_for(broker, topic: str, output: Path, registry_url: str):
    return config.load(environ={}, flags={
        "topics": [topic], "output_dir": str(output), "idle_timeout": 20,
        "kafka": {"bootstrap.servers": broker.bootstrap, "group.id": f"g-{topic}",
                  "session.timeout.ms": 6000, "schema.registry.url": registry_url}})


def committed(broker, topic: str) -> int | None:
    rows = describe_group({"bootstrap.servers": broker.bootstrap, "group.id": f"g-{topic}"},
                          [topic])
    offset = int(rows[0]["committed"])  # -1: the group has committed nothing
    return None if offset < 0 else offset


def deadletters(output: Path) -> list[Path]:
    return sorted((output / "deadletter").glob("*.json"))


def test_an_unreachable_registry_is_an_infrastructure_failure_not_a_bad_message() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    payloads = wire_alerts(3)
    with pytest.raises(DependencyUnreachable, match=f"the Schema Registry at {url} cannot be "
                       "reached: .*nothing of this batch was committed"):
        decode_and_normalize(payloads, SchemaSource(url, first_wait=0.01))
    assert issubclass(DependencyUnreachable, BrokerUnreachable)
    assert DependencyUnreachable("x").exit_code == exitcodes.BROKER_UNREACHABLE


def test_a_registry_failing_once_is_retried_and_one_failing_on_is_unreachable() -> None:
    payloads = wire_alerts(2)
    with SchemaRegistry() as registry:
        registry.failures = 1
        outcomes = decode_and_normalize(payloads, SchemaSource(registry.url, first_wait=0.01))
        assert all(isinstance(outcome, list) and len(outcome) == 1 for outcome in outcomes)
        assert len(registry.requests) == 2  # the 503, then the schema (cached afterwards)
        registry.failures = 10
        with pytest.raises(DependencyUnreachable, match=r"HTTP 503 .*\(3 attempts\)"):
            decode_and_normalize(payloads, SchemaSource(registry.url, first_wait=0.01))


@pytest.mark.kafka
def test_registry_down_stops_the_run_with_exit_3_and_commits_nothing_then_the_next_run_goes_on(
        broker, topic, tmp_path: Path) -> None:
    payloads = wire_alerts(12)
    broker.produce(topic, payloads)
    output = tmp_path / "lsst_alerts"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # As the operator ran it: the CLI with -X schema.registry.url and the registry down.
    down = subprocess.run(
        [sys.executable, "-m", "lsst_alert_pipeline.cli", "consume", "--bootstrap-servers",
         broker.bootstrap, "--topic", topic, "--group-id", f"g-{topic}", "--output-dir",
         str(output), "--idle-timeout", "20", "-X", "session.timeout.ms=6000",
         "-X", f"schema.registry.url={url}"],
        capture_output=True, text=True, timeout=120)
    assert down.returncode == exitcodes.BROKER_UNREACHABLE, down.stderr
    assert f"the Schema Registry at {url} cannot be reached" in down.stderr
    assert "nothing of this batch was committed, the next run reads it again" in down.stderr
    assert csv_rows(output) == []
    assert deadletters(output) == []
    assert committed(broker, topic) is None

    with SchemaRegistry(port=port) as registry:
        summary = consumer.consume(settings_for(broker, topic, output, registry.url))
    assert summary.exit_code == exitcodes.OK, summary.line()
    rows = csv_rows(output)
    assert sorted(row["diaSourceId"] for row in rows) == sorted(
        {row["diaSourceId"] for row in rows})
    assert len(rows) == len(payloads)
    assert deadletters(output) == []
    assert committed(broker, topic) == len(payloads)


@pytest.mark.kafka
def test_an_id_the_registry_does_not_hold_and_garbage_stay_dead_letters(
        broker, topic, tmp_path: Path) -> None:
    good = wire_alerts(5, seed=7)
    unknown = b"\x00" + UNKNOWN_ID.to_bytes(4, "big") + good[0][5:]
    broker.produce(topic, [*good[:2], unknown, b"not an alert at all", *good[2:]])
    output = tmp_path / "lsst_alerts"
    with SchemaRegistry() as registry:
        summary = consumer.consume(settings_for(broker, topic, output, registry.url))
    assert summary.exit_code == exitcodes.OK, summary.line()
    assert len(csv_rows(output)) == len(good)
    reasons = sorted(path.read_text() for path in deadletters(output))
    assert len(reasons) == 2
    assert any(f"schema id {UNKNOWN_ID} is not in the Schema Registry at {registry.url}" in r
               for r in reasons)
    assert any("not an alert: leading bytes" in r for r in reasons)
    assert committed(broker, topic) == len(good) + 2


@pytest.mark.kafka
def test_a_registry_refusing_our_credentials_stops_the_run_with_exit_3(
        broker, topic, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broker.produce(topic, wire_alerts(3, seed=3))
    output = tmp_path / "lsst_alerts"
    with SchemaRegistry(credentials=("alice", "right")) as registry:
        summary = consumer.consume(settings_for(
            broker, topic, output, registry.url.replace("//", "//alice:wrong@")))
    assert summary.exit_code == exitcodes.BROKER_UNREACHABLE
    assert f"the Schema Registry at {registry.url} refused our credentials (HTTP 401" in \
        caplog.text
    assert csv_rows(output) == [] and deadletters(output) == []
    assert committed(broker, topic) is None
