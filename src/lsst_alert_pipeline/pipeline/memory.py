"""Memory between batches: reused while a backlog is read, handed back once the stream is idle.

Each batch allocates about the same again (its payloads, the archive's frames and Parquet
buffers: hundreds of MB per 500 alerts). Memory handed back to the system after every batch
is mapped afresh by the next one, and each new page costs a fault and a clearing: with the
archive on, keeping it cut the consumer's CPU time by a tenth (polars' allocator setting
alone) to a fifth (with glibc's memory kept too), measured in alternating runs.
So freed memory stays with the process while batches keep coming, and goes back to the system
when the stream is idle (an empty poll), so an idle consumer holds no batch's worth of it.
polars' own allocator is set up for the same reuse where a consumer process starts
(`keep_batch_buffers`, called by the command line and the benchmarks' consumer processes).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

# polars allocates with its own jemalloc, configured from this variable once, when polars loads
# (polars puts its defaults before it). A batch's column buffers (tens of MB) are kept for reuse
# instead of unmapped when freed (oversize_threshold:0), and pages unused for ~5 s go back to the
# system (by the background threads polars' jemalloc runs): mapped afresh for every batch, each
# page cost a fault and a clearing (bench/bench_archive.py).
POLARS_ALLOCATOR = "oversize_threshold:0,dirty_decay_ms:5000,muzzy_decay_ms:5000"


def keep_batch_buffers() -> None:
    """Set polars' allocator for batch-sized reuse, unless the user set it; before polars loads
    (no effect after). For a consumer process's start, never for a library import."""
    if "polars" not in sys.modules:
        os.environ.setdefault("_RJEM_MALLOC_CONF", POLARS_ALLOCATOR)


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] | None = getattr(ctypes.CDLL(None), "malloc_trim", None)
        return trim
    except OSError:
        return None


_MALLOC_TRIM = _load_malloc_trim()


def release_freed_memory() -> None:
    """Hand what glibc keeps of freed memory (spread over the threads' arenas) back to
    the system: called when the stream is idle, not after every batch."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
