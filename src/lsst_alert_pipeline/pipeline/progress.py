"""Progress: a live line on a terminal, a log line every interval otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger("lsst_alert_pipeline")


class Progress:
    def __init__(self, stream: TextIO | None = None, interval: float = 30.0):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.interval = 0.5 if self.live else interval
        self.started = self.last = time.monotonic()

    def update(self, written: int, skipped: int, dead: int) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        rate = written / max(now - self.started, 1e-9)
        text = (f"{written:,} alerts written, {skipped:,} already on disk, "
                f"{dead:,} dead-lettered ({rate:,.0f}/s)")
        if self.live:
            self.stream.write("\r" + text + " " * 4)
            self.stream.flush()
        else:
            log.info("progress: %s", text)

    def finish(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
