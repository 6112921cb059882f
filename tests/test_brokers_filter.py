"""The user's filter run by the consumer on a broker's stream: the DevKit's verdict on each alert
decides what is written (filter/local.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.filter.devkit_run import BUNDLED_FILTER, load_filter, run_filter
from lsst_alert_pipeline.pipeline import consume as consumer

from .alerts import csv_rows
from .conftest import real_files
from .fink_standin import fink_stream

pytestmark = pytest.mark.kafka
WIRE_V10 = "rubin/derived_wire_v10_0/*.wire"


def devkit_passes(filter_file: Path | None = None) -> tuple[set[str], set[str]]:
    """(passed, not passed) diaSourceIds of `filter-test` on the Rubin packets of the sample."""
    filter_class = load_filter(filter_file) if filter_file else None
    results = list(run_filter(real_files(WIRE_V10), filter_class))
    return ({str(r.diaSourceId) for r in results if r.passed},
            {str(r.diaSourceId) for r in results if not r.passed})


def fink_settings(broker, topic: str, output: Path, **extra):
    return config.load(environ={}, flags={
        "preset": "fink", "topics": [topic], "output_dir": str(output), "idle_timeout": 20,
        "kafka": {"bootstrap.servers": broker.bootstrap, "group.id": f"g-{topic}-{output.name}",
                  "session.timeout.ms": 6000}, **extra})


@pytest.fixture(scope="module")
def fink_topic(broker) -> str:
    stream = fink_stream()
    broker.create_topic("fink_filtered_lsst", 1)
    broker.produce("fink_filtered_lsst", stream.values(), keys=stream.keys)
    return "fink_filtered_lsst"


def test_fink_run_writes_exactly_the_alerts_the_devkit_passes_and_counts_the_rest(
        broker, fink_topic: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    passed, turned_away = devkit_passes()
    assert passed and turned_away  # the sample tells the two apart
    with caplog.at_level(logging.INFO, logger="lsst_alert_pipeline"):
        summary = consumer.consume(fink_settings(broker, fink_topic, tmp_path))
    assert summary.exit_code == exitcodes.OK
    assert {row["diaSourceId"] for row in csv_rows(tmp_path)} == passed
    assert summary.alerts_written == len(passed)
    assert summary.filtered_out == len(turned_away)
    said = [r.getMessage() for r in caplog.records if "local filter on" in r.getMessage()]
    assert len(said) == 1 and "--no-local-filter" in said[0]
    assert any("filtered out: failed: no SSSource" in r.getMessage() for r in caplog.records)


def test_a_filter_file_of_the_users_own_decides_instead_of_the_bundled_one(
        broker, fink_topic: str, tmp_path: Path) -> None:
    own = tmp_path / "no_sso_filter.py"
    own.write_text(BUNDLED_FILTER.read_text().replace("REQUIRE_SSSOURCE = True",
                                                      "REQUIRE_SSSOURCE = False"))
    passed, _ = devkit_passes(own)
    bundled_passed, _ = devkit_passes()
    assert passed and passed != bundled_passed
    output = tmp_path / "out"
    summary = consumer.consume(fink_settings(broker, fink_topic, output, filter_path=str(own)))
    assert summary.exit_code == exitcodes.OK
    assert {row["diaSourceId"] for row in csv_rows(output)} == passed


def test_no_local_filter_writes_every_alert_of_the_stream(broker, fink_topic: str,
                                                          tmp_path: Path) -> None:
    summary = consumer.consume(fink_settings(broker, fink_topic, tmp_path, local_filter=False))
    assert summary.exit_code == exitcodes.OK and summary.filtered_out == 0
    assert len(csv_rows(tmp_path)) == len(fink_stream().records)
