"""Consuming files (`consume --from`): one run writes every file, however the batches fall."""

from __future__ import annotations

from pathlib import Path

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.simulate import simulate_alerts, write_wire_files

from .alerts import csv_rows


def test_one_run_writes_every_file_even_with_batches_decoded_ahead(tmp_path: Path) -> None:
    incoming = tmp_path / "incoming"
    write_wire_files(simulate_alerts(203, schema_version="11.1", seed=21, history=(0, 2)),
                     incoming, "11.1")
    out = tmp_path / "out"
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(incoming)], "output_dir": str(out), "batch_size": 7}))
    assert summary.exit_code == exitcodes.OK and summary.outcome == "caught up"
    assert summary.alerts_written == 203
    ids = [row["diaSourceId"] for row in csv_rows(out)]
    assert len(ids) == len(set(ids)) == 203


def test_a_slow_last_batch_is_still_written_before_caught_up(tmp_path: Path,
                                                               monkeypatch) -> None:
    from lsst_alert_pipeline.pipeline.run import Pipeline

    incoming = tmp_path / "incoming"
    write_wire_files(simulate_alerts(20, schema_version="11.1", seed=22, history=(0, 1)),
                     incoming, "11.1")
    real_decode = Pipeline.decode
    calls = []

    def slow_for_the_last_batch(self, messages):
        calls.append(len(messages))
        if len(calls) == 2:  # the last batch: handed out, still decoding past a poll timeout
            import time

            time.sleep(1.5)
        return real_decode(self, messages)

    monkeypatch.setattr(Pipeline, "decode", slow_for_the_last_batch)
    out = tmp_path / "out"
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(incoming)], "output_dir": str(out), "batch_size": 10}))
    assert summary.outcome == "caught up" and summary.alerts_written == 20
