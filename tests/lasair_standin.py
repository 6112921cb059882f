"""Lasair's LSST stream as Lasair's producer writes it, and a stand-in for its cutout pages.

Built from lsst-uk/lasair-lsst @ 308098ee (Apache-2.0), read with `fetch`:
- `pipeline/ingest/ingest.py` `_handle_alerts`: `diaSourcesList` = the diaSource plus
  prvDiaSources sorted by midpointMjdTai newest first, prvDiaForcedSources newest first, `dec`
  renamed `decl` in diaObject, every diaSource and forced source; an alert without diaObject
  (a solar-system object only) goes no further; the cutouts are stored under
  `diaSourcesList[0]`'s diaSourceId;
- `pipeline/filter/alert/alertcore.py` `ingest_message_list`: the alert gets `ebv`;
- `pipeline/filter/alert/filters.py` `run_query`: each row of the user's query gets `UTC`;
- `pipeline/filter/util.py` `dispose_query_results`: a row that selected `diaObjectId` gets
  `alert` (full output) or `lightcurve_lite(alert)` (lite); `dispose_kafka` drops
  `annotations` and produces `json.dumps(row)` (NaN stays NaN).
- `webserver/lasair/utils.py` `fits`: `/fits/<diaSourceId>_cutout<Kind>/` answers 200 with
  the stored FITS bytes, or 200 with an empty body when the store has none.

The lasair client (PyPI `lasair` 0.1.4, `lasair_consumer`, `RL_consumer.poll`) reads a
message with `json.loads(msg.value())`; its package holds no other decoding, so `client_decode`
is that one call, reproduced as written. The real sample alert of lasair-lsst's tests
(`../shared/real-alerts/lasair/`) is the shape the built messages are checked against.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from lsst_alert_pipeline.decode.formats import decode_message

from .conftest import REAL_ALERTS, real_files
from .http_standin import RequestLog, StandinHandler, StandinServer

WIRE_V10 = "rubin/derived_wire_v10_0/*.wire"
SAMPLE = REAL_ALERTS / "lasair" / "313637921267122191.json"
EBV = 0.0125  # what SFDQuery gave; the stand-in's value is fixed
UTC = "2026-12-06 01:02:03"
FIELDS = {"science": "cutoutScience", "template": "cutoutTemplate",
          "difference": "cutoutDifference"}


def client_decode(value: bytes) -> Any:
    """The lasair client's reading of a message."""
    return json.loads(value)


def rubin_packets() -> list[dict[str, Any]]:
    """The Rubin alerts of the v10 wire files (real, or the simulated tree's)."""
    return [alert.record for path in real_files(WIRE_V10)
            for alert in decode_message(path.read_bytes())]


def _decl(record: dict[str, Any]) -> None:
    if "dec" in record:
        record["decl"] = record["dec"]
        del record["dec"]


def lasair_alert(packet: dict[str, Any]) -> dict[str, Any] | None:
    """Lasair's alert object for a Rubin alert (ingest, then the filter node's ebv); None for
    an alert Lasair does not send on (no diaObject)."""
    lsst_alert = copy.deepcopy(packet)
    dia_sources = [lsst_alert["diaSource"]]
    if lsst_alert.get("prvDiaSources"):
        dia_sources = dia_sources + lsst_alert["prvDiaSources"]
    dia_sources = sorted(dia_sources, key=lambda x: x["midpointMjdTai"], reverse=True)
    dia_object = lsst_alert.get("diaObject")
    if not dia_object:
        return None
    forced = lsst_alert.get("prvDiaForcedSources") or []
    _decl(dia_object)
    for source in dia_sources:
        _decl(source)
    for source in forced:
        _decl(source)
    forced = sorted(forced, key=lambda x: x["midpointMjdTai"], reverse=True)
    nondetections = lsst_alert.get("prvDiaNondetectionLimits") or []
    return {"diaObject": dia_object, "diaSourcesList": dia_sources,
            "diaForcedSourcesList": forced, "diaNondetectionLimitsList": nondetections,
            "ebv": EBV}


def lightcurve_lite(alert: dict[str, Any]) -> dict[str, Any]:
    """lasair-lsst's util.lightcurve_lite, as written."""
    attrs = ["psfFlux", "psfFluxErr", "midpointMjdTai", "band", "reliability"]
    sources = [{attr: ds[attr] for attr in attrs} for ds in alert["diaSourcesList"]]
    attrs = ["psfFlux", "psfFluxErr", "midpointMjdTai", "band"]
    forced = [{attr: dfs[attr] for attr in attrs} for dfs in alert["diaForcedSourcesList"]]
    return {"diaSourcesList": sources, "diaForcedSourcesList": forced}


def query_row(alert: dict[str, Any]) -> dict[str, Any]:
    """A row of `SELECT objects.diaObjectId, objects.ra, objects.decl, objects.nDiaSources`
    (the objects table's values come from the diaObject and its sources), plus UTC."""
    dia_object = alert["diaObject"]
    return {"diaObjectId": dia_object["diaObjectId"], "ra": dia_object["ra"],
            "decl": dia_object["decl"], "nDiaSources": len(alert["diaSourcesList"]),
            "UTC": UTC}


def message(alert: dict[str, Any], output: str) -> bytes:
    """The Kafka value Lasair produces for one row in "full", "lite" or "plain" output."""
    row = query_row(alert)
    if output == "full":
        row["alert"] = alert
    elif output == "lite":
        row["alert"] = lightcurve_lite(alert)
    if "alert" in row:
        row["alert"].pop("annotations", None)
    return json.dumps(row).encode()


@dataclass
class LasairStream:
    """The alerts Lasair sends on for some Rubin packets, and those packets."""

    packets: list[dict[str, Any]]  # the Rubin alerts Lasair sent, in the same order
    alerts: list[dict[str, Any]]
    skipped: list[dict[str, Any]]  # Rubin alerts without diaObject: Lasair sends none

    def values(self, output: str = "full") -> list[bytes]:
        return [message(alert, output) for alert in self.alerts]

    def trigger_ids(self) -> list[int]:
        """The diaSourceId each message's cutouts and alert are named by."""
        return [alert["diaSourcesList"][0]["diaSourceId"] for alert in self.alerts]


def lasair_stream() -> LasairStream:
    packets, alerts, skipped = [], [], []
    for packet in rubin_packets():
        alert = lasair_alert(packet)
        if alert is None:
            skipped.append(packet)
        else:
            packets.append(packet)
            alerts.append(alert)
    return LasairStream(packets, alerts, skipped)


@dataclass
class PageState(RequestLog):
    pages: dict[str, bytes] = field(default_factory=dict)  # "<id>_cutoutScience" -> bytes
    failing: set[str] = field(default_factory=set)  # diaSourceIds answered 503


class LasairPages(StandinServer):
    """Lasair's `/fits/<diaSourceId>_cutout<Kind>/` pages on 127.0.0.1: the stored bytes, or
    200 with an empty body for a cutout it does not hold (as utils.fits answers)."""

    def __init__(self) -> None:
        self.state = PageState()
        super().__init__(_Handler, "lasair-standin")

    @property
    def base_url(self) -> str:
        return self.origin

    def store(self, dia_source_id: int, cutouts: dict[str, bytes | None]) -> None:
        with self.state.lock:
            for kind, blob in cutouts.items():
                if blob:
                    self.state.pages[f"{dia_source_id}_{FIELDS[kind]}"] = blob

    def fail(self, dia_source_id: int) -> None:
        with self.state.lock:
            self.state.failing.add(str(dia_source_id))


class _Handler(StandinHandler):
    server: LasairPages

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        state = self.server.state
        parts = self.path.strip("/").split("/")
        with state.lock:
            state.requests.append(self.path)
            name = parts[1] if len(parts) == 2 and parts[0] == "fits" else None
            if name is None:
                status, body = 404, b"not found"
            elif name.partition("_")[0] in state.failing:
                status, body = 503, b"Service Unavailable"
            else:
                status, body = 200, state.pages.get(name, b"")
        self.send_body(status, body, "image/fits",
                       {"Content-Disposition": f'attachment; filename="{name}.fits"'})
