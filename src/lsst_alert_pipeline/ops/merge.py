"""`lsst-alerts merge`: the members' CSV files gathered into the root's data/ (scale-out).

Each night's rows from every member, each alert once (by diaSourceId), cutout paths made relative
to the root. Only what the shared ledger vouches for is read, so a member writing at the same
time is never half-read. The merged files are rewritten whole (temp + rename) on every merge.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..sinks.csv import SPEC_COLUMNS

PATH_COLUMNS = ("science_cutout_path", "template_cutout_path", "difference_cutout_path")


@dataclass
class MergeReport:
    nights: dict[str, int] = field(default_factory=dict)  # file name -> rows
    duplicates: int = 0
    members: list[str] = field(default_factory=list)


def durable_lengths(root: Path) -> dict[str, int]:
    ledger = root / "state" / "ledger.sqlite"
    if not ledger.exists():
        return {}
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=60)
    try:
        return dict(db.execute("SELECT name, length FROM csv_files").fetchall())
    finally:
        db.close()


def merge(root: Path) -> MergeReport:
    """Write root/data/lsst_alerts_YYYYMMDD.csv from root/members/*/data/ of the same name."""
    root = root.resolve()
    lengths = durable_lengths(root)
    report = MergeReport(members=sorted(p.name for p in (root / "members").glob("*")
                                        if p.is_dir()))
    by_night: dict[str, list[tuple[str, Path]]] = defaultdict(list)
    for member in report.members:
        for path in sorted((root / "members" / member / "data").glob("lsst_alerts_*.csv")):
            by_night[path.name].append((member, path))
    (root / "data").mkdir(parents=True, exist_ok=True)
    for name, sources in sorted(by_night.items()):
        header: list[str] | None = None
        seen: set[str] = set()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for member, path in sources:
            key = path.relative_to(root).as_posix()
            with open(path, "rb") as handle:
                text = handle.read(lengths.get(key, 0)).decode()
            rows = list(csv.reader(io.StringIO(text)))
            if not rows:
                continue
            if header is None:
                header = rows[0]
                if tuple(header[:len(SPEC_COLUMNS)]) != SPEC_COLUMNS:
                    raise ValueError(f"{path} does not start with the specification's columns")
                writer.writerow(header)
            elif rows[0] != header:
                raise ValueError(f"{path} has other columns than the other members' files: "
                                 "give every member the same extra_columns")
            id_column = header.index("diaSourceId")
            path_columns = [header.index(c) for c in PATH_COLUMNS]
            for row in rows[1:]:
                if row[id_column] in seen:
                    report.duplicates += 1
                    continue
                seen.add(row[id_column])
                for column in path_columns:
                    if row[column]:
                        row[column] = f"members/{member}/{row[column]}"
                writer.writerow(row)
        target = root / "data" / name
        temp = target.with_name(f".tmp-{name}")
        temp.write_text(out.getvalue())
        os.replace(temp, target)
        report.nights[name] = len(seen)
    return report
