"""Scale-out: two consumers of one group split a topic's partitions, and between them write
every alert exactly once; `merge` gathers them into the specification's layout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts

from .alerts import csv_rows

pytestmark = pytest.mark.kafka


def test_two_members_of_a_group_write_each_alert_once(broker, tmp_path: Path) -> None:
    topic = "scale-out-four"
    broker.create_topic(topic, 4)
    payloads = [encode_wire(alert, "11.1") for alert in
                simulate_alerts(2000, schema_version="11.1", seed=11, history=(0, 3))]
    for partition in range(4):
        broker.produce(topic, payloads[partition::4], partition=partition)
    root = tmp_path / "lsst_alerts"
    command = [sys.executable, "-m", "lsst_alert_pipeline.cli", "consume", "--bootstrap-servers",
               broker.bootstrap, "--topic", topic, "--group-id", "scale-out", "--output-dir",
               str(root), "--batch-size", "5", "--idle-timeout", "30",
               "-X", "session.timeout.ms=6000"]
    members = {name: subprocess.Popen([*command, "--member", name], stderr=subprocess.PIPE,
                                      text=True, env=dict(os.environ)) for name in ("a", "b")}
    logs = {name: process.communicate(timeout=240)[1] for name, process in members.items()}
    for name, process in members.items():
        assert process.returncode == 0, logs[name][-3000:]
    written = {name: [row["diaSourceId"] for row in csv_rows(root / "members" / name)]
               for name in members}
    assert written["a"] and written["b"], "both members must have been given partitions"
    everything = written["a"] + written["b"]
    assert len(everything) == len(set(everything)) == 2000
    for name in members:
        assert "assigned" in logs[name]
    result = CliRunner().invoke(main, ["merge", "--output-dir", str(root)])
    assert result.exit_code == 0, result.output
    merged = csv_rows(root)
    assert sorted(row["diaSourceId"] for row in merged) == sorted(everything)
    for row in merged[:50]:
        assert (root / row["science_cutout_path"]).exists()
