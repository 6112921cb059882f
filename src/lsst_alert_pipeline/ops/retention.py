"""Retention: delete CSV files, cutouts, dead letters and archive files older than N days, and
nothing else.

Never today's files, never a file outside the output directory (symbolic links are not
followed, and a path that resolves elsewhere is left alone), never while a consumer writes. The
scale-out members' layouts (members/NAME/) get the same treatment, each under its own lock: a
member that is running is skipped and named.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..pipeline.outputdir import AlreadyRunning, OutputDir

PATTERNS = (("data", "lsst_alerts_*.csv"), ("cutouts", "*.fits"), ("deadletter", "*"),
            ("archive", "dayObs=*/*.parquet"))
# How the summary names each folder's files, in PATTERNS' order.
KINDS = {"data": "CSV file", "cutouts": "cutout", "deadletter": "dead-letter file",
         "archive": "archive file"}
# The night (dayObs) a CSV file or an archive partition is named by.
NIGHT = re.compile(r"(?:lsst_alerts_|dayObs=)(\d{8})")


@dataclass
class CleanupReport:
    """What retention removed, as a summary (per kind, nights) plus the list for --verbose."""

    removed: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    kept_recent: int = 0
    skipped_links: int = 0
    busy_members: list[str] = field(default_factory=list)
    # kind (a PATTERNS folder) -> [files, bytes]
    by_kind: dict[str, list[int]] = field(default_factory=dict)
    nights: set[str] = field(default_factory=set)

    def add(self, kind: str, name: str, size: int) -> None:
        self.removed.append(name)
        self.freed_bytes += size
        files_bytes = self.by_kind.setdefault(kind, [0, 0])
        files_bytes[0] += 1
        files_bytes[1] += size
        if kind in ("data", "archive") and (night := NIGHT.search(name)):
            self.nights.add(night.group(1))

    def line(self, dry_run: bool) -> str:
        """One line however many files: a cron log gets the totals, not a list."""
        verb = "would remove" if dry_run else "removed"
        kinds = ", ".join(f"{files:,} {label}{'s' if files != 1 else ''} ({size / 1e6:,.1f} MB)"
                          for kind, label in KINDS.items() if kind in self.by_kind
                          for files, size in [self.by_kind[kind]])
        nights = sorted(self.nights)
        span = ""
        if nights:
            span = (f"; nights {nights[0]}" + (f" to {nights[-1]}" if len(nights) > 1 else "")
                    + f" ({len(nights):,})")
        busy = (f"; members still running, not cleaned: {', '.join(self.busy_members)}"
                if self.busy_members else "")
        return (f"{verb} {len(self.removed):,} files ({self.freed_bytes / 1e6:,.1f} MB)"
                f"{': ' + kinds if kinds else ''}{span}; kept {self.kept_recent:,} recent files, "
                f"skipped {self.skipped_links:,} links{busy}")


def _start_of_today() -> float:
    today = dt.datetime.combine(dt.date.today(), dt.time())
    return today.timestamp()


def old_files(output: OutputDir, days: float, report: CleanupReport,
              now: float | None = None) -> list[Path]:
    """The files of one layout retention would delete (what it leaves is counted in report)."""
    now = time.time() if now is None else now
    cutoff = min(now - days * 86400, _start_of_today())
    chosen = []
    root = output.root
    for folder, pattern in PATTERNS:
        base = root / folder
        if base.is_symlink() or not base.is_dir():
            continue
        for path in sorted(base.glob(pattern)):
            if path.is_symlink():
                report.skipped_links += 1
                continue
            if not path.is_file() or not path.resolve().is_relative_to(base.resolve()):
                continue
            if path.stat().st_mtime >= cutoff:
                report.kept_recent += 1
                continue
            chosen.append(path)
    return chosen


def cleanup(output_dir: Path, days: float, dry_run: bool = False) -> CleanupReport:
    """Delete what is older than `days` at the root and in every member's layout, each under
    its lock (the root's first: a consumer at the root stops the whole cleanup)."""
    if days < 1:
        raise ValueError("retention must be at least 1 day")
    report = CleanupReport()
    with OutputDir(output_dir) as output:
        _clean(output, days, dry_run, report, output.root)
        members = output.root / "members"
        for folder in sorted(members.glob("*")) if not members.is_symlink() else []:
            if folder.is_symlink() or not folder.is_dir():
                continue
            try:
                with OutputDir(output_dir, folder.name) as member:
                    _clean(member, days, dry_run, report, output.root)
            except AlreadyRunning:
                report.busy_members.append(folder.name)
    return report


def _clean(output: OutputDir, days: float, dry_run: bool, report: CleanupReport,
           root: Path) -> None:
    chosen = old_files(output, days, report)
    archived = [path for path in chosen if path.parent.parent == output.archive]
    if archived and not dry_run and output.ledger is not None:
        # Unlisted first: `query` reads the ledger's list, so it never opens a deleted file.
        with output.ledger.archive_transaction() as db:
            output.ledger.replace_archive_files(
                db, [output.ledger_key(path) for path in archived], [])
    for path in chosen:
        size = path.stat().st_size
        if not dry_run:
            os.unlink(path)
            if path.parent == output.data and output.ledger is not None:
                output.ledger.forget_csv(output.csv_key(path.name))
            if path in archived and not any(path.parent.iterdir()):
                path.parent.rmdir()  # the night's partition folder, now empty
        report.add(path.relative_to(output.root).parts[0], str(path.relative_to(root)), size)
