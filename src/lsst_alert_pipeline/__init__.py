"""LSST alert pipeline: an ANTARES extendedness filter and a durable consumer of its stream."""

import os
import sys

__version__ = "0.1.0"

# polars allocates with its own jemalloc, configured from this variable once, when polars loads
# (polars puts its defaults before it), so it is set here, before anything of ours imports
# polars, and only if the user has not set it. A batch's column buffers (tens of MB) are kept
# for reuse instead of unmapped when freed (oversize_threshold:0), and pages unused for ~5 s go
# back to the system (by the background threads polars' jemalloc runs): mapped afresh for every
# batch, each page cost a fault and a clearing (pipeline/memory.py; bench/bench_archive.py).
POLARS_ALLOCATOR = "oversize_threshold:0,dirty_decay_ms:5000,muzzy_decay_ms:5000"
if "polars" not in sys.modules:
    os.environ.setdefault("_RJEM_MALLOC_CONF", POLARS_ALLOCATOR)
