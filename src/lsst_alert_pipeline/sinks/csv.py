"""The daily CSV files: the specification's 16 columns in its order, then configured extras.

A file never mixes two headers: when `extra_columns` change during a night, the night goes on in
a new file, `lsst_alerts_YYYYMMDD.2.csv` (then .3, ...), with its own header. The specification's
name stays the name of the night's first file; readers take every part of a night (night_parts).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import EXTRA_COLUMNS  # noqa: F401 - the optional columns, named in config
from ..decode.normalize import CSV_FIELDS, CUTOUT_KINDS

# The specification's columns: the alert's own fields (decode/normalize.py holds their order),
# the three cutout paths, and when the row was processed.
CUTOUT_PATH_COLUMNS = tuple(f"{kind}_cutout_path" for kind in CUTOUT_KINDS)
SPEC_COLUMNS = (*CSV_FIELDS, *CUTOUT_PATH_COLUMNS, "timestamp")



def spec_row(record: object, cutout_paths: Sequence[str], processed_at: str) -> list[Any]:
    """An alert's row in SPEC_COLUMNS order: its fields, its cutouts' paths, the time."""
    return [*(getattr(record, name) for name in CSV_FIELDS), *cutout_paths, processed_at]


PART = re.compile(r"^lsst_alerts_(\d{8})(?:\.(\d+))?\.csv$")


def csv_name(day_obs: str, part: int = 1) -> str:
    """The night's file name: the specification's for the first part, `.N` before `.csv` after."""
    return f"lsst_alerts_{day_obs}.csv" if part == 1 else f"lsst_alerts_{day_obs}.{part}.csv"


def part_of(name: str) -> tuple[str, int] | None:
    """(dayObs, part number) of a night's file name; None for any other name."""
    match = PART.match(name)
    return None if match is None else (match.group(1), int(match.group(2) or 1))


def night_parts(folder: Path, day_obs: str) -> list[Path]:
    """Every file of one night in `folder`, first part first."""
    found = [(part[1], path) for path in folder.glob(f"lsst_alerts_{day_obs}*.csv")
             if (part := part_of(path.name)) is not None and part[0] == day_obs]
    return [path for _, path in sorted(found)]


def header_of(path: Path) -> bytes:
    """The first line of a file, with its newline (b"" for an empty file)."""
    with open(path, "rb") as handle:
        return handle.readline(1 << 16)


def cell(value: Any) -> str:
    """Empty for null and NaN (never the text 'nan'); repr-exact floats; ints as digits."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    return str(value)


def encode_rows(rows: Sequence[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return buffer.getvalue().encode()


class DailyCsv:
    """Appends a batch's rows to each night's file; returns the new lengths for the ledger."""

    def __init__(self, folder: Path, columns: Sequence[str]):
        self.folder = folder
        self.columns = tuple(columns)
        self.header = encode_rows([self.columns])
        self.names: dict[str, str] = {}

    def file_for(self, day_obs: str) -> str:
        """The night's file whose header is ours; a new part when every existing one differs."""
        name = self.names.get(day_obs)
        if name is None:
            parts = night_parts(self.folder, day_obs)
            same = [p for p in parts if header_of(p) in (b"", self.header)]
            if same:
                name = same[0].name
            else:
                last = part_of(parts[-1].name) if parts else None
                name = csv_name(day_obs, last[1] + 1 if last else 1)
            self.names[day_obs] = name
        return name

    def append(self, rows_by_file: dict[str, list[list[Any]]]) -> dict[str, int]:
        lengths = {}
        for name, rows in rows_by_file.items():
            path = self.folder / name
            with open(path, "ab") as handle:
                if handle.tell() == 0:
                    handle.write(self.header)
                handle.write(encode_rows(rows))
                lengths[name] = handle.tell()
        return lengths
