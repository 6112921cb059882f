"""Cutouts of ANTARES stream alerts, from the REST API's `alerts/{alert_id}/thumbnails`.

The stream message carries no cutouts (docs/antares.md, Thumbnails): the filter records the
triggering alert's ANTARES alert id as a locus property, and the cutouts are listed under that
id, then each listed file (`src`) is fetched and, when gzipped (by `filemime` or by its magic
bytes), inflated to plain FITS. The listing is parsed with antares-client's own response model.

Each alert costs four round trips (100-200 ms each from a home institution), so the alerts of a
batch are fetched concurrently over one pool of keep-alive connections. Failures are sorted by
what they mean: the API *answered* that there is nothing (404, another 4xx, a broken file) and
asking again would not help, so the cutout is missing for good; or the request failed on the
way (timeout, reset, 5xx, 429) and, after the retries, the cutout is missing for now: the
pipeline records it so `lsst-alerts fill-cutouts` fetches it later.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pydantic

log = logging.getLogger(__name__)

KINDS = ("science", "template", "difference")
GZIP_MAGIC = b"\x1f\x8b"
MAX_INFLATED_BYTES = 16 * 1024 * 1024  # a cutout is ~10-100 KB; this refuses a gzip bomb
MissingState = Literal["gone", "later"]
GONE: MissingState = "gone"  # the API answered there is none (404) or served a broken file
LATER: MissingState = "later"  # the request failed on the way; fill-cutouts asks again
RETRYABLE_STATUS = {408, 425, 429}


class Transient(Exception):  # noqa: N818
    """The request failed on the way (timeout, reset, 5xx): asking again may succeed."""


class Answered(Exception):  # noqa: N818
    """The API answered that there is nothing to fetch (404 or another 4xx): never retried."""


@dataclass
class FetchedCutouts:
    """What the API gave for one alert: plain-FITS bytes per kind, and why any is missing."""

    alert_id: str
    cutouts: dict[str, bytes | None]
    missing: dict[str, tuple[MissingState, str]] = field(default_factory=dict)

    def lose(self, kinds: Iterable[str], state: MissingState, reason: str) -> None:
        for kind in kinds:
            self.cutouts[kind] = None
            self.missing[kind] = (state, reason)


def plain_fits(blob: bytes, filemime: str) -> bytes:
    """The file as plain FITS: inflated when gzipped (by filemime or magic bytes); ValueError
    when it claims gzip and is not, is truncated, or inflates past MAX_INFLATED_BYTES."""
    if not (blob[:2] == GZIP_MAGIC or "gzip" in filemime.lower()):
        return blob
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        plain = inflater.decompress(blob, MAX_INFLATED_BYTES + 1)
    except zlib.error as exc:
        raise ValueError(f"served as {filemime} but is not gzip ({exc})") from exc
    if len(plain) > MAX_INFLATED_BYTES:
        raise ValueError(f"inflates to more than {MAX_INFLATED_BYTES} bytes")
    if not inflater.eof:
        raise ValueError("the gzip stream is truncated")
    return plain


def parse_listing(text: str) -> list[Any]:
    """The listing's thumbnails (antares-client's ThumbnailResponse: id, filemime, src,
    thumbnail_type), parsed exactly as antares-client's get_alert_thumbnails parses them."""
    from ..antares_adapter import BaseResponse, ThumbnailResponse

    listing: list[Any] = BaseResponse[list[ThumbnailResponse]].model_validate_json(text).data
    return listing


class AntaresThumbnails:
    """Fetches the three cutouts of stream alerts from the ANTARES REST API, concurrently."""

    def __init__(self, base_url: str, timeout: float = 30.0, retries: int = 3,
                 concurrency: int = 24, backoff: float = 0.5):
        self.retries = retries
        self.backoff = backoff
        self.concurrency = max(1, concurrency)
        base_url = base_url if base_url.endswith("/") else base_url + "/"
        limits = httpx.Limits(max_connections=self.concurrency,
                              max_keepalive_connections=self.concurrency)
        # No pool timeout: a request waiting for one of the `concurrency` connections is queued
        # work, not a failing API.
        self.http = httpx.Client(base_url=base_url, timeout=httpx.Timeout(timeout, pool=None),
                                 follow_redirects=True, limits=limits)
        # Alerts on one pool, their files on another (a task never waits on its own pool): the
        # listing of one alert and the files of others share the connections, so they stay busy.
        self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="antares-alert")
        self.file_pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="antares-file")

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.file_pool.shutdown(wait=True, cancel_futures=True)
        self.http.close()

    def fetch_alerts(self, wanted: Sequence[tuple[str, Sequence[str]]],
                     deadline: float | None = None) -> list[FetchedCutouts]:
        """For each (alert id, kinds), those cutouts (same order), fetched concurrently.

        Past `deadline` (time.monotonic()) no retry is started: what is still failing then is
        missing for now, so a batch never waits out long backoffs of a sick API."""
        if self.concurrency == 1 or len(wanted) == 1:
            return [self.fetch(alert_id, kinds, deadline) for alert_id, kinds in wanted]
        futures = [self.pool.submit(self.fetch, alert_id, kinds, deadline)
                   for alert_id, kinds in wanted]
        return [future.result() for future in futures]

    def fetch(self, alert_id: str, kinds: Sequence[str] = KINDS,
              deadline: float | None = None) -> FetchedCutouts:
        """One alert, asked for only before `deadline`; never raises for what it can name."""
        result = FetchedCutouts(alert_id, {kind: None for kind in kinds})
        if deadline is not None and time.monotonic() > deadline:
            # The batch's time for the API is spent (it is down or crawling): do not queue
            # behind it; fill-cutouts asks for these later.
            result.lose(kinds, LATER, "not asked: the batch's time for the cutout API ran out")
            return result
        return self.ask(result, kinds, deadline)

    def ask(self, result: FetchedCutouts, kinds: Sequence[str],
            deadline: float | None) -> FetchedCutouts:
        """ANTARES's answer: the listing, then each wanted file (subclasses: broker_cutouts.py)."""
        alert_id = result.alert_id
        quoted = urllib.parse.quote(alert_id, safe=":")
        try:
            response = self._get(f"alerts/{quoted}/thumbnails", deadline)
            thumbnails = {t.thumbnail_type: t for t in parse_listing(response.text)}
        except Answered as exc:
            result.lose(kinds, GONE, f"ANTARES has no thumbnails for alert {alert_id} ({exc})")
            return result
        except Transient as exc:
            result.lose(kinds, LATER, f"listing the thumbnails of alert {alert_id} failed: {exc}")
            return result
        except pydantic.ValidationError as exc:
            # Not the documented shape: a proxy's error page or an API change; ask again later.
            result.lose(kinds, LATER, f"the thumbnails listing of alert {alert_id} does not "
                                      f"parse: {exc.error_count()} error(s), first "
                                      f"{exc.errors()[0]['msg']}")
            return result
        listed = [kind for kind in kinds if kind in thumbnails]
        for kind in kinds:
            if kind not in thumbnails:
                result.lose([kind], GONE, f"ANTARES lists no {kind} thumbnail for {alert_id}")
        if self.concurrency == 1:
            files = [self._file(alert_id, thumbnails[kind], deadline) for kind in listed]
        else:
            futures = [self.file_pool.submit(self._file, alert_id, thumbnails[kind], deadline)
                       for kind in listed]
            files = [future.result() for future in futures]
        for kind, (blob, why) in zip(listed, files, strict=True):
            if blob is not None:
                result.cutouts[kind] = blob
            elif why is not None:
                result.lose([kind], *why)
        return result

    def _file(self, alert_id: str, thumbnail: Any, deadline: float | None
              ) -> tuple[bytes | None, tuple[MissingState, str] | None]:
        """One listed file as plain FITS, or why it is missing."""
        kind = thumbnail.thumbnail_type
        try:
            blob = self._get(thumbnail.src, deadline).content
            return plain_fits(blob, thumbnail.filemime), None
        except Answered as exc:
            return None, (GONE, f"the {kind} file of alert {alert_id} is gone ({exc})")
        except Transient as exc:
            return None, (LATER, f"fetching the {kind} file of alert {alert_id} failed: {exc}")
        except ValueError as exc:
            return None, (GONE, f"the {kind} file of alert {alert_id} is broken: {exc}")

    def _get(self, url: str, deadline: float | None) -> httpx.Response:
        """GET with retries of transient failures only; Answered for a 4xx, Transient at the
        end of the retries (or when the deadline leaves no time for another)."""
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                response = self.http.get(url)
            except httpx.TransportError as exc:  # timeouts, refused, reset connections
                failure = Transient(f"{type(exc).__name__}: {exc or 'no detail'}")
            else:
                status = response.status_code
                if status < 400:
                    return response
                if status < 500 and status not in RETRYABLE_STATUS:
                    raise Answered(f"HTTP {status}")
                failure = Transient(f"HTTP {status}")
            out_of_time = deadline is not None and time.monotonic() + delay > deadline
            if attempt == self.retries or out_of_time:
                tries = attempt + 1
                raise Transient(f"{failure} after {tries} attempt{'s' * (tries > 1)}")
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")
