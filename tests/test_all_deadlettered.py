"""A run that read messages and wrote none of them, every one a dead letter, is not a success:
exit status 11 (docs/operations.md, Exit statuses), and the cron script skips retention after
it. A run with one alert written among dead letters still succeeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline.ledger import Ledger

from .alerts import csv_rows, many_real_alerts
from .test_consume_kafka import settings_for
from .test_cron_wrapper import alert_files, checkout, run_cron, worktree_venv


def truncated(payloads: list[bytes]) -> list[bytes]:
    """Real wire packets cut short: the schema id is known, the body cannot be read."""
    return [payload[:40] for payload in payloads]


def from_files(folder: Path, out: Path):
    return consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(folder)], "output_dir": str(out)}))


@pytest.mark.kafka
def test_a_kafka_run_whose_every_message_is_a_dead_letter_exits_11_with_offsets_committed(
        alert_packets, broker, topic, tmp_path: Path) -> None:
    broker.produce(topic, truncated(many_real_alerts(6)))
    summary = consumer.consume(settings_for(broker, topic, tmp_path))
    assert summary.exit_code == exitcodes.ALL_DEADLETTERED, summary.line()
    assert (summary.messages, summary.deadlettered, summary.alerts_written) == (6, 6, 0)
    assert summary.outcome == "caught up" and summary.partitions[0]["lag"] == 0
    reasons = [json.loads(path.read_text())["reason"]
               for path in (tmp_path / "deadletter").glob("*.json")]
    assert len(reasons) == 6 and all(reasons)
    assert csv_rows(tmp_path) == []
    ledger = Ledger(tmp_path / "state" / "ledger.sqlite")
    try:
        [run] = ledger.db.execute("SELECT exit_code FROM runs").fetchall()
    finally:
        ledger.close()
    assert run[0] == exitcodes.ALL_DEADLETTERED
    # Their offsets were committed: the next run reads nothing and is a plain success.
    again = consumer.consume(settings_for(broker, topic, tmp_path))
    assert (again.exit_code, again.messages) == (exitcodes.OK, 0)


@pytest.mark.kafka
def test_a_kafka_run_with_one_alert_written_among_dead_letters_succeeds(
        alert_packets, broker, topic, tmp_path: Path) -> None:
    good, *bad = many_real_alerts(4)
    broker.produce(topic, [*truncated(bad), good])
    summary = consumer.consume(settings_for(broker, topic, tmp_path))
    assert summary.exit_code == exitcodes.OK, summary.line()
    assert (summary.deadlettered, summary.alerts_written) == (3, 1)


def test_a_run_from_files_that_are_all_dead_letters_exits_11_and_a_replay_too(
        alert_packets, tmp_path: Path) -> None:
    incoming = alert_files(tmp_path / "incoming", truncated(many_real_alerts(3)))
    summary = from_files(incoming, tmp_path / "out")
    assert summary.exit_code == exitcodes.ALL_DEADLETTERED, summary.line()
    assert (summary.messages, summary.deadlettered) == (3, 3)
    assert len(list((tmp_path / "out" / "deadletter").glob("*.bin"))) == 3
    # Files are read again whole on every run: still nothing written, still 11.
    assert from_files(incoming, tmp_path / "out").exit_code == exitcodes.ALL_DEADLETTERED


def test_a_run_from_files_of_alerts_already_on_disk_is_not_all_dead(
        alert_packets, tmp_path: Path) -> None:
    payloads = many_real_alerts(3)
    out = tmp_path / "out"
    assert from_files(alert_files(tmp_path / "good", payloads[:1]), out).exit_code == 0
    mixed = alert_files(tmp_path / "mixed", [payloads[0], *truncated(payloads[1:])])
    summary = from_files(mixed, out)
    assert (summary.already_written, summary.deadlettered) == (1, 2)
    assert summary.exit_code == exitcodes.OK


def test_the_cron_script_passes_11_on_and_skips_retention(alert_packets,
                                                          tmp_path: Path) -> None:
    incoming = alert_files(tmp_path / "incoming", truncated(many_real_alerts(2)))
    out = tmp_path / "out"
    home = checkout(tmp_path, f'output_dir = "{out}"\nfrom_paths = ["{incoming}"]\n')
    status, log = run_cron(home, worktree_venv(tmp_path / "venv"))
    assert status == exitcodes.ALL_DEADLETTERED, log
    assert "every one of the 2 messages read was dead-lettered" in log
    assert "exit 11, every message read was a dead letter, none written" in log
    assert "retention skipped" in log and "removed 0 files" not in log
    assert log.splitlines()[-1].endswith("end, exit status 11")
