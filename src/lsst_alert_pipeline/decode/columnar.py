"""Columnar decoding of history-heavy Rubin alerts with polars' Rust Avro reader.

Schemaless wire payloads that share a schema are wrapped into one in-memory Avro container
(header with the schema, one block per payload, sync markers) and read with `polars.read_avro`,
projected to the columns the CSV path needs. Measured on the real v10 variable stars: ~15x
bare fastavro; on history-light alerts it is ~0.5x, hence the per-message routing in
batch.py (docs/formats.md, Decoding speed).
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from .schemas import bundled_schema, inline_named_types

SYNC_MARKER = b"LSSTalertsSYNC16"
# An Avro body: bytes, or a memoryview of a payload past its wire header (no copy).
Body = bytes | memoryview
# What the CSV path reads past the triggering diaSource (read by fastavro from the prefix);
# diaObject for its diaObjectId alone, which stands in for a null diaSource.diaObjectId.
NEEDED_AFTER_TRIGGER = ("prvDiaSources", "diaObject", "ssSource", "ssObject", "cutoutScience",
                        "cutoutTemplate", "cutoutDifference")


def zigzag(value: int) -> bytes:
    """An Avro long: zigzag, then base-128 varint."""
    number = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        low = number & 0x7F
        number >>= 7
        if number:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


@functools.cache
def container_header(version: str) -> tuple[bytes, tuple[str, ...]]:
    """The Avro container header for a bundled version, and the columns to project."""
    schema = inline_named_types(bundled_schema(version))
    metadata = [(b"avro.schema", json.dumps(schema).encode()), (b"avro.codec", b"null")]
    header = bytearray(b"Obj\x01")
    header += zigzag(len(metadata))
    for key, value in metadata:
        header += zigzag(len(key)) + key + zigzag(len(value)) + value
    header += zigzag(0) + SYNC_MARKER
    names = {field["name"] for field in schema["fields"]}
    return bytes(header), tuple(name for name in NEEDED_AFTER_TRIGGER if name in names)


def container_of(version: str, bodies: Sequence[Body]) -> bytes:
    """One Avro container, one block per schemaless body: a bad body cannot shift the next."""
    header, _ = container_header(version)
    parts: list[Body] = [header]
    for body in bodies:
        parts += [zigzag(1), zigzag(len(body)), body, SYNC_MARKER]
    return b"".join(parts)


# A RAM-backed folder when there is one: the container is written there and read back at once.
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
# Where a process reaches its open files by path (Linux); elsewhere a named file per read.
OPEN_FILES = Path("/proc/self/fd")


class _Scratch(threading.local):
    """Each thread's scratch file, unnamed, overwritten by every read: a new file per read
    cost the kernel a fresh allocation and clearing of its ~70 MB of pages, then their release
    (measured on 4,000 alerts read whole: 0.63 s of system time, 0.30 s with the file kept;
    1.24 against 0.93 s in all). Closed when its thread ends; emptied by `release_scratch`."""

    handle: IO[bytes] | None = None


_scratch = _Scratch()


def read_avro_container(container: bytes | Sequence[Body], columns: list[str]) -> Any:
    """polars.read_avro of an in-memory container (its bytes, or its parts in order), from a
    scratch file: read from a file object, polars holds the GIL throughout (measured: the
    writing thread ran at half speed meanwhile); read from a path, it lets the other thread run."""
    import polars as pl

    parts = [container] if isinstance(container, bytes) else container
    if not OPEN_FILES.is_dir():
        with tempfile.NamedTemporaryFile(dir=SCRATCH, suffix=".avro") as named:
            named.writelines(parts)
            named.flush()
            return pl.read_avro(named.name, columns=columns)
    if _scratch.handle is None:
        _scratch.handle = tempfile.TemporaryFile(dir=SCRATCH, suffix=".avro")  # noqa: SIM115
    fd = _scratch.handle.fileno()
    size = 0
    for part in parts:
        view = memoryview(part)
        while view:
            written = os.pwrite(fd, view, size)
            size += written
            view = view[written:]
    os.ftruncate(fd, size)
    return pl.read_avro(str(OPEN_FILES / str(fd)), columns=columns)


def release_scratch() -> None:
    """Hand back the memory of this thread's scratch file (the stream is idle)."""
    if _scratch.handle is not None:
        os.ftruncate(_scratch.handle.fileno(), 0)


def read_after_trigger(version: str, bodies: list[bytes]) -> list[dict[str, Any]]:
    """Per body: the prvDiaSources' diaSourceIds and extendedness as two lists (`history`; None
    when the alert has no history array), ssSource/ssObject and the cutouts; raises whatever
    polars raises for a body that is not of this schema."""

    _, columns = container_header(version)
    frame = read_avro_container(container_of(version, bodies), list(columns))
    if frame.height != len(bodies):
        raise ValueError(f"polars read {frame.height} records from {len(bodies)} payloads")
    return tails_of(frame, columns)


def tails_of(frame: Any, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """read_after_trigger's rows from a frame that holds (at least) those columns."""
    import polars as pl

    history = frame.select(
        pl.col("prvDiaSources").list.eval(pl.element().struct.field("diaSourceId")).alias("ids"),
        pl.col("prvDiaSources").list.eval(
            pl.element().struct.field("extendedness")).alias("extendedness"),
    )
    rows: list[dict[str, Any]] = [{} for _ in range(frame.height)]
    for name in columns:
        if name == "prvDiaSources":
            continue
        if name == "diaObject":  # its id only: the whole record is ~100 fields per row
            ids = frame.get_column(name).struct.field("diaObjectId").to_list()
            for row, dia_object_id in zip(rows, ids, strict=True):
                row[name] = None if dia_object_id is None else {"diaObjectId": dia_object_id}
            continue
        for row, value in zip(rows, frame.get_column(name).to_list(), strict=True):
            row[name] = value
    for row, ids, values in zip(rows, history.get_column("ids").to_list(),
                                history.get_column("extendedness").to_list(), strict=True):
        row["history"] = None if ids is None else (ids, values)
    return rows


CUTOUT_FIELDS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")


def one_block_container(version: str, bodies: Sequence[Body]) -> list[Body]:
    """The parts of one Avro container with every body in a single block: ~2x faster for polars
    to read than a block per body, but a misread body would shift the rest, so callers check
    ids. Parts, not their join: a batch's bodies are ~80 MB, written once to the scratch file."""
    header, _ = container_header(version)
    return [header, zigzag(len(bodies)), zigzag(sum(len(b) for b in bodies)), *bodies,
            SYNC_MARKER]


def read_whole(version: str, bodies: Sequence[Body], dia_source_ids: list[Any],
               cutouts: bool = False) -> Any:
    """Every field (the cutouts only if asked) of each body, as one polars DataFrame.

    The archive keeps the exact bytes (with the cutouts) in its `packet` column and the cutouts
    as FITS files, so it does not decode them again. The bodies' heads were already read by
    the batch decoder, so one block is tried first; its rows must carry the expected
    diaSourceIds, else the bodies are read again a block each. The bodies may be memoryviews
    of the payloads (their bytes past the 5-byte wire header), which saves copying them."""

    names = [field["name"] for field in bundled_schema(version)["fields"]
             if cutouts or field["name"] not in CUTOUT_FIELDS]
    try:
        frame = read_avro_container(one_block_container(version, bodies), names)
        ids = frame.get_column("diaSource").struct.field("diaSourceId").to_list()
        if ids == dia_source_ids:
            return frame
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # polars panics (PanicException) on a misread; the safe read follows
        pass
    frame = read_avro_container(container_of(version, bodies), names)
    if frame.height != len(bodies):
        raise ValueError(f"polars read {frame.height} records from {len(bodies)} payloads")
    return frame
