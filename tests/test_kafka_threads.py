"""The Kafka source's threads end with the run that started them."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts


@pytest.mark.kafka
def test_a_kafka_run_leaves_no_commit_thread_behind(broker, topic, tmp_path: Path) -> None:
    """Runs in one process ([[sources]], a service) each ended with its commit thread still
    waiting, holding the closed consumer."""
    import threading

    broker.produce(topic, [encode_wire(alert, "11.1") for alert in simulate_alerts(
        6, schema_version="11.1", seed=93, history=(0, 1))])
    before = sum(1 for thread in threading.enumerate() if thread.name == "offset-commit")
    for run in range(2):
        summary = consumer.consume(config.load(environ={}, flags={
            "topics": [topic], "output_dir": str(tmp_path / "out"), "idle_timeout": 20,
            "kafka": {"bootstrap.servers": broker.bootstrap, "group.id": f"g{run}-{topic}",
                      "session.timeout.ms": 6000}}))
        assert summary.exit_code == exitcodes.OK and summary.messages == 6
    after = sum(1 for thread in threading.enumerate() if thread.name == "offset-commit")
    assert after == before
