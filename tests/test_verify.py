"""`verify` finds what the ledger vouches for but the disk lost; `--repair` lets a replay refill
it (deleted files are not refilled by a replay alone: the ledger decides)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.ops.verify_broker import check_partition

from .alerts import csv_rows
from .reliability.figures import FIGURES
from .test_merge import consume_files, write_alert_files


def test_verify_finds_a_deleted_file_and_repair_lets_a_replay_refill_it(tmp_path: Path) -> None:
    ids = write_alert_files(tmp_path / "alerts", 30, seed=41)
    root = tmp_path / "lsst_alerts"
    assert consume_files(root, tmp_path / "alerts").alerts_written == 30
    clean = CliRunner().invoke(main, ["verify", "--output-dir", str(root)])
    assert clean.exit_code == 0, clean.output
    assert clean.output.splitlines()[1].split() == ["20260305", "30", "30", "0", "0"]
    row = csv_rows(root)[3]
    (root / row["science_cutout_path"]).write_bytes(b"not a FITS file")
    (root / row["template_cutout_path"]).unlink()
    (root / "data" / "lsst_alerts_20260305.csv").unlink()
    # A replay alone writes nothing: the ledger says every alert is on disk.
    assert consume_files(root, tmp_path / "alerts").alerts_written == 0
    broken = CliRunner().invoke(main, ["verify", "--output-dir", str(root), "--json"])
    assert broken.exit_code == 1
    facts = json.loads(broken.output)
    assert facts["ok"] is False and facts["nights"][0]["whole"] == 0
    assert "data/lsst_alerts_20260305.csv: missing (30 alerts in the ledger)" in \
        facts["nights"][0]["problems"]
    FIGURES["verify_problems"] += len(facts["nights"][0]["problems"])
    repaired = CliRunner().invoke(main, ["verify", "--output-dir", str(root), "--repair"])
    assert repaired.exit_code == 1 and "forgot 30 broken alerts" in repaired.output
    assert consume_files(root, tmp_path / "alerts").alerts_written == 30
    assert sorted(int(r["diaSourceId"]) for r in csv_rows(root)) == sorted(ids)
    again = CliRunner().invoke(main, ["verify", "--output-dir", str(root)])
    assert again.exit_code == 0, again.output


def test_verify_finds_a_broken_cutout(tmp_path: Path) -> None:
    write_alert_files(tmp_path / "alerts", 5, seed=42)
    root = tmp_path / "lsst_alerts"
    consume_files(root, tmp_path / "alerts")
    row = csv_rows(root)[0]
    (root / row["difference_cutout_path"]).write_bytes(b"SIMPLE  =   broken")
    result = CliRunner().invoke(main, ["verify", "--output-dir", str(root)])
    assert result.exit_code == 1
    assert f"{row['diaSourceId']}: difference_cutout_path not valid FITS" in result.output


def test_partition_check_explains_every_committed_offset_not_on_disk() -> None:
    # Committed 40; the ledger covers 5-14 and 20-34 (and 40-44, read but not committed yet);
    # retention deleted 15-17 unread. 0-4 came before the first recorded range (where the group
    # started); 18-19 and 35-39 were committed without being written.
    check = check_partition("t", 0, low=12, high=50, committed=40,
                            covered=[(20, 35), (5, 15), (40, 45)], losses=[(15, 18)])
    assert check.before_first == [(0, 5)] and check.lost_to_retention == [(15, 18)]
    assert check.not_on_disk == [(18, 20), (35, 40)] and check.ahead == [(40, 45)]
    assert check.lag == 10
    row = check.as_dict()
    assert (row["covered"], row["not_on_disk"], row["not_on_disk_count"]) == (
        "5-14, 20-34, 40-44", "18-19, 35-39", 7)
    # A group that never committed: what the ledger covers is all ahead, nothing is missing.
    fresh = check_partition("t", 1, low=0, high=9, committed=None, covered=[(0, 9)], losses=[])
    assert fresh.not_on_disk == [] and fresh.ahead == [(0, 9)] and fresh.lag == 9
