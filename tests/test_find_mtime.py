"""The specification's `find ... -mtime +60 -delete` lines delete a night's files behind the
ledger's back: `verify` says the night's files were all deleted (most likely by age), apart from
a partial loss, and `cleanup --days N` then records the night as retired, so `verify` is clean
again (docs/operations.md, Retention)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.decode.times import day_obs
from lsst_alert_pipeline.ops.status import current_day_obs
from lsst_alert_pipeline.pipeline import consume as consumer

from .alerts import csv_rows, many_real_alerts, renumbered

# The specification's retention lines, as the README and docs/operations.md keep them.
SPEC_FIND_LINES = [
    'find ./lsst_alerts/data -name "lsst_alerts_*.csv" -mtime +60 -delete',
    'find ./lsst_alerts/cutouts -name "*.fits" -mtime +60 -delete',
]
ARCHIVE_FIND_LINE = 'find ./lsst_alerts/archive -name "*.parquet" -mtime +60 -delete'
EPOCH = dt.datetime(1858, 11, 17)


def nights_ago(days: int) -> str:
    tonight = dt.datetime.strptime(current_day_obs(), "%Y%m%d")
    return (tonight - dt.timedelta(days=days)).strftime("%Y%m%d")


def mjd_in(night: str) -> float:
    """An MJD at 04:48 UTC after the evening of `night` (dayObs is the date in UTC-12h)."""
    mjd = (dt.datetime.strptime(night, "%Y%m%d") - EPOCH).days + 0.7
    assert day_obs(mjd) == night
    return mjd


def night_files(out: Path, ids: set[str], night: str) -> list[Path]:
    """Every file of a night: its CSV files, its alerts' cutouts, its archive partition."""
    partition = f"dayObs={night[:4]}-{night[4:6]}-{night[6:]}"
    return [*(out / "data").glob(f"lsst_alerts_{night}*.csv"),
            *(path for path in (out / "cutouts").glob("*.fits")
              if path.name.split("_", 1)[0] in ids),
            *(out / "archive" / partition).glob("*.parquet")]


def age(paths: list[Path], days: float) -> None:
    moment = time.time() - days * 86400
    for path in paths:
        os.utime(path, (moment, moment))


@pytest.fixture
def two_old_nights(alert_packets, tmp_path: Path) -> tuple[Path, dict[str, set[str]]]:
    """A collection consumed from files: 4 alerts of a night 90 nights ago whose files are all
    90 days old, 3 of a night 80 nights ago whose files were written today (a replay)."""
    payloads = many_real_alerts(7)
    old, replayed = nights_ago(90), nights_ago(80)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for number, payload in enumerate(payloads):
        night = old if number < 4 else replayed
        (incoming / f"{number}.wire").write_bytes(
            renumbered(payload, 7_000_000_000 + number, mjd_in(night)))
    out = tmp_path / "lsst_alerts"
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(incoming)], "output_dir": str(out)}))
    assert summary.exit_code == exitcodes.OK and summary.alerts_written == 7
    ids: dict[str, set[str]] = {old: set(), replayed: set()}
    for row in csv_rows(out):
        ids[old if row["mjd"] and day_obs(float(row["mjd"])) == old else replayed].add(
            row["diaSourceId"])
    assert (len(ids[old]), len(ids[replayed])) == (4, 3)
    files = night_files(out, ids[old], old)
    assert any(path.suffix == ".fits" for path in files), "the alerts should carry cutouts"
    assert any(path.suffix == ".parquet" for path in files)
    age(files, 90)
    return out, ids


def run_find(lines: list[str], cwd: Path) -> None:
    for line in lines:
        subprocess.run(line, shell=True, check=True, cwd=cwd)


def verify(out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["verify", "--output-dir", str(out)])
    return result.exit_code, result.output


def night_row(output: str, night: str) -> list[str]:
    [row] = [line.split() for line in output.splitlines() if line.startswith(night)]
    return row  # night, in ledger, whole, retired, problems


@pytest.mark.parametrize("archive_too", [False, True], ids=["spec-lines", "and-the-archive"])
def test_verify_tells_a_night_deleted_by_find_mtime_and_cleanup_then_retires_it(
        two_old_nights: tuple[Path, dict[str, set[str]]], archive_too: bool) -> None:
    out, ids = two_old_nights
    old, replayed = sorted(ids)
    run_find(SPEC_FIND_LINES + ([ARCHIVE_FIND_LINE] if archive_too else []), out.parent)
    left = night_files(out, ids[old], old)
    assert all(path.suffix == ".parquet" for path in left) and bool(left) != archive_too
    assert len(night_files(out, ids[replayed], replayed)) > 1  # written today: find keeps them

    status, output = verify(out)
    assert status == 1, output
    assert night_row(output, old)[1:] == ["4", "0", "0", "1"]
    assert night_row(output, replayed)[1:] == ["3", "3", "0", "0"]
    [line] = [line for line in output.splitlines() if "deleted outside" in line]
    gone = "every file" if archive_too else "every CSV file and cutout"
    assert f"{gone} of night {old} is gone (4 alerts: 1 CSV file, their cutouts" in line
    assert "deleted outside `lsst-alerts cleanup` (find -mtime?)" in line
    assert "`lsst-alerts cleanup --days N` (N at most 90) records such nights as retired" in line
    assert "otherwise they are lost: `verify --repair`" in line
    partition = f"archive/dayObs={old[:4]}-{old[4:6]}-{old[6:]}"
    assert (f", its archive partition {partition})" if archive_too
            else f"; its archive partition {partition} still holds them)") in line
    assert f"lsst_alerts_{old}.csv: missing" not in output  # one line, not one per file

    cleaned = CliRunner().invoke(main, ["cleanup", "--days", "60", "--output-dir", str(out)])
    assert cleaned.exit_code == 0, cleaned.output
    assert f"retired nights {old} (1)" in cleaned.output
    assert night_files(out, ids[old], old) == []
    status, output = verify(out)
    assert status == 0, output
    assert night_row(output, old)[1:] == ["4", "0", "4", "0"]
    assert night_row(output, replayed)[1:] == ["3", "3", "0", "0"]
    assert "archive: " in output and ", 0 damaged" in output
    assert "everything is whole" in output


def test_a_night_that_lost_only_its_cutouts_is_a_partial_loss_not_a_deletion_by_age(
        two_old_nights: tuple[Path, dict[str, set[str]]]) -> None:
    out, ids = two_old_nights
    old = min(ids)
    run_find(SPEC_FIND_LINES[1:], out.parent)  # the cutouts' line only
    status, output = verify(out)
    assert status == 1
    assert "deleted outside" not in output
    assert night_row(output, old)[1:3] == ["4", "0"]
    assert "science_cutout_path missing" in output


def test_a_night_whose_csv_is_gone_but_cutouts_remain_is_a_partial_loss(
        two_old_nights: tuple[Path, dict[str, set[str]]]) -> None:
    out, ids = two_old_nights
    old = min(ids)
    run_find(SPEC_FIND_LINES[:1], out.parent)  # the CSV files' line only
    status, output = verify(out)
    assert status == 1
    assert "deleted outside" not in output
    assert f"data/lsst_alerts_{old}.csv: missing (4 alerts in the ledger)" in output
