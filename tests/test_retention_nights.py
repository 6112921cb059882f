"""Retention retires whole nights: every file of a night goes together, the ledger says so, and
`verify` and `status` show the night as retired, never broken and never whole."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from click.testing import CliRunner

from lsst_alert_pipeline import exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.ops.retention import cleanup
from lsst_alert_pipeline.pipeline.ledger import Ledger

from .test_archive import consume_files, simulated_payloads, write_files


def collection(tmp_path: Path, count: int = 20) -> Path:
    """A collection of one simulated night (the simulator's dayObs 20260305), archive on."""
    write_files(tmp_path / "in", simulated_payloads(count, seed=61))
    out = tmp_path / "out"
    summary = consume_files(tmp_path / "in", out)
    assert summary.alerts_written == count
    return out


def night_files(out: Path) -> list[Path]:
    return [p for folder in ("data", "cutouts", "archive")
            for p in (out / folder).rglob("*") if p.is_file()]


def age(paths: list[Path], days: float) -> None:
    moment = time.time() - days * 86400
    for path in paths:
        os.utime(path, (moment, moment))


def test_a_night_goes_whole_or_not_at_all(tmp_path: Path) -> None:
    out = collection(tmp_path)
    files = night_files(out)
    assert {p.relative_to(out).parts[0] for p in files} == {"data", "cutouts", "archive"}
    # The CSV was appended to last: fresh; the cutouts and the archive look old. By file age,
    # the cutouts went and the CSV stayed, and `verify --repair` fetched them back.
    age([path for path in files if path.suffix != ".csv"], 45)
    kept = cleanup(out, 30, tonight="20260420")  # 46 nights after the simulated one
    assert kept.removed == [] and sorted(night_files(out)) == sorted(files)

    age(files, 45)  # nothing of the night written for 45 days: it goes, all of it
    report = cleanup(out, 30, tonight="20260420")
    assert report.nights == {"20260305"}
    assert not night_files(out), "a file of the retired night was left"
    ledger = Ledger(out / "state" / "ledger.sqlite")
    assert ledger.retired_nights() == {"20260305": 20}
    assert ledger.alert_count() == 20  # still known: a replay does not revive them
    assert ledger.archive_files() == {} and ledger.csv_lengths() == {}
    ledger.close()

    verified = CliRunner().invoke(main, ["verify", "--output-dir", str(out), "--json"])
    assert verified.exit_code == exitcodes.OK, verified.output
    night = json.loads(verified.output)["nights"][0]
    assert (night["retired"], night["whole"], night["problems"]) == (20, 0, [])
    status = CliRunner().invoke(main, ["status", "--output-dir", str(out)])
    assert "retired by retention: 1 nights (20260305 to 20260305), 20 alerts" in status.output

    replay = consume_files(tmp_path / "in", out)
    assert (replay.alerts_written, replay.already_written) == (0, 20)
    assert not night_files(out)  # nothing of the retired night came back


def test_a_recent_night_is_kept_however_old_its_files_look(tmp_path: Path) -> None:
    out = collection(tmp_path)
    files = night_files(out)
    age(files, 200)
    report = cleanup(out, 30, tonight="20260310")  # five nights after the simulated one
    assert report.removed == [] and report.nights == set()
    assert sorted(night_files(out)) == sorted(files)


def test_an_old_night_replayed_today_stays_for_the_retention_period(tmp_path: Path) -> None:
    out = collection(tmp_path)  # the simulated night is 2026-03-05, written just now
    report = cleanup(out, 30, tonight="20261206")
    assert report.removed == [] and len(night_files(out)) > 0
