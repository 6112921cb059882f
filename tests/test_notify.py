"""Notifications (docs/notifications.md): a failed run tells the user once, each new alert
matching --notify-when is named once ever, the digest sums up the night, secrets stay masked.

Real parts: apprise delivers `mailto://` to a real SMTP server (aiosmtpd) on 127.0.0.1 and
`json://` to a local HTTP endpoint that answers as apprise's JSON service expects (200); a dead
endpoint is a closed port."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.notify import Notifier
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline.outputdir import OutputDir
from lsst_alert_pipeline.simulate import simulate_alerts, write_wire_files

from .alerts import csv_rows


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Inbox:
    """aiosmtpd handler: every message the SMTP server accepted."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[str, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        # plain SMTP (mailto://, not mailtos://) on a local port, no login
        yield (f"mailto://127.0.0.1:{port}?from=consumer@example.org&to=astronomer@example.org",
               inbox)
    finally:
        controller.stop()


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    posts: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers["Content-Length"])
            posts.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"json://127.0.0.1:{server.server_address[1]}/hook", posts
    finally:
        server.shutdown()
        server.server_close()


def body_of(message: Message) -> str:
    assert isinstance(message, EmailMessage)
    part = message.get_body(("plain", "html"))
    assert part is not None
    return str(part.get_content())


def night_of(tmp_path: Path, count: int = 60, seed: int = 26) -> Path:
    incoming = tmp_path / "incoming"
    write_wire_files(simulate_alerts(count, schema_version="11.1", seed=seed, history=(0, 2)),
                     incoming, "11.1")
    return incoming


def run_consume(incoming: Path, out: Path, **notify: Any) -> Any:
    settings = config.load(environ={}, flags={"from_paths": [str(incoming)],
                                              "output_dir": str(out), "batch_size": 25,
                                              **notify})
    return consumer.consume(settings, observer=Notifier.start(settings))


def named_ids(posts: list[dict[str, Any]]) -> list[str]:
    """The diaSourceIds the candidate messages named, in order, repeats kept."""
    return [line.split()[2] for post in posts if "candidate" in post["title"]
            for line in post["message"].splitlines() if line.startswith("- diaSourceId")]


def test_a_failed_run_sends_one_message_with_exit_status_meaning_and_what_to_do(
        tmp_path: Path, smtp: tuple[str, Inbox]) -> None:
    url, inbox = smtp
    out = tmp_path / "out"
    holder = OutputDir(out).open()  # another consumer holds the output: exit 6
    try:
        summary = run_consume(night_of(tmp_path, 5), out, notify_urls=[url])
    finally:
        holder.close()
    assert summary.exit_code == exitcodes.ALREADY_RUNNING
    assert len(inbox.messages) == 1
    mail = inbox.messages[0]
    text = body_of(mail)
    assert "exit status 6 (already running)" in mail["Subject"]
    assert summary.line() in text
    assert "What to do:" in text and socket.gethostname() in text
    assert str(out.resolve()) in text


def test_a_successful_run_sends_nothing_unless_on_success(
        tmp_path: Path, smtp: tuple[str, Inbox]) -> None:
    url, inbox = smtp
    incoming = night_of(tmp_path, 12)
    assert run_consume(incoming, tmp_path / "a", notify_urls=[url]).exit_code == exitcodes.OK
    assert inbox.messages == []
    run_consume(incoming, tmp_path / "b", notify_urls=[url], notify_on_success=True)
    assert len(inbox.messages) == 1
    assert "exit status 0 (success)" in inbox.messages[0]["Subject"]


def test_each_matching_alert_is_named_once_across_a_rerun_and_a_second_broker(
        tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, posts = webhook
    incoming = night_of(tmp_path, 80)
    out = tmp_path / "out"
    when = {"notify_urls": [url], "notify_when": "extendednessMedian > 0.5 AND ra > 0"}
    assert run_consume(incoming, out, **when).exit_code == exitcodes.OK
    expected = sorted(row["diaSourceId"] for row in csv_rows(out)
                      if row["extendednessMedian"] and float(row["extendednessMedian"]) > 0.5)
    assert expected, "the simulated night should hold some extended alerts"
    assert sorted(named_ids(posts)) == expected
    assert all("extendednessMedian=" in line for post in posts
               for line in post["message"].splitlines() if line.startswith("- "))
    sent = len(posts)
    run_consume(incoming, out, **when)  # a rerun: a replay of the same files
    copy = tmp_path / "second-broker"
    copy.mkdir()
    for path in incoming.iterdir():  # the same alerts again, as another broker hands them
        (copy / f"other-{path.name}").write_bytes(path.read_bytes())
    run_consume(copy, out, **when)
    assert len(posts) == sent
    assert sorted(named_ids(posts)) == expected


def test_one_message_per_batch_names_at_most_max_per_message_and_counts_the_rest(
        tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, posts = webhook
    out = tmp_path / "out"
    settings = config.load(environ={}, flags={
        "from_paths": [str(night_of(tmp_path, 40))], "output_dir": str(out),
        "batch_size": 40, "notify_urls": [url], "notify_when": "ra >= 0",
        "notify_max_per_message": 3})
    consumer.consume(settings, observer=Notifier.start(settings))
    candidates = [post for post in posts if "candidate" in post["title"]]
    assert len(candidates) == 1
    total = len(csv_rows(out))
    assert len(named_ids(candidates)) == 3
    assert f"... and {total - 3:,} more" in candidates[0]["message"]
    assert f"{total:,} new candidates" in candidates[0]["title"]


def test_a_dead_endpoint_never_fails_the_run_and_the_next_run_names_what_it_held_back(
        tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]],
        caplog: pytest.LogCaptureFixture) -> None:
    url, posts = webhook
    dead = f"json://user:hunter2@127.0.0.1:{free_port()}/hook"
    incoming, out = night_of(tmp_path, 30), tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        summary = run_consume(incoming, out, notify_urls=[dead], notify_when="ra >= 0",
                              notify_max_per_message=100)
    assert summary.exit_code == exitcodes.OK and summary.alerts_written == 30
    assert "not delivered" in caplog.text and "hunter2" not in caplog.text
    run_consume(incoming, out, notify_urls=[url], notify_when="ra >= 0",
                notify_max_per_message=100)  # nothing new: only what was held back
    assert sorted(named_ids(posts)) == sorted(row["diaSourceId"] for row in csv_rows(out))


def test_a_bad_expression_is_a_configuration_error_naming_the_key(tmp_path: Path) -> None:
    runner = CliRunner()
    for expression in ("extendednessMedian >", "no_such_column > 1", "ra > 1; DROP TABLE x"):
        result = runner.invoke(main, ["config", "check", "--from", str(tmp_path),
                                      "--output-dir", str(tmp_path / "out"),
                                      "--notify-when", expression])
        assert result.exit_code == exitcodes.CONFIG_ERROR, result.output
        assert "notify.when" in result.output


def test_notify_test_prints_per_url_whether_it_was_delivered(
        smtp: tuple[str, Inbox]) -> None:
    url, inbox = smtp
    dead = f"json://127.0.0.1:{free_port()}/hook"
    result = CliRunner().invoke(main, ["notify", "--test", "--notify", url, "--notify", dead],
                                env={"LSST_ALERTS_NOTIFY": ""})
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    assert lines[0].startswith("delivered") and "127.0.0.1" in lines[0]
    assert lines[1].startswith("NOT delivered") and dead.split("/")[2] in lines[1]
    assert len(inbox.messages) == 1 and "test message" in inbox.messages[0]["Subject"]


def test_notify_urls_come_from_the_environment_space_separated(
        smtp: tuple[str, Inbox], webhook: tuple[str, list[dict[str, Any]]]) -> None:
    (mail, inbox), (hook, posts) = smtp, webhook
    result = CliRunner().invoke(main, ["notify", "--test"],
                                env={"LSST_ALERTS_NOTIFY": f"{mail} {hook}"})
    assert result.exit_code == 0, result.output
    assert len(inbox.messages) == 1 and len(posts) == 1


def test_secrets_in_urls_are_masked_in_config_check(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [
        "config", "check", "--from", str(tmp_path), "--output-dir", str(tmp_path / "o"),
        "--notify", "mailto://bob:hunter2@smtp.example.org:2525?to=a@example.org",
        "--notify", "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)["notify_urls"]
    assert "hunter2" not in result.output and "TIiajkdnlazkcOXrIdevi7FQ" not in result.output
    assert shown[0].startswith("mailto://bob:") and "smtp.example.org" in shown[0]


def test_the_digest_sums_up_the_night_and_attaches_the_overview_image(
        tmp_path: Path, webhook: tuple[str, list[dict[str, Any]]]) -> None:
    url, posts = webhook
    out = tmp_path / "out"
    run_consume(night_of(tmp_path, 50, seed=27), out)
    rows = csv_rows(out)
    night = next((out / "data").glob("lsst_alerts_*.csv")).stem.removeprefix("lsst_alerts_")
    result = CliRunner().invoke(main, ["digest", "--output-dir", str(out), "--date", night,
                                       "--notify", url], env={"LSST_ALERTS_NOTIFY": ""})
    assert result.exit_code == 0, result.output
    assert len(posts) == 1
    text = posts[0]["message"]
    assert f"Alerts written: {len(rows):,}" in posts[0]["title"] + text
    bands: dict[str, int] = {}
    for row in rows:
        bands[row["filterName"]] = bands.get(row["filterName"], 0) + 1
    for band, n in bands.items():
        assert f"{band} {n:,}" in text
    solar = sum(row["hasSSSource"] in ("1", "True", "true") for row in rows) if "hasSSSource" \
        in rows[0] else None
    assert "Solar-system association:" in text
    if solar:
        assert f"yes {solar:,}" in text
    assert "Dead letters: 0" in text and "Lost to retention: 0" in text
    assert str((out / "reports" / night / "index.html").resolve()) in text
    assert text.count("\n- diaSourceId") == 10  # the top ten by extendednessMedian
    assert [a["filename"] for a in posts[0]["attachments"]] == ["sky.png"]


def test_a_dead_letter_of_a_decoded_alert_names_its_diasourceid_and_diaobjectid(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from lsst_alert_pipeline.pipeline import run as run_module

    real_row = run_module.spec_row
    victims: list[Any] = []

    def fails_for_the_first(record: Any, *args: Any) -> Any:
        if not victims or victims[0] is record:  # one alert's unforeseen value
            victims.append(record)
            raise ValueError("an unforeseen value")
        return real_row(record, *args)

    monkeypatch.setattr(run_module, "spec_row", fails_for_the_first)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        summary = run_consume(night_of(tmp_path, 4), out)
    assert summary.deadlettered == 1
    record = victims[0]
    (letter,) = (out / "deadletter").glob("*.json")
    facts = json.loads(letter.read_text())
    assert (facts["diaSourceId"], facts["diaObjectId"]) == (record.diaSourceId,
                                                           record.diaObjectId)
    assert (f"diaSourceId {record.diaSourceId}, diaObjectId {record.diaObjectId}"
            in caplog.text)


def test_a_consume_without_notifications_loads_neither_the_digest_nor_its_plotting(
        tmp_path: Path) -> None:
    """The digest's imports (the report's matplotlib) cost ~0.5 s: a cron run that
    sends nothing must not pay them at every start (they once came with `consume`)."""
    import subprocess
    import sys

    write_wire_files(simulate_alerts(3, schema_version="11.1", seed=5, history=(0, 1)),
                     tmp_path / "in", "11.1")
    probe = ("import sys\nfrom lsst_alert_pipeline.cli import main\n"
             "try:\n    main(['consume', '--from', sys.argv[1], '--output-dir', sys.argv[2]])\n"
             "except SystemExit as end:\n"
             "    print(end.code, sorted(m for m in ('matplotlib', 'astropy.visualization', "
             "'lsst_alert_pipeline.notify.digest') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "in"),
                           str(tmp_path / "out")], capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stdout + done.stderr[-2000:]
