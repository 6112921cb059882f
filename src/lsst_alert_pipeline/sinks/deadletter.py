"""Dead letters: a message we cannot process is kept with its bytes and the reason, and counted."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .atomic import TEMP_PREFIX

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(origin: str) -> str:
    """A file name from a message's origin (topic-partition-offset or a file path), never a path."""
    name = _UNSAFE.sub("_", origin).strip("._") or "message"
    return name[:150]


def write_deadletter(folder: Path, origin: str, payload: bytes, reason: str,
                     details: dict[str, Any] | None = None) -> str:
    """Write `<name>.bin` (the raw bytes) and `<name>.json` (why); return the name."""
    name = safe_name(origin)
    body = {"origin": origin, "reason": reason, "bytes": len(payload), **(details or {})}
    for suffix, content in ((".bin", payload), (".json", json.dumps(body, indent=2).encode())):
        temp = folder / f"{TEMP_PREFIX}{name}{suffix}"
        with open(temp, "wb") as handle:
            handle.write(content)
        os.replace(temp, folder / f"{name}{suffix}")
    return name
