"""`merge` gathers the members' files into the root's layout without ever destroying a row."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsst_alert_pipeline import config
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.decode.schemas import latest_version
from lsst_alert_pipeline.ops.merge import merge
from lsst_alert_pipeline.ops.status import collect
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline.outputdir import AlreadyRunning, OutputDir
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts

from .alerts import csv_rows
from .reliability.figures import FIGURES


def write_alert_files(folder: Path, count: int, seed: int) -> list[int]:
    """`count` simulated wire alerts of one night as files; their diaSourceIds."""
    folder.mkdir(parents=True)
    ids = []
    for index, alert in enumerate(simulate_alerts(count, seed=seed, history=(0, 2))):
        (folder / f"{index:05d}.wire").write_bytes(encode_wire(alert, latest_version()))
        ids.append(int(alert["diaSource"]["diaSourceId"]))
    return ids


def consume_files(root: Path, folder: Path, member: str | None = None) -> consumer.RunSummary:
    flags: dict[str, object] = {"from_paths": [str(folder)], "output_dir": str(root)}
    if member:
        flags["member"] = member
    return consumer.consume(config.load(environ={}, flags=flags))


def assert_each_alert_once(root: Path, expected: set[int]) -> None:
    seen = Counter(int(row["diaSourceId"]) for row in csv_rows(root))
    assert not expected - set(seen), f"{len(expected - set(seen))} alerts missing after merge"
    assert max(seen.values()) == 1, f"duplicated: {seen.most_common(3)}"
    assert set(seen) == expected
    for row in csv_rows(root):
        assert (root / row["science_cutout_path"]).is_file()


def test_merge_after_root_and_members_wrote_one_night_keeps_every_alert_once(
        tmp_path: Path) -> None:
    ids = write_alert_files(tmp_path / "alerts", 200, seed=31)
    first, a_part, b_part = tmp_path / "first", tmp_path / "a", tmp_path / "b"
    for folder, names in ((first, range(100)), (a_part, range(100, 150)),
                          (b_part, range(150, 200))):
        folder.mkdir()
        for index in names:
            (tmp_path / "alerts" / f"{index:05d}.wire").rename(folder / f"{index:05d}.wire")
    root = tmp_path / "lsst_alerts"
    assert consume_files(root, first).alerts_written == 100
    assert consume_files(root, a_part, "a").alerts_written == 50
    assert consume_files(root, b_part, "b").alerts_written == 50
    assert night_count(root) == 200
    result = CliRunner().invoke(main, ["merge", "--output-dir", str(root)])
    assert result.exit_code == 0, result.output
    assert_each_alert_once(root, set(ids))
    assert night_count(root) == 200
    # A later run at the root (here: everything again) finds each alert on disk, writes nothing.
    for folder in (first, a_part, b_part):
        again = consume_files(root, folder)
        assert again.alerts_written == 0 and again.already_written == len(list(folder.iterdir()))
    assert_each_alert_once(root, set(ids))
    # A second merge changes nothing.
    before = {p.name: p.read_bytes() for p in (root / "data").iterdir()}
    merge(root)
    assert {p.name: p.read_bytes() for p in (root / "data").iterdir()} == before
    assert_each_alert_once(root, set(ids))
    assert night_count(root) == 200
    FIGURES["merges"] += 1


def night_count(root: Path) -> int:
    """What `status` reports for the simulator's night (members' unmerged rows included)."""
    facts = collect(root, now=dt.datetime(2026, 3, 6, 6, tzinfo=dt.UTC))
    return int(facts["alerts_per_day"]["20260305"])


def test_merge_refuses_while_a_consumer_writes_to_the_root(tmp_path: Path) -> None:
    ids = write_alert_files(tmp_path / "alerts", 20, seed=32)
    root = tmp_path / "lsst_alerts"
    assert consume_files(root, tmp_path / "alerts", "a").alerts_written == len(ids)
    with OutputDir(root):  # what a consumer at the root holds while it runs
        with pytest.raises(AlreadyRunning):
            merge(root)
        result = CliRunner().invoke(main, ["merge", "--output-dir", str(root)])
        assert result.exit_code == 6 and "merge when it has finished" in result.output
    assert not (root / "data" / "lsst_alerts_20260305.csv").exists()
    assert merge(root).nights == {"lsst_alerts_20260305.csv": 20}
    assert_each_alert_once(root, set(ids))
