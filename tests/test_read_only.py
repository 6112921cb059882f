"""A collection on a read-only disk can be inspected (issue 29, point 8).

`verify` (without --repair), `status`, `query` and `lightcurve` open the ledger read-only and
take no write lock. The collection is bind-mounted read-only (the tests run as root, which
ignores file permissions, so chmod would prove nothing); where mounting is not allowed the same
commands run on the collection itself and the tests check that no file of it changed.
"""

from __future__ import annotations

import contextlib
import csv
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsst_alert_pipeline import exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.pipeline.ledger import Ledger
from lsst_alert_pipeline.pipeline.outputdir import OutputDir
from lsst_alert_pipeline.sinks.ledger_read import connect_read_only

from .conftest import simulated_collection

ALERTS = 30
# What SQLite's mode=ro may add beside a WAL ledger on a writable disk (never the ledger itself).
SIDECARS = ("state/ledger.sqlite-shm", "state/ledger.sqlite-wal")


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    return simulated_collection(tmp_path, ALERTS, seed=29, history=(1, 3))


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


@contextlib.contextmanager
def read_only_view(folder: Path, mount_point: Path) -> Iterator[tuple[Path, bool]]:
    """The folder as a read-only bind mount (path, True), or the folder itself (path, False)
    where this machine does not allow mounting."""
    mount_point.mkdir()
    if run(["mount", "--bind", str(folder), str(mount_point)]).returncode != 0:
        yield folder, False
        return
    try:
        remounted = run(["mount", "-o", "remount,ro,bind", str(mount_point)]).returncode == 0
        yield (mount_point, True) if remounted else (folder, False)
    finally:
        if run(["umount", str(mount_point)]).returncode != 0:
            run(["umount", "--lazy", str(mount_point)])  # never leave a mount behind


def snapshot(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under the folder: size, mtime and bytes."""
    return {path.relative_to(folder).as_posix(): (path.stat().st_size, path.stat().st_mtime_ns,
                                                  path.read_bytes())
            for path in sorted(folder.rglob("*")) if path.is_file()}


def assert_unchanged(before: dict[str, tuple[int, int, bytes]], folder: Path) -> None:
    after = {name: facts for name, facts in snapshot(folder).items()
             if name not in SIDECARS or name in before}
    assert after == before


@pytest.fixture
def view(collection: Path, tmp_path: Path) -> Iterator[tuple[Path, bool, dict]]:
    before = snapshot(collection)
    with read_only_view(collection, tmp_path / "read-only") as (path, mounted):
        if mounted:  # the mount really refuses writes, so the commands below are tested
            with pytest.raises(OSError):
                (path / "state" / "probe").touch()
        yield path, mounted, before
    assert_unchanged(before, collection)


def an_object(out: Path) -> str:
    rows = [row for path in sorted((out / "data").glob("*.csv"))
            for row in csv.DictReader(path.open())]
    return next(row["diaObjectId"] for row in rows if row["diaObjectId"] != "0")


def test_verify_on_a_read_only_collection_checks_every_alert(view):
    path, _, _ = view
    result = CliRunner().invoke(main, ["verify", "--output-dir", str(path)])
    assert result.exit_code == 0, result.output
    assert "everything is whole" in result.stdout
    nights = [line.split() for line in result.stdout.splitlines()[1:] if line[:1].isdigit()]
    assert sum(int(night[1]) for night in nights) == ALERTS


def test_status_on_a_read_only_collection_reads_the_ledger(view):
    path, _, _ = view
    result = CliRunner().invoke(main, ["status", "--no-broker", "--json", "--output-dir",
                                       str(path)])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert facts["alerts_in_ledger"] == ALERTS
    assert facts["last_run"]["exit_code"] == exitcodes.OK


def test_query_and_lightcurve_on_a_read_only_collection_find_the_archive(view):
    path, _, _ = view
    result = CliRunner().invoke(main, ["query", "--output-dir", str(path), "--format", "csv",
                                       "SELECT count(*) FROM alerts"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == str(ALERTS)
    result = CliRunner().invoke(main, ["lightcurve", an_object(path), "--output-dir", str(path)])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) > 1


def test_the_read_only_ledger_refuses_writes_and_takes_no_lock(view):
    path, _, before = view
    output = OutputDir(path).open_read_only()
    try:
        assert output.ledger is not None
        assert output.ledger.alert_count() == ALERTS
        with pytest.raises(Exception, match="readonly|read-only|read only"):
            output.ledger.register_csv("data/new.csv", 0)
    finally:
        output.close()
    assert_unchanged(before, path)


def test_a_read_only_open_sees_the_commits_of_a_writer_still_holding_the_wal(collection,
                                                                          tmp_path):
    with read_only_view(collection, tmp_path / "read-only") as (path, _):
        # SQLite keeps the reader's descriptor open until the writer (same inode) closes, so
        # the writer closes inside the mount's lifetime.
        writer = Ledger(collection / "state" / "ledger.sqlite")  # -wal, -shm stay while open
        try:
            writer.register_csv("data/lsst_alerts_20991231.csv", 123)
            reader = connect_read_only(path / "state" / "ledger.sqlite")
            try:
                lengths = dict(reader.execute("SELECT name, length FROM csv_files"))
            finally:
                reader.close()
        finally:
            writer.close()
    assert lengths["data/lsst_alerts_20991231.csv"] == 123


def test_verify_without_repair_still_refuses_while_a_consumer_writes(collection):
    consumer_lock = OutputDir(collection).open()  # what a running consumer holds
    try:
        result = CliRunner().invoke(main, ["verify", "--output-dir", str(collection)])
        assert result.exit_code == exitcodes.ALREADY_RUNNING, result.output
    finally:
        consumer_lock.close()


def test_status_does_not_need_the_lock_a_consumer_holds(collection):
    consumer_lock = OutputDir(collection).open()
    try:
        result = CliRunner().invoke(main, ["status", "--no-broker", "--output-dir",
                                           str(collection)])
        assert result.exit_code == 0, result.output
        assert f"output: {collection.resolve()}" in result.stdout
    finally:
        consumer_lock.close()

