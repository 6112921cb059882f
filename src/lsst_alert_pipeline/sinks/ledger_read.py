"""Reading the ledger (state/ledger.sqlite) without writing: for the commands that inspect a
collection (status, verify, query), which must work on a read-only disk and take no write lock.
The ledger itself, and every write to it, is pipeline/ledger.py's; this sits below it so the
archive's readers (sinks/archive_read.py) can use it too."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that can only read the ledger and writes nothing beside it, for the commands
    that inspect a collection (status, verify, query): they work on a read-only disk too.

    SQLite's `mode=ro` still needs the WAL's -shm file, which it cannot create on a read-only
    folder when the last writer closed cleanly (and removed it): the file then holds every
    commit, so it is opened `immutable=1`. While a writer has the WAL open, `mode=ro` works and
    sees its commits (immutable would not), so it is tried first. See docs/collections.md."""
    if not path.is_file():
        raise FileNotFoundError(f"no ledger at {path}")
    uri = path.resolve().as_uri()
    for options in ("mode=ro", "mode=ro&immutable=1"):
        db = sqlite3.connect(f"{uri}?{options}", uri=True, timeout=60)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            db.close()
            if options.endswith("immutable=1"):
                raise
            continue
        return db
    raise AssertionError("unreachable")
