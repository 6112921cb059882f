"""Unattended operation: overlap, signals at start-up, retention, status (the cron wrapper
itself: tests/test_cron_wrapper.py)."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.ops.status import current_day_obs
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline.ledger import Ledger

from .alerts import renumbered
from .conftest import real_files

REPO = Path(__file__).resolve().parents[1]
CONSUMER_ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=120, env=CONSUMER_ENV)


def test_consume_handles_signals_before_it_imports_the_pipeline(alert_packets,
                                                                tmp_path: Path) -> None:
    # What is imported when `consume` installs its SIGTERM handler: the slow imports (the
    # decoders, Kafka, the pipeline) must come after it, or a SIGTERM then kills the process.
    done = run_python("""
        import json, signal, sys
        real = signal.signal
        imported = []
        def spy(signum, handler):
            if signum == signal.SIGTERM and not imported:
                imported.append(sorted(sys.modules))
            return real(signum, handler)
        signal.signal = spy
        from lsst_alert_pipeline.cli import main
        try:
            main(["consume", "--from", sys.argv[1], "--output-dir", sys.argv[2]])
        except SystemExit as end:
            print(json.dumps({"exit": end.code, "imported": imported[0]}))
        """, str(alert_packets / "rubin/boom_wire"), str(tmp_path / "out"))
    facts = json.loads(done.stdout)
    assert facts["exit"] == exitcodes.OK, done.stderr
    slow = [name for name in facts["imported"] if name.split(".")[0] in (
        "polars", "pyarrow", "confluent_kafka", "fastavro", "numpy")
        or name.startswith(("lsst_alert_pipeline.pipeline", "lsst_alert_pipeline.decode",
                            "lsst_alert_pipeline.sources"))]
    # Allowed: the allocator setting must come before polars loads (ctypes only, no I/O).
    slow = [name for name in slow if name not in (
        "lsst_alert_pipeline.pipeline", "lsst_alert_pipeline.pipeline.memory")]
    assert slow == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_consume_starts_up_ends_it_with_exit_4_and_one_line(
        alert_packets, tmp_path: Path, signum: signal.Signals) -> None:
    # The signal arrives while the settings are read, before the pipeline is imported.
    done = run_python("""
        import importlib, os, sys
        command = importlib.import_module("lsst_alert_pipeline.cli.consume")
        real = command.sources_from
        def settings_then_signal(*args, **kwargs):
            os.kill(os.getpid(), int(sys.argv[3]))
            return real(*args, **kwargs)
        command.sources_from = settings_then_signal
        from lsst_alert_pipeline.cli import main
        main(["consume", "--from", sys.argv[1], "--output-dir", sys.argv[2]])
        """, str(alert_packets / "rubin/boom_wire"), str(tmp_path / "out"), str(int(signum)))
    assert done.returncode == exitcodes.INTERRUPTED, done.stderr
    assert "Traceback" not in done.stderr
    assert (f"LSST Alert Consumer finished (exit 4, interrupted): {signum.name} received "
            "before the run started; nothing read, nothing committed") in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def handles(pid: int, signum: signal.Signals) -> bool:
    """Whether the process has a handler of its own for `signum` (SigCgt in /proc)."""
    try:
        status = (Path("/proc") / str(pid) / "status").read_text()
    except OSError:
        return False
    caught = int(next(line.split()[1] for line in status.splitlines()
                      if line.startswith("SigCgt:")), 16)
    return bool(caught >> (int(signum) - 1) & 1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_as_soon_as_consume_can_take_it_exits_4_without_a_traceback(
        alert_packets, tmp_path: Path, signum: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "lsst_alert_pipeline.cli", "consume", "--from",
         str(alert_packets / "rubin/boom_wire"), "--output-dir", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=CONSUMER_ENV)
    try:
        # SIGTERM, not SIGINT: Python catches SIGINT from its own start (KeyboardInterrupt).
        while process.poll() is None and not handles(process.pid, signal.SIGTERM):
            time.sleep(0.001)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == exitcodes.INTERRUPTED, stderr
    assert "Traceback" not in stderr
    assert "LSST Alert Consumer finished (exit 4, interrupted)" in stderr


def test_two_consumers_on_one_output_directory_one_refuses(alert_packets, tmp_path: Path) -> None:
    from lsst_alert_pipeline.pipeline.outputdir import OutputDir

    out = tmp_path / "out"
    with OutputDir(out):
        summary = consumer.consume(config.load(environ={}, flags={
            "from_paths": [str(alert_packets / "rubin/boom_wire")], "output_dir": str(out)}))
    assert summary.exit_code == exitcodes.ALREADY_RUNNING
    assert not list((out / "data").glob("*.csv"))


def age(path: Path, days: float) -> None:
    moment = time.time() - days * 86400
    os.utime(path, (moment, moment), follow_symlinks=False)


def night_before(days: int) -> str:
    """The dayObs `days` nights before tonight's."""
    tonight = dt.datetime.strptime(current_day_obs(), "%Y%m%d")
    return (tonight - dt.timedelta(days=days)).strftime("%Y%m%d")


def test_retention_retires_old_nights_only_inside_the_output_directory(tmp_path: Path) -> None:
    out = tmp_path / "lsst_alerts"
    for folder in ("data", "cutouts", "deadletter", "state"):
        (out / folder).mkdir(parents=True)
    Ledger(out / "state" / "ledger.sqlite").close()  # a collection: only consume makes one
    old, recent = night_before(45), night_before(10)
    old_csv = out / "data" / f"lsst_alerts_{old}.csv"
    recent_csv = out / "data" / f"lsst_alerts_{recent}.csv"
    today_csv = out / "data" / f"lsst_alerts_{current_day_obs()}.csv"
    # Cutouts are named by the observation's UTC time: 03:00 UTC is in the night before's dayObs.
    old_fits = out / "cutouts" / f"1_science_{night_before(44)}_030000.fits"
    recent_fits = out / "cutouts" / f"2_science_{night_before(9)}_030000.fits"
    outside = tmp_path / "precious.fits"
    link = out / "cutouts" / f"3_science_{night_before(44)}_030000.fits"
    for path in (old_csv, recent_csv, today_csv, old_fits, recent_fits, outside):
        path.write_bytes(b"x" * 1000)
    link.symlink_to(outside)
    for path in (old_csv, old_fits, outside, link, recent_csv):
        age(path, 45)  # the recent night's file looks old: its night keeps it
    notes = tmp_path / "notes.csv"
    notes.write_text("not ours")
    age(notes, 400)

    dry = CliRunner().invoke(main, ["cleanup", "--days", "30", "--output-dir", str(out),
                                    "--dry-run"])
    assert dry.exit_code == 0 and "would remove 2 files" in dry.output
    assert f"would retire nights {old}" in dry.output
    assert old_csv.exists() and old_fits.exists()

    result = CliRunner().invoke(main, ["cleanup", "--days", "30", "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert "removed 2 files (0.0 MB)" in result.output and "skipped 1 links" in result.output
    assert not old_csv.exists() and not old_fits.exists()
    for kept in (recent_csv, today_csv, recent_fits, outside, notes):
        assert kept.exists()
    assert link.is_symlink()


def test_status_json_matches_a_known_output_directory(alert_packets, tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    base = real_files("rubin/derived_wire_v9_0/*.wire")[0].read_bytes()
    now_mjd = time.time() / 86400 + 40587.0
    # the middle of the current dayObs (it starts at 12:00 UTC): offsets of minutes from it
    # never cross into another night, whatever the time of day the test runs
    now_mjd = math.floor(now_mjd - 0.5) + 1.0
    for index in range(3):
        (incoming / f"tonight{index}.wire").write_bytes(
            renumbered(base, 4_000_000_000 + index, now_mjd - 0.01 * index))
    yesterday = now_mjd - 1
    (incoming / "yesterday.wire").write_bytes(renumbered(base, 4_100_000_000, yesterday))
    (incoming / "broken.wire").write_bytes(b"\x00\x00\x00\x03\x84broken")
    out = tmp_path / "out"
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(incoming)], "output_dir": str(out)}))
    assert summary.alerts_written == 4 and summary.deadlettered == 1
    result = CliRunner().invoke(main, ["status", "--json", "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    today = current_day_obs()
    day_before = (dt.datetime.strptime(today, "%Y%m%d") - dt.timedelta(days=1)).strftime(
        "%Y%m%d")
    assert facts["day_obs"] == today
    assert facts["alerts_today"] == 3
    assert facts["alerts_per_day"][day_before] == 1
    assert sum(facts["alerts_per_day"].values()) == 4
    assert facts["cutout_files"] == 12
    assert facts["cutout_bytes"] == sum(p.stat().st_size for p in (out / "cutouts").iterdir())
    assert facts["deadlettered"] == 1
    assert facts["last_run"]["outcome"] == "caught up" and facts["last_run"]["exit_code"] == 0
    assert facts["partitions"] is None
    # The specification's own recipe still works: wc -l counts header + rows.
    lines = (out / "data" / f"lsst_alerts_{today}.csv").read_text().count("\n")
    assert lines == 4


def test_retention_covers_members_and_skips_a_running_one(tmp_path: Path) -> None:
    from lsst_alert_pipeline.pipeline.outputdir import OutputDir

    out = tmp_path / "lsst_alerts"
    olds = []
    for member in ("a", "b"):
        for folder in ("data", "cutouts"):
            (out / "members" / member / folder).mkdir(parents=True)
        old_csv = out / "members" / member / "data" / f"lsst_alerts_{night_before(45)}.csv"
        old_fits = (out / "members" / member / "cutouts"
                    / f"1_science_{night_before(44)}_030000.fits")
        for path in (old_csv, old_fits):
            path.write_bytes(b"x" * 1000)
            age(path, 45)  # nothing of the night written for 45 days
        olds.append((old_csv, old_fits))
    with OutputDir(out, "b"):  # member b is running
        result = CliRunner().invoke(main, ["cleanup", "--days", "30", "--output-dir", str(out),
                                           "--verbose"])
    assert result.exit_code == 0, result.output
    assert "removed 2 files" in result.output and "not cleaned: b" in result.output
    assert not any(path.exists() for path in olds[0]) and all(path.exists() for path in olds[1])
    assert f"members/a/data/lsst_alerts_{night_before(45)}.csv" in result.output


def test_cleanup_of_thousands_of_files_logs_one_summary_and_lists_them_only_when_verbose(
        tmp_path: Path) -> None:
    out = tmp_path / "lsst_alerts"
    for folder in ("data", "cutouts", "deadletter", "state"):
        (out / folder).mkdir(parents=True)
    Ledger(out / "state" / "ledger.sqlite").close()  # a collection: only consume makes one
    nights = [night_before(days) for days in range(60, 70)]
    old = []
    for night in nights:
        old.append(out / "data" / f"lsst_alerts_{night}.csv")
        old.extend(out / "cutouts" / f"{number}_{kind}_{night}_150000.fits"
                   for number in range(100) for kind in ("science", "template", "difference"))
    old.append(out / "deadletter" / "t-0-17.bin")
    for path in old:
        path.write_bytes(b"x" * 2000)
        age(path, 60)

    dry = CliRunner().invoke(main, ["cleanup", "--days", "30", "--output-dir", str(out),
                                    "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines() == [
        "would remove 3,011 files (6.0 MB): 10 CSV files (0.0 MB), 3,000 cutouts (6.0 MB), "
        f"1 dead-letter file (0.0 MB); would retire nights {nights[-1]} to {nights[0]} (10); "
        "kept 0 recent files, skipped 0 links"]
    assert all(path.exists() for path in old)

    result = CliRunner().invoke(main, ["cleanup", "--days", "30", "--output-dir", str(out),
                                       "--verbose"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(old) + 1 and lines[-1].startswith("removed 3,011 files (6.0 MB)")
    assert f"removed cutouts/99_difference_{nights[-1]}_150000.fits" in lines
    assert not any(path.exists() for path in old)
