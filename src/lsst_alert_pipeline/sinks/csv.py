"""The daily CSV files: the specification's 16 columns in its order, then configured extras."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SPEC_COLUMNS = (
    "alertId", "diaSourceId", "diaObjectId", "ra", "dec", "mjd", "filterName", "psFlux",
    "psFluxErr", "extendednessMedian", "extendednessMin", "extendednessMax",
    "science_cutout_path", "template_cutout_path", "difference_cutout_path", "timestamp",
)
EXTRA_COLUMNS = ("ssObjectId", "hasSSSource", "snr", "reliability", "dayObs",
                 "extendednessCount")


def csv_name(day_obs: str) -> str:
    return f"lsst_alerts_{day_obs}.csv"


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
