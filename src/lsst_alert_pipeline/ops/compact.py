"""`compact`: merge each night's many small archive files into one, beside a running consumer.

Per night: DuckDB reads the night's listed files and writes them, sorted by diaObjectId and mjd
(so a query for one object reads one row group, not every file), to a temp file, which is
fsynced. Then, in one ledger write transaction (which a starting consumer's recovery also takes,
so neither sees the other half-done): check the parts are still listed, rename the merged file
into place, fsync the folder, and swap the parts for the merged file in the ledger. Only then
are the parts deleted. `lsst-alerts query` reads the ledger's list, so it sees the parts or the
merged file, never both and never neither; a crash anywhere leaves files the ledger does not
list, which the next consumer start deletes. A reader globbing the folder itself can see both
for the instant between the rename and the deletion of the parts.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from ..pipeline.ledger import ArchiveFile, Ledger, pack_ids
from ..sinks.archive import ARCHIVE_FOLDER, columns_fingerprint, file_sha256
from ..sinks.archive_read import LEDGER, first_line, sql_list, unreadable
from ..sinks.atomic import TEMP_PREFIX

# Rows per row group of a merged night. Every row group adds a footer entry per leaf column
# (~400 with the histories), which DuckDB reads for every file a query touches: measured over
# 30 nights of 1,000,000 alerts, SELECT * of one object took 3.6 s at 1,000 rows per group and
# 0.6-1.0 s at 10,000; a bigger group costs more to read once it matches.
COMPACT_ROW_GROUP_ROWS = 10_000


@dataclass
class CompactReport:
    nights: list[str] = field(default_factory=list)
    merged_files: int = 0
    alerts: int = 0
    skipped: list[str] = field(default_factory=list)  # why a night was left as it was
    # Nights not merged because a part is damaged (merging would drop its rows): one line each
    refused: list[str] = field(default_factory=list)

    def line(self) -> str:
        text = (f"compacted {len(self.nights)} nights: {self.merged_files:,} files merged "
                f"into {len(self.nights)}, {self.alerts:,} alerts")
        return text + "".join(f"; {reason}" for reason in self.skipped)



def merged_name(parts: list[str]) -> str:
    """Named by what it holds: a hash of the part names, so a rerun names it alike."""
    digest = hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:20]
    return f"compacted+{digest}.parquet"


def nights_to_compact(listed: dict[str, int]) -> dict[str, list[str]]:
    """Partition folder (path from the ledger's root) -> its listed files, where more than one."""
    by_folder: dict[str, list[str]] = {}
    for name in listed:
        by_folder.setdefault(name.rsplit("/", 1)[0], []).append(name)
    return {folder: sorted(names) for folder, names in by_folder.items() if len(names) > 1}


def write_merged(parts: list[Path], temp: Path) -> int:
    """Write the parts' rows, sorted, to temp (fsynced); the number of rows."""
    db = duckdb.connect()
    try:
        count = db.execute(f"SELECT count(*) FROM read_parquet({sql_list(parts)})").fetchone()
        db.execute(
            f"COPY (SELECT * FROM read_parquet({sql_list(parts)}, union_by_name = true, "
            "hive_partitioning = false) ORDER BY diaObjectId, mjd, diaSourceId) "
            f"TO '{str(temp).replace(chr(39), chr(39) * 2)}' "
            f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {COMPACT_ROW_GROUP_ROWS})")
    finally:
        db.close()
    with open(temp, "rb") as handle:
        os.fsync(handle.fileno())
    return int(count[0]) if count else 0


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def compact(output_dir: Path, day_obs: str | None = None) -> CompactReport:
    """Merge every night's listed archive files (or one night's: YYYY-MM-DD) into one."""
    root = output_dir.resolve()
    report = CompactReport()
    if not (root / LEDGER).is_file():
        report.skipped.append(f"no ledger in {root / LEDGER}: nothing archived here")
        return report
    ledger = Ledger(root / LEDGER)
    try:
        checksums = {file.name: file.sha256 for file in ledger.archive_listing()}
        for folder, parts in sorted(nights_to_compact(ledger.archive_files()).items()):
            if day_obs is not None and not folder.endswith(f"dayObs={day_obs}"):
                continue
            if folder.split("/")[-2] != ARCHIVE_FOLDER:
                continue
            damage = damaged_parts(root, parts, checksums)
            if damage:
                report.refused.append(
                    f"{folder}: not merged, its parts are damaged ({'; '.join(damage)}); "
                    "merging would drop their rows. Run `lsst-alerts verify --repair` first")
                continue
            try:
                _compact_night(root, ledger, folder, parts, report)
            except duckdb.Error as exc:
                # A part damaged in a way its checksum cannot show (a ledger from before
                # checksums): the night stays as it was.
                report.refused.append(f"{folder}: not merged, DuckDB could not read its parts "
                                      f"({first_line(exc)}). Run `lsst-alerts verify` to find "
                                      "the damaged file")
    finally:
        ledger.close()
    return report


def damaged_parts(root: Path, parts: list[str], checksums: dict[str, str | None]) -> list[str]:
    """What is wrong with each damaged part of a night ('name: why'): missing, cut short, or a
    sha256 that differs from the ledger's (read in full: merging reads them all anyway)."""
    found = []
    for part in parts:
        why = unreadable(root / part)
        if why is None and checksums.get(part) and file_sha256(root / part) != checksums[part]:
            why = "its sha256 differs from the ledger's"
        if why is not None:
            found.append(f"{part}: {why}")
    return found


def _compact_night(root: Path, ledger: Ledger, folder: str, parts: list[str],
                   report: CompactReport) -> None:
    final = root / folder / merged_name(parts)
    temp = final.with_name(TEMP_PREFIX + final.name)
    count = write_merged([root / part for part in parts], temp)
    with ledger.archive_transaction() as db:
        listed = ledger.archive_files()
        if any(part not in listed for part in parts) or not temp.exists() or \
                count != sum(listed[part] for part in parts):
            temp.unlink(missing_ok=True)
            report.skipped.append(f"{folder} changed while merging (run compact again)")
            return
        os.replace(temp, final)
        _fsync_folder(final.parent)
        key = final.relative_to(root).as_posix()
        ids = pl.read_parquet(final, columns=["diaSourceId"]).get_column("diaSourceId")
        ledger.replace_archive_files(db, parts, [ArchiveFile(
            key, count, columns_fingerprint(final), file_sha256(final),
            pack_ids([int(i) for i in ids]))])
    for part in parts:
        (root / part).unlink(missing_ok=True)
    report.nights.append(folder.rsplit("=", 1)[-1])
    report.merged_files += len(parts)
    report.alerts += count
