"""The prefetch threads: the next batch is polled while this one decodes, librdkafka's read-ahead
is kept while batches are written promptly, and a slow writer still polls paused in time."""

from __future__ import annotations

import threading
from pathlib import Path

from lsst_alert_pipeline.pipeline.prefetch import Prefetcher
from lsst_alert_pipeline.pipeline.run import RunOptions
from lsst_alert_pipeline.simulate import simulate_alerts, write_wire_files
from lsst_alert_pipeline.sources.base import Message
from lsst_alert_pipeline.sources.files import FileSource


class CountingSource(FileSource):
    """Real alert files; notes each poll and each paused keep-alive poll."""

    def __init__(self, paths: list[Path]):
        super().__init__(paths)
        self.keep_alives = 0
        self.polls = 0
        self.second_poll = threading.Event()

    def poll_batch(self, max_messages: int, timeout: float) -> list[Message]:
        self.polls += 1
        if self.polls == 2:
            self.second_poll.set()
        return super().poll_batch(max_messages, timeout)

    def keep_alive(self, timeout: float) -> None:
        self.keep_alives += 1
        super().keep_alive(timeout)


def files(tmp_path: Path, count: int) -> list[Path]:
    write_wire_files(simulate_alerts(count, schema_version="11.1", seed=31, history=(0, 1)),
                     tmp_path / "in", "11.1")
    return [tmp_path / "in"]


def options(keep_alive_after: float) -> RunOptions:
    return RunOptions(batch_size=4, batch_seconds=30.0, idle_timeout=30, broker_timeout=30,
                      poll_timeout=0.2, keep_alive_after=keep_alive_after)


def names(decode_calls: list[list[Message]]) -> list[str]:
    return [message.origin for batch in decode_calls for message in batch]


def test_the_next_batch_is_polled_while_this_one_is_decoded(tmp_path: Path) -> None:
    source = CountingSource(files(tmp_path, 8))
    overlapped: list[bool] = []

    def decode(batch: list[Message]) -> list[object]:
        if not overlapped:  # the first batch: done only once the second poll has begun
            overlapped.append(source.second_poll.wait(timeout=30))
        return [[] for _ in batch]

    prefetch = Prefetcher(source, decode, options(keep_alive_after=60.0))
    try:
        first, _ = prefetch.next(timeout=30)
        prefetch.written(len(first), 0.1)
        second, _ = prefetch.next(timeout=30)
    finally:
        prefetch.close()
    assert overlapped == [True]
    assert [m.origin for m in first + second] == [str(p) for p in source.files]


def test_batches_written_before_keep_alive_after_never_pause_the_source(
        tmp_path: Path) -> None:
    """Pausing purges librdkafka's read-ahead: a writer that is merely busy (both batches in
    hand for a while) must not cause it."""
    source = CountingSource(files(tmp_path, 12))
    decoded: list[list[Message]] = []
    prefetch = Prefetcher(source, lambda b: decoded.append(b) or [[] for _ in b],
                          options(keep_alive_after=60.0))
    try:
        for _ in range(3):
            batch, _ = prefetch.next(timeout=30)
            # Both slots taken: the fetch thread waits for one, and it waits well past its
            # 0.2 s slot timeout, several times.
            threading.Event().wait(1.0)
            prefetch.written(len(batch), 1.0)
    finally:
        prefetch.close()
    assert source.keep_alives == 0
    assert names(decoded) == [str(p) for p in source.files]


def test_a_writer_slower_than_keep_alive_after_gets_paused_polls(tmp_path: Path) -> None:
    source = CountingSource(files(tmp_path, 8))
    prefetch = Prefetcher(source, lambda b: [[] for _ in b], options(keep_alive_after=0.1))
    try:
        batch, _ = prefetch.next(timeout=30)
        threading.Event().wait(1.5)  # hold both batches well past keep_alive_after
        prefetch.written(len(batch), 1.5)
    finally:
        prefetch.close()
    assert source.keep_alives >= 1
