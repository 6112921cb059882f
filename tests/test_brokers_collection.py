"""One collection: runs of different brokers into one output directory write each alert
(diaSourceId) once, whatever the order, and the archive names the broker that delivered it
first."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.sinks.archive_read import archive_files

from .alerts import csv_rows
from .conftest import real_files
from .fink_standin import fink_stream

pytestmark = pytest.mark.kafka
WIRE_V10 = "rubin/derived_wire_v10_0/*.wire"


def run(broker, output: Path, preset: str | None, topic: str) -> consumer.RunSummary:
    flags = {"topics": [topic], "output_dir": str(output), "idle_timeout": 20,
             "local_filter": False,
             "kafka": {"bootstrap.servers": broker.bootstrap, "group.id": f"g-{output.name}",
                       "session.timeout.ms": 6000}}
    if preset:
        flags["preset"] = preset
    summary = consumer.consume(config.load(environ={}, flags=flags))
    assert summary.exit_code == exitcodes.OK, summary.outcome
    return summary


def brokers_by_id(output: Path) -> dict[int, str]:
    files = [str(path) for path in archive_files(output)]
    rows = duckdb.connect().execute(
        "SELECT diaSourceId, broker FROM read_parquet(?, union_by_name=true)", [files]).fetchall()
    assert len(rows) == len({dia_source_id for dia_source_id, _ in rows})  # once each
    return dict(rows)


@pytest.fixture(scope="module")
def topics(broker) -> tuple[str, str]:
    """The sample on Fink's topic and, as Rubin publishes them, on a plain topic."""
    stream = fink_stream()
    broker.create_topic("fink_both_lsst", 1)
    broker.produce("fink_both_lsst", stream.values(), keys=stream.keys)
    broker.create_topic("rubin-both", 1)
    broker.produce("rubin-both", [path.read_bytes() for path in real_files(WIRE_V10)])
    return "fink_both_lsst", "rubin-both"


@pytest.mark.parametrize("order", [("fink", None), (None, "fink")])
def test_two_brokers_into_one_output_write_each_alert_once_naming_the_first(
        broker, topics: tuple[str, str], tmp_path: Path, order: tuple[str | None, ...]) -> None:
    fink_topic, rubin_topic = topics
    ids = {record["diaSource"]["diaSourceId"] for record in fink_stream().records}
    first, second = order
    output = tmp_path / f"first-{first or 'kafka'}"
    written = run(broker, output, first, fink_topic if first else rubin_topic)
    again = run(broker, output, second, fink_topic if second else rubin_topic)
    assert written.alerts_written == len(ids)
    assert again.alerts_written == 0 and again.already_written == len(ids)
    assert sorted(int(row["diaSourceId"]) for row in csv_rows(output)) == sorted(ids)
    assert brokers_by_id(output) == dict.fromkeys(ids, first or "kafka")
