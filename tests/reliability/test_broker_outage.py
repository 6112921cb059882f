"""Broker outages: a paused broker (SIGSTOP) is waited out; a stopped one past --broker-timeout
ends the run with exit 3, and a run against the restarted broker resumes cleanly.

Tansu keeps topics in memory: a restarted broker is empty, so the test republishes everything
and checks that the ledger skips what is already on disk and writes the rest once.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lsst_alert_pipeline import exitcodes
from lsst_alert_pipeline.config import Settings
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline.run import RunSummary
from lsst_alert_pipeline.testing.broker import TansuBroker

from .figures import FIGURES
from .helpers import (
    SimulatedAlerts,
    count_files,
    settings_for,
    verify_exactly_once,
    wait_for,
)

pytestmark = pytest.mark.kafka

ALERTS = 1500


class BackgroundRun:
    """consume(settings) in a thread, so the test can act on the broker mid-run."""

    def __init__(self, settings: Settings):
        self.summary: RunSummary | None = None
        self.ended_at: float | None = None
        self.thread = threading.Thread(target=self._run, args=(settings,), daemon=True)
        self.thread.start()

    def _run(self, settings: Settings) -> None:
        self.summary = consumer.consume(settings)
        self.ended_at = time.monotonic()

    def join(self, timeout: float) -> RunSummary:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the run did not end within {timeout} s"
        assert self.summary is not None
        return self.summary


def start_writing(settings: Settings, output: Path, cutouts: int = 150) -> BackgroundRun:
    run = BackgroundRun(settings)
    wait_for(lambda: count_files(output / "cutouts") >= cutouts or not run.thread.is_alive(),
             90, "the consumer to write its first batches")
    assert run.thread.is_alive(), "the run ended before the outage; raise the volume"
    return run


@pytest.mark.parametrize("outage", [3.0, 9.0], ids=["shorter-than-session",
                                                     "longer-than-session"])
def test_paused_broker_then_resumed_loses_and_duplicates_nothing(
        broker, topic, simulated: SimulatedAlerts, tmp_path: Path, outage: float) -> None:
    broker.produce(topic, simulated.payloads[:ALERTS])
    output = tmp_path / "out"
    settings = settings_for(broker.bootstrap, topic, output, batch_size=20, idle_timeout=60,
                            broker_timeout=60)
    run = start_writing(settings, output)
    broker.pause()
    paused_at = count_files(output / "cutouts")
    try:
        time.sleep(outage)  # the length of the outage is what this test varies
        assert run.thread.is_alive(), "the consumer gave up during a short outage"
    finally:
        broker.resume()
    summary = run.join(180)
    print(f"\npaused broker for {outage:.0f} s at {paused_at // 3} alerts: {summary.line()}")
    assert summary.exit_code == exitcodes.OK, summary.line()
    FIGURES["outages"] += 1
    verify_exactly_once(output, simulated, set(simulated.ids[:ALERTS]))


def test_stopped_broker_exits_3_after_broker_timeout_and_a_rerun_resumes_cleanly(
        simulated: SimulatedAlerts, tmp_path: Path, caplog: Any) -> None:
    payloads, ids = simulated.payloads[:ALERTS], set(simulated.ids[:ALERTS])
    output = tmp_path / "out"
    with TansuBroker(log_path=tmp_path / "tansu.log") as own:
        port = own.port
        own.create_topic("outage")
        own.produce("outage", payloads)
        settings = settings_for(own.bootstrap, "outage", output, batch_size=20,
                                idle_timeout=60, broker_timeout=8)
        with caplog.at_level(logging.INFO, logger="lsst_alert_pipeline"):
            run = start_writing(settings, output)
            assert own.process is not None
            own.process.kill()  # at once: Tansu can take seconds to stop on SIGTERM
            own.process.wait(10)
            stopped_at = time.monotonic()
            summary = run.join(120)
    assert run.ended_at is not None
    waited = run.ended_at - stopped_at
    print(f"\nstopped broker: exit {summary.exit_code} ({summary.outcome}) {waited:.1f} s after "
          "the stop")
    assert summary.exit_code == exitcodes.BROKER_UNREACHABLE, summary.outcome
    # librdkafka reconnects with backoff meanwhile; the run names the limit it gave up at.
    assert "--broker-timeout" in caplog.text or "retrying with backoff" in caplog.text
    assert 7 <= waited <= 45, f"gave up after {waited:.1f} s with --broker-timeout 8"
    on_disk = len(verify_exactly_once(output, simulated, ids, partial=True))
    assert 0 < on_disk < ALERTS
    # The restarted broker keeps its state in memory, so it has no committed offsets for any
    # group: the next run reads from the start and the ledger decides. It runs under a fresh
    # group id because the first run's consumer, abandoned in this process while its commit
    # waits (a cron run's process exit would end it), may still rejoin the old group.
    settings.kafka["group.id"] = f"{settings.kafka['group.id']}-next-run"
    with TansuBroker(port=port, log_path=tmp_path / "tansu.log") as restarted:
        restarted.create_topic("outage")
        restarted.produce("outage", payloads)
        resumed = consumer.consume(settings)
    print(f"stopped broker: rerun after restart: {resumed.line()}")
    assert resumed.exit_code == exitcodes.OK, resumed.line()
    assert resumed.already_written == on_disk
    assert resumed.alerts_written == ALERTS - on_disk
    FIGURES["outages"] += 1
    verify_exactly_once(output, simulated, ids)
