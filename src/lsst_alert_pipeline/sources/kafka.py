"""Kafka as a source: confluent-kafka with manual commits of what the pipeline made durable.

Offsets are committed only by `commit(messages)`, which the pipeline calls after the outputs of
those messages are durable (docs/architecture.md, Where each guarantee is enforced); auto-commit
is always off.

Threads. The prefetch thread polls (`poll_batch`, `keep_alive`), and librdkafka runs the
rebalance and error callbacks inside those polls, on that thread. The writing thread calls
everything else (`commit`, `caught_up`, `partition_report`, ...). Each attribute below says who
owns it; what both threads touch is read and changed under `self._state` only. Commits run on
one long-lived daemon thread (`_Committer`), so a commit a dead broker never answers can be
given up on at --broker-timeout without blocking the run's end.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, TopicPartition

from ..errors import BrokerUnreachable, ConfigurationError, Interrupted
from .base import Message
from .kafka_commit import Committer, Rebalanced, offsets_after
from .kafka_settings import BATCH_BYTES, CONSUMER_DEFAULTS, CONSUMER_FORCED, librdkafka_config
from .offsets import describe_partition, resolve_reset
from .retention_watch import Loss, RetentionWatch

log = logging.getLogger(__name__)

# Where the output's ledger says a group's recorded batches of a partition reach, given the
# committed offset: (group, topic, partition, committed) -> the last offset of the recorded
# contiguous range holding it, or None. The pipeline passes it in (sources never import it).
ResumePoint = Callable[[str, str, int, int], int | None]


class KafkaSource:
    def __init__(self, config: dict[str, Any], topics: list[str], reset: str | None = None,
                 commit_timeout: float = 300.0, resume: ResumePoint | None = None):
        # Set here, read-only afterwards.
        self.topics = topics
        self.resume = resume
        self.commit_timeout = commit_timeout  # --broker-timeout: how long any wait may last
        self.reset = reset
        # Guards what both threads touch: assignment, committed_next, read, down_since,
        # last_error, auth_error, retention_losses (which the watch also appends to, under its
        # own lock: a list append is atomic).
        self._state = threading.RLock()
        # The prefetch thread's own (poll_batch, keep_alive and the callbacks they run).
        self.revoked_during_poll = False
        self.reset_done: set[tuple[str, int]] = set()
        self.paused = False
        # Messages a keep-alive poll got from a partition assigned during it (not yet paused):
        # handed out first by the next poll_batch, never dropped.
        self.held: list[Message] = []
        # Shared, under self._state.
        self.retention_losses: list[dict[str, int | str]] = []
        self.down_since: float | None = None
        self.last_error: str | None = None
        self.auth_error: str | None = None
        self.read: dict[tuple[str, int], int] = {}
        self.committed_next: dict[tuple[str, int], int] = {}
        self.assignment: list[TopicPartition] = []
        # Offsets retention deletes while this run reads (sources/retention_watch.py: its own
        # lock guards it).
        self.watch = RetentionWatch(self.retention_losses)
        settings = {**CONSUMER_DEFAULTS,
                    **librdkafka_config(config),
                    **CONSUMER_FORCED, "error_cb": self._on_error}
        try:
            self.consumer = Consumer(settings)
        except KafkaException as exc:
            raise ConfigurationError(f"Kafka configuration rejected: {exc.args[0].str()}") from exc
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"Kafka configuration rejected: {exc}") from exc
        self.group_id = str(settings["group.id"])
        self._committer = Committer(self.consumer)

    def _on_error(self, error: KafkaError) -> None:
        code = error.code()
        lost = (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE)
        with self._state:
            self.last_error = error.str()
            if code in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED,
                        KafkaError.TOPIC_AUTHORIZATION_FAILED,
                        KafkaError.GROUP_AUTHORIZATION_FAILED):
                self.auth_error = error.str()
            newly_down = code in lost and self.down_since is None
            if newly_down:
                self.down_since = time.monotonic()
            if error.fatal():
                self.auth_error = self.auth_error or error.str()
        if newly_down:
            log.warning("broker connection lost (%s); librdkafka keeps retrying, for up to %.0f s "
                        "(--broker-timeout)", error.str(), self.commit_timeout)

    def connect(self, timeout: float | None = None, stop: threading.Event | None = None) -> None:
        """Check the broker answers and the topics exist, then subscribe; a broker that does
        not answer is asked again until `timeout` (default: --broker-timeout) has passed, or
        `stop` is set (a signal: Interrupted)."""
        timeout = self.commit_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        said_waiting = False
        while True:
            try:
                # Short asks, so that a signal is heard within a second or two.
                metadata = self.consumer.list_topics(
                    timeout=max(0.1, min(2.0, deadline - time.monotonic())))
                break
            except KafkaException as exc:
                with self._state:
                    detail = self.auth_error or self.last_error or exc.args[0].str()
                    refused = self.auth_error is not None
                if stop is not None and stop.is_set():
                    raise Interrupted("stopped by a signal while waiting for the Kafka broker "
                                      f"({detail}); nothing read, nothing committed") from exc
                if refused or time.monotonic() >= deadline:
                    raise BrokerUnreachable(
                        f"cannot reach the Kafka broker ({detail}) within {timeout:.0f} s "
                        "(--broker-timeout); check bootstrap.servers, security.protocol and the "
                        "SASL/SSL settings") from exc
                if not said_waiting:
                    said_waiting = True
                    log.warning("cannot reach the Kafka broker yet (%s); trying again for up to "
                                "%.0f s (--broker-timeout)", detail, timeout)
        with self._state:
            refused_by = self.auth_error
        if refused_by:
            raise BrokerUnreachable(f"the broker refused our credentials: {refused_by}")
        missing = [topic for topic in self.topics if topic not in metadata.topics]
        if missing:
            visible = sorted(t for t in metadata.topics if not t.startswith("__"))
            raise ConfigurationError(
                f"topic(s) {', '.join(missing)} not found on the broker; the credentials see: "
                f"{', '.join(visible) or 'no topics'}")
        self.consumer.subscribe(self.topics, on_assign=self._on_assign,
                                on_revoke=self._on_revoke)

    def watermarks(self, tp: TopicPartition) -> tuple[int, int]:
        """(low, high) watermark of a partition, asked afresh from the broker."""
        low, high = self.consumer.get_watermark_offsets(
            TopicPartition(tp.topic, tp.partition), timeout=10, cached=False)
        return int(low), int(high)

    def offset_for_time(self, tp: TopicPartition, epoch_ms: int) -> int:
        """Kafka's offsets-for-times answer: first offset at or after the time, -1 if none."""
        found = self.consumer.offsets_for_times(
            [TopicPartition(tp.topic, tp.partition, epoch_ms)], timeout=10)
        return int(found[0].offset)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Apply --reset-offsets once per partition and step over offsets lost to retention,
        saying so; the new positions are committed at once, so the group's offsets move even
        when nothing is consumed afterwards."""
        moved = []
        for tp in partitions:
            key = (tp.topic, tp.partition)
            low, high = self.watermarks(tp)
            target = None
            if self.reset is not None and key not in self.reset_done:
                self.reset_done.add(key)
                target = resolve_reset(self.reset, low, high,
                                       functools.partial(self.offset_for_time, tp))
                log.info("%s/%d: offsets reset to %d (--reset-offsets %s)", tp.topic,
                         tp.partition, target, self.reset)
            else:
                # Another member may have committed since this one last held the partition.
                with self._state:
                    self.committed_next.pop(key, None)
                committed = self._next_offset(tp)
                if committed is not None:
                    with self._state:
                        self.committed_next[key] = committed
                    target = self._resume_point(tp, committed, high)
                start = target if target is not None else committed
                if start is not None and start < low:
                    lost = low - start
                    with self._state:
                        self.retention_losses.append({"topic": tp.topic,
                                                      "partition": tp.partition,
                                                      "from": start, "to": low, "lost": lost})
                    log.error("%s/%d: %d alerts (offsets %d to %d) were deleted by the broker's "
                              "retention before this group read them; going on from offset %d",
                              tp.topic, tp.partition, lost, start, low - 1, low)
                    target = low
            if target is not None:
                tp.offset = target
                moved.append(TopicPartition(tp.topic, tp.partition, target))
        consumer.assign(partitions)
        # librdkafka keeps an application pause on a partition across unassign and assign: one
        # paused by keep_alive before a rebalance would come back paused, and stay so.
        consumer.resume(partitions)
        if moved:
            consumer.commit(offsets=moved, asynchronous=False)
        with self._state:
            for tp in moved:
                self.committed_next[(tp.topic, tp.partition)] = tp.offset
            self.assignment = list(partitions)
        log.info("assigned %s", ", ".join(f"{p.topic}/{p.partition}" for p in partitions))

    def _resume_point(self, tp: TopicPartition, committed: int, high: int) -> int | None:
        """Where the output says to start rather than the committed offset: past the batches
        this group recorded there whose offsets were never committed (a member that lost the
        partition in a rebalance, or crashed, after its ledger commit); None to start at it."""
        if self.resume is None or self.reset is not None:
            return None  # --reset-offsets asks to read again what is written (a replay)
        last = self.resume(self.group_id, tp.topic, tp.partition, committed)
        if last is None or last < committed:
            return None
        if last + 1 > high:
            log.warning("%s/%d: the output's ledger records this group's batches up to offset "
                        "%d, past the partition's end (%d): was the topic recreated? Reading "
                        "from the committed offset %d", tp.topic, tp.partition, last, high,
                        committed)
            return None
        log.info("%s/%d: offsets %d to %d are already written to the output (recorded in its "
                 "ledger, not yet committed); going on from offset %d", tp.topic, tp.partition,
                 committed, last, last + 1)
        return last + 1

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.revoked_during_poll = True
        gone = {(p.topic, p.partition) for p in partitions}
        self.watch.forget(gone)
        with self._state:
            self.assignment = [p for p in self.assignment if (p.topic, p.partition) not in gone]

    def keep_alive(self, timeout: float) -> None:
        """Poll without taking messages, every assigned partition paused: this resets
        librdkafka's max.poll.interval.ms timer and serves rebalances while a slow batch is
        written (pipeline/prefetch.py). The next poll_batch resumes the partitions."""
        assignment = self.consumer.assignment()
        if assignment:
            self.consumer.pause(assignment)
            self.paused = True
        try:
            polled = self.consumer.consume(num_messages=50, timeout=timeout)
        except KafkaException as exc:
            raise BrokerUnreachable(f"consuming failed: {exc.args[0].str()}") from exc
        self._take(polled, self.held)

    def _take(self, polled: list[Any], into: list[Message]) -> int:
        """Append the polled messages (errors logged or raised) to `into`; their bytes."""
        size = 0
        for message in polled:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                if error.code() == KafkaError._AUTO_OFFSET_RESET and message.topic():
                    self._out_of_range(message)
                    continue
                if error.fatal():
                    raise BrokerUnreachable(f"fatal consumer error: {error.str()}")
                log.warning("consumer error: %s", error.str())
                continue
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            assert topic is not None and partition is not None
            payload = message.value() or b""
            size += len(payload)
            into.append(Message(payload, f"{topic}/{partition}/{offset}", topic, partition,
                                offset, message.key()))
            key = (topic, partition)
            with self._state:
                self.read[key] = self.read.get(key, 0) + 1
            self.watch.taken(key, offset, self._low)
        return size

    def _low(self, key: tuple[str, int]) -> int:
        return self.watermarks(TopicPartition(*key))[0]

    def _out_of_range(self, message: Any) -> None:
        """auto.offset.reset=error: librdkafka stopped the partition at an offset the broker
        does not hold. Count what retention deleted and read on from the low watermark."""
        tp = TopicPartition(message.topic(), message.partition())
        if message.offset() is None:  # a group without a committed offset: no loss to count
            log.error("%s/%d: %s; choose where to start with --reset-offsets earliest, latest or "
                      "a time", tp.topic, tp.partition, message.error().str())
            return
        low, high = self.watermarks(tp)
        going_on = self.watch.out_of_range((tp.topic, tp.partition), int(message.offset()),
                                           low, high)
        self.consumer.seek(TopicPartition(tp.topic, tp.partition, going_on))

    def new_retention_losses(self) -> list[Loss]:
        """Losses found since the last call, for the ledger; once recorded, commits may pass
        them (so `status` shows the new position, and no later run counts them again)."""
        return self.watch.unrecorded()

    def poll_batch(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to max_messages (and BATCH_BYTES) messages, returning as soon as the local queue
        runs dry: with 100-300 KB alerts librdkafka's queue (queued.max.messages.kbytes) holds
        fewer than a batch, so waiting for a full count would wait out the timeout each time."""
        if self.paused:
            self.consumer.resume(self.consumer.assignment())
            self.paused = False
        batch, self.held = self.held, []
        size = sum(len(m.payload) for m in batch)
        deadline = time.monotonic() + timeout
        while len(batch) < max_messages and size < BATCH_BYTES:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                polled = self.consumer.consume(num_messages=max_messages - len(batch),
                                               timeout=min(left, 0.1))
            except KafkaException as exc:
                raise BrokerUnreachable(f"consuming failed: {exc.args[0].str()}") from exc
            with self._state:
                refused_by = self.auth_error
            if refused_by:
                raise BrokerUnreachable(f"the broker refused our credentials: {refused_by}")
            size += self._take(polled, batch)
            if polled:
                with self._state:
                    self.down_since = None
            elif batch:
                break
        if self.revoked_during_poll:
            # A rebalance took partitions away while this batch was gathered: their messages go
            # to the new owner, which reads them from the last committed offset.
            owned = self._owned()
            batch = [m for m in batch if (m.topic, m.partition) in owned]
            self.revoked_during_poll = False
        return batch

    def commit(self, messages: list[Message]) -> None:
        """Commit, per partition, the offset after the last of these messages, and past the
        offsets retention deleted once they are in the ledger (sync, retried)."""
        owned = self._owned()
        with self._state:
            committed_next = dict(self.committed_next)
        next_offsets = self.watch.past_losses(offsets_after(messages, owned, committed_next),
                                              committed_next, owned)
        if not next_offsets:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in next_offsets.items()]
        try:
            self._committer.commit(offsets, self.commit_timeout)
        except Rebalanced as exc:
            log.info("offset commit refused by a rebalance (%s): the partitions' new owner reads "
                     "from the last commit and the ledger skips what is written", exc)
            return
        with self._state:
            self.committed_next.update(next_offsets)
        self.watch.committed(next_offsets)

    def _owned(self) -> set[tuple[str, int]]:
        with self._state:
            return {(tp.topic, tp.partition) for tp in self.assignment}

    def _next_offset(self, tp: TopicPartition) -> int | None:
        key = (tp.topic, tp.partition)
        with self._state:
            if key in self.committed_next:
                return self.committed_next[key]
        committed = self.consumer.committed([TopicPartition(tp.topic, tp.partition)], timeout=10)
        offset = committed[0].offset
        return None if offset == OFFSET_INVALID or offset < 0 else int(offset)

    def partition_report(self) -> list[dict[str, int | str]]:
        """Per assigned partition: read this run, committed position, watermarks, lag."""
        report: list[dict[str, int | str]] = []
        with self._state:
            assignment = list(self.assignment)
        for tp in assignment:
            low, high = self.watermarks(tp)
            row = describe_partition(tp.topic, tp.partition, self._next_offset(tp), low, high)
            with self._state:
                row["read"] = self.read.get((tp.topic, tp.partition), 0)
            # What this run found deleted, at assignment or while reading.
            row["lost_to_retention"] = self.watch.lost_on((tp.topic, tp.partition))
            report.append(row)
        return report

    def backlog(self) -> int | None:
        """Messages past the committed offsets up to the high watermarks librdkafka last saw in
        a fetch (no request to the broker); None before every partition has been fetched."""
        with self._state:
            assignment = list(self.assignment)
            committed_next = dict(self.committed_next)
        if not assignment:
            return None
        left = 0
        for tp in assignment:
            try:  # a progress line never stops the run
                low, high = self.consumer.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), cached=True)
            except KafkaException:
                return None
            if high < 0:
                return None
            key = (tp.topic, tp.partition)
            done = max(committed_next.get(key, 0), low, 0)
            left += max(0, high - done)
        return left

    def caught_up(self) -> bool:
        """Lag 0 on every assigned partition, watermarks read afresh (never just 'quiet')."""
        with self._state:
            if not self.assignment:
                return False
        try:
            report = self.partition_report()
        except KafkaException:
            return False
        with self._state:
            self.down_since = None  # the broker answered
        for row in report:
            # Nothing came although the low watermark passed the next offset expected: the
            # offsets in between were deleted (librdkafka reset past them without a word).
            self.watch.behind((str(row["topic"]), int(row["partition"])), int(row["low"]))
        return all(row["lag"] == 0 for row in report)

    def retention_lost(self) -> int:
        with self._state:
            return sum(int(loss["lost"]) for loss in self.retention_losses)

    def broker_down_for(self) -> float:
        with self._state:
            down_since = self.down_since
        return 0.0 if down_since is None else time.monotonic() - down_since

    def _close_quietly(self) -> None:
        with contextlib.suppress(KafkaException, RuntimeError):
            self.consumer.close()

    def close(self) -> None:
        if self._committer.stuck:
            # close() would wait behind the stuck commit: close in the background instead, so a
            # broker that comes back sees this member leave rather than hold its partitions.
            log.warning("closing the consumer in the background: a commit is still waiting for "
                        "the broker")
            threading.Thread(target=self._close_quietly, name="close-consumer",
                             daemon=True).start()
            return
        self._committer.close()
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError):
            log.warning("closing the consumer failed; the group rebalances after its timeout")
