"""How long and how much one run reads (`RunOptions`); the configuration holds the defaults."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings


@dataclass
class RunOptions:
    """How long and how much a run reads; `from_settings` takes them from the configuration,
    which holds their defaults (config.Settings)."""

    batch_size: int
    batch_seconds: float  # a batch holds what is written in about this long
    idle_timeout: float
    broker_timeout: float
    max_messages: int | None = None
    duration: float | None = None
    poll_timeout: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RunOptions:
        return cls(batch_size=settings.batch_size, batch_seconds=settings.batch_seconds,
                   idle_timeout=settings.idle_timeout, broker_timeout=settings.broker_timeout,
                   max_messages=settings.max_messages, duration=settings.duration)
