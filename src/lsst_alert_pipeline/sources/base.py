"""The source interface: `Message` (bytes and where they came from) and the `Source` protocol.

A new source (a broker not written yet) implements `Source`: everything the pipeline calls on a
source is listed there, and `Brokerless` gives the answers of a source without a broker
(docs/architecture.md, How to add a new source).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Message:
    payload: bytes
    origin: str  # "topic/partition/offset" or a file path: names dead letters and log lines
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None  # the Kafka key: Fink's holds the value's Avro writer schema


class Source(Protocol):
    """A source of messages; the pipeline commits only what its sinks made durable.

    Threads: `poll_batch` and `keep_alive` are called by the prefetch thread only; every other
    method by the thread that writes batches (pipeline/run.py). A source whose two sides share
    state guards it (sources/kafka.py says which lock guards what)."""

    group_id: str  # the consumer group whose offsets `commit` moves; '' without a broker

    def poll_batch(self, max_messages: int, timeout: float) -> list[Message]:
        """Up to `max_messages` messages, waiting at most about `timeout` seconds for the first."""
        ...

    def keep_alive(self, timeout: float) -> None:
        """Take no message but keep the source's session alive while batches wait to be written
        (a Kafka member must poll within max.poll.interval.ms); may block up to `timeout`."""
        ...

    def commit(self, messages: list[Message]) -> None:
        """These messages' outputs are durable: the broker may forget them (after the ledger)."""
        ...

    def caught_up(self) -> bool:
        """Nothing is left to read: every message the source holds is committed."""
        ...

    def backlog(self) -> int | None:
        """Messages left to write as far as the source knows without asking a broker (the
        progress line's estimate of the time left); None when it cannot tell."""
        ...

    def broker_down_for(self) -> float:
        """Seconds since the broker stopped answering; 0 while it answers."""
        ...

    def partition_report(self) -> list[dict[str, int | str]]:
        """Per partition: read this run, committed position, watermarks, lag (`status`)."""
        ...

    def retention_lost(self) -> int:
        """How many messages this run found deleted by the broker's retention before read."""
        ...

    def new_retention_losses(self) -> list[dict[str, int | str]]:
        """The losses found since last asked, for the ledger (each handed out once)."""
        ...

    def close(self) -> None:
        """Leave the broker (a group member leaves the group); called once, at the end."""
        ...


class Brokerless:
    """What a source without a broker says of one: no group, nothing to keep alive or close,
    never down, no partitions, nothing lost to retention (files; `verify --repair`'s re-read,
    whose broker is not the group's)."""

    group_id = ""

    def keep_alive(self, timeout: float) -> None:
        """No session to keep: the prefetch thread's own wait is the pause."""

    def backlog(self) -> int | None:
        return None

    def broker_down_for(self) -> float:
        return 0.0

    def partition_report(self) -> list[dict[str, int | str]]:
        return []

    def retention_lost(self) -> int:
        return 0

    def new_retention_losses(self) -> list[dict[str, int | str]]:
        return []

    def close(self) -> None:
        """Nothing to leave."""
