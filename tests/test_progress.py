"""Progress: what is left to read and about how long it takes, on a terminal or in the log."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline import progress as progress_module
from lsst_alert_pipeline.pipeline.progress import Progress, duration
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_log_line_says_what_is_left_and_the_time_to_go_at_the_rate_read(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    shown = Progress(io.StringIO(), interval=30)
    left = [10_000]
    with caplog.at_level(logging.INFO, logger="lsst_alert_pipeline"):
        shown.update(500, 0, 0, messages=500, backlog=lambda: left[0])  # the first batch
        clock.now += 40
        left[0] = 6_000
        shown.update(4_500, 0, 0, messages=4_500, backlog=lambda: left[0])
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1  # the first batch came before the interval was up
    # 4,000 messages in the 40 s since the first batch: 100/s, so 6,000 take 60 s
    assert "6,000 messages left, about 60 s to go" in lines[0], lines[0]


def test_a_source_that_cannot_tell_shows_no_estimate(monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    shown = Progress(io.StringIO(), interval=1)
    with caplog.at_level(logging.INFO, logger="lsst_alert_pipeline"):
        shown.update(10, 0, 0, messages=10, backlog=lambda: None)
        clock.now += 5
        shown.update(20, 0, 0, messages=20, backlog=lambda: None)
    line = caplog.records[-1].getMessage()
    assert "20 alerts written" in line and "left" not in line and "to go" not in line


def test_a_source_failing_to_tell_its_backlog_costs_the_estimate_not_the_run(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    shown = Progress(io.StringIO(), interval=1)

    def broken() -> int:
        raise RuntimeError("consumer closed")

    with caplog.at_level(logging.INFO, logger="lsst_alert_pipeline"):
        shown.update(10, 0, 0, messages=10, backlog=broken)
        clock.now += 5
        shown.update(20, 0, 0, messages=20, backlog=broken)
    line = caplog.records[-1].getMessage()
    assert "20 alerts written" in line and "to go" not in line


def test_durations_are_as_precise_as_an_estimate() -> None:
    assert duration(0.2) == "1 s"
    assert duration(75) == "75 s"
    assert duration(600) == "10 min"
    assert duration(3 * 3600 + 20 * 60) == "3 h 20 min"


class Recorder(Progress):
    """Asks the source for its backlog after every batch, as a line shown each time would."""

    def __init__(self) -> None:
        super().__init__(io.StringIO(), interval=3600)
        self.seen: list[tuple[int, int | None]] = []

    def update(self, written, skipped, dead, messages=0, backlog=None):  # type: ignore[no-untyped-def]
        self.seen.append((messages, backlog() if backlog else None))


def test_files_left_are_those_not_yet_written(tmp_path: Path) -> None:
    from lsst_alert_pipeline.simulate import write_wire_files

    write_wire_files(simulate_alerts(25, schema_version="11.1", seed=91, history=(0, 1)),
                     tmp_path / "in", "11.1")
    recorder = Recorder()
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(tmp_path / "in")], "output_dir": str(tmp_path / "out"),
        "batch_size": 10}), progress=recorder)
    assert summary.exit_code == exitcodes.OK
    assert recorder.seen == [(10, 15), (20, 5), (25, 0)]


@pytest.mark.kafka
def test_a_kafka_backlog_is_the_high_watermark_past_the_committed_offset(
        broker, topic, tmp_path: Path) -> None:
    payloads = [encode_wire(alert, "11.1") for alert in simulate_alerts(
        40, schema_version="11.1", seed=92, history=(0, 1))]
    broker.produce(topic, payloads)
    recorder = Recorder()
    summary = consumer.consume(config.load(environ={}, flags={
        "topics": [topic], "output_dir": str(tmp_path / "out"), "batch_size": 10,
        "idle_timeout": 20, "kafka": {"bootstrap.servers": broker.bootstrap,
                                      "group.id": f"g-{topic}", "session.timeout.ms": 6000}}),
        progress=recorder)
    assert summary.exit_code == exitcodes.OK and summary.alerts_written == 40
    assert recorder.seen and recorder.seen[-1] == (40, 0)
    # After each batch is committed, what is left is the rest of the topic, exactly
    assert all(left == 40 - read for read, left in recorder.seen), recorder.seen

