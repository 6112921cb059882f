"""The archive is the collection: `verify` audits it, `--repair` writes back what a damaged file
held, and every reading command goes on over the rest of it (docs/archive.md)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from lsst_alert_pipeline import exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.ops.query import run_query
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline.ledger import Ledger

from .alerts import csv_rows
from .test_archive import SRC, consume_files, decoded, simulated_payloads, write_files
from .test_replay_catchup import settings_for

LEDGER = Path("state") / "ledger.sqlite"


@dataclass
class Damaged:
    """A collection with three archive files damaged: deleted, cut short, one byte flipped."""

    incoming: Path
    out: Path
    payloads: list[bytes]
    held: dict[str, list[int]]  # ledger name of each damaged file -> the ids it held
    how: dict[str, str]  # ledger name -> how it was damaged


def listed(out: Path) -> list[str]:
    db = sqlite3.connect(out / LEDGER)
    try:
        return [row[0] for row in db.execute("SELECT name FROM archive_files ORDER BY name")]
    finally:
        db.close()


def ids_in(path: Path) -> list[int]:
    """The diaSourceIds a Parquet file holds, read by pyarrow (independent of the pipeline)."""
    return [int(i) for i in pq.read_table(path, columns=["diaSourceId"]).column(0).to_pylist()]


def damage(out: Path) -> tuple[dict[str, list[int]], dict[str, str]]:
    """Delete the first listed archive file, cut the second in half, flip one byte in the middle
    of the third; what each held, read before the damage."""
    names = listed(out)[:3]
    held = {name: ids_in(out / name) for name in names}
    deleted, cut, flipped = (out / name for name in names)
    deleted.unlink()
    data = cut.read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    flipped.write_bytes(flip_a_byte_duckdb_meets(flipped.read_bytes(), out / "probe.parquet"))
    return held, dict(zip(names, ("deleted", "cut", "flipped"), strict=True))


def flip_a_byte_duckdb_meets(data: bytes, probe: Path) -> bytes:
    """The file with one bit flipped from its middle on, at the first byte whose flip makes
    DuckDB's read of the columns the query test reads fail: LZ4 copies literal bytes as they
    are, so a flip there is silent (only the checksum finds it, which verify tests); one in a
    block's token fails the read. (Where that byte lies depends on the file's other columns,
    the alert files' paths among them: it is searched, not fixed.)"""
    import duckdb

    for at in range(len(data) // 2, len(data) - 8):
        candidate = bytearray(data)
        candidate[at] ^= 0x01
        probe.write_bytes(bytes(candidate))
        try:
            duckdb.sql(f"SELECT diaSourceId, packet FROM read_parquet('{probe}')").fetchall()
        except duckdb.Error:
            probe.unlink()
            return bytes(candidate)
    raise AssertionError("no single bit flip past the middle makes DuckDB's read fail")


@pytest.fixture
def collection(tmp_path: Path) -> Damaged:
    payloads = simulated_payloads(24, seed=31)
    write_files(tmp_path / "in", payloads)
    out = tmp_path / "out"
    consume_files(tmp_path / "in", out, batch_size=4)
    assert len(listed(out)) == 6
    return Damaged(tmp_path / "in", out, payloads, {}, {})


def damaged(collection: Damaged) -> Damaged:
    collection.held, collection.how = damage(collection.out)
    return collection


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def verify_json(out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = run("verify", "--output-dir", str(out), "--json", *extra)
    assert "Traceback" not in result.output, result.output
    return result.exit_code, json.loads(result.stdout)


def every_id(payloads: list[bytes]) -> list[int]:
    return sorted(decoded(p)["diaSource"]["diaSourceId"] for p in payloads)


def archived_ids(out: Path) -> list[int]:
    """Every diaSourceId the listed archive holds, one entry per row, read by pyarrow."""
    return sorted(i for name in listed(out) for i in ids_in(out / name))


def test_verify_of_a_whole_archive_checks_every_file_and_exits_0(collection: Damaged) -> None:
    status, facts = verify_json(collection.out)
    assert status == 0, facts
    assert (facts["archive"]["files"], facts["archive"]["alerts"]) == (6, 24)
    assert facts["archive"]["damaged"] == [] and facts["archive"]["unchecked"] == []
    assert archived_ids(collection.out) == every_id(collection.payloads)


def test_verify_names_each_damaged_archive_file_and_the_alerts_it_held_and_exits_1(
        collection: Damaged) -> None:
    damaged(collection)
    status, facts = verify_json(collection.out)
    assert status == 1
    found = {file["file"]: file for file in facts["archive"]["damaged"]}
    assert set(found) == set(collection.held)
    for name, ids in collection.held.items():
        assert sorted(found[name]["dia_source_ids"]) == sorted(ids)
    by_how = {collection.how[name]: found[name]["problem"] for name in found}
    assert by_how["deleted"] == "missing"
    assert "not a whole Parquet file" in by_how["cut"]
    assert "sha256 differs" in by_how["flipped"]
    table = run("verify", "--output-dir", str(collection.out))
    assert table.exit_code == 1
    for name, ids in collection.held.items():
        assert f"damaged: {name}:" in table.stdout and str(ids[0]) in table.stdout
    assert "verify --repair" in table.stdout


def test_a_ledger_from_before_checksums_says_files_are_unchecked_and_does_not_fail(
        collection: Damaged) -> None:
    db = sqlite3.connect(collection.out / LEDGER)
    with db:
        db.execute("UPDATE archive_files SET sha256 = NULL, dia_source_ids = NULL")
    db.close()
    status, facts = verify_json(collection.out)
    assert status == 0, facts
    assert sorted(facts["archive"]["unchecked"]) == listed(collection.out)
    said = run("verify", "--output-dir", str(collection.out)).stdout
    assert "6 archive files unchecked" in said


def test_query_and_lightcurve_go_on_over_the_rest_naming_each_damaged_file(
        collection: Damaged, caplog: pytest.LogCaptureFixture) -> None:
    damaged(collection)
    readable = sorted(i for name in listed(collection.out) if name not in collection.held
                      for i in ids_in(collection.out / name))
    caplog.set_level(logging.WARNING)
    # Every column: DuckDB reads every page, so the flipped byte is met wherever it lies.
    rows = run_query(collection.out, "SELECT diaSourceId, packet FROM alerts").rows
    assert sorted(row[0] for row in rows) == readable
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name in collection.held:
        named = [w for w in warnings if name in w]
        assert len(named) == 1, warnings
        assert f"it held {len(collection.held[name])} alerts" in named[0]
        assert "lsst-alerts verify" in named[0]
    caplog.clear()
    healthy = next(name for name in listed(collection.out) if name not in collection.held)
    row = run_query(collection.out, "SELECT diaObjectId FROM alerts WHERE diaSourceId = ?",
                    [ids_in(collection.out / healthy)[0]]).rows[0]
    curve = run("lightcurve", str(row[0]), "--output-dir", str(collection.out))
    assert curve.exit_code == 0 and "Traceback" not in curve.output, curve.output
    lost = next(name for name, how in collection.how.items() if how == "deleted")
    assert any(lost in r.getMessage() for r in caplog.records)


def test_a_reading_command_prints_one_warning_per_damaged_file_and_no_traceback(
        collection: Damaged) -> None:
    damaged(collection)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    command = [sys.executable, "-c", "from lsst_alert_pipeline.cli import main; main()",
               "query", "--output-dir", str(collection.out), "--format", "csv",
               "SELECT count(*) AS n FROM alerts"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    # count(*) reads only footers: the file with a flipped byte still counts (verify finds it)
    unread = sum(len(collection.held[name]) for name, how in collection.how.items()
                 if how != "flipped")
    assert result.stdout == f"n\n{len(collection.payloads) - unread}\n"
    for name, how in collection.how.items():
        if how != "flipped":
            assert result.stderr.count(name) == 1, result.stderr


def test_report_and_status_go_on_beside_a_damaged_archive(collection: Damaged,
                                                          tmp_path: Path) -> None:
    from lsst_alert_pipeline.look.report import write_report

    damaged(collection)
    index = write_report(collection.out, out=tmp_path / "report")
    assert "<html" in index.read_text().lower()
    status = run("status", "--output-dir", str(collection.out), "--no-broker")
    assert status.exit_code == 0 and "Traceback" not in status.output, status.output
    assert "archive: 6 files, 24 alerts" in status.stdout
    for name, how in collection.how.items():  # status reads no page: a flipped byte is verify's
        assert (name in status.stdout) == (how != "flipped"), status.stdout


def test_compact_refuses_a_night_with_a_damaged_part_and_drops_no_row(
        collection: Damaged) -> None:
    damaged(collection)
    before = listed(collection.out)
    result = run("compact", "--output-dir", str(collection.out))
    assert result.exit_code == exitcodes.ARCHIVE_DAMAGED, result.output
    assert "Traceback" not in result.output
    for name in collection.held:
        assert name in result.stderr
    assert "verify --repair" in result.stderr
    assert listed(collection.out) == before


def test_compact_refuses_a_damaged_part_without_a_checksum_instead_of_a_traceback(
        collection: Damaged) -> None:
    """A ledger from before checksums: the damage is met only when DuckDB reads the pages."""
    names = listed(collection.out)
    db = sqlite3.connect(collection.out / LEDGER)
    with db:
        db.execute("UPDATE archive_files SET sha256 = NULL")
    db.close()
    data = bytearray((collection.out / names[0]).read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = bytes(4096)  # a block of the disk read back as zeros
    (collection.out / names[0]).write_bytes(bytes(data))
    result = run("compact", "--output-dir", str(collection.out))
    assert result.exit_code == exitcodes.ARCHIVE_DAMAGED, result.output
    assert "Traceback" not in result.output and "DuckDB could not read" in result.stderr
    assert listed(collection.out) == names


def test_repair_from_the_alert_files_restores_every_alert_once_in_csv_cutouts_and_archive(
        collection: Damaged) -> None:
    out = collection.out
    rows = csv_rows(out)
    cutout = out / rows[5]["science_cutout_path"]
    original_cutout = cutout.read_bytes()
    cutout.unlink()
    csv_file = next((out / "data").glob("*.csv"))
    csv_file.write_bytes(csv_file.read_bytes()[:-200])  # the last rows cut short
    damaged(collection)
    assert verify_json(out)[0] == 1
    result = run("verify", "--output-dir", str(out), "--repair", "--from",
                 str(collection.incoming))
    assert result.exit_code == 0, result.output
    assert "12 alerts to the archive" in result.stdout
    assert cutout.read_bytes() == original_cutout
    assert archived_ids(out) == every_id(collection.payloads)
    assert sorted(int(r["diaSourceId"]) for r in csv_rows(out)) == every_id(collection.payloads)
    for row in csv_rows(out):
        for column in ("science_cutout_path", "template_cutout_path", "difference_cutout_path"):
            assert not row[column] or (out / row[column]).is_file()
    status, facts = verify_json(out)
    assert status == 0, facts
    # the three healthy files, and one file of the night with the twelve alerts written again
    assert (facts["archive"]["files"], facts["archive"]["alerts"]) == (4, 24)
    assert sum(name.split("/")[-1].startswith("repair+") for name in listed(out)) == 1
    for name in collection.held:  # set aside, not deleted: whoever wants can salvage it
        assert name not in listed(out)
    assert len(list((out / "state" / "damaged").rglob("*.parquet"))) == 2  # one was deleted
    compacted = run("compact", "--output-dir", str(out))
    assert compacted.exit_code == 0, compacted.output
    assert run_query(out, "SELECT count(DISTINCT diaSourceId), count(*) FROM alerts").rows == [
        (24, 24)]


def test_repair_from_files_that_lack_some_alerts_lists_them_gone_with_what_survives(
        collection: Damaged, tmp_path: Path) -> None:
    damaged(collection)
    deleted = next(name for name, how in collection.how.items() if how == "deleted")
    lost = set(collection.held[deleted])
    partial = tmp_path / "partial"
    write_files(partial, [p for p in collection.payloads
                          if decoded(p)["diaSource"]["diaSourceId"] not in lost])
    result = run("verify", "--output-dir", str(collection.out), "--repair", "--from",
                 str(partial), "--json")
    assert result.exit_code == 1, result.output
    repair = json.loads(result.stdout)["repair"]
    assert sorted(int(i) for i in repair["archive_gone_for_good"]) == sorted(lost)
    for dia_source_id in repair["archive_gone_for_good"]:
        left = repair["what_survives"][dia_source_id]
        assert any(item.startswith("CSV row in data/") for item in left), left
        assert any(item.startswith("cutout cutouts/") for item in left), left
    assert verify_json(collection.out)[0] == 0  # the ledger no longer claims what is gone
    assert sorted(archived_ids(collection.out)) == sorted(
        set(every_id(collection.payloads)) - lost)


def test_repair_without_a_source_says_what_it_needs_and_changes_no_archive_file(
        collection: Damaged) -> None:
    damaged(collection)
    before = listed(collection.out)
    result = run("verify", "--output-dir", str(collection.out), "--repair")
    assert result.exit_code == 1
    assert "needs the Kafka settings" in result.stdout and "--from DIR" in result.stdout
    assert listed(collection.out) == before


def test_repair_from_a_folder_that_does_not_exist_is_refused_before_anything_changes(
        collection: Damaged, tmp_path: Path) -> None:
    damaged(collection)
    csv_file = next((collection.out / "data").glob("*.csv"))
    csv_file.unlink()
    before = listed(collection.out)
    result = run("verify", "--output-dir", str(collection.out), "--repair", "--from",
                 str(tmp_path / "nowhere"))
    assert result.exit_code == exitcodes.CONFIG_ERROR and "Traceback" not in result.output
    assert "no such file or folder" in result.output
    assert listed(collection.out) == before
    assert Ledger(collection.out / LEDGER).alert_count() == len(collection.payloads)


def test_checksums_are_recorded_in_the_batch_transaction_for_every_file(
        collection: Damaged) -> None:
    ledger = Ledger(collection.out / LEDGER)
    try:
        listing = ledger.archive_listing()
    finally:
        ledger.close()
    import hashlib

    for file in listing:
        path = collection.out / file.name
        assert file.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert file.dia_source_ids is not None and len(file.dia_source_ids) == 8 * file.alerts


@pytest.mark.kafka
def test_repair_from_the_broker_writes_the_damaged_files_alerts_again_once(
        broker, topic, tmp_path: Path) -> None:
    payloads = simulated_payloads(24, seed=33)
    broker.produce(topic, payloads)
    out = tmp_path / "out"
    summary = consumer.consume(settings_for(broker, topic, out, "audit", batch_size=4))
    assert summary.alerts_written == 24
    held, _ = damage(out)
    kafka = ["--bootstrap-servers", broker.bootstrap, "--topic", topic, "--group-id", "audit"]
    assert run("verify", "--output-dir", str(out), *kafka).exit_code == 1
    result = run("verify", "--output-dir", str(out), *kafka, "--repair")
    assert result.exit_code == 0, result.output
    assert f"{sum(len(ids) for ids in held.values())} alerts to the archive" in result.stdout
    assert archived_ids(out) == every_id(payloads)
    rows = run_query(out, "SELECT topic, \"offset\" FROM alerts ORDER BY \"offset\"").rows
    assert [offset for _, offset in rows] == list(range(24)) and {t for t, _ in rows} == {topic}
    status = run("verify", "--output-dir", str(out), *kafka)
    assert status.exit_code == 0, status.output


@pytest.mark.kafka
def test_repair_from_a_broker_that_lost_them_lists_the_alerts_gone_with_what_survives(
        broker, topic, tmp_path: Path) -> None:
    from lsst_alert_pipeline.testing.broker import TansuBroker

    broker.produce(topic, simulated_payloads(8, seed=34))
    out = tmp_path / "out"
    consumer.consume(settings_for(broker, topic, out, "audit-gone", batch_size=4))
    lost = ids_in(out / listed(out)[0])
    (out / listed(out)[0]).unlink()
    with TansuBroker() as elsewhere:  # a broker without the topic: nothing can be read again
        result = run("verify", "--output-dir", str(out), "--bootstrap-servers",
                     elsewhere.bootstrap, "--topic", topic, "--group-id", "audit-gone",
                     "--repair", "--json")
    assert result.exit_code == 1, result.output
    repair = json.loads(result.stdout)["repair"]
    assert sorted(int(i) for i in repair["archive_gone_for_good"]) == sorted(lost)
    for dia_source_id in repair["archive_gone_for_good"]:
        left = repair["what_survives"][dia_source_id]
        assert any(item.startswith("CSV row in data/") for item in left), left
        assert sum(item.startswith("cutout cutouts/") for item in left) == 3, left
