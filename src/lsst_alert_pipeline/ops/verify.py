"""`lsst-alerts verify`: every alert the ledger vouches for, checked against the files.

For each ledger entry: its CSV file exists, holds the alert's row exactly once within the length
the ledger vouches for, the row parses (as many cells as the header), and the cutouts it names
exist and open as FITS. Counted per night (the root and every member). `repair` forgets the
ledger entries of alerts that are not whole on disk, so a replay of what the broker still holds
(`consume --reset-offsets earliest`) writes them again; the broker decides what is gone for good.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits

from ..pipeline.outputdir import OutputDir

PATH_COLUMNS = ("science_cutout_path", "template_cutout_path", "difference_cutout_path")
NIGHT = re.compile(r"lsst_alerts_(\d{8})")


@dataclass
class NightCheck:
    night: str
    in_ledger: int = 0
    whole: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class VerifyReport:
    nights: dict[str, NightCheck] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)  # diaSourceIds not whole on disk
    missing_files: list[str] = field(default_factory=list)  # ledger keys of vanished CSVs
    forgotten: int = 0

    @property
    def ok(self) -> bool:
        return not any(check.problems for check in self.nights.values())

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "forgotten": self.forgotten, "nights": [
            {"night": c.night, "in_ledger": c.in_ledger, "whole": c.whole,
             "problems": c.problems} for c in self.nights.values()]}


def fits_problem(path: Path) -> str | None:
    """Why a cutout file is not a valid FITS file (None when it is)."""
    if not path.is_file():
        return "missing"
    try:
        with fits.open(path, memmap=False) as hdus:
            hdus.verify("exception")
            if hdus[0].data is None and len(hdus) < 2:
                return "no image"
    except Exception as exc:  # astropy raises many kinds for broken files
        return f"not valid FITS ({type(exc).__name__})"
    return None


def read_durable_rows(path: Path, length: int) -> tuple[list[str], list[list[str]]]:
    with open(path, "rb") as handle:
        text = handle.read(length).decode(errors="replace")
    rows = list(csv.reader(io.StringIO(text)))
    return (rows[0], rows[1:]) if rows else ([], [])


def check_file(root: Path, key: str, length: int, expected: set[str],
               report: VerifyReport, check: NightCheck) -> None:
    """Check one CSV file against the alerts the ledger places in it."""
    path = root / key
    if not path.is_file():
        check.problems.append(f"{key}: missing ({len(expected):,} alerts in the ledger)")
        report.broken.extend(expected)
        report.missing_files.append(key)
        return
    if path.stat().st_size < length:
        check.problems.append(f"{key}: {path.stat().st_size:,} bytes, the ledger vouches for "
                              f"{length:,}")
    header, rows = read_durable_rows(path, length)
    if "diaSourceId" not in header:
        check.problems.append(f"{key}: no header with diaSourceId")
        report.broken.extend(expected)
        return
    id_column = header.index("diaSourceId")
    counts: Counter[str] = Counter()
    by_id: dict[str, list[str]] = {}
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            check.problems.append(f"{key}: line {number} has {len(row)} cells, the header "
                                  f"{len(header)}")
            continue
        counts[row[id_column]] += 1
        by_id[row[id_column]] = row
    for dia_source_id in sorted(expected):
        if counts[dia_source_id] != 1:
            what = "missing" if not counts[dia_source_id] else f"{counts[dia_source_id]} times"
            check.problems.append(f"{dia_source_id}: {what} in {key}")
            report.broken.append(dia_source_id)
            continue
        row = by_id[dia_source_id]
        bad = [f"{column} {problem}" for column in PATH_COLUMNS if column in header
               and row[header.index(column)]
               and (problem := fits_problem(root / row[header.index(column)]))]
        if bad:
            check.problems.append(f"{dia_source_id}: {', '.join(bad)}")
            report.broken.append(dia_source_id)
            continue
        check.whole += 1


def verify(output_dir: Path, repair: bool = False) -> VerifyReport:
    """Check every ledger entry against the files (root and members); optionally forget the
    broken ones so a replay rewrites them. Holds the root's lock: no consumer at the root."""
    report = VerifyReport()
    with OutputDir(output_dir) as output:
        assert output.ledger is not None
        db = output.ledger.db
        lengths = output.ledger.csv_lengths()
        homes: dict[str, set[str]] = {}
        for dia_source_id, key in db.execute("SELECT dia_source_id, csv_file FROM alerts"):
            homes.setdefault(key, set()).add(dia_source_id)
        for key in sorted(homes):
            match = NIGHT.search(key)
            night = match.group(1) if match else "unknown"
            check = report.nights.setdefault(night, NightCheck(night))
            check.in_ledger += len(homes[key])
            if key not in lengths:
                check.problems.append(f"{key}: removed by retention ({len(homes[key]):,} alerts "
                                      "stay known, so a replay does not revive them)")
                check.whole += len(homes[key])  # retention's choice, not damage
                continue
            check_file(output.root, key, lengths[key], homes[key], report, check)
        for check in report.nights.values():
            check.problems = [p for p in check.problems if "removed by retention" not in p]
        if repair and report.broken:
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.executemany("DELETE FROM alerts WHERE dia_source_id = ?",
                               [(dia_source_id,) for dia_source_id in report.broken])
                # A vanished file starts again from nothing: recovery must not trust its old
                # length (rows past what a new batch records would survive a crash).
                db.executemany("DELETE FROM csv_files WHERE name = ?",
                               [(key,) for key in report.missing_files])
            report.forgotten = len(report.broken)
    return report
