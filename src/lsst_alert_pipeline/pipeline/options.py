"""How long and how much one run reads (`RunOptions`); the configuration holds the defaults."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings

# librdkafka's default max.poll.interval.ms, when the configuration does not set it.
MAX_POLL_INTERVAL_MS = 300_000


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
    # Seconds without a poll before the prefetch thread polls paused to stay in the group
    # (prefetch.py): a fifth of max.poll.interval.ms leaves four fifths of it to spare.
    keep_alive_after: float = MAX_POLL_INTERVAL_MS / 5000

    @classmethod
    def from_settings(cls, settings: Settings) -> RunOptions:
        interval = float(settings.kafka.get("max.poll.interval.ms", MAX_POLL_INTERVAL_MS))
        return cls(batch_size=settings.batch_size, batch_seconds=settings.batch_seconds,
                   idle_timeout=settings.idle_timeout, broker_timeout=settings.broker_timeout,
                   max_messages=settings.max_messages, duration=settings.duration,
                   keep_alive_after=interval / 5000)
