"""Offset commits that give up at --broker-timeout: one daemon thread runs them, retried.

librdkafka's synchronous commit waits without bound while no broker answers; run on this
thread, the writing thread can stop waiting at its deadline and end the run with exit 3.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from ..errors import BrokerUnreachable
from .base import Message

log = logging.getLogger(__name__)

# Commit errors that mean "the group rebalanced under this batch", not "the broker is gone".
REBALANCED = {KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
              KafkaError.UNKNOWN_MEMBER_ID, KafkaError._ASSIGNMENT_LOST}


class Rebalanced(Exception):  # noqa: N818
    """The group rebalanced under the batch: its partitions' new owner reads from the last
    commit (not a failure: the ledger skips what is written)."""


class Committer:
    """One daemon thread that runs the consumer's synchronous commits, one at a time.

    librdkafka's synchronous commit waits without bound while no broker answers; run here, the
    writing thread can stop waiting at its deadline. Daemon: a commit stuck at exit must not
    hold the process (its offsets were never promised: the ledger skips the redelivery)."""

    def __init__(self, consumer: Consumer):
        self.consumer = consumer
        # None ends the thread (close)
        self.requests: queue.Queue[tuple[list[TopicPartition], Future[None]] | None] = (
            queue.Queue())
        self.thread: threading.Thread | None = None
        self.stuck = False  # a commit got no answer by its deadline (the writing thread's)

    def submit(self, offsets: list[TopicPartition]) -> Future[None]:
        if self.thread is None:
            self.thread = threading.Thread(target=self._work, name="offset-commit", daemon=True)
            self.thread.start()
        done: Future[None] = Future()
        self.requests.put((offsets, done))
        return done

    def close(self) -> None:
        """End the thread once the commits asked for are done (a run in a process that runs
        others, `[[sources]]` or a test, must not leave one behind per run)."""
        if self.thread is not None:
            self.requests.put(None)
            self.thread.join(timeout=10)
            self.thread = None

    def _work(self) -> None:
        while (request := self.requests.get()) is not None:
            offsets, done = request
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
                done.set_result(None)
            except BaseException as exc:  # handed to the writing thread
                done.set_exception(exc)

    def commit(self, offsets: list[TopicPartition], timeout: float) -> None:
        """Commit, retrying with backoff for up to `timeout` seconds (--broker-timeout);
        raises Rebalanced, or BrokerUnreachable once the time is up."""
        delay = 0.5
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                self._commit_before(offsets, deadline, timeout)
                return
            except KafkaException as exc:
                if exc.args[0].code() in REBALANCED:
                    raise Rebalanced(exc.args[0].str()) from exc
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrokerUnreachable(
                        f"could not commit offsets within {timeout:.0f} s (--broker-timeout; "
                        f"{attempt} attempts, last: {exc.args[0].str()}); outputs are safe and "
                        "the ledger skips them when the broker redelivers") from exc
                if attempt == 1:
                    log.warning("offset commit failed (%s); retrying for up to %.0f s "
                                "(--broker-timeout)", exc.args[0].str(), left)
                time.sleep(min(delay, left))
                delay = min(delay * 2, 10)

    def _commit_before(self, offsets: list[TopicPartition], deadline: float,
                       timeout: float) -> None:
        done = self.submit(offsets)
        try:
            done.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            self.stuck = True
            raise BrokerUnreachable(
                f"offset commit got no answer from the broker within {timeout:.0f} s "
                "(--broker-timeout); outputs are safe and the ledger skips them when the broker "
                "redelivers") from None


def offsets_after(messages: Sequence[Message], owned: set[tuple[str, int]],
                  committed_next: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    """Per partition, the offset after the last of these messages; without the partitions that
    moved away while the batch was written (their outputs are in the ledger: the new owner
    skips them), and those whose group offset another member already moved past."""
    next_offsets: dict[tuple[str, int], int] = {}
    for message in messages:
        if message.topic is None or message.partition is None or message.offset is None:
            continue
        key = (message.topic, message.partition)
        next_offsets[key] = max(next_offsets.get(key, 0), message.offset + 1)
    for key in [key for key in next_offsets if key not in owned]:
        log.info("%s/%d moved to another consumer during the batch; not committing it", *key)
        del next_offsets[key]
    # Moved away and back meanwhile: never move the group's offset back over another's work.
    for key in [key for key, offset in next_offsets.items()
                if offset <= committed_next.get(key, -1)]:
        log.info("%s/%d: the group's committed offset is already %d, past this batch's "
                 "(another member wrote it meanwhile); not committing it", *key,
                 committed_next[key])
        del next_offsets[key]
    return next_offsets
