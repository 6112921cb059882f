"""Retention: retire whole nights older than N days, and dead letters by age; nothing else.

A night (its dayObs) is retired when it is more than N nights ago AND none of its files was
written in the last N days (a night replayed today stays N days, like any other). It goes as a
whole: its CSV files, its alerts' cutouts, its archive
partition, its report and its alerts' previews. The ledger records it as retired first (in one
transaction with forgetting its CSV files and unlisting its archive files), then its files are
deleted; a crash in between leaves files of a retired night, which the next cleanup deletes.
Its alerts stay known to the ledger, so a replay does not revive them, and `verify` and
`status` count them as retired: never broken, never whole (docs/operations.md, Retention). An
old night the ledger vouches for with no file left (deleted by age outside cleanup, as the
specification's `find -mtime` lines do) is retired too.

Never tonight, never a file outside the output directory (symbolic links are not followed, and
a path that resolves elsewhere is left alone), never while a consumer writes. The scale-out
members' layouts (members/NAME/) get the same treatment, each under its own lock: a member that
is running is skipped and named.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..decode.times import day_obs, mjd_of_utc
from ..pipeline.outputdir import AlreadyRunning, OutputDir
from .status import current_day_obs

# How the summary names each kind of file, in the order it lists them.
KINDS = {"data": "CSV file", "cutouts": "cutout", "archive": "archive file",
         "previews": "preview", "reports": "report file", "deadletter": "dead-letter file"}
CSV_NIGHT = re.compile(r"^lsst_alerts_(\d{8})(?:\.\d+)?\.csv$")
ARCHIVE_NIGHT = re.compile(r"^dayObs=(\d{4})-(\d{2})-(\d{2})$")
CUTOUT_STAMP = re.compile(r"_(\d{8})_(\d{6})\.fits$")  # the observation's UTC time
REPORT_NIGHT = re.compile(r"^(\d{8})$")


@dataclass
class CleanupReport:
    """What retention removed, as a summary (per kind, nights) plus the list for --verbose."""

    removed: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    kept_recent: int = 0
    skipped_links: int = 0
    busy_members: list[str] = field(default_factory=list)
    by_kind: dict[str, list[int]] = field(default_factory=dict)  # kind -> [files, bytes]
    nights: set[str] = field(default_factory=set)  # nights retired (or that would be)

    def add(self, kind: str, name: str, size: int) -> None:
        self.removed.append(name)
        self.freed_bytes += size
        files_bytes = self.by_kind.setdefault(kind, [0, 0])
        files_bytes[0] += 1
        files_bytes[1] += size

    def line(self, dry_run: bool) -> str:
        """One line however many files: a cron log gets the totals, not a list."""
        verb = "would remove" if dry_run else "removed"
        kinds = ", ".join(f"{files:,} {label}{'s' if files != 1 else ''} ({size / 1e6:,.1f} MB)"
                          for kind, label in KINDS.items() if kind in self.by_kind
                          for files, size in [self.by_kind[kind]])
        nights = sorted(self.nights)
        span = ""
        if nights:
            retired = "would retire" if dry_run else "retired"
            span = (f"; {retired} nights {nights[0]}"
                    + (f" to {nights[-1]}" if len(nights) > 1 else "") + f" ({len(nights):,})")
        busy = (f"; members still running, not cleaned: {', '.join(self.busy_members)}"
                if self.busy_members else "")
        return (f"{verb} {len(self.removed):,} files ({self.freed_bytes / 1e6:,.1f} MB)"
                f"{': ' + kinds if kinds else ''}{span}; kept {self.kept_recent:,} recent files, "
                f"skipped {self.skipped_links:,} links{busy}")


def oldest_kept_night(days: int, tonight: str | None = None) -> str:
    """The first night retention keeps: tonight and the `days - 1` nights before it."""
    tonight = tonight or current_day_obs()
    first = dt.datetime.strptime(tonight, "%Y%m%d") - dt.timedelta(days=days - 1)
    return first.strftime("%Y%m%d")


def night_of(kind: str, path: Path, night_by_alert: dict[str, str]) -> str | None:
    """The night a file belongs to, from its name (None: not a night's file)."""
    name = path.name
    if kind == "data" and (match := CSV_NIGHT.match(name)):
        return match.group(1)
    if kind == "archive" and (match := ARCHIVE_NIGHT.match(path.parent.name)):
        return "".join(match.groups())
    if kind == "cutouts" and (match := CUTOUT_STAMP.search(name)):
        if match.group(1) == "00000000":  # an observation without a time: its row's night
            return night_by_alert.get(name.split("_", 1)[0])
        moment = dt.datetime.strptime("".join(match.groups()), "%Y%m%d%H%M%S")
        return day_obs(mjd_of_utc(moment.replace(tzinfo=dt.UTC)))
    if kind == "previews" and path.suffix == ".png":
        return night_by_alert.get(path.stem)
    if kind == "reports":  # reports/<night>/...
        parts = path.parts
        folder = parts[len(parts) - 1 - parts[::-1].index("reports") + 1]
        if (match := REPORT_NIGHT.match(folder)) and folder != name:
            return match.group(1)
    return None


def _files(output: OutputDir, kind: str) -> list[Path]:
    base = output.root / kind
    if base.is_symlink() or not base.is_dir():
        return []
    pattern = {"data": "lsst_alerts_*.csv", "cutouts": "*.fits", "archive": "dayObs=*/*.parquet",
               "previews": "*.png", "reports": "*/**/*", "deadletter": "*"}[kind]
    return sorted(base.glob(pattern))


def _night_by_alert(output: OutputDir) -> dict[str, str]:
    """diaSourceId -> the night of the CSV file the ledger vouches for it in."""
    if output.ledger is None:
        return {}
    prefix = output.csv_key("")
    rows = output.ledger.db.execute("SELECT dia_source_id, csv_file FROM alerts "
                                    "WHERE csv_file LIKE ?", (prefix + "%",))
    found = {}
    for dia_source_id, csv_file in rows:
        if match := CSV_NIGHT.match(csv_file.rsplit("/", 1)[-1]):
            found[dia_source_id] = match.group(1)
    return found


def cleanup(output_dir: Path, days: int, dry_run: bool = False,
            tonight: str | None = None) -> CleanupReport:
    """Retire the nights before the last `days` at the root and in every member's layout, and
    dead letters older than `days`, each layout under its lock (the root's first: a consumer at
    the root stops the whole cleanup)."""
    if days < 1:
        raise ValueError("retention must be at least 1 day")
    report = CleanupReport()
    keep_from = oldest_kept_night(days, tonight)
    with OutputDir(output_dir) as output:
        _clean(output, keep_from, days, dry_run, report, output.root)
        members = output.root / "members"
        for folder in sorted(members.glob("*")) if not members.is_symlink() else []:
            if folder.is_symlink() or not folder.is_dir():
                continue
            try:
                with OutputDir(output_dir, folder.name) as member:
                    _clean(member, keep_from, days, dry_run, report, output.root)
            except AlreadyRunning:
                report.busy_members.append(folder.name)
    return report


def _clean(output: OutputDir, keep_from: str, days: int, dry_run: bool, report: CleanupReport,
           root: Path) -> None:
    night_by_alert = _night_by_alert(output)
    retired = (set(output.ledger.retired_nights(output.output_name))
               if output.ledger is not None else set())
    chosen: list[tuple[str, Path, str | None]] = []
    cutoff = time.time() - days * 86400
    for kind in KINDS:
        base = output.root / kind
        for path in _files(output, kind):
            if path.is_symlink():
                report.skipped_links += 1
                continue
            if not path.is_file() or not path.resolve().is_relative_to(base.resolve()):
                continue
            night = None if kind == "deadletter" else night_of(kind, path, night_by_alert)
            if night is None and kind != "deadletter":
                continue  # not a night's file: retention leaves it
            old = (path.stat().st_mtime < cutoff if night is None
                   else night < keep_from or night in retired)
            if not old:
                report.kept_recent += 1
                continue
            chosen.append((kind, path, night))
    # A night goes whole or not at all: kept while any of its files is recent.
    written = {night: max(path.stat().st_mtime for _, path, n in chosen if n == night)
               for night in {n for _, _, n in chosen if n is not None}}
    recent = {night for night, when in written.items()
              if when >= cutoff and night not in retired}
    if recent:
        report.kept_recent += sum(1 for _, _, night in chosen if night in recent)
        chosen = [item for item in chosen if item[2] not in recent]
    nights = {night for _, _, night in chosen if night is not None and night not in retired}
    # A night the ledger vouches for with no file left (deleted by age, outside cleanup: the
    # specification's `find -mtime` lines) is retired too, so `verify` stops counting it lost.
    emptied = {night for night in _ledger_nights(output)
               if night < keep_from and night not in retired and night not in written}
    nights |= emptied
    report.nights |= {night for _, _, night in chosen if night is not None} | emptied
    if not dry_run and output.ledger is not None and nights:
        _retire(output, sorted(nights), night_by_alert,
                [path for kind, path, _ in chosen if kind == "archive"])
    for kind, path, _ in chosen:
        size = path.stat().st_size
        if not dry_run:
            os.unlink(path)
            if kind == "archive" and not any(path.parent.iterdir()):
                path.parent.rmdir()  # the night's partition folder, now empty
            if kind == "reports" and not any(path.parent.iterdir()):
                shutil.rmtree(path.parent, ignore_errors=True)
        report.add(kind, str(path.relative_to(root)), size)


def _ledger_nights(output: OutputDir) -> set[str]:
    """The nights of this output's CSV files the ledger vouches for (retired ones forgotten)."""
    if output.ledger is None:
        return set()
    prefix = output.csv_key("")
    return {match.group(1) for key in output.ledger.csv_lengths() if key.startswith(prefix)
            and (match := CSV_NIGHT.match(key.rsplit("/", 1)[-1]))}


def _retire(output: OutputDir, nights: list[str], night_by_alert: dict[str, str],
            archived: list[Path]) -> None:
    """Record the nights retired, in one transaction with what the ledger stops vouching for:
    their CSV files' lengths, their archive files, their cutouts missing for now."""
    assert output.ledger is not None
    csv_keys = [key for key in output.ledger.csv_lengths()
                if key.startswith(output.csv_key("")) and
                (match := CSV_NIGHT.match(key.rsplit("/", 1)[-1])) and match.group(1) in nights]
    alerts = {night: [i for i, n in night_by_alert.items() if n == night] for night in nights}
    # The nights' listed archive files, those already gone from the disk included.
    partitions = output.ledger_key(output.archive) + "/"
    listed = [file.name for file in output.ledger.archive_listing()
              if file.name.startswith(partitions)
              and (match := ARCHIVE_NIGHT.match(file.name.rsplit("/", 2)[-2]))
              and "".join(match.groups()) in nights]
    output.ledger.retire_nights(
        output.output_name, {night: len(ids) for night, ids in alerts.items()}, csv_keys,
        sorted({*listed, *(output.ledger_key(path) for path in archived)}),
        [i for ids in alerts.values() for i in ids])
