"""Progress: a live line on a terminal, a log line every interval otherwise, with what is left
to read and, once a rate is measured, about how long it takes (a catch-up after an outage)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

log = logging.getLogger("lsst_alert_pipeline")


def duration(seconds: float) -> str:
    """'45 s', '12 min', '3 h 20 min': as precise as an estimate deserves."""
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds // 3600:.0f} h {seconds % 3600 / 60:.0f} min"


class Progress:
    def __init__(self, stream: TextIO | None = None, interval: float = 30.0):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.interval = 0.5 if self.live else interval
        self.started = self.last = time.monotonic()
        self.first: tuple[float, int] | None = None  # (when, messages) at the first batch

    def update(self, written: int, skipped: int, dead: int, messages: int = 0,
               backlog: Callable[[], int | None] | None = None) -> None:
        """After each batch: `messages` read so far; `backlog` says how many are left to read
        (None when the source cannot tell), asked only when a line is shown."""
        now = time.monotonic()
        if self.first is None:
            self.first = (now, messages)
        if now - self.last < self.interval:
            return
        self.last = now
        rate = written / max(now - self.started, 1e-9)
        text = (f"{written:,} alerts written, {skipped:,} already on disk, "
                f"{dead:,} dead-lettered ({rate:,.0f}/s)")
        try:
            left = backlog() if backlog is not None else None
        except Exception:  # noqa: BLE001 - an estimate is not worth stopping a run for
            left = None
        if left is not None:
            text += f", {left:,} messages left"
            # The rate since the first batch: the group's join is not a cost of what is left.
            since, before = self.first
            reading = (messages - before) / (now - since) if now > since else 0.0
            if left and reading > 0:
                text += f", about {duration(left / reading)} to go"
        if self.live:
            self.stream.write("\r" + text + " " * 4)
            self.stream.flush()
        else:
            log.info("progress: %s", text)

    def finish(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
