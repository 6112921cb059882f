"""`consume` over a configuration file's `[[sources]]` (docs/brokers.md, "One cron line for all
brokers"): each source in turn into the one output directory, by the one-source run
(consume.py), each with its own group and offsets; the run's status is the worst of theirs.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import exitcodes
from ..config import Settings
from .consume import RunObserver, consume
from .outcome import RunSummary

log = logging.getLogger("lsst_alert_pipeline")

# The run's status is the first of these any source ended with. A signal first: the whole run
# was stopped, and the cron wrapper skips retention on 4. Then what no later run gets past
# without a person (a bug, the disk, a second consumer, the configuration), then a broker or a
# stream that failed this time, then the successes that lost or set aside alerts, then success.
SEVERITY = (exitcodes.INTERRUPTED, exitcodes.INTERNAL_ERROR, exitcodes.OUTPUT_ERROR,
            exitcodes.ALREADY_RUNNING, exitcodes.CONFIG_ERROR, exitcodes.BROKER_UNREACHABLE,
            exitcodes.STALLED, exitcodes.ALL_DEADLETTERED, exitcodes.RETENTION_LOSS,
            exitcodes.OK)


def worst(codes: list[int]) -> int:
    """The most severe status by SEVERITY (a status it does not list counts as the worst)."""
    return min(codes, key=lambda code: SEVERITY.index(code) if code in SEVERITY else -1,
               default=exitcodes.OK)


@dataclass
class SourcesOutcome:
    """What each source's run ended with, in order, and the whole run's status."""

    runs: list[tuple[str, RunSummary]] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)  # a signal came before their turn

    @property
    def exit_code(self) -> int:
        codes = [summary.exit_code for _, summary in self.runs]
        return worst(codes + ([exitcodes.INTERRUPTED] if self.not_started else []))

    def line(self) -> str:
        """'source 1 (fink): exit 0, ...; source 2 (lasair): exit 3, ...' for the last log line."""
        said = [f"{label}: exit {summary.exit_code} ({summary.outcome}), "
                f"{summary.alerts_written:,} alerts written" for label, summary in self.runs]
        said += [f"{label}: not started" for label in self.not_started]
        return "; ".join(said)


def label_of(number: int, settings: Settings) -> str:
    return f"source {number} ({settings.preset or ('files' if settings.from_paths else 'kafka')})"


def consume_sources(sources: list[Settings], stop: threading.Event | None = None,
                    observer: RunObserver | None = None,
                    ended: Callable[[RunSummary], None] | None = None) -> SourcesOutcome:
    """Each source in turn; one failing does not stop the next (a broker down for one is no
    reason to miss another's alerts), a signal does. --duration is shared out: each source
    may take an equal share of what is left, and what it leaves goes to those after it."""
    started = time.monotonic()
    outcome = SourcesOutcome()
    for number, settings in enumerate(sources, 1):
        label = label_of(number, settings)
        if stop is not None and stop.is_set():
            log.warning("%s not started: the run was stopped by a signal", label)
            outcome.not_started.append(label)
            continue
        if settings.duration is not None:
            left = max(settings.duration - (time.monotonic() - started), 0.0)
            settings = dataclasses.replace(settings,
                                           duration=left / (len(sources) - number + 1))
        log.info("%s starting: %s -> %s", label, settings.source_label, settings.output_dir)
        summary = consume(settings, stop, observer=observer)
        if ended is not None:
            ended(summary)
        log.info("%s finished (exit %d, %s): %s", label, summary.exit_code,
                 exitcodes.MEANING.get(summary.exit_code, "?"), summary.line())
        outcome.runs.append((label, summary))
    return outcome
