"""Telling the user what happened, through apprise: failed runs, new candidates (each named
once, recorded in the ledger), the morning digest (docs/notifications.md).

Sits beside cli: it reads the pipeline's output (ledger, archive, report) and is handed to
`consume` as an observer, so nothing below it imports it.
"""

from importlib import import_module
from typing import Any

# Imported when first asked for: the digest pulls in the report's plotting and DuckDB, which a
# `consume` that only sends a failure message must not pay for at every start (~0.5 s).
_HOMES = {"Digest": "digest", "collect_digest": "digest", "digest_message": "digest",
          "Notifier": "notifier", "run_message": "notifier", "Delivery": "send", "send": "send"}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_HOMES[name]}", __name__), name)
