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


def test_the_summary_counts_what_the_ledger_holds_when_a_commit_then_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lsst_alert_pipeline.errors import BrokerUnreachable
    from lsst_alert_pipeline.pipeline.ledger import Ledger
    from lsst_alert_pipeline.sources.files import FileSource

    from .test_archive import simulated_payloads, write_files

    write_files(tmp_path / "in", simulated_payloads(30, seed=31))
    commits = [0]
    real_commit = FileSource.commit

    def commit(self: FileSource, messages: list) -> None:
        commits[0] += 1
        if commits[0] == 3:  # the third batch is in the ledger; its commit fails
            raise BrokerUnreachable("could not commit offsets within 1 s (--broker-timeout)")
        real_commit(self, messages)

    monkeypatch.setattr(FileSource, "commit", commit)
    settings = config.load(environ={}, flags={"from_paths": [str(tmp_path / "in")],
                                              "output_dir": str(tmp_path / "out"),
                                              "batch_size": 10})
    summary = consumer.consume(settings)
    assert summary.exit_code == exitcodes.BROKER_UNREACHABLE
    ledger = Ledger(tmp_path / "out" / "state" / "ledger.sqlite")
    assert summary.alerts_written == ledger.alert_count() == 30  # not 20: the third batch counts
    ledger.close()
    assert summary.elapsed > 0 and " in 0.0 s" not in summary.line()


def test_a_broker_never_reached_reports_the_time_spent_trying(tmp_path: Path) -> None:
    settings = settings_for(f"127.0.0.1:{free_port()}", "t", tmp_path / "out", broker_timeout=2)
    summary = consumer.consume(settings)
    assert summary.exit_code == exitcodes.BROKER_UNREACHABLE
    assert summary.elapsed >= 2 and " in 0.0 s" not in summary.line()


@pytest.mark.kafka
def test_a_signal_while_waiting_for_a_silent_broker_stops_at_once_with_exit_4(
        broker, topic, tmp_path: Path) -> None:
    settings = settings_for(broker.bootstrap, topic, tmp_path / "out", broker_timeout=300)
    stop = threading.Event()
    broker.pause()
    try:
        threading.Timer(3, stop.set).start()
        started = time.monotonic()
        summary = consumer.consume(settings, stop)
        waited = time.monotonic() - started
    finally:
        broker.resume()
    assert summary.exit_code == exitcodes.INTERRUPTED, summary.line()
    assert waited < 15  # not the 300 s broker timeout
