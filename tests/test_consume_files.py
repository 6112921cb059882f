"""Consuming files (`consume --from`): one run writes every file, however the batches fall."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    real_screen = Pipeline.screen
    calls = []

    def slow_for_the_last_batch(self, messages):
        calls.append(len(messages))
        if len(calls) == 2:  # the last batch: handed out, still decoding past a poll timeout
            import time

            time.sleep(1.5)
        return real_screen(self, messages)

    monkeypatch.setattr(Pipeline, "screen", slow_for_the_last_batch)
    out = tmp_path / "out"
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(incoming)], "output_dir": str(out), "batch_size": 10}))
    assert summary.outcome == "caught up" and summary.alerts_written == 20
    assert calls == [10, 10]


def test_a_batch_is_archive_encoded_while_the_next_one_is_decoded(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """Issue 25: the archive encoding (polars, mostly outside Python's lock) has a thread of
    its own, so the prefetch thread decodes the next batch meanwhile; every alert is still
    written and archived once."""
    import threading

    import polars as pl

    from lsst_alert_pipeline.pipeline.run import Pipeline

    incoming = tmp_path / "incoming"
    write_wire_files(simulate_alerts(30, schema_version="11.1", seed=23, history=(0, 2)),
                     incoming, "11.1")
    real_screen, real_prepare = Pipeline.screen, Pipeline.prepare
    screened: list[str] = []
    encoded: list[tuple[str, bool]] = []
    second_decode = threading.Event()

    def screen(self, messages):  # type: ignore[no-untyped-def]
        screened.append(threading.current_thread().name)
        if len(screened) == 2:
            second_decode.set()
        return real_screen(self, messages)

    def prepare(self, messages, results):  # type: ignore[no-untyped-def]
        # The first batch's encoding waits for the second batch's decode: run one after the
        # other on one thread, this wait would time out.
        overlapped = second_decode.wait(timeout=20) if not encoded else True
        encoded.append((threading.current_thread().name, overlapped))
        return real_prepare(self, messages, results)

    monkeypatch.setattr(Pipeline, "screen", screen)
    monkeypatch.setattr(Pipeline, "prepare", prepare)
    out = tmp_path / "out"
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(incoming)], "output_dir": str(out), "batch_size": 10}))
    assert summary.outcome == "caught up" and summary.alerts_written == 30
    assert set(screened) == {"prefetch"} and len(screened) == 3
    assert encoded == [("encoding", True)] * 3
    assert summary.stages["encoding"]["archive encoding"]["times"] == 3
    archived = pl.read_parquet(sorted(out.glob("archive/**/*.parquet")))
    assert archived.height == 30 and archived["diaSourceId"].n_unique() == 30


def test_each_batch_says_in_one_log_line_what_became_of_it(tmp_path, caplog) -> None:
    summary = consume_files_logged(tmp_path, caplog, seed=71, batch_size=5)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("batch of ")]
    assert summary.alerts_written == 12
    assert len(lines) == 3  # 5 + 5 + 2 files: one line each, not one per alert
    assert sum(int(line.split("wrote ")[1].split(" ")[0]) for line in lines) == 12
    assert all("(files): wrote" in line and "dead-lettered" in line for line in lines)


def test_the_run_says_per_thread_which_stage_worked_and_which_waited(tmp_path, caplog,
                                                                      monkeypatch) -> None:
    """Issue 25.5: a slow decode shows as the prefetch thread's work and as the writing
    thread's wait, in the summary (kept in the ledger's run record) and in one log line."""
    import time

    from lsst_alert_pipeline.pipeline import run as pipeline_run

    real = pipeline_run.decode_batch

    def slow_decode(*args, **kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.4)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline_run, "decode_batch", slow_decode)
    summary = consume_files_logged(tmp_path, caplog, seed=72, batch_size=4)
    assert summary.alerts_written == 12
    prefetch, writing = summary.stages["prefetch"], summary.stages["writing"]
    assert prefetch["decode and filter"]["kind"] == "work"
    assert prefetch["decode and filter"]["times"] == 3
    assert float(prefetch["decode and filter"]["seconds"]) >= 3 * 0.4
    # The thread's own CPU: a sleep is wall time, not work of the processor
    assert float(prefetch["decode and filter"]["cpu"]) < float(
        prefetch["decode and filter"]["seconds"]) - 1.0
    waited = sum(float(stage["seconds"]) for name, stage in writing.items()
                 if stage["kind"] == "wait" and name.startswith("waiting for"))
    assert waited >= 2 * 0.4  # the writer waits for each batch after the first one's decode
    for name in ("cutouts and CSV", "sync", "ledger", "offset commit"):
        assert writing[name]["times"] == 3, name
    line = next(r.getMessage() for r in caplog.records
                if r.getMessage().startswith("where the time went: "))
    assert "prefetch thread worked" in line and "writing thread worked" in line
    assert "decode and filter" in line and "(waiting)" in line


def consume_files_logged(folder: Path, caplog: Any, seed: int, batch_size: int) -> Any:
    """12 simulated alert files consumed with the pipeline's INFO log captured."""
    import logging

    from .test_archive import simulated_payloads, write_files

    write_files(folder / "in", simulated_payloads(12, seed=seed))
    settings = config.load(environ={}, flags={"from_paths": [str(folder / "in")],
                                              "output_dir": str(folder / "out"),
                                              "batch_size": batch_size})
    with caplog.at_level(logging.INFO, logger="lsst_alert_pipeline"):
        return consumer.consume(settings)


def test_the_time_line_leaves_out_tiny_stages_but_counts_them() -> None:
    from lsst_alert_pipeline.pipeline.stages import WAIT, StageClock

    clock = StageClock()
    clock.add("writing", "cutouts and CSV", "work", 2.0, 1.5)
    clock.add("writing", "ledger", "work", 0.04, 0.04)
    clock.add("writing", "sync", WAIT, 0.5, 0.0)
    clock.add("prefetch", "decode and filter", "work", 0.01, 0.01)
    line = clock.line()
    assert line == ("writing thread worked 2.0 s and waited 0.5 s: cutouts and CSV 2.0 s, "
                    "sync 0.5 s (waiting); prefetch thread worked 0.0 s and waited 0.0 s: "
                    "no stage took 0.05 s")
    assert clock.as_dict()["writing"]["ledger"] == {"kind": "work", "seconds": 0.04,
                                                     "cpu": 0.04, "times": 1}
