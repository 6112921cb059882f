"""The output directory: its layout, the one-writer lock, crash recovery and the durability point.

Layout (the specification's, plus two folders of our own):
    data/lsst_alerts_YYYYMMDD.csv      one CSV per observing night (dayObs)
    cutouts/<diaSourceId>_<kind>_<YYYYMMDD_HHMMSS>.fits
    deadletter/                         undecodable messages and why
    archive/dayObs=YYYY-MM-DD/*.parquet every alert whole (sinks/archive.py), unless --no-archive
    state/ledger.sqlite, state/lock     what is durably written; who is writing

Members of one consumer group (`--member NAME`, scale-out) each write a whole layout of their own
under members/NAME/ and share the root's ledger, so an alert one member wrote is never written
again by another; `lsst-alerts merge` gathers the members' CSV files into the root's data/.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from ..errors import AlreadyRunning, ConfigurationError, OutputError
from ..sinks.archive import ARCHIVE_FOLDER
from ..sinks.atomic import TEMP_PREFIX
from .ledger import Ledger


def _load_syncfs() -> object | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    libc = ctypes.CDLL(name, use_errno=True)
    return getattr(libc, "syncfs", None)


_SYNCFS = _load_syncfs()
LEDGER = Path("state") / "ledger.sqlite"


def require_collection(root: Path, readable: tuple[str, ...] = ()) -> None:
    """Refuse a folder that holds no collection: only `consume` creates one, so a mistyped
    --output-dir must not become a new, empty, "whole" collection. A collection is a folder with
    state/ledger.sqlite; a reader may also accept the folders it reads (`readable`, e.g. an
    archive/ copied without its state/). ConfigurationError (exit 2) says what to do."""
    if (root / LEDGER).is_file() or any((root / name).is_dir() for name in readable):
        return
    raise ConfigurationError(
        f"{root} holds no collection (no {LEDGER.as_posix()}): check --output-dir, output_dir "
        "in the configuration file or LSST_ALERTS_OUTPUT_DIR; only `lsst-alerts consume` "
        "creates a collection")


@contextmanager
def opened(root: Path, read_only: bool = False) -> Iterator[OutputDir]:
    """An output directory opened to write (OutputDir.open) or only to read it
    (OutputDir.open_read_only), closed afterwards."""
    output = OutputDir(root)
    if read_only:
        output.open_read_only()
    else:
        output.open()
    try:
        yield output
    finally:
        output.close()


class OutputDir:
    def __init__(self, root: Path, member: str | None = None):
        self.ledger_root = root.resolve()
        self.member = member
        self.root = self.ledger_root / "members" / member if member else self.ledger_root
        self.output_name = f"members/{member}" if member else ""  # as the ledger names it
        self.data = self.root / "data"
        self.cutouts = self.root / "cutouts"
        self.deadletter = self.root / "deadletter"
        self.state = self.root / "state"
        self.archive = self.root / ARCHIVE_FOLDER
        self._lock_fd: int | None = None
        self.ledger: Ledger | None = None

    def open(self) -> OutputDir:
        """Create the layout, take the lock, open the ledger and undo any half-written batch."""
        try:
            for folder in (self.data, self.cutouts, self.deadletter, self.state):
                folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.state / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"cannot create the output directory {self.root}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise AlreadyRunning(
                f"another consumer is writing to {self.root} (lock {self.state / 'lock'})"
            ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        self.ledger = Ledger(self.ledger_root / "state" / "ledger.sqlite")
        self.recover()
        return self

    def open_read_only(self) -> OutputDir:
        """Open an existing collection to read it, writing nothing (it may be on a read-only
        disk): the ledger read-only, no recovery, and a shared lock on state/lock when that file
        exists, which a running consumer's exclusive lock refuses (AlreadyRunning) while other
        readers share it."""
        lock = self.state / "lock"
        if lock.is_file():
            fd = os.open(lock, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                os.close(fd)
                raise AlreadyRunning(f"a consumer is writing to {self.root} (lock {lock})"
                                     ) from exc
            self._lock_fd = fd
        try:
            self.ledger = Ledger(self.ledger_root / LEDGER, read_only=True)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> OutputDir:
        return self.open()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def recover(self) -> None:
        """Cut every CSV back to the length the ledger vouches for and drop temp files.

        Rows past that length belong to a batch whose offsets were never committed: the broker
        delivers those messages again and they are written again, once."""
        self.cut_csv_files()
        for folder in (self.cutouts, self.deadletter):
            for temp in folder.glob(TEMP_PREFIX + "*"):
                temp.unlink(missing_ok=True)
        self.recover_archive()

    def cut_csv_files(self) -> None:
        """Cut this output's CSV files back to the lengths the ledger vouches for (a file it
        vouches for no row of is removed)."""
        assert self.ledger is not None
        for key, durable in self.ledger.csv_lengths().items():
            csv = self.ledger_root / key
            if csv.parent != self.data:
                continue  # another member's file: that member recovers it
            if csv.exists() and csv.stat().st_size > durable:
                if durable == 0:
                    csv.unlink()
                else:
                    with open(csv, "r+b") as handle:
                        handle.truncate(durable)

    def recover_archive(self) -> None:
        """Delete archive files the ledger does not list: a batch's files written before a
        crash that came before its ledger commit (its alerts come again), or a compaction's."""
        assert self.ledger is not None
        if not self.archive.is_dir():
            return
        with self.ledger.archive_transaction():
            listed = self.ledger.archive_files()
            for path in self.archive.glob("dayObs=*/*"):
                unlisted = path.suffix == ".parquet" and self.ledger_key(path) not in listed
                if path.name.startswith(TEMP_PREFIX) or unlisted:
                    path.unlink(missing_ok=True)

    def ledger_key(self, path: Path) -> str:
        """How the ledger names a file of this output: its path from the ledger's root."""
        return path.relative_to(self.ledger_root).as_posix()

    def csv_key(self, name: str) -> str:
        """How the (possibly shared) ledger names a CSV file of this output: its path from the
        ledger's root, e.g. data/lsst_alerts_20260305.csv or members/a/data/..."""
        return (self.data / name).relative_to(self.ledger_root).as_posix()

    def make_durable(self) -> None:
        """One durability point per batch: sync the output file system (data and renames)."""
        if _SYNCFS is not None:
            fd = os.open(self.root, os.O_RDONLY)
            try:
                if _SYNCFS(fd) != 0:  # type: ignore[operator]
                    err = ctypes.get_errno()
                    raise OutputError(f"syncfs({self.root}) failed: {os.strerror(err)}")
            finally:
                os.close(fd)
        else:
            os.sync()
