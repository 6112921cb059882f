"""A local stand-in for the ANTARES REST API (which tests cannot reach), and the locus messages
ANTARES would stream for alerts that pass our filter.

The listing is what antares-client 2.0 parses: `GET {base}alerts/{alert_id}/thumbnails` answers
`BaseResponse[list[ThumbnailResponse]]` (antares_client/_api/v2/utils.py and
schema/alert.py), a JSON:API document whose `data` items carry `id`, `filemime`, `src` and
`thumbnail_type` as fields of their own (the pydantic model has no `attributes` level; a listing
with one would not parse). Each `src` is then served, gzipped FITS or plain FITS. Unknown alert
ids answer 404 with a JSON:API `errors` body. Every request waits `latency` seconds (a network
round trip from a home institution), and the first N requests for an alert can be made to fail
with a 503 or a reset connection.
"""

from __future__ import annotations

import gzip
import json
import socket
import struct
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.normalize import normalize
from lsst_alert_pipeline.filter.devkit_run import load_filter, run_on_alert
from lsst_alert_pipeline.filter.relay import locus_message

from .http_standin import RequestLog, StandinHandler, StandinServer

KINDS = ("science", "template", "difference")
GZIP_MIME = "application/gzip"
FITS_MIME = "application/fits"
Failure = Literal["503", "reset"]


@dataclass
class Thumbnail:
    body: bytes  # the bytes served, gzipped or not
    filemime: str


@dataclass
class StandinState(RequestLog):
    alerts: dict[str, dict[str, Thumbnail]] = field(default_factory=dict)
    failures: dict[str, tuple[int, Failure]] = field(default_factory=dict)
    latency: float = 0.15


class AntaresStandin(StandinServer):
    """The REST API's thumbnails endpoints on 127.0.0.1, in a thread of its own."""

    request_queue_size = 128

    def __init__(self, latency: float = 0.15):
        self.state = StandinState(latency=latency)
        super().__init__(_Handler, "antares-standin")

    @property
    def base_url(self) -> str:
        """What `antares.api_url` is set to (the real one is https://api.antares.noirlab.edu/v2/)."""
        return f"{self.origin}/v2/"

    @property
    def latency(self) -> float:
        return self.state.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self.state.latency = seconds

    def add_alert(self, alert_id: str, cutouts: dict[str, bytes | None],
                  gzipped: Iterable[str] = KINDS, mislabelled: Iterable[str] = ()) -> None:
        """Serve an alert's cutouts: those in `gzipped` gzipped (filemime application/gzip),
        those in `mislabelled` gzipped under filemime application/fits, the rest plain FITS."""
        gzipped, mislabelled = set(gzipped), set(mislabelled)
        served = {}
        for kind, blob in cutouts.items():
            if blob is None:
                continue
            if kind in mislabelled:
                served[kind] = Thumbnail(gzip.compress(blob, mtime=0), FITS_MIME)
            elif kind in gzipped:
                served[kind] = Thumbnail(gzip.compress(blob, mtime=0), GZIP_MIME)
            else:
                served[kind] = Thumbnail(blob, FITS_MIME)
        with self.state.lock:
            self.state.alerts[alert_id] = served

    def fail_first(self, alert_id: str, times: int, how: Failure = "503") -> None:
        """The next `times` requests about this alert (listing or files) fail transiently."""
        with self.state.lock:
            self.state.failures[alert_id] = (times, how)

    def requests_for(self, alert_id: str) -> int:
        """How many requests named this alert (listing and files)."""
        quoted = urllib.parse.quote(alert_id, safe=":")
        with self.state.lock:
            return sum(1 for path in self.state.requests
                       if f"/{alert_id}/" in path or f"/{quoted}/" in path)

    def request_counts(self) -> Counter[str]:
        with self.state.lock:
            return Counter(self.state.requests)


class _Handler(StandinHandler):
    server: AntaresStandin

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        state = self.server.state
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        with state.lock:
            state.requests.append(path)
        time.sleep(state.latency)
        parts = path.strip("/").split("/")
        alert_id = parts[2] if len(parts) >= 3 else ""
        with state.lock:
            left, how = state.failures.get(alert_id, (0, "503"))
            if left:
                state.failures[alert_id] = (left - 1, how)
            served = state.alerts.get(alert_id)
        if left:
            return self._fail(how)
        if parts[:2] == ["v2", "alerts"] and len(parts) == 4 and parts[3] == "thumbnails":
            if served is None:
                return self._not_found(f"alert {alert_id} not found")
            return self._json(200, self._listing(alert_id, served))
        if parts[:2] == ["v2", "thumbnail_files"] and len(parts) == 4 and served is not None:
            kind = parts[3].split(".")[0]
            if kind in served:
                return self.send_body(200, served[kind].body, served[kind].filemime)
        return self._not_found(f"no such resource {path}")

    def _listing(self, alert_id: str, served: dict[str, Thumbnail]) -> dict[str, object]:
        quoted = urllib.parse.quote(alert_id, safe="")
        base = self.server.base_url
        data = []
        for kind, thumbnail in served.items():
            suffix = ".fits.gz" if thumbnail.body[:2] == b"\x1f\x8b" else ".fits"
            data.append({"id": f"{alert_id}_{kind}", "type": "alert_thumbnail",
                         "filemime": thumbnail.filemime,
                         "src": f"{base}thumbnail_files/{quoted}/{kind}{suffix}",
                         "thumbnail_type": kind})
        return {"data": data, "links": {"self": f"{base}alerts/{quoted}/thumbnails",
                                        "next": None}}

    def _not_found(self, detail: str) -> None:
        self._json(404, {"errors": [{"status": "404", "title": "Not Found", "detail": detail}]})

    def _json(self, status: int, document: dict[str, object]) -> None:
        self.send_body(status, json.dumps(document).encode(), "application/vnd.api+json")

    def _fail(self, how: Failure) -> None:
        if how == "503":
            self._json(503, {"errors": [{"status": "503", "title": "Service Unavailable"}]})
            return
        # SO_LINGER 0 then close: the kernel answers with a TCP reset, not an orderly FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


@dataclass
class StreamedAlert:
    """One alert as ANTARES would stream it after our filter passed it."""

    locus_message: bytes
    antares_alert_id: str
    dia_source_id: int
    cutouts: dict[str, bytes | None]  # the packet's own cutouts, what the files must equal


def streamed_alerts(payloads: Iterable[bytes]) -> Iterator[StreamedAlert]:
    """Run the filter through the real DevKit on each wire payload, as `relay --format antares`
    does, and give the locus message of each passing alert with the packet's cutouts."""
    filter_instance = load_filter()()
    for payload in payloads:
        for alert in decode_message(payload):
            result = run_on_alert(filter_instance, alert, "standin")
            if not result.passed:
                continue
            record = normalize(alert)
            message = locus_message(alert, result.new_tags, result.new_properties)
            yield StreamedAlert(message, str(result.new_properties["extfilter_alert_id"]),
                                int(record.diaSourceId), dict(record.cutouts))


def serve(standin: AntaresStandin, alerts: Iterable[StreamedAlert]) -> None:
    """Put the alerts' cutouts behind the stand-in, mixing how they are served: gzipped under a
    gzip filemime, gzipped under a FITS filemime (found by magic bytes), and plain FITS."""
    for index, alert in enumerate(alerts):
        mix = index % 3
        standin.add_alert(alert.antares_alert_id, alert.cutouts,
                          gzipped=KINDS if mix == 0 else ("science",),
                          mislabelled=("template",) if mix == 1 else ())


def wire_payloads(simulated: int = 30, seed: int = 7) -> list[bytes]:
    """Real Rubin packets when ../shared/real-alerts is there, plus simulated ones always (the
    simulator's solar-system alerts pass the filter, so every run has passing alerts)."""
    from lsst_alert_pipeline.decode.schemas import latest_version
    from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts

    from .conftest import real_files

    real = [p.read_bytes() for p in real_files("rubin/derived_wire_v9_0/*.wire",
                                                "rubin/derived_wire_v10_0/*.wire")]
    version = latest_version()
    return real + [encode_wire(alert, version)
                   for alert in simulate_alerts(simulated, sso_fraction=1.0, seed=seed)]
