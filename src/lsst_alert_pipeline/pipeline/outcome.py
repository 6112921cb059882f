"""What one batch produced (`BatchOutcome`) and what a whole run did (`RunSummary`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import exitcodes
from ..sources.base import Message
from .ledger import ArchiveFile, DeadLetter, MissingCutoutRow, WrittenAlert, offset_ranges


@dataclass
class RunSummary:
    messages: int = 0
    alerts_written: int = 0
    already_written: int = 0
    deadlettered: int = 0
    missing_cutouts: int = 0
    values_blanked: int = 0
    lost_to_retention: int = 0
    filtered_out: int = 0
    # Alerts written without values their broker did not carry, per what it lacked (brokers.py)
    incomplete: dict[str, int] = field(default_factory=dict)
    outcome: str = "running"
    reason: str = ""  # what ended a failed run, as logged (the notification says it)
    exit_code: int = exitcodes.OK
    elapsed: float = 0.0
    joined_after: float = 0.0  # seconds until the first batch: group join and first fetch
    partitions: list[dict[str, int | str]] = field(default_factory=list)
    # Per thread and stage, seconds worked or waited (stages.py)
    stages: dict[str, dict[str, dict[str, float | int | str]]] = field(default_factory=dict)

    def add(self, messages: int, outcome: BatchOutcome) -> None:
        """Count a batch the ledger holds (so a commit failing after it still counts it)."""
        self.messages += messages
        self.alerts_written += len(outcome.written)
        self.already_written += outcome.already_written
        self.deadlettered += len(outcome.deadletters)
        self.missing_cutouts += outcome.missing_cutouts
        self.values_blanked += outcome.blanked
        self.filtered_out += outcome.filtered_out
        for why, count in outcome.incomplete.items():
            self.incomplete[why] = self.incomplete.get(why, 0) + count

    def line(self) -> str:
        return (f"{self.outcome}: processed {self.messages:,} messages, wrote "
                f"{self.alerts_written:,} alerts, {self.already_written:,} already on disk, "
                f"{self.deadlettered:,} dead-lettered, {self.missing_cutouts:,} missing cutouts, "
                f"{self.values_blanked:,} unusable values blanked, {self.filtered_out:,} filtered "
                f"out, {self.lost_to_retention:,} lost to retention, in {self.elapsed:.1f} s")

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (
            "messages", "alerts_written", "already_written", "deadlettered", "missing_cutouts",
            "values_blanked", "filtered_out", "incomplete",
            "lost_to_retention", "outcome", "exit_code", "elapsed", "partitions", "stages")}


@dataclass
class BatchOutcome:
    written: list[WrittenAlert] = field(default_factory=list)
    csv_lengths: dict[str, int] = field(default_factory=dict)
    deadletters: list[DeadLetter] = field(default_factory=list)
    archive_files: list[ArchiveFile] = field(default_factory=list)
    cutout_files: dict[str, list[str]] = field(default_factory=dict)  # id -> names written
    already_written: int = 0
    missing_cutouts: int = 0
    missing: list[MissingCutoutRow] = field(default_factory=list)
    blanked: int = 0
    filtered_out: int = 0  # turned away by the local filter: not written, yet committed
    incomplete: dict[str, int] = field(default_factory=dict)  # written, lacking what it says

    def line(self, messages: Sequence[Message], seconds: float) -> str:
        """The batch in one log line: where it came from and what became of it."""
        spans = offset_ranges((m.topic, m.partition, m.offset) for m in messages)
        where = ", ".join(f"{s.topic}/{s.partition} {s.first}-{s.last}" for s in spans[:3]) \
            + (f" and {len(spans) - 3} more partitions" if len(spans) > 3 else "")
        return (f"batch of {len(messages):,} messages ({where or 'files'}): wrote "
                f"{len(self.written):,} alerts, {self.already_written:,} already on disk, "
                f"{len(self.deadletters):,} dead-lettered, {self.missing_cutouts:,} missing "
                f"cutouts, {self.filtered_out:,} filtered out, in {seconds:.1f} s")
