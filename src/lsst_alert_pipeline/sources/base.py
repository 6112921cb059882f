"""The source interface: `Message` (bytes and where they came from) and the `Source` protocol.

A new source (a broker not written yet) implements `Source` (docs/architecture.md, How to add a
new source)."""

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


class Source(Protocol):
    """A source of messages; the pipeline commits only what its sinks made durable."""

    def poll_batch(self, max_messages: int, timeout: float) -> list[Message]: ...
    def commit(self, messages: list[Message]) -> None: ...
    def caught_up(self) -> bool: ...
    def broker_down_for(self) -> float: ...
    def partition_report(self) -> list[dict[str, int | str]]: ...
    def retention_lost(self) -> int: ...
    def new_retention_losses(self) -> list[dict[str, int | str]]: ...


class Brokerless:
    """What a source without a broker says of one: never down, no partitions, nothing lost to
    retention (files; `verify --repair`'s re-read, whose broker is not the group's)."""

    def broker_down_for(self) -> float:
        return 0.0

    def partition_report(self) -> list[dict[str, int | str]]:
        return []

    def retention_lost(self) -> int:
        return 0

    def new_retention_losses(self) -> list[dict[str, int | str]]:
        return []
