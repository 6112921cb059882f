"""Dead letters: a message we cannot process is kept with its bytes and the reason, and counted."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from ..config import mask_secrets
from .atomic import TEMP_PREFIX

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(origin: str) -> str:
    """A file name from a message's origin (topic-partition-offset or a file path), never a path."""
    name = _UNSAFE.sub("_", origin).strip("._") or "message"
    return name[:150]


def deadletter_name(origin: str, payload: bytes) -> str:
    """`<readable origin>-<hash of origin and bytes>`: two origins that read alike once made
    safe (`a b.avro`, `a_b.avro`), or one file name seen again with other bytes, never share a
    name; the same message redelivered keeps its name (rewritten, not doubled)."""
    digest = hashlib.sha256(origin.encode() + b"\0" + payload).hexdigest()[:16]
    return f"{safe_name(origin)[:120]}-{digest}"


def write_deadletter(folder: Path, origin: str, payload: bytes, reason: str,
                     details: dict[str, Any] | None = None) -> str:
    """Write `<name>.bin` (the raw bytes) and `<name>.json` (why); return the name."""
    name = deadletter_name(origin, payload)
    # A reason may quote a URL (the registry's) that carried credentials: never write them.
    body = {"origin": origin, "reason": mask_secrets(reason), "bytes": len(payload),
            **{key: mask_secrets(value) if isinstance(value, str) else value
               for key, value in (details or {}).items()}}
    for suffix, content in ((".bin", payload), (".json", json.dumps(body, indent=2).encode())):
        temp = folder / f"{TEMP_PREFIX}{name}{suffix}"
        with open(temp, "wb") as handle:
            handle.write(content)
        os.replace(temp, folder / f"{name}{suffix}")
    return name
