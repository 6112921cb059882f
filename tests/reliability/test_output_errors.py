"""A full disk or a read-only output stops the consumer (exit 5) without committing; a later run
with space completes with nothing lost or doubled.

The disk really fills: the output is a 3 MB tmpfs (we are root in the test container) that a
later run finds grown to 200 MB, ledger and CSV files in place. Where mounting is not permitted
the writer fails with ENOSPC at the sink boundary instead.
"""

from __future__ import annotations

import errno
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lsst_alert_pipeline import exitcodes
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline import run as pipeline

from .figures import FIGURES
from .helpers import SimulatedAlerts, committed_offset, settings_for, verify_exactly_once

pytestmark = pytest.mark.kafka

ALERTS = 200


class Mount:
    """A tmpfs mounted for one test, or None-like when mounting is not permitted."""

    def __init__(self, where: Path):
        self.where = where
        self.mounted = False

    def mount(self, options: str) -> bool:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(self.where)],
                              capture_output=True)
        self.mounted = done.returncode == 0
        return self.mounted

    def remount(self, options: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{options}", str(self.where)], check=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.where)], check=True)
            self.mounted = False


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Mount]:
    where = tmp_path / "disk"
    where.mkdir()
    mount = Mount(where)
    yield mount
    mount.unmount()


def fail_writes_after(monkeypatch: pytest.MonkeyPatch, cutouts: int) -> None:
    """Fallback when tmpfs cannot be mounted: the cutout writer hits ENOSPC after n files."""
    real = pipeline.write_cutout
    calls = [0]

    def write_cutout(folder: Path, name: str, blob: bytes) -> None:
        calls[0] += 1
        if calls[0] > cutouts:
            raise OSError(errno.ENOSPC, "No space left on device (injected)", str(folder / name))
        real(folder, name, blob)

    monkeypatch.setattr(pipeline, "write_cutout", write_cutout)


def test_full_disk_stops_without_commit_then_a_run_with_space_completes(
        broker, topic, simulated: SimulatedAlerts, mount_point: Mount,
        monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    payloads, ids = simulated.payloads[:ALERTS], set(simulated.ids[:ALERTS])
    broker.produce(topic, payloads)
    output = mount_point.where / "out"
    really_full = mount_point.mount("size=3m")
    if not really_full:
        fail_writes_after(monkeypatch, 60)
    settings = settings_for(broker.bootstrap, topic, output, batch_size=10)
    with caplog.at_level(logging.ERROR, logger="lsst_alert_pipeline"):
        full = consumer.consume(settings)
    assert full.exit_code == exitcodes.OUTPUT_ERROR, full.line()
    assert "No space left on device" in caplog.text
    from lsst_alert_pipeline.pipeline.ledger import Ledger

    ledger = Ledger(output / "state" / "ledger.sqlite")
    durable = ledger.alert_count()
    ledger.close()
    committed = committed_offset(broker.bootstrap, f"g-{topic}", topic)
    print(f"\nfull disk ({'3 MB tmpfs' if really_full else 'injected ENOSPC'}): stopped with "
          f"exit {full.exit_code} after {full.alerts_written} alerts; ledger vouches for "
          f"{durable}, offsets committed to {committed}")
    assert 0 < durable < ALERTS
    assert committed <= durable, "offsets were committed past what is durably on disk"
    if really_full:
        mount_point.remount("size=200m")
    else:
        monkeypatch.undo()
    roomy = consumer.consume(settings)
    assert roomy.exit_code == exitcodes.OK, roomy.line()
    assert roomy.alerts_written + roomy.already_written >= ALERTS - committed
    FIGURES["output_failures"] += 1
    checked = len(verify_exactly_once(output, simulated, ids))
    print(f"full disk: the run with space wrote {roomy.alerts_written}, "
          f"{checked} alerts verified exactly once")


def test_read_only_output_exits_5_with_a_clear_message(
        broker, topic, simulated: SimulatedAlerts, mount_point: Mount,
        monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    broker.produce(topic, simulated.payloads[:20])
    output = mount_point.where / "out"
    if mount_point.mount("size=10m"):
        output.mkdir()
        mount_point.remount("ro")
        expected = "Read-only file system"
    else:
        fail_writes_after(monkeypatch, 0)
        expected = "No space left on device"
    with caplog.at_level(logging.ERROR, logger="lsst_alert_pipeline"):
        summary = consumer.consume(settings_for(broker.bootstrap, topic, output))
    print(f"\nread-only output: exit {summary.exit_code}: {caplog.text.strip()}")
    assert summary.exit_code == exitcodes.OUTPUT_ERROR
    assert summary.outcome == "output not writable"
    assert expected in caplog.text and str(output) in caplog.text
    assert committed_offset(broker.bootstrap, f"g-{topic}", topic) == 0
    FIGURES["output_failures"] += 1


def test_a_ledger_that_cannot_be_written_exits_5_without_committing(
        broker, topic, simulated: SimulatedAlerts, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    """SQLite says 'database or disk is full' when the disk fills during the ledger's commit."""
    import sqlite3

    from lsst_alert_pipeline.pipeline.ledger import Ledger

    broker.produce(topic, simulated.payloads[:30])
    real = Ledger.record_batch
    batches = [0]

    def record_batch(self: Ledger, batch: Any) -> None:
        batches[0] += 1
        if batches[0] > 1:
            raise sqlite3.OperationalError("database or disk is full")
        real(self, batch)

    monkeypatch.setattr(Ledger, "record_batch", record_batch)
    output = tmp_path / "out"
    settings = settings_for(broker.bootstrap, topic, output, batch_size=10)
    with caplog.at_level(logging.ERROR, logger="lsst_alert_pipeline"):
        full = consumer.consume(settings)
    print(f"\nledger full: exit {full.exit_code} ({full.outcome})")
    assert full.exit_code == exitcodes.OUTPUT_ERROR, full.outcome
    assert "database or disk is full" in caplog.text
    assert committed_offset(broker.bootstrap, f"g-{topic}", topic) == 10
    monkeypatch.undo()
    assert consumer.consume(settings).exit_code == exitcodes.OK
    FIGURES["output_failures"] += 1
    verify_exactly_once(output, simulated, set(simulated.ids[:30]))
