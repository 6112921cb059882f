"""Two consumers started at once on one output directory: one runs, the other refuses (exit 6)
and writes nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lsst_alert_pipeline import exitcodes
from lsst_alert_pipeline.pipeline.ledger import Ledger

from .figures import FIGURES
from .helpers import SimulatedAlerts, consume_command, subprocess_env, verify_exactly_once

pytestmark = pytest.mark.kafka


def test_two_consumers_on_one_output_one_runs_one_refuses_with_exit_6(
        broker, topic, simulated: SimulatedAlerts, tmp_path: Path) -> None:
    broker.produce(topic, simulated.payloads[:300])
    output = tmp_path / "out"
    processes = [
        subprocess.Popen(consume_command(broker.bootstrap, topic, output, "--group-id", group),
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                         env=subprocess_env())
        for group in (f"first-{topic}", f"second-{topic}")]
    results = [(p.wait(120), p.communicate()[1]) for p in processes]
    codes = sorted(code for code, _ in results)
    print(f"\noverlap: exit statuses {codes}")
    assert codes == [exitcodes.OK, exitcodes.ALREADY_RUNNING]
    refused = next(err for code, err in results if code == exitcodes.ALREADY_RUNNING)
    assert "another consumer is writing to" in refused
    ledger = Ledger(output / "state" / "ledger.sqlite")
    runs = ledger.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    ledger.close()
    assert runs == 1, "the refused run recorded itself in the ledger"
    verify_exactly_once(output, simulated, set(simulated.ids[:300]))
    FIGURES["overlaps"] += 1
