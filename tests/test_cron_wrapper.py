"""run_lsst_consumer.sh as cron runs it (`env -i`): the configured output directory, the lock,
RETENTION_DAYS, retention failures and signals (README, "Cron Job Setup")."""

from __future__ import annotations

import fcntl
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lsst_alert_pipeline import exitcodes
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts

from .alerts import csv_rows, real_wire_payloads

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "run_lsst_consumer.sh"


def worktree_venv(folder: Path) -> Path:
    """A folder shaped like a virtualenv whose bin/lsst-alerts runs this checkout's code (the
    shared venv's own lsst-alerts may be installed from another checkout)."""
    (folder / "bin").mkdir(parents=True)
    command = folder / "bin" / "lsst-alerts"
    command.write_text(f'#!/bin/sh\nPYTHONPATH={REPO / "src"} exec {sys.executable} '
                       '-m lsst_alert_pipeline.cli "$@"\n')
    command.chmod(0o755)
    return folder


def checkout(tmp_path: Path, toml: str | None) -> Path:
    """A project folder as an operator installs it: the wrapper, and lsst_alerts.toml beside it."""
    home = tmp_path / "project"
    home.mkdir()
    shutil.copy(SCRIPT, home / SCRIPT.name)
    if toml is not None:
        (home / "lsst_alerts.toml").write_text(toml)
    return home


def cron_command(home: Path, venv: Path, **extra: str) -> list[str]:
    """What cron runs: next to nothing in the environment, plus the crontab line's variables."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LSST_ALERTS_VENV": str(venv),
           **extra}
    return ["env", "-i", *(f"{k}={v}" for k, v in env.items()), str(home / SCRIPT.name)]


def run_cron(home: Path, venv: Path, **extra: str) -> tuple[int, str]:
    done = subprocess.run(cron_command(home, venv, **extra), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=180, cwd="/")
    return done.returncode, done.stdout


def alert_files(folder: Path, payloads: list[bytes]) -> Path:
    folder.mkdir(parents=True)
    for number, payload in enumerate(payloads):
        (folder / f"{number:05d}.wire").write_bytes(payload)
    return folder


def test_the_wrapper_writes_locks_and_cleans_where_the_config_file_says(
        alert_packets, tmp_path: Path) -> None:
    incoming = alert_files(tmp_path / "incoming", real_wire_payloads())
    configured = tmp_path / "data" / "lsst_alerts"
    home = checkout(tmp_path, f'output_dir = "{configured}"\nfrom_paths = ["{incoming}"]\n')
    status, log = run_cron(home, worktree_venv(tmp_path / "venv"))
    assert status == 0, log
    assert len(csv_rows(configured)) == len(real_wire_payloads())
    assert (configured / "state" / "cron.lock").is_file()
    start = next(line for line in log.splitlines() if "=== LSST Alert Consumer: start" in line)
    assert f"output {configured}," in start
    assert f"-> {configured}" in log  # the consumer's own start line
    assert "removed 0 files" in log  # retention ran, on the configured folder
    assert not (home / "lsst_alerts").exists()
    assert log.splitlines()[-1].endswith("=== LSST Alert Consumer: end, exit status 0")


def test_an_output_dir_set_in_the_wrapper_environment_outranks_the_config_file(
        alert_packets, tmp_path: Path) -> None:
    incoming = alert_files(tmp_path / "incoming", real_wire_payloads())
    configured = tmp_path / "configured"
    chosen = tmp_path / "chosen"
    home = checkout(tmp_path, f'output_dir = "{configured}"\nfrom_paths = ["{incoming}"]\n')
    status, log = run_cron(home, worktree_venv(tmp_path / "venv"),
                           LSST_ALERTS_OUTPUT_DIR=str(chosen))
    assert status == 0, log
    assert len(csv_rows(chosen)) == len(real_wire_payloads())
    assert (chosen / "state" / "cron.lock").is_file()
    assert not configured.exists() and not (home / "lsst_alerts").exists()


def test_a_config_error_stops_the_wrapper_with_exit_2_and_the_tools_message(
        tmp_path: Path) -> None:
    home = checkout(tmp_path, 'output_dir = "/tmp/x"\nbatch_sise = 3\n')
    status, log = run_cron(home, worktree_venv(tmp_path / "venv"))
    assert status == exitcodes.CONFIG_ERROR, log
    assert "unknown setting 'batch_sise'" in log
    assert "=== LSST Alert Consumer: start" not in log


@pytest.mark.parametrize("days", ["0", "-3", "thirty"])
def test_an_invalid_retention_days_stops_the_wrapper_before_consuming_with_exit_2(
        alert_packets, tmp_path: Path, days: str) -> None:
    incoming = alert_files(tmp_path / "incoming", real_wire_payloads()[:2])
    out = tmp_path / "out"
    home = checkout(tmp_path, f'output_dir = "{out}"\nfrom_paths = ["{incoming}"]\n')
    status, log = run_cron(home, worktree_venv(tmp_path / "venv"), RETENTION_DAYS=days)
    assert status == exitcodes.CONFIG_ERROR, log
    assert "Invalid value for '--days'" in log  # the tool's own rule and message
    assert f"RETENTION_DAYS='{days}' is invalid" in log
    assert not out.exists()


def test_a_failed_retention_after_a_good_run_is_logged_and_exits_9(
        alert_packets, tmp_path: Path) -> None:
    incoming = alert_files(tmp_path / "incoming", real_wire_payloads()[:3])
    out = tmp_path / "out"
    # A member folder whose state/ is a file: cleanup cannot open that member's layout.
    (out / "members" / "broken").mkdir(parents=True)
    (out / "members" / "broken" / "state").write_text("not a folder")
    home = checkout(tmp_path, f'output_dir = "{out}"\nfrom_paths = ["{incoming}"]\n')
    status, log = run_cron(home, worktree_venv(tmp_path / "venv"))
    assert status == exitcodes.RETENTION_FAILED, log
    assert len(csv_rows(out)) == 3
    assert "consume ended with exit status 0" in log
    assert f"cannot create the output directory {out / 'members' / 'broken'}" in log
    assert "retention failed with exit status 5" in log
    assert log.splitlines()[-1].endswith("end, exit status 9")


def consumers_of(wrapper: int) -> list[int]:
    """Pids of the wrapper's children running `lsst-alerts consume`."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == wrapper and b"consume" in cmdline:
            pids.append(int(entry.name))
    return pids


def alive(pid: int) -> bool:
    """Running or sleeping; a zombie (ended, not yet reaped) counts as gone."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(predicate, what: str, limit: float = 60.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_wrapper_stops_the_consumer_and_exits_4_without_retention(
        tmp_path: Path, signum: signal.Signals) -> None:
    payloads = [encode_wire(alert, "11.1") for alert in
                simulate_alerts(600, schema_version="11.1", seed=29, history=(0, 6))]
    incoming = alert_files(tmp_path / "incoming", payloads)
    out = tmp_path / "out"
    # Small batches: the run lasts seconds and a stop waits for one batch only.
    home = checkout(tmp_path, f'output_dir = "{out}"\nfrom_paths = ["{incoming}"]\n'
                              "batch_size = 20\n")
    log_path = tmp_path / "cron.log"
    with open(log_path, "w") as log_file:
        wrapper = subprocess.Popen(cron_command(home, worktree_venv(tmp_path / "venv")),
                                   stdout=log_file, stderr=subprocess.STDOUT, cwd="/")
        try:
            wait_for(lambda: "LSST Alert Consumer starting" in log_path.read_text(),
                     "the consumer's start line")
            consumers = consumers_of(wrapper.pid)
            assert consumers, log_path.read_text()
            wrapper.send_signal(signum)
            status = wrapper.wait(timeout=120)
        finally:
            if wrapper.poll() is None:
                wrapper.kill()
    log = log_path.read_text()
    assert status == exitcodes.INTERRUPTED, log
    assert not any(alive(pid) for pid in consumers), "the consumer outlived the wrapper"
    assert "SIGTERM received: finishing the current batch" in log  # forwarded as TERM
    assert "LSST Alert Consumer finished (exit 4, interrupted)" in log
    assert "consume ended with exit status 4" in log
    assert f"{signum.name} received during the run; retention skipped" in log
    assert "removed " not in log and "would remove" not in log
    assert log.splitlines()[-1].endswith("=== LSST Alert Consumer: end, exit status 4")
    assert len(csv_rows(out)) < len(payloads)  # stopped mid-run


@pytest.mark.kafka
def test_the_cron_script_runs_under_env_i_and_logs_its_header(alert_packets, broker, topic,
                                                              tmp_path: Path) -> None:
    broker.produce(topic, real_wire_payloads())
    out = tmp_path / "lsst_alerts"
    status, text = run_cron(checkout(tmp_path, None), worktree_venv(tmp_path / "venv"),
                            LSST_ALERTS_OUTPUT_DIR=str(out), LSST_ALERTS_TOPIC=topic,
                            LSST_ALERTS_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
                            LSST_ALERTS_KAFKA_GROUP_ID=f"cron-{topic}",
                            LSST_ALERTS_KAFKA_SESSION_TIMEOUT_MS="6000")
    assert status == 0, text
    assert len(csv_rows(out)) == len(real_wire_payloads())
    # The specification's monitoring recipe: grep "LSST Alert Consumer" shows start and end.
    header = [line for line in text.splitlines() if "LSST Alert Consumer" in line]
    assert any("=== LSST Alert Consumer: start" in line for line in header)
    assert any("LSST Alert Consumer finished (exit 0, success)" in line for line in header)
    assert header[-1].endswith("=== LSST Alert Consumer: end, exit status 0")
    assert "removed 0 files" in text


def test_a_second_run_while_one_holds_the_lock_exits_at_once_and_writes_nothing(
        tmp_path: Path) -> None:
    out = tmp_path / "lsst_alerts"
    (out / "state").mkdir(parents=True)
    with open(out / "state" / "cron.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        status, log = run_cron(checkout(tmp_path, None), worktree_venv(tmp_path / "venv"),
                               LSST_ALERTS_OUTPUT_DIR=str(out),
                               LSST_ALERTS_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    assert status == exitcodes.ALREADY_RUNNING, log
    assert f"already running for {out}" in log
    assert "LSST Alert Consumer starting" not in log
    assert not (out / "data").exists()
