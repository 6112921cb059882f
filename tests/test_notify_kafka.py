"""Notifications end to end: `lsst-alerts consume` in its own process on the real test broker,
`--notify` to a real SMTP server (aiosmtpd), `--notify-when` (docs/notifications.md).

A failed run sends one message naming its exit status; each candidate found while consuming
from Kafka is named once, a replay (`--reset-offsets earliest`) naming none again; a
configuration error found while the settings are read is told to the URLs still readable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lsst_alert_pipeline import exitcodes
from lsst_alert_pipeline.testing.broker import TansuBroker

from .alerts import csv_rows
from .reliability.helpers import SRC, simulated_alerts
from .test_notify import Inbox, body_of, smtp  # noqa: F401 - smtp: the real SMTP server

pytestmark = pytest.mark.kafka


def consume_command(tmp_path: Path, *args: str,
                    **environ: str) -> subprocess.CompletedProcess[str]:
    """`lsst-alerts consume ARGS` as cron runs it: its own process, in a folder of its own (no
    stray lsst_alerts.toml), none of this shell's LSST_ALERTS_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSST_ALERTS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "lsst_alert_pipeline.cli", "consume", *args],
                          cwd=tmp_path, env={**env, **environ}, capture_output=True, text=True,
                          timeout=240)


def kafka_args(bootstrap: str, topic: str, out: Path) -> list[str]:
    return ["--bootstrap-servers", bootstrap, "--topic", topic, "--group-id", f"g-{topic}",
            "--output-dir", str(out), "--idle-timeout", "20", "--broker-timeout", "3"]


def subjects(inbox: Inbox) -> list[str]:
    return [str(message["Subject"]) for message in inbox.messages]


def named_ids(inbox: Inbox) -> list[str]:
    """The diaSourceIds the candidate mails named, in order, repeats kept."""
    return [line.split()[2] for message in inbox.messages if "candidate" in message["Subject"]
            for line in body_of(message).splitlines() if line.startswith("- diaSourceId")]


def test_a_topic_the_broker_does_not_have_exits_2_and_sends_one_message_naming_it(
        broker, tmp_path: Path, smtp: tuple[str, Inbox]) -> None:  # noqa: F811
    url, inbox = smtp
    done = consume_command(tmp_path, *kafka_args(broker.bootstrap, "no-such-topic",
                                                 tmp_path / "out"), "--notify", url)
    assert done.returncode == exitcodes.CONFIG_ERROR, done.stderr
    assert len(inbox.messages) == 1
    assert "exit status 2 (configuration error)" in subjects(inbox)[0]
    text = body_of(inbox.messages[0])
    assert "no-such-topic not found on the broker" in text and "What to do:" in text


def test_a_stopped_broker_exits_3_and_sends_one_message_after_a_silent_success(
        tmp_path: Path, smtp: tuple[str, Inbox]) -> None:  # noqa: F811
    url, inbox = smtp
    out = tmp_path / "out"
    own = TansuBroker().start()  # stopped below: the shared broker serves the other tests
    try:
        own.create_topic("night", 1)
        own.produce("night", simulated_alerts(10, seed=126).payloads)
        first = consume_command(tmp_path, *kafka_args(own.bootstrap, "night", out),
                                "--notify", url)
        assert first.returncode == exitcodes.OK, first.stderr
        assert inbox.messages == []  # a success sends nothing
        own.produce("night", simulated_alerts(5, seed=127).payloads)
    finally:
        own.stop()
    done = consume_command(tmp_path, *kafka_args(own.bootstrap, "night", out), "--notify", url)
    assert done.returncode == exitcodes.BROKER_UNREACHABLE, done.stderr
    assert len(inbox.messages) == 1
    assert "exit status 3 (broker unreachable)" in subjects(inbox)[0]
    text = body_of(inbox.messages[0])
    assert "broker unreachable: processed 0 messages" in text
    assert str(out.resolve()) in text
    assert len(csv_rows(out)) == 10


def test_candidates_consumed_from_kafka_are_named_once_across_a_replay(
        broker, topic, tmp_path: Path, smtp: tuple[str, Inbox]) -> None:  # noqa: F811
    url, inbox = smtp
    out = tmp_path / "out"
    broker.produce(topic, simulated_alerts(60, seed=128).payloads)
    when = ["--notify", url, "--notify-when", "extendednessMedian > 0.5 AND ra > 0",
            "--batch-size", "20"]
    first = consume_command(tmp_path, *kafka_args(broker.bootstrap, topic, out), *when)
    assert first.returncode == exitcodes.OK, first.stderr
    expected = sorted(row["diaSourceId"] for row in csv_rows(out)
                      if row["extendednessMedian"] and float(row["extendednessMedian"]) > 0.5)
    assert expected, "the simulated night should hold some extended alerts"
    assert sorted(named_ids(inbox)) == expected
    assert all("exit status" not in subject for subject in subjects(inbox))
    sent = len(inbox.messages)

    replay = consume_command(tmp_path, *kafka_args(broker.bootstrap, topic, out), *when,
                             "--reset-offsets", "earliest")
    assert replay.returncode == exitcodes.OK, replay.stderr
    assert "processed 60 messages, wrote 0 alerts, 60 already on disk" in replay.stderr
    assert len(inbox.messages) == sent
    assert sorted(named_ids(inbox)) == expected


def test_a_configuration_error_is_told_to_the_urls_the_config_file_still_gives(
        broker, tmp_path: Path, smtp: tuple[str, Inbox]) -> None:  # noqa: F811
    url, inbox = smtp
    out = tmp_path / "configured"
    (tmp_path / "lsst_alerts.toml").write_text(
        f'output_dir = "{out}"\nbatch_sise = 3\n[notify]\nurls = ["{url}"]\n')
    done = consume_command(tmp_path, "--bootstrap-servers", broker.bootstrap, "--topic", "t")
    assert done.returncode == exitcodes.CONFIG_ERROR
    assert "unknown setting 'batch_sise'" in done.stderr
    assert len(inbox.messages) == 1
    assert "exit status 2 (configuration error)" in subjects(inbox)[0]
    text = body_of(inbox.messages[0])
    assert "unknown setting 'batch_sise'" in text and "nothing was run" in text
    assert str(out.resolve()) in text
    assert not out.exists()


def test_a_configuration_error_is_told_to_the_environments_urls_and_a_flags(
        tmp_path: Path, smtp: tuple[str, Inbox]) -> None:  # noqa: F811
    url, inbox = smtp
    environment = consume_command(tmp_path, "--topic", "t", "--batch-size", "0",
                                  LSST_ALERTS_NOTIFY=url)
    flag = consume_command(tmp_path, "--topic", "t", "--notify", url,
                           LSST_ALERTS_BATCH_SIZE="many")
    assert (environment.returncode, flag.returncode) == (exitcodes.CONFIG_ERROR,) * 2
    assert [body_of(message).count("batch_size") > 0 for message in inbox.messages] == [
        True, True]


def test_a_config_file_that_is_not_toml_cannot_tell_its_urls(
        tmp_path: Path, smtp: tuple[str, Inbox]) -> None:  # noqa: F811
    url, inbox = smtp
    (tmp_path / "lsst_alerts.toml").write_text(f'[notify]\nurls = ["{url}"\n')  # no ]
    done = consume_command(tmp_path, "--topic", "t")
    assert done.returncode == exitcodes.CONFIG_ERROR
    assert "is not valid TOML" in done.stderr
    assert inbox.messages == []
