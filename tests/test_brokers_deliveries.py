"""The ledger records every delivery (`deliveries`): which broker's message brought each alert and
what became of it, queried with `lsst-alerts query` and summed up for tonight by `status`."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.filter.devkit_run import BUNDLED_FILTER, load_filter, run_filter
from lsst_alert_pipeline.ops.query import run_query
from lsst_alert_pipeline.ops.status import collect, status_lines
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline.ledger import Ledger
from lsst_alert_pipeline.pipeline.ledger_schema import MIGRATIONS, SCHEMA_VERSION

from .alerts import csv_rows
from .conftest import real_files
from .fink_standin import fink_stream
from .lasair_standin import LasairPages, lasair_stream

WIRE_V10 = "rubin/derived_wire_v10_0/*.wire"
KINDS = ("science", "template", "difference")


def no_sso_filter(folder: Path) -> Path:
    """The bundled filter without its solar-system requirement: of the sample's alerts with a
    diaObject (those Lasair sends) it passes some and not others."""
    own = folder / "no_sso_filter.py"
    own.write_text(BUNDLED_FILTER.read_text().replace("REQUIRE_SSSOURCE = True",
                                                      "REQUIRE_SSSOURCE = False"))
    return own


def devkit_passed(filter_file: Path) -> set[int]:
    """The diaSourceIds `filter-test` (the DevKit) passes among the sample's Rubin packets."""
    return {int(r.diaSourceId) for r in run_filter(real_files(WIRE_V10), load_filter(filter_file))
            if r.passed}


def overlapping_night(folder: Path) -> tuple[set[int], set[int], Path, set[int]]:
    """The sample night as Fink and Lasair deliver it (Lasair's alerts a subset of Fink's), a
    filter in `folder` that passes some of each and not others, and what the DevKit passes."""
    fink_ids = {record["diaSource"]["diaSourceId"] for record in fink_stream().records}
    lasair_ids = set(lasair_stream().trigger_ids())
    own = no_sso_filter(folder)
    passed = devkit_passed(own)
    assert lasair_ids < fink_ids and passed & lasair_ids and fink_ids - passed
    return fink_ids, lasair_ids, own, passed


def settings_for(broker, preset: str | None, topic: str, output: Path,
                 environ: dict[str, str] | None = None, **extra: Any):
    flags: dict[str, Any] = {
        "topics": [topic], "output_dir": str(output), "idle_timeout": 20,
        "kafka": {"bootstrap.servers": broker.bootstrap,
                  "group.id": f"g-{preset}-{output.name}", "session.timeout.ms": 6000}, **extra}
    if preset:
        flags["preset"] = preset
    return config.load(environ=environ or {}, flags=flags)


def rows(output: Path, sql: str) -> list[tuple[Any, ...]]:
    return run_query(output, sql).rows


@pytest.fixture(scope="module")
def topics(broker) -> tuple[str, str]:
    fink = fink_stream()
    broker.create_topic("fink_deliveries_lsst", 1)
    broker.produce("fink_deliveries_lsst", fink.values(), keys=fink.keys)
    broker.create_topic("lasair_deliveries", 1)
    broker.produce("lasair_deliveries", lasair_stream().values("full"))
    return "fink_deliveries_lsst", "lasair_deliveries"


@pytest.mark.kafka
def test_fink_then_lasair_each_delivery_is_recorded_with_its_verdict(
        broker, topics: tuple[str, str], tmp_path: Path) -> None:
    fink_topic, lasair_topic = topics
    fink_ids, lasair_ids, own, passed = overlapping_night(tmp_path)
    output = tmp_path / "night"
    fink_run = consumer.consume(settings_for(broker, "fink", fink_topic, output,
                                             filter_path=str(own)))
    with LasairPages() as pages:
        for packet in lasair_stream().packets:
            pages.store(packet["diaSource"]["diaSourceId"],
                        {kind: packet[f"cutout{kind.title()}"] for kind in KINDS})
        api = {"LSST_ALERTS_LASAIR_API_URL": pages.base_url}
        lasair_run = consumer.consume(settings_for(broker, "lasair", lasair_topic, output,
                                                   filter_path=str(own), environ=api))
    assert fink_run.exit_code == lasair_run.exit_code == exitcodes.OK

    # The example: each broker's distinct alerts.
    assert dict(rows(output, "SELECT broker, count(DISTINCT diaSourceId) FROM deliveries "
                             "GROUP BY broker")) == {"fink": len(fink_ids),
                                                     "lasair": len(lasair_ids)}
    verdicts = {(broker_, dia_source_id): verdict for broker_, dia_source_id, verdict in rows(
        output, "SELECT broker, diaSourceId, verdict FROM deliveries")}
    assert verdicts == {
        **{("fink", i): "written" if i in passed else "filtered out" for i in fink_ids},
        **{("lasair", i): "already on disk" if i in passed else "filtered out"
           for i in lasair_ids}}
    # Where each came from: the topic and its offsets, each once.
    positions = rows(output, "SELECT topic, partition, \"offset\" FROM deliveries "
                             "WHERE broker = 'fink' ORDER BY \"offset\"")
    assert positions == [(fink_topic, 0, offset) for offset in range(len(fink_ids))]
    assert rows(output, "SELECT count(*) FROM deliveries WHERE received IS NULL") == [(0,)]
    # What was written is what the deliveries say was written.
    assert {int(row["diaSourceId"]) for row in csv_rows(output)} == passed & fink_ids

    facts = collect(output)["deliveries_tonight"]
    assert {b: entry["alerts"] for b, entry in facts["brokers"].items()} == {
        "fink": len(fink_ids), "lasair": len(lasair_ids)}
    assert facts["overlap"] == len(lasair_ids)
    assert facts["brokers"]["lasair"]["verdicts"]["already on disk"] == len(passed & lasair_ids)
    said = "\n".join(status_lines(collect(output)))
    assert (f"delivered tonight: fink {len(fink_ids):,} alerts, lasair {len(lasair_ids):,} "
            f"alerts; {len(lasair_ids):,} delivered by more than one broker") in said


@pytest.mark.kafka
def test_a_message_no_alert_could_be_read_from_is_a_dead_lettered_delivery(
        broker, topic: str, tmp_path: Path) -> None:
    good = [path.read_bytes() for path in real_files(WIRE_V10)][:2]
    broker.produce(topic, [good[0], b"\x00\x00\x00\x03\x84not avro", good[1]])
    summary = consumer.consume(settings_for(broker, None, topic, tmp_path))
    assert summary.alerts_written == 2 and summary.deadlettered == 1
    found = rows(tmp_path, "SELECT broker, \"offset\", diaSourceId IS NULL, verdict "
                           "FROM deliveries ORDER BY \"offset\"")
    assert found == [("kafka", 0, False, "written"), ("kafka", 1, True, "dead-lettered"),
                     ("kafka", 2, False, "written")]


def test_files_deliveries_are_recorded_and_a_second_run_is_already_on_disk(
        tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    for path in real_files(WIRE_V10):
        (folder / path.name).write_bytes(path.read_bytes())
    output = tmp_path / "out"
    settings = config.load(environ={}, flags={"from_paths": [str(folder)],
                                              "output_dir": str(output), "archive": False})
    consumer.consume(settings)
    consumer.consume(settings)
    # Consumed without the archive: the deliveries are still there to query, from the CLI.
    result = CliRunner().invoke(main, [
        "query", "--output-dir", str(output), "--format", "csv",
        "SELECT verdict, count(*) FROM deliveries WHERE broker = 'files' AND topic IS NULL "
        "GROUP BY verdict ORDER BY verdict"])
    alerts = len(real_files(WIRE_V10))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == [f"already on disk,{alerts}",
                                              f"written,{alerts}"]


def test_a_ledger_of_the_previous_schema_gains_an_empty_deliveries_table(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ledger.sqlite"
    path.parent.mkdir()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    for step in MIGRATIONS[:SCHEMA_VERSION - 1]:
        step(db)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    db.execute("COMMIT")
    assert "deliveries" not in {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    ledger = Ledger(path)
    assert ledger.schema_version() == SCHEMA_VERSION
    assert ledger.db.execute("SELECT count(*) FROM deliveries").fetchone() == (0,)
    ledger.close()
