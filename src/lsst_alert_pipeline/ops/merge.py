"""`lsst-alerts merge`: the members' CSV rows copied into the root's data/ (scale-out).

Merge never rewrites, truncates or deletes a file that holds rows. It appends, to the root's file
of the same night, the rows of each member's file that the ledger vouches for and that were not
merged before; it syncs; it checks that every alert the ledger will place in that root file is in
it exactly once; and only then, in one ledger transaction, moves those alerts' home to the root
file, records its new durable length and how far the member's file is merged. A crash at any
point leaves either the old state (recovery cuts the unvouched tail of the root file) or the new
one. It holds the root's lock, so no consumer writes the root at the same time; members may keep
running: only the part of their files the ledger already vouches for is read. Members' files stay
as they are (their rows before the merged mark are copies now; `status` counts them once).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MergeError
from ..pipeline.ledger import Ledger
from ..pipeline.outputdir import OutputDir
from ..sinks.csv import CUTOUT_PATH_COLUMNS, SPEC_COLUMNS, encode_rows


@dataclass
class MergeReport:
    nights: dict[str, int] = field(default_factory=dict)  # root file name -> alerts added
    duplicates: int = 0  # member rows whose alert was already in the root file
    members: list[str] = field(default_factory=list)


def read_rows(path: Path, start: int, end: int) -> list[list[str]]:
    """The CSV rows in bytes [start, end) of a file (start at a row boundary)."""
    with open(path, "rb") as handle:
        handle.seek(start)
        text = handle.read(max(end - start, 0)).decode()
    return list(csv.reader(io.StringIO(text)))


def header_of(path: Path) -> list[str] | None:
    """A CSV file's header row (None for a missing or empty file)."""
    if not path.exists():
        return None
    with open(path, newline="") as handle:
        return next(csv.reader(handle), None)


def relocated(row: list[str], header: list[str], member: str) -> list[str]:
    """A member's row with its cutout paths made relative to the root."""
    row = list(row)
    for column in CUTOUT_PATH_COLUMNS:
        index = header.index(column)
        if row[index]:
            row[index] = f"members/{member}/{row[index]}"
    return row


def ids_in(path: Path, length: int | None = None) -> Counter[str]:
    """How often each diaSourceId occurs in a CSV file (its first `length` bytes)."""
    size = path.stat().st_size if path.exists() else 0
    rows = read_rows(path, 0, size if length is None else length)
    if not rows:
        return Counter()
    column = rows[0].index("diaSourceId")
    return Counter(row[column] for row in rows[1:] if row)


def merge(root: Path) -> MergeReport:
    """Append what every member wrote since the last merge to the root's files, each alert once."""
    with OutputDir(root.resolve()) as output:
        assert output.ledger is not None
        members = sorted(p.name for p in (output.root / "members").glob("*") if p.is_dir())
        report = MergeReport(members=members)
        for member in members:
            for path in sorted((output.root / "members" / member / "data").glob(
                    "lsst_alerts_*.csv")):
                merge_file(output, output.ledger, member, path, report)
        return report


def merge_file(output: OutputDir, ledger: Ledger, member: str, source: Path,
               report: MergeReport) -> None:
    """Move one member file's new vouched rows into the root file of the same night."""
    source_key = source.relative_to(output.ledger_root).as_posix()
    durable = ledger.csv_lengths().get(source_key, 0)
    start = ledger.merged_through().get(source_key, 0)
    if durable <= start:
        return
    header = header_of(source)
    if header is None or tuple(header[:len(SPEC_COLUMNS)]) != SPEC_COLUMNS:
        raise MergeError(f"{source} does not start with the specification's columns")
    target = output.data / source.name
    target_key = output.csv_key(source.name)
    target_header = header_of(target)
    if target_header is not None and target_header != header:
        raise MergeError(f"{source} has other columns than {target}: give every member (and the "
                         "root's consumer) the same extra_columns")
    rows = read_rows(source, start, durable)
    if start == 0:
        rows = rows[1:]
    id_column = header.index("diaSourceId")
    homes = ledger.homes(row[id_column] for row in rows)
    target_length = target.stat().st_size if target.exists() else 0
    ledger.register_csv(target_key, target_length)
    already = ids_in(target, target_length) if target_length else Counter()
    appended: list[list[str]] = []
    moved: list[str] = []
    for row in rows:
        dia_source_id = row[id_column]
        if homes.get(dia_source_id) != source_key:
            continue  # vouched for elsewhere: a copy, not this file's to move
        moved.append(dia_source_id)
        if already[dia_source_id]:
            report.duplicates += 1  # a row an earlier merge copied: re-home it, add no row
            continue
        already[dia_source_id] += 1
        appended.append(relocated(row, header, member))
    with open(target, "ab") as handle:
        if handle.tell() == 0:
            handle.write(encode_rows([header]))
        handle.write(encode_rows(appended))
        new_length = handle.tell()
    output.make_durable()
    expected = ledger.homed_in(target_key) | set(moved)
    found = ids_in(target, new_length)
    missing = expected - set(found)
    doubled = [dia_source_id for dia_source_id, n in found.items() if n > 1]
    if missing or doubled:
        with open(target, "r+b") as handle:
            handle.truncate(target_length)
        raise MergeError(
            f"merging {source} into {target} would leave {len(missing)} alerts missing and "
            f"{len(doubled)} twice (e.g. {sorted(missing)[:3]} {doubled[:3]}); nothing changed")
    ledger.record_merge(moved, target_key, new_length, source_key, durable)
    report.nights[target.name] = report.nights.get(target.name, 0) + len(appended)
