"""Where a test reaches into a run: a fault hook called at each step of the durability order.

Production never sets it (the hook does nothing). The crash tests install one in the consumer
process they start (tests/fault_consumer.py) to kill it at a chosen step, proving a restart
recovers from a crash at every point (docs/architecture.md, Where each guarantee is enforced).
"""

from __future__ import annotations

from collections.abc import Callable

# The steps of `Pipeline.deliver`, in order; "archive-file-written" is reached inside the
# archive's write, after each Parquet file is renamed into place.
DURABILITY_STEPS = ("after-write", "after-sync", "after-ledger", "after-commit")
STEPS = (*DURABILITY_STEPS, "archive-file-written")

FaultHook = Callable[[str], None]


def _no_fault(step: str) -> None:
    """The production hook: nothing happens at any step."""


_hook: FaultHook = _no_fault


def set_fault_hook(hook: FaultHook | None) -> None:
    """Install `hook` (called with each step's name as a run reaches it); None removes it."""
    global _hook
    _hook = hook or _no_fault


def fault_point(step: str) -> None:
    """A run reached `step` (one of STEPS): call the installed hook."""
    _hook(step)
