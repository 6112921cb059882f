"""A message as every source hands it to the pipeline: bytes and where they came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Message:
    payload: bytes
    origin: str  # "topic/partition/offset" or a file path: names dead letters and log lines
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
