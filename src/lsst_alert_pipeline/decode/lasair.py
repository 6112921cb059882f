"""Lasair's LSST stream: JSON values, as lasair-lsst's filter node writes them
(`pipeline/filter/util.py` dispose_kafka: `json.dumps(out)`, so NaN may appear) and the lasair
client reads them (`json.loads(msg.value())`).

A message is one row of the user's filter query (its selected columns plus `UTC`) and, in
"full" output, `alert`: `{diaObject, diaSourcesList, diaForcedSourcesList,
diaNondetectionLimitsList, ebv}`, made by Lasair's ingest from the Rubin alert
(`pipeline/ingest/ingest.py`): the triggering diaSource and prvDiaSources in one list, newest
first (Lasair names its cutouts after `diaSourcesList[0]`), `dec` renamed `decl`. The decoder
turns that back into the Rubin packet the local filter and normalize_rubin read. Lasair streams
no alert of a solar-system object only, and drops ssSource: the association is read from the
diaSource's own `ssObjectId`, never from a field being there or not.

"lite" output keeps per source only psfFlux, psfFluxErr, midpointMjdTai, band and reliability
(`lightcurve_lite`), and plain output only the selected columns: none of them carries a
diaSourceId (Lasair's filter tables are per object), which the collection keys every alert by
and Lasair's cutouts are named by. Such a message is set aside with a reason that says exactly
what it lacks and how to get the alert (docs/brokers.md).
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import InvalidMessage
from .fink import BROKER_COLUMNS, PACKET
from .formats import DecodedAlert
from .normalize import AlertRecord, normalize_rubin

LASAIR_PREFIX = "lasair_"
# The id the cutout fetcher is asked with (pipeline/cutout_fetch.AntaresAlertIds reads it):
# the broker's prefix keeps ANTARES's fill-cutouts off Lasair's missing cutouts.
CUTOUT_ALERT_ID = "antaresAlertId"
LITE_FIELDS = ("psfFlux", "psfFluxErr", "midpointMjdTai", "band", "reliability")
LITE_REASON = (
    "Lasair 'lite' output: each source has only psfFlux, psfFluxErr, midpointMjdTai, band and "
    "reliability; no diaSourceId (what this collection keys alerts by and Lasair names cutouts "
    "by), no extendedness, no ssObjectId, no cutouts, so no alert can be written from it: "
    "choose 'full' output for this filter on Lasair's site")
PLAIN_REASON = (
    "Lasair plain output (or a filter not selecting objects.diaObjectId): only the filter's "
    "selected columns, no DIASource at all (no diaSourceId, extendedness, ssObjectId or "
    "cutouts), so no alert can be written from it: select objects.diaObjectId and choose "
    "'full' output for this filter on Lasair's site")


def decode_lasair(value: bytes) -> dict[str, Any]:
    """One Lasair message as the client reads it (json.loads: NaN and Infinity are numbers)."""
    try:
        message = json.loads(value)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidMessage(f"Lasair message is not JSON: {exc}", value) from exc
    if not isinstance(message, dict):
        raise InvalidMessage(f"Lasair message is JSON {type(message).__name__}, not the object "
                             "of one filter row", value)
    return message


def dec_again(record: Any) -> Any:
    """A record with Lasair's `decl` named `dec` again, as Rubin names it."""
    if not isinstance(record, dict) or "decl" not in record or "dec" in record:
        return record
    return {("dec" if name == "decl" else name): item for name, item in record.items()}


def _mjd(source: dict[str, Any]) -> float:
    value = source.get("midpointMjdTai")
    return value if isinstance(value, int | float) and math.isfinite(value) else -math.inf


def full_alert(message: dict[str, Any], value: bytes) -> dict[str, Any]:
    """The `alert` of a "full" message; InvalidMessage naming the output it is instead."""
    alert = message.get("alert")
    if not isinstance(alert, dict):
        raise InvalidMessage(PLAIN_REASON, value)
    sources = alert.get("diaSourcesList")
    if not isinstance(sources, list) or not sources or not isinstance(sources[0], dict):
        raise InvalidMessage("Lasair message's alert has no diaSourcesList: it carries no "
                             "DIASource to write", value)
    if "diaSourceId" not in sources[0] and set(sources[0]) <= set(LITE_FIELDS):
        raise InvalidMessage(LITE_REASON, value)
    return alert


def rubin_packet(alert: dict[str, Any]) -> dict[str, Any]:
    """The Rubin alert Lasair's ingest made `alert` from: the newest source triggering, the
    rest its history oldest first (as Rubin sends it), `dec` again, no ssSource (Lasair
    carries none; normalize reads the association from the diaSource's ssObjectId)."""
    sources = [dec_again(source) for source in alert["diaSourcesList"]]
    forced = [dec_again(source) for source in alert.get("diaForcedSourcesList") or ()
              if isinstance(source, dict)]
    return {
        "diaSource": sources[0],
        "prvDiaSources": sorted(sources[1:], key=_mjd),
        "prvDiaForcedSources": sorted(forced, key=_mjd),
        "diaObject": dec_again(alert.get("diaObject")),
        "ssSource": None,
    }


def broker_values(message: dict[str, Any], alert: dict[str, Any]) -> dict[str, Any]:
    """The filter row's columns (and UTC) and Lasair's ebv, named `lasair_<name>`."""
    values = {LASAIR_PREFIX + name: item for name, item in message.items() if name != "alert"}
    if "ebv" in alert:
        values[LASAIR_PREFIX + "ebv"] = alert["ebv"]
    return values


def lasair_records(key: bytes | None, value: bytes) -> list[AlertRecord]:
    """The normalized record of one Lasair "full" message (with its packet for the filter)."""
    message = decode_lasair(value)
    alert = full_alert(message, value)
    packet = rubin_packet(alert)
    record = normalize_rubin(packet, None)  # diaObjectId from diaObject when null
    record.extra[BROKER_COLUMNS] = broker_values(message, alert)
    record.extra[PACKET] = DecodedAlert("rubin", packet, "lasair", None)
    record.extra[CUTOUT_ALERT_ID] = f"lasair:{record.diaSourceId}"
    return [record]
