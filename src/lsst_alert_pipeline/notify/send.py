"""Delivering one message to every configured URL through apprise, each URL on its own.

Never at the data's expense: a URL that fails (refused, timeout, rejected) is a warning with its
URL masked, and the whole delivery waits at most `timeout` seconds (docs/notifications.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import apprise

from ..config import mask_url

log = logging.getLogger("lsst_alert_pipeline.notify")

@dataclass(frozen=True)
class Delivery:
    """What became of one message at one URL (masked)."""

    url: str
    delivered: bool
    reason: str = ""


def _one(url: str, title: str, body: str, attachments: Sequence[Path]) -> Delivery:
    shown = mask_url(url)
    sender = apprise.Apprise()
    if not sender.add(url):
        return Delivery(shown, False, "apprise cannot read this URL (docs/notifications.md)")
    attach = apprise.AppriseAttachment()
    for path in attachments:
        attach.add(str(path))
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        # Our messages are plain text: said so, apprise keeps their lines (an e-mail read as
        # HTML by default ran every candidate of a list into one line).
        ok = sender.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT,
                           attach=attach if attachments else None)
    if ok:
        return Delivery(shown, True)
    lines = [line for line in captured.getvalue().splitlines() if line.strip()]
    return Delivery(shown, False, lines[-1].strip() if lines else "not delivered")


def send(urls: Sequence[str], title: str, body: str, attachments: Sequence[Path] = (),
         timeout: float = 10.0) -> list[Delivery]:
    """Send to each URL (all at once, each in a thread); a URL still busy after `timeout`
    seconds counts as not delivered and is left to finish on its own."""
    results: dict[int, Delivery] = {}
    # apprise's own lines (unmasked, one per attempt) give way to one masked warning per URL
    logging.getLogger("apprise").propagate = False

    def deliver(index: int, url: str) -> None:
        try:
            results[index] = _one(url, title, body, attachments)
        except Exception as exc:  # a plugin's bug must not reach the run
            results[index] = Delivery(mask_url(url), False, f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=deliver, args=(i, url), daemon=True,
                                name=f"notify-{i}") for i, url in enumerate(urls)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:  # they run together: the whole wait is bounded by one timeout
        thread.join(max(0.0, deadline - time.monotonic()))
    deliveries = [results.get(i, Delivery(mask_url(url), False,
                                          f"no answer within {timeout:g} s"))
                  for i, url in enumerate(urls)]
    for delivery in deliveries:
        if not delivery.delivered:
            log.warning("notification %r not delivered to %s: %s", title, delivery.url,
                        delivery.reason)
    return deliveries
