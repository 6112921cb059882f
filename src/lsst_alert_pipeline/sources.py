"""Where messages come from: files and folders here; Kafka in kafka_source.py."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

ALERT_SUFFIXES = {".avro", ".wire", ".bin", ".alert", ".zlib", ".bson"}


def alert_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """The alert files named, and those found under named folders, in a stable (sorted) order."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix in ALERT_SUFFIXES:
                    yield child
        elif path.exists():
            yield path
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
