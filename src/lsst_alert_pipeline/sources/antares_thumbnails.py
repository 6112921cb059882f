"""Cutouts of ANTARES stream alerts, from the REST API's `alerts/{alert_id}/thumbnails`.

The stream message carries no cutouts (docs/antares.md, Thumbnails). The listing is parsed by
antares-client's own API client and response model; the files are fetched with retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import httpx

from ..decode.normalize import AlertRecord

log = logging.getLogger(__name__)
T = TypeVar("T")


class AntaresThumbnails:
    def __init__(self, base_url: str, timeout: float = 30.0, retries: int = 3,
                 alert_id_format: str = "{diaSourceId}"):
        from ..antares_adapter import ANTARESAPIClient

        self.api = ANTARESAPIClient(base_url=base_url, timeout=timeout)
        self.http = httpx.Client(timeout=timeout, follow_redirects=True)
        self.retries = retries
        self.alert_id_format = alert_id_format

    def _retrying(self, what: str, attempt_once: Callable[[], T]) -> T | None:
        delay = 0.5
        for attempt in range(self.retries + 1):
            try:
                return attempt_once()
            except Exception as exc:  # network errors, HTTP errors, bad JSON alike
                if attempt == self.retries:
                    log.warning("%s failed after %d attempts: %s", what, attempt + 1, exc)
                    return None
                time.sleep(delay)
                delay *= 2
        return None

    def __call__(self, record: AlertRecord) -> dict[str, bytes | None]:
        """science/template/difference bytes, None for any the API could not give."""
        alert_id = self.alert_id_format.format(diaSourceId=record.diaSourceId)
        found: dict[str, bytes | None] = {"science": None, "template": None, "difference": None}
        listing = self._retrying(f"listing thumbnails of alert {alert_id}",
                                 lambda: list(self.api.get_alert_thumbnails(alert_id)))
        for thumbnail in listing or []:
            def fetch(url: str = thumbnail.src) -> bytes:
                response = self.http.get(url)
                response.raise_for_status()
                return response.content

            found[thumbnail.thumbnail_type] = self._retrying(
                f"fetching the {thumbnail.thumbnail_type} cutout of alert {alert_id}", fetch)
        return found
