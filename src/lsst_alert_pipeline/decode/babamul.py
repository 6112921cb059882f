"""Babamul's LSST stream: each value one Avro container file of one `EnrichedLsstAlert` record,
as BOOM writes it (`src/enrichment/babamul.rs`, `Writer::with_codec(schema, Null)`) and the
babamul client reads it (`babamul/avro.py` deserialize_alert: `next(fastavro.reader(...))`).

`candidate` is BOOM's LsstCandidate: the triggering DIASource's fields flattened (ids of "no
association" written null, not 0) plus ZTF-style values (`jd`, `magpsf`, `objectId` =
diaObjectId or `sso<ssObjectId>`, ...). The history (`prv_candidates`, `fp_hists`) holds only
`{jd, psfFlux, psfFluxErr, band, ra, dec}`: no diaSourceId, no extendedness. So the packet the
local filter reads is the triggering DIASource alone, and its extendedness statistics come from
that one source: a filter asking for the statistics over the object's history cannot be
answered from Babamul, and each such alert is counted as written without them
(docs/brokers.md). The message carries no cutouts: Babamul's API serves them.
"""

from __future__ import annotations

import io
from typing import Any

import fastavro

from ..errors import InvalidMessage
from .fink import BROKER_COLUMNS, INCOMPLETE, PACKET
from .formats import OCF_MAGIC, DecodedAlert
from .normalize import AlertRecord, normalize_rubin

BABAMUL_PREFIX = "babamul_"
CUTOUT_ALERT_ID = "antaresAlertId"  # the id the cutout fetcher is asked with (cutout_fetch.py)
# What BOOM's LsstCandidate adds to the DIASource's fields (src/alert/lsst.rs).
CANDIDATE_EXTRAS = ("objectId", "jd", "magpsf", "sigmapsf", "snr_psf", "chipsf", "diffmaglim",
                    "isdiffpos", "magap", "sigmagap", "snr_ap", "jdstarthist", "ndethist")
NO_HISTORY_EXTENDEDNESS = ("babamul: extendedness statistics from the triggering DIASource only "
                           "(Babamul's history carries no extendedness)")


def decode_babamul(value: bytes) -> dict[str, Any]:
    """The record of one Babamul message, read as the babamul client reads it."""
    if not value.startswith(OCF_MAGIC):
        raise InvalidMessage("Babamul message is not an Avro container file (each Babamul "
                             "value is one, starting Obj\\x01)", value)
    try:
        record = next(fastavro.reader(io.BytesIO(value)))
    except StopIteration:
        raise InvalidMessage("Babamul message's Avro container holds no record", value) from None
    except Exception as exc:
        raise InvalidMessage(f"Babamul message's Avro container does not read: "
                             f"{type(exc).__name__}: {exc} (truncated or corrupt)", value) from exc
    if not isinstance(record, dict) or not isinstance(record.get("candidate"), dict):
        raise InvalidMessage("Babamul message holds no LSST alert (no candidate record); "
                             "babamul.ztf.* topics carry ZTF alerts", value)
    return record


def rubin_packet(record: dict[str, Any]) -> dict[str, Any]:
    """The Rubin-shaped packet Babamul's record gives: its DIASource and nothing Babamul lacks
    (no history with ids or extendedness, no diaObject, no ssSource record)."""
    source = {name: item for name, item in record["candidate"].items()
              if name not in CANDIDATE_EXTRAS}
    if source.get("diaSourceId") is None:
        source["diaSourceId"] = record.get("candid")
    return {"diaSource": source, "prvDiaSources": [], "diaObject": None, "ssSource": None}


def broker_values(record: dict[str, Any]) -> dict[str, Any]:
    """BOOM's own values, named `babamul_<name>`: candidate's ZTF-style ones, properties,
    survey matches and the light curve (lists as JSON text in the archive)."""
    candidate = record["candidate"]
    values = {BABAMUL_PREFIX + name: candidate.get(name) for name in CANDIDATE_EXTRAS}
    values.update((BABAMUL_PREFIX + name, item) for name, item in record.items()
                  if name not in ("candid", "candidate", "objectId"))
    return values


def babamul_records(key: bytes | None, value: bytes) -> list[AlertRecord]:
    """The normalized record of one Babamul message (with its packet for the local filter)."""
    record = decode_babamul(value)
    packet = rubin_packet(record)
    alert = normalize_rubin(packet, None)
    alert.extra[BROKER_COLUMNS] = broker_values(record)
    alert.extra[PACKET] = DecodedAlert("rubin", packet, "babamul", None)
    alert.extra[CUTOUT_ALERT_ID] = f"babamul:{alert.diaSourceId}"
    if record.get("prv_candidates"):
        alert.extra[INCOMPLETE] = NO_HISTORY_EXTENDEDNESS
    return [alert]
