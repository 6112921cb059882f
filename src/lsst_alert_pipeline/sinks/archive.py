"""The Parquet archive: every alert of the CSV, whole, in `archive/dayObs=YYYY-MM-DD/*.parquet`.

Hive-style partitions, so DuckDB, polars, pyarrow, Spark and LSDB read the folder as one table
(the partition folder gives the `dayObs` column; like every Hive writer we do not repeat it
inside the files, where readers would see two `dayObs` of different types). A batch writes one
file per night and Kafka partition, named like Kafka Connect's S3 sink names its objects,
`{topic}+{partition}+{firstOffset:020d}-{lastOffset:020d}.parquet`; alerts read from files get
`files+{hash of their diaSourceIds}.parquet`. Each file is written under the temp prefix and
renamed; the pipeline's one sync makes it durable and the ledger then lists it. Recovery
(pipeline/outputdir.py) deletes every archive file the ledger does not list: those of a batch
that crashed before its ledger commit, whose alerts the broker delivers again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import polars as pl

from ..sources.base import Message
from .archive_rows import (
    ArchivedAlert,
    Unusable,
    archive_frames,
    batch_alerts,
    prepare_columns,
    unified,
)
from .atomic import TEMP_PREFIX

log = logging.getLogger(__name__)

ARCHIVE_FOLDER = "archive"
# The key under which a record's extra holds the encoded file its batch prepared for it.
PREPARED_FILE = "archive_file"
# Rows per Parquet row group of a batch's file (a batch is 500 alerts by default: one group).
ROW_GROUP_ROWS = 1_000
# LZ4 (Parquet's LZ4_RAW): a batch's file is written once and soon merged by `compact`, which
# rewrites with zstd. Measured on a batch of the realistic mix (bench/bench_archive.py): the
# encoding takes ~20% less CPU than zstd level 1 (most of it is the ~150 KB `packet` of each
# alert), for ~20% more bytes on disk until the night is compacted.
CODEC: Final = "lz4"


def partition_folder(day_obs: str) -> str:
    """The Hive partition of a dayObs: 20260305 -> dayObs=2026-03-05."""
    return f"dayObs={day_obs[:4]}-{day_obs[4:6]}-{day_obs[6:8]}"


def offset_file_stem(topic: str, partition: int, first: int, last: int) -> str:
    """Kafka Connect's object name: what partition and which offsets the file holds."""
    return f"{topic}+{partition}+{first:020d}-{last:020d}"


def content_file_stem(alerts: Sequence[ArchivedAlert]) -> str:
    """A name for alerts read from files: a hash of what they are, so a rerun names it alike."""
    digest = hashlib.sha256()
    for alert in alerts:
        digest.update(f"{alert.record.diaSourceId}\n".encode())
    return f"files+{digest.hexdigest()[:20]}"


def file_groups(alerts: Sequence[ArchivedAlert],
                default_day: str) -> dict[tuple[str, str], list[ArchivedAlert]]:
    """(partition folder, file stem) -> the alerts of one file, in offset order."""
    grouped: dict[tuple[str, str | None, int | None], list[ArchivedAlert]] = {}
    for alert in alerts:
        folder = partition_folder(alert.record.day_obs or default_day)
        key = (folder, alert.message.topic, alert.message.partition)
        grouped.setdefault(key, []).append(alert)
    named: dict[tuple[str, str], list[ArchivedAlert]] = {}
    for (folder, topic, partition), members in grouped.items():
        if topic is None or partition is None:
            named[(folder, content_file_stem(members))] = members
            continue
        members.sort(key=lambda a: (a.message.offset or 0, a.index))
        first, last = members[0].message.offset or 0, members[-1].message.offset or 0
        named[(folder, offset_file_stem(topic, partition, first, last))] = members
    return named


def columns_fingerprint(path: Path) -> str:
    """A short hash of a Parquet file's column names and types, read from its footer: files
    that share it are read by DuckDB as one scan, without union_by_name's cost."""
    schema = pl.read_parquet_schema(path)
    return hashlib.sha256(repr(list(schema.items())).encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """The file's sha256, read in 1 MiB blocks (recorded in the ledger; `verify` compares)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Encode the frame into the file at `path`, as the archive writes them.

    Given a path (not a Python file object) polars encodes and writes without the GIL: given a
    BytesIO it takes the GIL back for every write, and each time waits for the other thread's
    switch interval (measured: 2-3x slower encoding while the writing thread is busy)."""
    frame.write_parquet(path, compression=CODEC, statistics=True, row_group_size=ROW_GROUP_ROWS)


@dataclass(frozen=True)
class Part:
    """One encoded file, under a temp name until the write renames it into place."""

    suffix: str  # of the file name: '' or '.v10_0' (a version's columns apart)
    temp: Path
    rows: int
    columns: str  # columns_fingerprint
    sha256: str  # of the file as encoded: the ledger keeps it, `verify` compares
    dia_source_ids: tuple[int, ...]  # the alerts it holds, in its row order


@dataclass(frozen=True)
class PreparedFile:
    """A file's parts, encoded ahead for exactly these alerts (by id)."""

    dia_source_ids: tuple[Any, ...]
    parts: tuple[Part, ...]
    unusable: tuple[Unusable, ...]  # the values its rows hold as null


@dataclass(frozen=True)
class WrittenFile:
    """One file renamed into place, with what the ledger records of it."""

    path: Path
    rows: int
    columns: str  # columns_fingerprint
    sha256: str
    dia_source_ids: tuple[int, ...]


@dataclass(frozen=True)
class ArchiveBatch:
    """What a batch wrote to the archive: the files for the ledger, and the values kept as
    null because no column could hold them."""

    files: list[WrittenFile]
    unusable: list[Unusable]


class ArchiveSink:
    """Writes a batch's alerts as Parquet files; says which files for the ledger to list.

    `prepare` encodes a batch's files on the decode thread, under temp names, while the batch
    before is written; `write` renames them into place when the alerts it writes are exactly
    those (the usual case) and encodes afresh otherwise; `discard` deletes what a batch
    prepared and did not use. A crash leaves temp files only, which recovery deletes."""

    def __init__(self, folder: Path, after_each_file: Callable[[], None] | None = None):
        self.folder = folder
        # The pipeline's fault hook (pipeline/hooks.py: archive-file-written).
        self.after_each_file = after_each_file
        self._lock = threading.Lock()
        self._prepared: set[Path] = set()  # temp files prepared and not yet renamed or deleted

    def _temp(self, partition: str, name: str) -> Path:
        """A temp name no other file of the archive has: a batch delivered again after a
        rebalance may be prepared while the same offsets are being written."""
        return self.folder / partition / f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}-{name}"

    def _encode(self, partition: str, stem: str, members: Sequence[ArchivedAlert],
                found: list[Unusable]) -> tuple[Part, ...]:
        """Encode the alerts of one file into temp files: one, or one per schema version
        when their columns cannot be one table."""
        (self.folder / partition).mkdir(parents=True, exist_ok=True)
        parts: list[Part] = []
        temps: list[Path] = []  # a file half written when the encoding fails is one of them
        try:
            for suffix, frame in unified(archive_frames(members, found)):
                temps.append(temp := self._temp(partition, f"{stem}{suffix}.parquet"))
                with self._lock:
                    self._prepared.add(temp)
                write_parquet(frame, temp)
                # Hashed here, just written (in the page cache), on the thread that encodes:
                # the writing thread only renames.
                parts.append(Part(suffix, temp, frame.height, columns_fingerprint(temp),
                                  file_sha256(temp),
                                  # an id no column could hold is null in its row
                                  tuple(int(i) for i in frame.get_column("diaSourceId")
                                        if i is not None)))
        except BaseException:
            self._delete(temps)
            raise
        return tuple(parts)

    def prepare(self, messages: Sequence[Message], results: Sequence[Any],
                default_day: str) -> None:
        """Encode the batch's files ahead, assuming every alert will be written (the usual
        case); each alert's record keeps its file's PreparedFile in `extra`.

        Done on the decode thread because the writing thread is the busier one: it creates
        three cutout files per alert. Whatever fails here (an absurd value, a full disk) is
        left for the write, which builds afresh and reports it, alert by alert."""
        alerts = batch_alerts(messages, results)
        try:
            prepare_columns(alerts)
            groups = file_groups(alerts, default_day)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception:  # noqa: BLE001 - an absurd value (say an MJD of -1e9) that deliver()
            return  # will dead-letter or blank, one alert at a time
        for (partition, stem), members in groups.items():
            found: list[Unusable] = []
            try:
                parts = self._encode(partition, stem, members, found)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException:  # noqa: BLE001 - the write builds these afresh, alert by alert
                continue
            prepared = PreparedFile(tuple(alert.record.diaSourceId for alert in members),
                                    parts, tuple(found))
            for alert in members:
                alert.record.extra[PREPARED_FILE] = prepared

    def _parts(self, partition: str, stem: str, members: Sequence[ArchivedAlert]
               ) -> tuple[tuple[Part, ...], tuple[Unusable, ...]]:
        """The parts of one file: prepared ahead when they hold exactly these alerts, else
        encoded now; and the values they hold as null."""
        prepared = members[0].record.extra.get(PREPARED_FILE)
        if isinstance(prepared, PreparedFile) and prepared.dia_source_ids == tuple(
                alert.record.diaSourceId for alert in members) and all(
                part.temp.exists() for part in prepared.parts):
            return prepared.parts, prepared.unusable
        found: list[Unusable] = []
        return self._encode(partition, stem, members, found), tuple(found)

    def write(self, alerts: Sequence[ArchivedAlert], default_day: str,
              prefix: str = "") -> ArchiveBatch:
        """Write the alerts (not yet durable): the files for the ledger, and each value kept
        as null (logged, naming the alert and the field). `prefix` starts each file's name
        (`verify --repair` writes `repair+...`, never the name of a file already there)."""
        batch = ArchiveBatch([], [])
        for (partition, stem), members in file_groups(alerts, default_day).items():
            parts, unusable = self._parts(partition, stem, members)
            for part in parts:
                path = self.folder / partition / f"{prefix}{stem}{part.suffix}.parquet"
                os.replace(part.temp, path)
                with self._lock:
                    self._prepared.discard(part.temp)
                batch.files.append(WrittenFile(path, part.rows, part.columns, part.sha256,
                                               part.dia_source_ids))
                if self.after_each_file is not None:
                    self.after_each_file()
            for item in unusable:
                log.warning("%s: archived alert %s with %s null: %s", item.origin,
                            item.dia_source_id, item.field, item.reason)
            batch.unusable.extend(unusable)
        return batch

    def discard(self, results: Sequence[Any]) -> None:
        """Delete the temp files a batch prepared and its write did not use (alerts already
        written, dead-lettered, or a file that came out otherwise)."""
        unused = {part.temp for result in results if isinstance(result, list)
                  for record in result
                  if isinstance(prepared := record.extra.get(PREPARED_FILE), PreparedFile)
                  for part in prepared.parts}
        self._delete(unused)

    def discard_all(self) -> None:
        """Delete every prepared temp file not renamed into place (the run ends)."""
        with self._lock:
            left = list(self._prepared)
        self._delete(left)

    def _delete(self, temps: Iterable[Path]) -> None:
        for temp in list(temps):
            with self._lock:
                if temp not in self._prepared:
                    continue  # renamed into place, or deleted already
                self._prepared.discard(temp)
            temp.unlink(missing_ok=True)
