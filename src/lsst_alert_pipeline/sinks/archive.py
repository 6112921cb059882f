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
import io
import logging
import os
from collections.abc import Callable, Sequence
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


def encoded(frame: pl.DataFrame) -> bytes:
    """The frame as Parquet file bytes, as the archive writes them."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression=CODEC, statistics=True,
                        row_group_size=ROW_GROUP_ROWS)
    return buffer.getvalue()


def write_atomically(content: bytes, path: Path) -> None:
    """Write under the temp prefix, then rename: the real name never holds half a file.

    No fsync here: the pipeline's one sync per batch covers the data and the rename."""
    temp = path.with_name(TEMP_PREFIX + path.name)
    with open(temp, "wb") as handle:
        handle.write(content)
    os.replace(temp, path)


@dataclass(frozen=True)
class PreparedFile:
    """A file's Parquet bytes, built ahead for exactly these alerts (by id)."""

    dia_source_ids: tuple[Any, ...]
    parts: tuple[tuple[str, bytes, int], ...]  # (name suffix, Parquet bytes, row count)
    unusable: tuple[Unusable, ...]  # the values its rows hold as null


@dataclass(frozen=True)
class ArchiveBatch:
    """What a batch wrote to the archive: (path, alerts, columns fingerprint) per file for the
    ledger, and the values kept as null because no column could hold them."""

    files: list[tuple[Path, int, str]]
    unusable: list[Unusable]


def prepare_batch(messages: Sequence[Message], results: Sequence[Any], default_day: str) -> None:
    """Build and encode the batch's archive files on the decode thread, while the previous
    batch is written and synced, assuming every alert will be written (the usual case); the
    write uses them when the alerts it writes are exactly those, and builds afresh otherwise.

    The encoding is done here rather than by the write because the writing thread is the busier
    one: it creates three cutout files per alert and is busy for the whole run, while the decode
    thread, which reads packets whole without copying them, waits (measured end to end)."""
    alerts = batch_alerts(messages, results)
    try:
        prepare_columns(alerts)
        groups = file_groups(alerts, default_day)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception:  # noqa: BLE001 - an absurd value (say an MJD of -1e9) that deliver() will
        return  # dead-letter or blank, one alert at a time; the write builds its files afresh
    for members in groups.values():
        ids = tuple(alert.record.diaSourceId for alert in members)
        found: list[Unusable] = []
        try:
            parts = tuple((suffix, encoded(frame), frame.height)
                          for suffix, frame in unified(archive_frames(members, found)))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: BLE001 - the write builds these afresh, alert by alert
            continue
        prepared = PreparedFile(ids, parts, tuple(found))
        for alert in members:
            alert.record.extra[PREPARED_FILE] = prepared


def file_parts(members: Sequence[ArchivedAlert]
               ) -> tuple[tuple[tuple[str, bytes, int], ...], tuple[Unusable, ...]]:
    """The encoded parts of one file, prepared ahead when they hold exactly these alerts, and
    the values they hold as null."""
    prepared = members[0].record.extra.get(PREPARED_FILE)
    if isinstance(prepared, PreparedFile) and prepared.dia_source_ids == tuple(
            alert.record.diaSourceId for alert in members):
        return prepared.parts, prepared.unusable
    found: list[Unusable] = []
    return tuple((suffix, encoded(frame), frame.height)
                 for suffix, frame in unified(archive_frames(members, found))), tuple(found)


class ArchiveSink:
    """Writes a batch's alerts as Parquet files; says which files for the ledger to list."""

    def __init__(self, folder: Path, after_each_file: Callable[[], None] | None = None):
        self.folder = folder
        # The pipeline's crash-test hook (testing/faults.py: archive-file-written).
        self.after_each_file = after_each_file

    def write(self, alerts: Sequence[ArchivedAlert], default_day: str) -> ArchiveBatch:
        """Write the alerts (not yet durable): the files for the ledger, and each value kept
        as null (logged, naming the alert and the field)."""
        batch = ArchiveBatch([], [])
        for (partition, stem), members in file_groups(alerts, default_day).items():
            (self.folder / partition).mkdir(parents=True, exist_ok=True)
            parts, unusable = file_parts(members)
            for suffix, content, rows in parts:
                path = self.folder / partition / f"{stem}{suffix}.parquet"
                write_atomically(content, path)
                batch.files.append((path, rows, columns_fingerprint(path)))
                if self.after_each_file is not None:
                    self.after_each_file()
            for item in unusable:
                log.warning("%s: archived alert %s with %s null: %s", item.origin,
                            item.dia_source_id, item.field, item.reason)
            batch.unusable.extend(unusable)
        return batch
