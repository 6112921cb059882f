"""SIGKILL during and between a Fink run and a Lasair run into one output: each passing alert is
written once, with its cutouts, and nothing that fails the filter (issue 24, One collection).

The two brokers' runs alternate, each killed at a step of the durability order
(tests/fault_consumer.py), so one broker's run starts on the output the other's kill left."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from lsst_alert_pipeline import exitcodes
from lsst_alert_pipeline.filter.devkit_run import BUNDLED_FILTER, load_filter, run_filter
from lsst_alert_pipeline.ops.query import run_query

from ..alerts import csv_rows
from ..conftest import real_files
from ..fink_standin import fink_stream
from ..lasair_standin import LasairPages, lasair_stream
from .helpers import archived_ids, consume_command, run_to_completion

pytestmark = pytest.mark.kafka
WIRE_V10 = "rubin/derived_wire_v10_0/*.wire"
KINDS = ("science", "template", "difference")
# (broker, step, n): the run of that broker is killed the n-th time it reaches the step.
PLAN = [("fink", "after-write", 2), ("lasair", "after-ledger", 1), ("fink", "after-sync", 1),
        ("lasair", "after-write", 1), ("fink", "archive-file-written", 1),
        ("lasair", "after-commit", 1), ("fink", "after-ledger", 1), ("fink", "after-commit", 1),
        ("lasair", "after-sync", 1)]


def test_kills_during_and_between_two_brokers_runs_lose_and_duplicate_nothing(
        broker, tmp_path: Path) -> None:
    own = tmp_path / "no_sso_filter.py"  # passes alerts of both brokers (the bundled: Fink's)
    own.write_text(BUNDLED_FILTER.read_text().replace("REQUIRE_SSSOURCE = True",
                                                      "REQUIRE_SSSOURCE = False"))
    passed = {int(r.diaSourceId) for r in run_filter(real_files(WIRE_V10), load_filter(own))
              if r.passed}
    fink, lasair = fink_stream(), lasair_stream()
    fink_ids = {record["diaSource"]["diaSourceId"] for record in fink.records}
    lasair_ids = set(lasair.trigger_ids())
    assert fink_ids - passed and lasair_ids & passed  # some turned away, an overlap written
    broker.create_topic("fink_crash_lsst", 1)
    broker.produce("fink_crash_lsst", fink.values(), keys=fink.keys)
    broker.create_topic("lasair_crash", 1)
    broker.produce("lasair_crash", lasair.values("full"))
    output, log = tmp_path / "out", tmp_path / "consumer.log"
    commands = {
        name: consume_command(broker.bootstrap, topic, output, "--preset", name,
                              "--filter", str(own), "--batch-size", "1")
        for name, topic in (("fink", "fink_crash_lsst"), ("lasair", "lasair_crash"))}
    with LasairPages() as pages:
        for packet in lasair.packets:
            pages.store(packet["diaSource"]["diaSourceId"],
                        {kind: packet[f"cutout{kind.title()}"] for kind in KINDS})
        env = {"LSST_ALERTS_LASAIR_API_URL": pages.base_url}
        for name, step, nth in PLAN:
            finished = run_to_completion(commands[name], log, timeout=120,
                                         LSST_ALERT_PIPELINE_FAULT=f"{step}:{nth}", **env)
            assert finished.returncode == -signal.SIGKILL, (
                f"{name}: no kill at {step}:{nth} (exit {finished.returncode}); see {log}")
        for name in ("fink", "lasair", "fink", "lasair"):  # a second pass adds nothing
            finished = run_to_completion(commands[name], log, timeout=120, **env)
            assert finished.returncode == exitcodes.OK, f"{name}: exit {finished.returncode}"

    expected = passed & (fink_ids | lasair_ids)
    rows = csv_rows(output)
    seen = Counter(int(row["diaSourceId"]) for row in rows)
    assert set(seen) == expected and max(seen.values()) == 1  # none lost, none twice
    for row in rows:  # each with its cutouts, from Fink's packet or Lasair's pages
        for kind in KINDS:
            assert row[f"{kind}_cutout_path"] and (output / row[f"{kind}_cutout_path"]).is_file()
    assert sorted(archived_ids(output) or []) == sorted(expected)
    # The deliveries say the same: one `written` per alert, every delivered alert recorded.
    written = run_query(output, "SELECT diaSourceId, count(*) FROM deliveries "
                                "WHERE verdict = 'written' GROUP BY diaSourceId").rows
    assert dict(written) == dict.fromkeys(expected, 1)
    delivered = dict(run_query(output, "SELECT broker, list(DISTINCT diaSourceId) "
                                       "FROM deliveries GROUP BY broker").rows)
    assert {b: set(ids) for b, ids in delivered.items()} == {"fink": fink_ids,
                                                             "lasair": lasair_ids}
