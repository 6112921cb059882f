"""--broker-timeout bounds every wait for the broker, both ways, and librdkafka's log is ours."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline.run import RunSummary
from lsst_alert_pipeline.sources.kafka_log import OncePerKind
from lsst_alert_pipeline.testing.broker import free_port

from .alerts import csv_rows
from .reliability.helpers import simulated_alerts

RAW_LIBRDKAFKA_LINE = re.compile(r"^%\d\|\d+\.\d+\|", re.M)  # its own stderr format


def settings_for(bootstrap: str, topic: str, output: Path, **extra: object) -> config.Settings:
    flags = {"topics": [topic], "output_dir": str(output), "idle_timeout": 30,
             "kafka": {"bootstrap.servers": bootstrap, "group.id": f"g-{topic}",
                       "session.timeout.ms": 6000}, **extra}
    return config.load(environ={}, flags=flags)


def test_an_unreachable_broker_at_start_is_given_up_at_the_broker_timeout(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
        ) -> None:
    settings = settings_for(f"127.0.0.1:{free_port()}", "t", tmp_path / "out", broker_timeout=3)
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="lsst_alert_pipeline"):
        summary = consumer.consume(settings)
    waited = time.monotonic() - started
    assert summary.exit_code == exitcodes.BROKER_UNREACHABLE
    assert 3 <= waited < 12  # a hard-coded 15 s check gave up after ~15.5 s whatever was set
    assert "within 3 s (--broker-timeout)" in caplog.text
    assert "trying again for up to 3 s" in caplog.text
    assert not RAW_LIBRDKAFKA_LINE.search(capfd.readouterr().err)


@pytest.mark.kafka
def test_a_broker_that_answers_within_the_broker_timeout_is_waited_for(
        broker, topic, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str]) -> None:
    alerts = simulated_alerts(20, seed=29)
    broker.produce(topic, alerts.payloads)
    output = tmp_path / "out"
    settings = settings_for(broker.bootstrap, topic, output, broker_timeout=60)
    summary = RunSummary()

    def consume() -> None:
        summary.__dict__.update(consumer.consume(settings).__dict__)

    broker.pause()  # accepts connections, answers nothing: past the old 15 s check
    try:
        with caplog.at_level(logging.INFO, logger="lsst_alert_pipeline"):
            running = threading.Thread(target=consume)
            running.start()
            time.sleep(18)
            assert running.is_alive(), summary.line()
    finally:
        broker.resume()
    running.join(timeout=120)
    assert summary.exit_code == exitcodes.OK, summary.line()
    assert sorted(int(row["diaSourceId"]) for row in csv_rows(output)) == sorted(alerts.ids)
    assert "trying again for up to 60 s (--broker-timeout)" in caplog.text
    assert not RAW_LIBRDKAFKA_LINE.search(capfd.readouterr().err)


@pytest.mark.kafka
def test_a_broker_gone_for_seconds_mid_run_does_not_end_the_run(
        broker, topic, tmp_path: Path) -> None:
    alerts = simulated_alerts(300, seed=30)
    broker.produce(topic, alerts.payloads)
    output = tmp_path / "out"
    settings = settings_for(broker.bootstrap, topic, output, batch_size=20, broker_timeout=90)
    summary = RunSummary()

    def consume() -> None:
        summary.__dict__.update(consumer.consume(settings).__dict__)

    running = threading.Thread(target=consume)
    running.start()
    deadline = time.monotonic() + 120
    while not list(output.glob("data/*.csv")) or len(csv_rows(output)) < 40:
        assert time.monotonic() < deadline and running.is_alive(), "no rows written"
        time.sleep(0.05)
    broker.pause()
    time.sleep(8)
    broker.resume()
    running.join(timeout=240)
    assert summary.exit_code == exitcodes.OK, summary.line()
    ids = [int(row["diaSourceId"]) for row in csv_rows(output)]
    assert sorted(ids) == sorted(alerts.ids)  # every alert once


def test_librdkafka_repeats_are_folded_into_one_line_with_a_count() -> None:
    now = [0.0]
    once = OncePerKind(window=60, clock=lambda: now[0])
    told = []
    for second in range(200):  # a 200 s outage, one refusal a second, ports varying
        now[0] = float(second)
        record = logging.LogRecord("librdkafka", logging.ERROR, __file__, 1,
                                   "FAIL [rdkafka#consumer-1] 127.0.0.1:%d/bootstrap: Connect "
                                   "failed: Connection refused (after %d ms in state CONNECT)",
                                   (9000 + second, second), None)
        if once.filter(record):
            told.append(record.getMessage())
    assert len(told) == 4  # at 0, 60, 120 and 180 s
    assert "(and 59 times more in the last 60 s)" in told[1]
    other = logging.LogRecord("librdkafka", logging.ERROR, __file__, 1, "a different error",
                              (), None)
    assert once.filter(other)
