"""The Parquet archive: every alert whole, read back by pyarrow and DuckDB, exactly once."""

from __future__ import annotations

import errno
import io
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import fastavro
import pyarrow.dataset as ds
import pytest
from click.testing import CliRunner

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.decode.schemas import parsed_bundled_schema, version_for
from lsst_alert_pipeline.ops.compact import compact
from lsst_alert_pipeline.ops.query import QueryError, run_query
from lsst_alert_pipeline.ops.retention import cleanup
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline.outputdir import OutputDir
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts
from lsst_alert_pipeline.sinks import archive as archive_sink
from lsst_alert_pipeline.sinks.archive import ArchiveSink
from lsst_alert_pipeline.sinks.archive_read import archive_files

from .alerts import csv_rows, real_wire_payloads

SRC = Path(__file__).resolve().parents[1] / "src"


def decoded(payload: bytes) -> dict[str, Any]:
    """The packet as fastavro reads it: the independent reading the archive is checked against."""
    schema = parsed_bundled_schema(version_for(int.from_bytes(payload[1:5], "big")))
    record = fastavro.schemaless_reader(io.BytesIO(payload[5:]), schema, None)
    assert isinstance(record, dict)
    return record


def simulated_payloads(count: int, seed: int, version: str = "11.1") -> list[bytes]:
    return [encode_wire(alert, version) for alert in
            simulate_alerts(count, schema_version=version, seed=seed, history=(0, 6))]


def write_files(folder: Path, payloads: list[bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number, payload in enumerate(payloads):
        (folder / f"{number:05d}.wire").write_bytes(payload)


def consume_files(incoming: Path, out: Path, **flags: Any) -> consumer.RunSummary:
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(incoming)], "output_dir": str(out), **flags}))
    assert summary.exit_code == exitcodes.OK, summary.line()
    return summary


def same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    return bool(left == right)


def archived_rows(out: Path) -> dict[int, dict[str, Any]]:
    """Every archived row by diaSourceId, read by DuckDB straight from the folder."""
    db = duckdb.connect()
    relation = db.execute(f"SELECT * FROM read_parquet('{out}/archive/*/*.parquet', "
                          "hive_partitioning = true, union_by_name = true)")
    names = [item[0] for item in relation.description or []]
    rows = [dict(zip(names, row, strict=True)) for row in relation.fetchall()]
    by_id = {row["diaSourceId"]: row for row in rows}
    assert len(by_id) == len(rows), "an alert is archived twice"
    return by_id


def test_real_and_simulated_alerts_are_archived_whole_and_read_back(tmp_path: Path) -> None:
    payloads = real_wire_payloads() + simulated_payloads(40, seed=3)
    write_files(tmp_path / "in", payloads)
    consume_files(tmp_path / "in", tmp_path / "out", batch_size=9)
    rows = archived_rows(tmp_path / "out")
    csv = {int(row["diaSourceId"]): row for row in csv_rows(tmp_path / "out")}
    assert set(rows) == set(csv) and len(rows) == len(payloads)
    for payload in payloads:
        packet = decoded(payload)
        source = packet["diaSource"]
        row = rows[source["diaSourceId"]]
        assert row["packet"] == payload
        for name, value in source.items():
            if name not in ("ra", "dec", "diaObjectId"):  # spec columns: NaN as null
                assert same(row[name], value), f"diaSource.{name}"
        if packet.get("diaObject"):
            for name, value in packet["diaObject"].items():
                assert same(row[f"diaObject_{name}"], value), f"diaObject.{name}"
        history = packet.get("prvDiaSources") or []
        assert [s["diaSourceId"] for s in row["prvDiaSources"] or []] == [
            s["diaSourceId"] for s in history]
        assert len(row["prvDiaForcedSources"] or []) == len(packet.get("prvDiaForcedSources")
                                                           or [])
        spec = csv[source["diaSourceId"]]
        for name in ("mjd", "psFlux", "extendednessMedian", "extendednessMax"):
            assert (repr(row[name]) if row[name] is not None else "") == spec[name], name
        assert row["dayObs"].strftime("%Y%m%d") == spec["dayObs"] if "dayObs" in spec else True
    dataset = ds.dataset(tmp_path / "out" / "archive", format="parquet", partitioning="hive")
    assert dataset.count_rows() == len(payloads)
    table = dataset.to_table(columns=["diaSourceId", "dayObs"])
    assert set(table.column("diaSourceId").to_pylist()) == set(rows)


def test_alerts_from_kafka_are_archived_in_files_named_by_partition_and_offsets(
        broker, topic, tmp_path: Path) -> None:
    payloads = simulated_payloads(30, seed=4)
    broker.produce(topic, payloads)
    summary = consumer.consume(config.load(environ={}, flags={
        "topics": [topic], "output_dir": str(tmp_path / "out"), "batch_size": 10,
        "idle_timeout": 20, "kafka": {"bootstrap.servers": broker.bootstrap,
                                      "group.id": f"g-{topic}"}}))
    assert summary.exit_code == exitcodes.OK
    names = sorted(p.name for p in (tmp_path / "out" / "archive").glob("*/*.parquet"))
    assert names == [f"{topic}+0+{first:020d}-{first + 9:020d}.parquet" for first in (0, 10, 20)]
    result = run_query(tmp_path / "out", "SELECT topic, partition, \"offset\", packet FROM alerts "
                       "ORDER BY \"offset\"")
    assert [row[:3] for row in result.rows] == [(topic, 0, n) for n in range(30)]
    assert [row[3] for row in result.rows] == payloads


def test_no_archive_writes_no_archive(tmp_path: Path) -> None:
    write_files(tmp_path / "in", simulated_payloads(5, seed=5))
    assert config.load(environ={"LSST_ALERTS_ARCHIVE": "false"}, require_source=False,
                       flags={}).archive is False
    consume_files(tmp_path / "in", tmp_path / "out", archive=False)
    assert len(csv_rows(tmp_path / "out")) == 5
    assert not list((tmp_path / "out").glob("archive/*/*.parquet"))


def test_a_batch_partly_written_before_is_archived_once_and_leaves_no_temp_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The decode thread encodes each batch's file ahead, assuming all its alerts are new; when
    some are on disk already the write encodes the rest afresh and the prepared file goes with
    that batch (not at the end of the run, whose sweep is switched off here to show it)."""
    monkeypatch.setattr(ArchiveSink, "discard_all", lambda self: None)
    payloads = simulated_payloads(24, seed=8)
    write_files(tmp_path / "first", payloads[:10])
    write_files(tmp_path / "all", payloads)
    out = tmp_path / "out"
    consume_files(tmp_path / "first", out)
    summary = consume_files(tmp_path / "all", out)
    assert (summary.alerts_written, summary.already_written) == (14, 10)
    rows = archived_rows(out)
    assert sorted(row["packet"] for row in rows.values()) == sorted(payloads)
    on_disk = {p.relative_to(out).as_posix() for p in out.glob("archive/**/*") if p.is_file()}
    assert on_disk == {p.relative_to(out).as_posix() for p in archive_files(out)}
    assert not [p for p in out.glob("archive/**/*") if p.name.startswith(".tmp-")]


def test_a_full_disk_while_encoding_an_archive_file_stops_the_run_and_leaves_no_half_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_files(tmp_path / "in", simulated_payloads(6, seed=9))

    def disk_full(frame: Any, path: Path) -> None:
        path.write_bytes(b"PAR1 half a file")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(archive_sink, "write_parquet", disk_full)
    out = tmp_path / "out"
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(tmp_path / "in")], "output_dir": str(out)}))
    assert summary.exit_code == exitcodes.OUTPUT_ERROR, summary.line()
    assert summary.alerts_written == 0
    assert not [p for p in out.glob("archive/**/*") if p.is_file()]


def test_a_disk_full_for_a_moment_while_encoding_ahead_leaves_no_half_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The decode thread's encoding fails once; the write encodes afresh, and the half file
    goes at once (the end-of-run sweep is switched off here to show it)."""
    payloads = simulated_payloads(6, seed=10)
    write_files(tmp_path / "in", payloads)
    encode = archive_sink.write_parquet
    calls: list[Path] = []

    def full_once(frame: Any, path: Path) -> None:
        calls.append(path)
        if len(calls) == 1:
            path.write_bytes(b"PAR1 half a file")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        encode(frame, path)

    monkeypatch.setattr(archive_sink, "write_parquet", full_once)
    monkeypatch.setattr(ArchiveSink, "discard_all", lambda self: None)
    out = tmp_path / "out"
    consume_files(tmp_path / "in", out)
    assert len(calls) == 2
    assert sorted(row["packet"] for row in archived_rows(out).values()) == sorted(payloads)
    assert not [p for p in out.glob("archive/**/*") if p.name.startswith(".tmp-")]


def consume_process(incoming: Path, out: Path, fault: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "LSST_ALERT_PIPELINE_FAULT"}
    env["PYTHONPATH"] = str(SRC)
    if fault:
        env["LSST_ALERT_PIPELINE_FAULT"] = fault
    command = [sys.executable, str(Path(__file__).with_name("fault_consumer.py")), "consume",
               "--from", str(incoming), "--output-dir", str(out), "--batch-size", "6"]
    return subprocess.run(command, env=env, capture_output=True, timeout=120).returncode


@pytest.mark.parametrize("fault", ["archive-file-written:2", "after-write:3", "after-sync:2"])
def test_kill_during_or_after_an_archive_write_then_restart_archives_each_alert_once(
        tmp_path: Path, fault: str) -> None:
    payloads = simulated_payloads(30, seed=6)
    write_files(tmp_path / "in", payloads)
    out = tmp_path / "out"
    assert consume_process(tmp_path / "in", out, fault) == -signal.SIGKILL
    assert consume_process(tmp_path / "in", out, None) == exitcodes.OK
    rows = archived_rows(out)
    assert sorted(row["packet"] for row in rows.values()) == sorted(payloads)
    on_disk = {p.relative_to(out).as_posix() for p in out.glob("archive/**/*") if p.is_file()}
    assert on_disk == {p.relative_to(out).as_posix() for p in archive_files(out)}


def follow_up(payload: bytes, new_id: int, days_later: float) -> bytes:
    """The next alert of the same object: Rubin moves the last detection into prvDiaSources."""
    schema = parsed_bundled_schema(version_for(int.from_bytes(payload[1:5], "big")))
    record = decoded(payload)
    previous = dict(record["diaSource"])
    record["prvDiaSources"] = [*(record.get("prvDiaSources") or []), previous]
    record["diaSource"] = dict(previous, diaSourceId=new_id,
                               midpointMjdTai=previous["midpointMjdTai"] + days_later,
                               psfFlux=previous["psfFlux"] * 2)
    if "alertId" in record:
        record["alertId"] = new_id
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, record)
    return payload[:5] + body.getvalue()


def independent_light_curve(payloads: list[bytes]) -> list[tuple[Any, ...]]:
    """Detections by diaSourceId, forced points by visit; the newest alert's value wins (real
    alerts of one object repeat a measurement with reprocessed values)."""
    detections: dict[int, tuple[Any, ...]] = {}
    forced: dict[int, tuple[Any, ...]] = {}
    packets = sorted((decoded(payload) for payload in payloads),
                     key=lambda packet: packet["diaSource"]["midpointMjdTai"])
    for packet in packets:
        for source in [packet["diaSource"], *(packet.get("prvDiaSources") or [])]:
            detections[source["diaSourceId"]] = (
                source["midpointMjdTai"], source["band"], source["psfFlux"], True,
                source["diaSourceId"], source["visit"])
        for point in packet.get("prvDiaForcedSources") or []:
            forced[point["visit"]] = (point["midpointMjdTai"], point["band"], point["psfFlux"],
                                      False, None, point["visit"])
    # The command's order: time, detections first, band, diaSourceId, visit.
    return sorted([*detections.values(), *forced.values()],
                  key=lambda p: (p[0], not p[3], p[1], p[4] or 0, p[5]))


def test_light_curve_across_alerts_and_nights_equals_one_computed_from_the_packets(
        tmp_path: Path) -> None:
    first = simulated_payloads(1, seed=8)[0]
    assert decoded(first).get("prvDiaForcedSources"), "pick a seed with forced photometry"
    payloads = [first, follow_up(first, 9_100_000_001, 1.0), *real_wire_payloads()]
    write_files(tmp_path / "in", payloads)
    consume_files(tmp_path / "in", tmp_path / "out")
    objects = {decoded(p)["diaSource"]["diaObjectId"] for p in payloads} - {0}
    runner = CliRunner()
    for dia_object_id in objects:
        mine = [p for p in payloads if decoded(p)["diaSource"]["diaObjectId"] == dia_object_id]
        result = runner.invoke(main, ["lightcurve", str(dia_object_id), "--output-dir",
                                      str(tmp_path / "out"), "--format", "json"])
        assert result.exit_code == 0, result.output
        import json

        points = [json.loads(line) for line in result.stdout.splitlines()]
        got = [(p["mjd"], p["band"], p["flux"], p["detection"],
                None if p["diaSourceId"] is None else int(p["diaSourceId"]),  # ids as text
                p["visit"]) for p in points]
        expected = independent_light_curve(mine)
        assert len(got) == len(expected)
        for left, right in zip(got, expected, strict=True):
            assert all(same(a, b) or (a is None and math.isnan(b)) for a, b in
                       zip(left, right, strict=True)), (left, right)
    plot = tmp_path / "lc.png"
    result = runner.invoke(main, ["lightcurve", str(decoded(first)["diaSource"]["diaObjectId"]),
                                  "--output-dir", str(tmp_path / "out"), "--plot", str(plot)])
    assert result.exit_code == 0 and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_query_counts_the_archive_and_bad_sql_gets_a_one_line_error(tmp_path: Path) -> None:
    write_files(tmp_path / "in", simulated_payloads(12, seed=9))
    consume_files(tmp_path / "in", tmp_path / "out")
    runner = CliRunner()
    good = runner.invoke(main, ["query", "--output-dir", str(tmp_path / "out"), "--format",
                                "csv", "SELECT count(*) AS n FROM alerts"])
    assert good.exit_code == 0 and good.stdout == "n\n12\n"
    for sql, named in (("SELEC 1", "SELEC"), ("SELECT nope FROM alerts", "nope")):
        bad = runner.invoke(main, ["query", "--output-dir", str(tmp_path / "out"), sql])
        assert bad.exit_code == exitcodes.CONFIG_ERROR
        assert len(bad.stderr.strip().splitlines()) == 1 and named in bad.stderr
        assert "Traceback" not in bad.output
    with pytest.raises(QueryError, match="no archived alerts"):
        run_query(tmp_path / "empty", "SELECT 1 FROM alerts")


def test_compact_merges_a_night_into_one_file_and_queries_give_the_same_rows(
        tmp_path: Path) -> None:
    write_files(tmp_path / "in", simulated_payloads(40, seed=10))
    out = tmp_path / "out"
    consume_files(tmp_path / "in", out, batch_size=4)
    everything = "SELECT * EXCLUDE (dayObs) FROM alerts ORDER BY diaSourceId"
    before = run_query(out, everything)
    assert len(archive_files(out)) == 10
    result = CliRunner().invoke(main, ["compact", "--output-dir", str(out)])
    assert result.exit_code == 0 and "10 files merged into 1" in result.stdout
    assert len(archive_files(out)) == 1 and len(list(out.glob("archive/*/*"))) == 1
    # repr: NaN equals NaN as text, not as a float
    assert repr(run_query(out, everything).rows) == repr(before.rows)
    with OutputDir(out):  # a consumer starting later keeps the merged file (the ledger lists it)
        pass
    assert repr(run_query(out, everything).rows) == repr(before.rows)
    write_files(tmp_path / "more", simulated_payloads(5, seed=11))
    consume_files(tmp_path / "more", out)
    assert run_query(out, "SELECT count(*) FROM alerts").rows == [(45,)]


def test_compact_beside_a_running_consumer_never_shows_an_alert_twice_or_not_at_all(
        tmp_path: Path) -> None:
    write_files(tmp_path / "in", simulated_payloads(120, seed=12))
    out = tmp_path / "out"
    consume_files(tmp_path / "in", out, batch_size=4, max_messages=40)
    import threading

    done = threading.Event()
    seen: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def keep_querying() -> None:
        while not done.is_set():
            try:
                seen.append(run_query(out, "SELECT count(*), count(DISTINCT diaSourceId) "
                                      "FROM alerts").rows[0])
            except BaseException as exc:
                errors.append(exc)
                return

    reader = threading.Thread(target=keep_querying)
    reader.start()
    try:
        writer = threading.Thread(target=consume_files, args=(tmp_path / "in", out),
                                  kwargs={"batch_size": 4})
        writer.start()
        for _ in range(5):
            compact(out)
            time.sleep(0.05)
        writer.join()
        compact(out)
    finally:
        done.set()
        reader.join()
    assert not errors, errors
    assert seen and all(total == distinct for total, distinct in seen)
    assert [count for count, _ in seen] == sorted(count for count, _ in seen)  # never fewer
    assert run_query(out, "SELECT count(DISTINCT diaSourceId), count(*) FROM alerts").rows == [
        (120, 120)]


def test_cleanup_removes_a_retired_nights_archive_files_and_their_ledger_entries(
        tmp_path: Path) -> None:
    write_files(tmp_path / "in", simulated_payloads(8, seed=13))
    out = tmp_path / "out"
    consume_files(tmp_path / "in", out, batch_size=4)
    files = sorted(out.glob("archive/*/*.parquet"))
    assert len(files) == 2
    kept = cleanup(out, 30, tonight="20260310")  # the simulated night is 5 nights old: kept
    assert not kept.removed
    assert run_query(out, "SELECT count(*) FROM alerts").rows == [(8,)]
    long_ago = time.time() - 45 * 86400  # and nothing of it written for 45 days
    for path in out.rglob("*"):
        if path.is_file() and path.parent.name != "state":
            os.utime(path, (long_ago, long_ago))
    report = cleanup(out, 30, tonight="20260420")  # 46 nights old: retired
    assert sum(name.startswith("archive/") for name in report.removed) == 2
    assert not any(path.exists() for path in files) and not list(out.glob("archive/*"))
    from lsst_alert_pipeline.pipeline.ledger import Ledger

    ledger = Ledger(out / "state" / "ledger.sqlite")
    assert ledger.archive_files() == {}
    ledger.close()


def test_nightly_report_links_each_object_to_its_light_curve_from_the_archive(
        tmp_path: Path) -> None:
    from lsst_alert_pipeline.look.report import write_report

    first = simulated_payloads(1, seed=8)[0]
    payloads = [first, follow_up(first, 9_100_000_002, 0.01), *simulated_payloads(6, seed=14)]
    write_files(tmp_path / "in", payloads)
    consume_files(tmp_path / "in", tmp_path / "out")
    index = write_report(tmp_path / "out", out=tmp_path / "report")
    page = index.read_text()
    objects = {decoded(p)["diaSource"]["diaObjectId"] for p in payloads} - {0}
    for dia_object_id in objects:
        png = tmp_path / "report" / "lightcurves" / f"{dia_object_id}.png"
        assert f'href="lightcurves/{dia_object_id}.png"' in page
        assert png.read_bytes()[:4] == b"\x89PNG"


def test_reading_packets_whole_for_the_archive_gives_the_same_records() -> None:
    from dataclasses import fields

    from lsst_alert_pipeline.decode.batch import WHOLE_PACKET, decode_and_normalize
    from lsst_alert_pipeline.decode.schemas import SchemaSource

    payloads = real_wire_payloads() + [encode_wire(alert, "11.1") for alert in simulate_alerts(
        60, schema_version="11.1", seed=15)]  # the realistic history mix: heavy ones too
    plain = decode_and_normalize(payloads, SchemaSource())
    whole = decode_and_normalize(payloads, SchemaSource(), whole=True)
    for left, right in zip(plain, whole, strict=True):
        assert isinstance(left, list) and isinstance(right, list)
        for name in (f.name for f in fields(left[0]) if f.name != "extra"):
            assert repr(getattr(left[0], name)) == repr(getattr(right[0], name)), name
        assert WHOLE_PACKET in right[0].extra
