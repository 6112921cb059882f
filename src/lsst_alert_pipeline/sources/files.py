"""Alert files and folders as a source (`FileSource`, for `--from`); Kafka is sources/kafka.py."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .base import Brokerless, Message

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


class FileSource(Brokerless):
    """Alert files as messages: each file is one message (an OCF file may hold many alerts).

    Files carry no offsets: the ledger is what keeps a second pass from writing anything twice."""

    def __init__(self, paths: Iterable[str | os.PathLike[str]]):
        self.files = list(alert_files(paths))
        self.position = 0  # files handed out
        self.delivered = 0  # files whose outputs are durable

    def poll_batch(self, max_messages: int, timeout: float) -> list[Message]:
        chosen = self.files[self.position:self.position + max_messages]
        self.position += len(chosen)
        return [Message(path.read_bytes(), str(path)) for path in chosen]

    def commit(self, messages: list[Message]) -> None:
        """No offsets to commit (the ledger records what was written); count what is done."""
        self.delivered += len(messages)

    def backlog(self) -> int:
        """Files whose outputs are not yet durable."""
        return len(self.files) - self.delivered

    def caught_up(self) -> bool:
        """Every file's outputs are durable (handed out is not enough: the next batch is
        decoded ahead while the current one is written)."""
        return self.delivered >= len(self.files)
