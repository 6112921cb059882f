"""Handing a written batch's freed memory back to the system (glibc keeps it otherwise)."""

from __future__ import annotations

import ctypes
from collections.abc import Callable


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] | None = getattr(ctypes.CDLL(None), "malloc_trim", None)
        return trim
    except OSError:
        return None


_MALLOC_TRIM = _load_malloc_trim()


def release_freed_memory() -> None:
    """Hand the freed memory of a written batch back to the system (glibc keeps it otherwise,
    spread over the two threads' arenas): one batch of 100-300 KB alerts is tens of MB."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
