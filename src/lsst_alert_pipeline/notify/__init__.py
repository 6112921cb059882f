"""Telling the user what happened, through apprise: failed runs, new candidates (each named
once, recorded in the ledger), the morning digest (docs/notifications.md).

Sits beside cli: it reads the pipeline's output (ledger, archive, report) and is handed to
`consume` as an observer, so nothing below it imports it.
"""

from .digest import Digest, collect_digest, digest_message
from .notifier import Notifier, run_message
from .send import Delivery, send

__all__ = ["Delivery", "Digest", "Notifier", "collect_digest", "digest_message", "run_message",
           "send"]
