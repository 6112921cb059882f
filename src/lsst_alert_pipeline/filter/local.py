"""The user's filter run by the consumer on what a broker delivered (docs/brokers.md).

Fink, Lasair and Babamul stream LSST alerts the user's ANTARES filter never saw: the consumer
builds the locus `filter-test` builds from each alert and its history and runs the same filter
file through the DevKit. `local_verdicts` is the one place that decides; a faster evaluation
replaces it once a test shows it gives the DevKit's verdict on every alert.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from antares_devkit.models import BaseFilter

from ..decode.formats import DecodedAlert
from .devkit_run import FilterResult, load_filter, run_on_alert

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

    def verdicts(self, alerts: Sequence[DecodedAlert]) -> list[FilterResult]:
        return local_verdicts(self.instance, alerts)

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
