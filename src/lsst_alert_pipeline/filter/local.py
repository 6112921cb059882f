"""The user's filter run by the consumer on what a broker delivered (docs/brokers.md).

Fink, Lasair and Babamul stream LSST alerts the user's ANTARES filter never saw: the consumer
builds the locus `filter-test` builds from each alert and its history and runs the same filter
file through the DevKit. On raw Rubin alerts (files, a plain topic, given `--filter`) the
payloads go through fast.py, which gives the DevKit's verdict (tests/test_fast_filter.py).
`local_verdicts` decides on a broker's packets; a faster evaluation replaces it once a test
shows it gives the DevKit's verdict on every alert.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from antares_devkit.models import BaseFilter

from ..decode.formats import DecodedAlert
from ..decode.schemas import SchemaSource
from .devkit_run import FilterResult, load_filter, run_on_alert

if TYPE_CHECKING:
    from .fast import FastFilter

log = logging.getLogger(__name__)
_NUMBER = re.compile(r"[-+]?\d[\d.]*(?:e[-+]?\d+)?")


def local_verdicts(filter_instance: BaseFilter,
                   alerts: Sequence[DecodedAlert]) -> list[FilterResult]:
    """The DevKit's verdict on each alert: its locus built as `filter-test` builds it."""
    return [run_on_alert(filter_instance, alert, "") for alert in alerts]


class LocalFilter:
    """A filter file loaded once and the reasons of what it turned away (logged per run)."""

    def __init__(self, path: str | Path | None = None):
        self.filter_class = load_filter(path)
        self.instance = self.filter_class()
        self.path = str(path) if path is not None else "the bundled filter"
        self.lock = threading.Lock()  # the prefetch thread decides, the writing thread reports
        self.reasons: Counter[str] = Counter()
        self._fast: FastFilter | None = None  # made on the first raw payloads (files, topics)

    def verdicts(self, alerts: Sequence[DecodedAlert]) -> list[FilterResult]:
        return local_verdicts(self.instance, alerts)

    def payload_verdicts(self, payloads: Sequence[bytes],
                         schemas: SchemaSource) -> list[list[FilterResult]]:
        """Per raw payload (a Rubin wire payload, an alert file), the verdict on each alert it
        holds: fast.py's path where a test proves it gives the DevKit's verdict (the shipped
        filter up to its constants, wire payloads), the DevKit otherwise."""
        if self._fast is None:
            from .fast import FastFilter

            self._fast = FastFilter(self.filter_class, schemas)
            if self._fast.fallback:
                log.warning("local filter %s runs through the ANTARES DevKit, ~10x slower: %s",
                            self.path, self._fast.fallback)
        return self._fast.results(payloads)

    def turned_away(self, result: FilterResult) -> str:
        """Note an alert that did not pass; its reason as the log line counts it."""
        reason = f"{result.outcome}: {_NUMBER.sub('#', result.reason)}"
        with self.lock:
            self.reasons[reason] += 1
        return reason

    def summary(self) -> str | None:
        """The reasons alerts were filtered out since the last call, most frequent first."""
        with self.lock:
            reasons, self.reasons = self.reasons, Counter()
        if not reasons:
            return None
        return ", ".join(f"{reason} ({count:,})" for reason, count in reasons.most_common())
