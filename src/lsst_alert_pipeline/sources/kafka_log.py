"""librdkafka's own log, through ours: each distinct message once, repeats counted.

Left alone, librdkafka writes to stderr with epoch timestamps, ~20 lines a second while a broker
is down (the same "Connection refused" thousands of times in a night's outage). Given a Python
logger (the client's `logger` setting), it hands its lines to it when the consumer polls; the
filter here lets the first of each kind through and folds the repeats into one line a minute.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

REPEAT_WINDOW = 60.0  # seconds: repeats of one message are told at most this often
# Parts of a message that differ between repeats of one event: numbers, addresses, durations.
_VARYING = re.compile(r"\d+(?:\.\d+)?")


class OncePerKind(logging.Filter):
    """Passes the first record of each kind of message, then one line per REPEAT_WINDOW
    saying how many more came; a kind is the message with its numbers blanked."""

    def __init__(self, window: float = REPEAT_WINDOW,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()  # records come from whichever thread polls
        self._kinds: dict[str, tuple[float, int]] = {}  # kind -> (last told, repeats since)

    def filter(self, record: logging.LogRecord) -> bool:
        kind = _VARYING.sub("#", record.getMessage())
        now = self.clock()
        with self._lock:
            told, repeats = self._kinds.get(kind, (-self.window, 0))
            if now - told < self.window:
                self._kinds[kind] = (told, repeats + 1)
                return False
            self._kinds[kind] = (now, 0)
        if repeats:
            record.msg = f"{record.getMessage()} (and {repeats:,} times more in the last " \
                         f"{now - told:.0f} s)"
            record.args = ()
        return True


def librdkafka_logger() -> logging.Logger:
    """The logger librdkafka's lines go to (the `logger` client setting), deduplicated."""
    logger = logging.getLogger("lsst_alert_pipeline.librdkafka")
    if not any(isinstance(f, OncePerKind) for f in logger.filters):
        logger.addFilter(OncePerKind())
    return logger
