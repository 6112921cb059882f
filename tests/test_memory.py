"""Memory between batches: kept for reuse while batches come, handed back when the stream idles."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline import run as pipeline_run
from lsst_alert_pipeline.pipeline.memory import POLARS_ALLOCATOR
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts

SRC = Path(__file__).resolve().parents[1] / "src"


def test_freed_memory_goes_back_when_the_stream_is_idle_not_after_every_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    incoming = tmp_path / "in"
    incoming.mkdir()
    for number, alert in enumerate(simulate_alerts(40, schema_version="11.1", seed=3)):
        (incoming / f"{number:03d}.wire").write_bytes(encode_wire(alert, "11.1"))
    handed_back: list[int] = []
    monkeypatch.setattr(pipeline_run, "release_freed_memory", lambda: handed_back.append(1))
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(incoming)], "output_dir": str(tmp_path / "out"), "batch_size": 5}))
    assert summary.exit_code == exitcodes.OK, summary.line()
    assert summary.alerts_written == 40  # eight batches
    # Once the files are read (an empty poll), not once per batch; a decode slower than the
    # poll timeout on a loaded machine may add an idle moment, never eight.
    assert 1 <= len(handed_back) < 8


def allocator_setting(environment: dict[str, str], first: str) -> str | None:
    """_RJEM_MALLOC_CONF as polars leaves it, in a fresh interpreter that imports `first` (a
    module of ours) before polars; None when polars saw no setting of ours or the user's."""
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    env.update(environment, PYTHONPATH=str(SRC))
    code = (f"import {first}, polars, os; "
            "print(os.environ.get('_RJEM_MALLOC_CONF', 'unset'))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True, timeout=60)
    answer = done.stdout.strip()
    return None if answer == "unset" else answer


def test_the_command_line_keeps_batch_sized_buffers_unless_the_user_set_the_allocator() -> None:
    ours = allocator_setting({}, "lsst_alert_pipeline.cli")
    assert ours is not None and ours.endswith("," + POLARS_ALLOCATOR)  # after polars' defaults
    theirs = allocator_setting({"_RJEM_MALLOC_CONF": "dirty_decay_ms:0"}, "lsst_alert_pipeline.cli")
    assert theirs is not None
    assert theirs.endswith(",dirty_decay_ms:0") and POLARS_ALLOCATOR not in theirs


def test_importing_the_library_changes_nothing_in_the_process() -> None:
    for module in ("lsst_alert_pipeline", "lsst_alert_pipeline.pipeline.consume",
                   "lsst_alert_pipeline.sinks.archive"):
        setting = allocator_setting({}, module)
        assert setting is None or POLARS_ALLOCATOR not in setting, module
