"""Test instrumentation, not a feature: crash the process at a chosen step of `Pipeline.deliver`.

`LSST_ALERT_PIPELINE_FAULT=<step>:<n>` (steps: after-write, after-sync, after-ledger,
after-commit; archive-file-written, inside the archive's write after each Parquet file is
renamed into place) makes the process SIGKILL itself the n-th time it reaches that step, so
tests/reliability can prove a restart recovers from a crash at every point of the durability
order. Unset, it does nothing.
"""

from __future__ import annotations

import os
import signal

STEPS = ("after-write", "after-sync", "after-ledger", "after-commit")
_STEP, _, _AT = os.environ.get("LSST_ALERT_PIPELINE_FAULT", "").partition(":")
_reached = 0


def fault_point(step: str) -> None:
    """SIGKILL this process if the configured fault is the n-th arrival at `step`."""
    global _reached
    if step != _STEP:
        return
    _reached += 1
    if _reached == int(_AT or 1):
        os.kill(os.getpid(), signal.SIGKILL)
