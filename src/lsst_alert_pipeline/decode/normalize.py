"""One normalized record per alert, whatever format and schema version it came in.

The record carries the specification's CSV fields under the specification's names (so a column,
a JSON key and an attribute are one word everywhere), plus ssObjectId, hasSSSource and the cutouts.
Field names per schema version come from one table in schemas.py; NaN and null both become None.
"""

from __future__ import annotations

import gzip
import math
import statistics
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidMessage
from .formats import DecodedAlert
from .schemas import field_names_for
from .times import day_obs

# ZTF fid -> band; ZTF magnitudes are AB, and 31.4 is the AB zero point of a flux in nJy.
ZTF_BANDS = {1: "g", 2: "r", 3: "i"}
AB_ZERO_POINT_NJY = 31.4
MAX_STAMP_BYTES = 16 * 1024 * 1024

CSV_FIELDS: tuple[str, ...] = (
    "alertId",
    "diaSourceId",
    "diaObjectId",
    "ra",
    "dec",
    "mjd",
    "filterName",
    "psFlux",
    "psFluxErr",
    "extendednessMedian",
    "extendednessMin",
    "extendednessMax",
)
RECORD_FIELDS = (*CSV_FIELDS, "ssObjectId", "hasSSSource")
INSPECT_COLUMNS = ("alertId", "diaSourceId", "filterName", "mjd", "psFlux", "extendednessMedian",
                   "extendednessMin", "extendednessMax", "hasSSSource")
CUTOUT_KINDS: tuple[str, ...] = ("science", "template", "difference")


@dataclass(slots=True)
class AlertRecord:
    """The normalized alert: the specification's fields, SSSource association and cutout bytes."""

    alertId: int | None  # noqa: N815 - the specification's column names, kept as written
    diaSourceId: int | None  # noqa: N815
    diaObjectId: int | str | None  # noqa: N815
    ra: float | None
    dec: float | None
    mjd: float | None
    filterName: str | None  # noqa: N815
    psFlux: float | None  # noqa: N815
    psFluxErr: float | None  # noqa: N815
    extendednessMedian: float | None  # noqa: N815
    extendednessMin: float | None  # noqa: N815
    extendednessMax: float | None  # noqa: N815
    ssObjectId: int | str | None  # noqa: N815
    hasSSSource: bool  # noqa: N815
    cutoutScience: bytes | None = None  # noqa: N815
    cutoutTemplate: bytes | None = None  # noqa: N815
    cutoutDifference: bytes | None = None  # noqa: N815
    extendednessCount: int = 0  # noqa: N815
    snr: float | None = None
    reliability: float | None = None
    schemaVersion: str | None = None  # noqa: N815
    survey: str = "lsst"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cutouts(self) -> dict[str, bytes | None]:
        return {
            "science": self.cutoutScience,
            "template": self.cutoutTemplate,
            "difference": self.cutoutDifference,
        }

    @property
    def day_obs(self) -> str | None:
        """Rubin's dayObs (YYYYMMDD): the date of the observation in the UTC-12h time zone."""
        return day_obs(self.mjd)

    def as_json(self) -> dict[str, Any]:
        """The record as `inspect --json` prints it: cutouts reported as byte lengths."""
        out: dict[str, Any] = {name: getattr(self, name) for name in RECORD_FIELDS}
        out["cutoutScience"] = _length(self.cutoutScience)
        out["cutoutTemplate"] = _length(self.cutoutTemplate)
        out["cutoutDifference"] = _length(self.cutoutDifference)
        return out

    def inspect_row(self) -> str:
        """The record as a row of `inspect`'s table (INSPECT_COLUMNS; floats to 6 digits)."""
        return "  ".join(_cell(getattr(self, name)) for name in INSPECT_COLUMNS)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _length(blob: bytes | None) -> int | None:
    return None if blob is None else len(blob)


def finite(value: Any) -> Any:
    """None for NaN/inf/null, the value otherwise (never the text 'nan' in a CSV)."""
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def present(value: Any) -> bool:
    """Whether an optional record is there. Broker copies written by Spark turn a null record into
    one whose every field is null (fink-client v10 files), so that counts as absent too."""
    if value is None:
        return False
    if isinstance(value, dict):
        return any(item is not None for item in value.values())
    return True


def extendedness_statistics(
    values: Iterable[Any],
) -> tuple[float | None, float | None, float | None, int]:
    """(median, min, max, count) over the finite values; all None when there are none."""
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not kept:
        return None, None, None, 0
    return statistics.median(kept), min(kept), max(kept), len(kept)


def normalize(alert: DecodedAlert) -> AlertRecord:
    """The normalized record of one decoded alert."""
    if alert.kind == "rubin":
        return normalize_rubin(alert.record, alert.schema_version)
    if alert.kind == "ztf":
        return normalize_ztf(alert.record)
    return normalize_locus(alert.record)


def normalize_rubin(record: dict[str, Any], version: str | None,
                    history: Iterable[tuple[Any, Any]] | None = None) -> AlertRecord:
    """The record of a Rubin alert; `history` gives the prvDiaSources' (diaSourceId,
    extendedness) pairs when the caller read them as columns (batch.py)."""
    source = record.get("diaSource")
    if not isinstance(source, dict):
        raise InvalidMessage("Rubin alert has no diaSource record")
    names = field_names_for(version, source)
    dia_source_id = source.get("diaSourceId")
    if dia_source_id is None:
        dia_source_id = record.get("diaSourceId")
    alert_id = record.get("alertId")
    # prvDiaSources normally excludes the triggering source; keying by id guards against repeats.
    if history is None:
        history = ((previous.get("diaSourceId"), previous.get("extendedness"))
                   for previous in record.get("prvDiaSources") or ())
    by_id: dict[Any, Any] = {dia_source_id: source.get("extendedness")}
    for previous_id, extendedness in history:
        by_id.setdefault(previous_id, extendedness)
    median, lowest, highest, count = extendedness_statistics(by_id.values())
    ss_object_id = source.get("ssObjectId")
    ss_object_id = ss_object_id if ss_object_id not in (None, 0) else None
    has_ss_source = (
        present(record.get("ssSource"))
        or present(record.get("ssObject"))
        or ss_object_id is not None
    )
    dia_object_id = source.get("diaObjectId")
    dia_object = record.get("diaObject")
    if dia_object_id is None and isinstance(dia_object, dict):  # the DIASource's may be null
        dia_object_id = dia_object.get("diaObjectId")
    return AlertRecord(
        alertId=alert_id if alert_id is not None else dia_source_id,
        diaSourceId=dia_source_id,
        diaObjectId=dia_object_id,
        ra=finite(source.get("ra")),
        dec=finite(source.get(names.dec)),
        mjd=finite(source.get(names.mjd)),
        filterName=source.get(names.band),
        psFlux=finite(source.get(names.ps_flux)),
        psFluxErr=finite(source.get(names.ps_flux_err)),
        extendednessMedian=median,
        extendednessMin=lowest,
        extendednessMax=highest,
        ssObjectId=ss_object_id,
        hasSSSource=has_ss_source,
        cutoutScience=record.get("cutoutScience"),
        cutoutTemplate=record.get("cutoutTemplate"),
        cutoutDifference=record.get("cutoutDifference"),
        extendednessCount=count,
        snr=finite(source.get("snr")),
        reliability=finite(source.get("reliability")),
        schemaVersion=version,
    )


def normalize_ztf(record: dict[str, Any]) -> AlertRecord:
    """ZTF alerts: no extendedness, magnitudes turned into nJy fluxes, stamps un-gzipped."""
    candidate = record.get("candidate")
    if not isinstance(candidate, dict):
        raise InvalidMessage("ZTF alert has no candidate record")
    jd = finite(candidate.get("jd"))
    mag, mag_err = finite(candidate.get("magpsf")), finite(candidate.get("sigmapsf"))
    flux = flux_err = None
    if mag is not None:
        flux = 10 ** ((AB_ZERO_POINT_NJY - mag) / 2.5)
        if candidate.get("isdiffpos") in ("f", "0"):
            flux = -flux
        if mag_err is not None:
            flux_err = abs(flux) * mag_err * math.log(10) / 2.5
    ss_name = candidate.get("ssnamenr")
    ss_name = ss_name if ss_name not in (None, "", "null") else None
    return AlertRecord(
        alertId=record.get("candid"),
        diaSourceId=record.get("candid"),
        diaObjectId=record.get("objectId"),
        ra=finite(candidate.get("ra")),
        dec=finite(candidate.get("dec")),
        mjd=None if jd is None else jd - 2400000.5,
        filterName=ZTF_BANDS.get(candidate.get("fid", 0)),
        psFlux=flux,
        psFluxErr=flux_err,
        extendednessMedian=None,
        extendednessMin=None,
        extendednessMax=None,
        ssObjectId=ss_name,
        hasSSSource=ss_name is not None,
        cutoutScience=_ztf_stamp(record.get("cutoutScience")),
        cutoutTemplate=_ztf_stamp(record.get("cutoutTemplate")),
        cutoutDifference=_ztf_stamp(record.get("cutoutDifference")),
        snr=None,
        reliability=finite(candidate.get("drb")),
        schemaVersion=str(record.get("schemavsn")),
        survey="ztf",
    )


def _ztf_stamp(stamp: Any) -> bytes | None:
    if not isinstance(stamp, dict) or not stamp.get("stampData"):
        return None
    data: bytes = stamp["stampData"]
    if data[:2] != b"\x1f\x8b":
        return data
    with gzip.GzipFile(fileobj=__import__("io").BytesIO(data)) as inflating:
        out = inflating.read(MAX_STAMP_BYTES + 1)
    if len(out) > MAX_STAMP_BYTES:
        raise InvalidMessage(f"ZTF stamp inflates past {MAX_STAMP_BYTES} bytes")
    return out


# Where each field is in an ANTARES locus message: only in the properties our filter set from the
# triggering alert (antares_extendedness_filter.py). A stream message holds the locus alone, never
# an alert's own properties (docs/antares.md).
LOCUS_PROPERTIES: dict[str, str] = {
    "diaSourceId": "extfilter_dia_source_id",
    "diaObjectId": "extfilter_dia_object_id",
    "ra": "extfilter_ra",
    "dec": "extfilter_dec",
    "mjd": "extfilter_mjd",
    "filterName": "extfilter_band",
    "psFlux": "extfilter_ps_flux",
    "psFluxErr": "extfilter_ps_flux_err",
    "extendednessMedian": "extfilter_extendedness_median",
    "extendednessMin": "extfilter_extendedness_min",
    "extendednessMax": "extfilter_extendedness_max",
    "extendednessCount": "extfilter_extendedness_count",
    "ssObjectId": "extfilter_ss_object_id",
    "hasSSSource": "extfilter_has_sssource",
    "snr": "extfilter_snr",
    "reliability": "extfilter_reliability",
}
ANTARES_ALERT_ID = "extfilter_alert_id"


class LocusGaps:
    """How many loci of a run lacked which extfilter_* properties (logged once per run)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loci = 0
        self.with_gaps = 0
        self.centroid_positions = 0
        self.missing: Counter[str] = Counter()

    def note(self, missing: list[str], centroid_used: bool) -> None:
        with self.lock:
            self.loci += 1
            self.with_gaps += bool(missing)
            self.centroid_positions += centroid_used
            self.missing.update(missing)

    def line(self) -> str | None:
        """One log line on the loci noted since the last call that lacked properties; resets."""
        with self.lock:
            loci, with_gaps, centroid, missing = (self.loci, self.with_gaps,
                                                  self.centroid_positions, self.missing)
            self.loci = self.with_gaps = self.centroid_positions = 0
            self.missing = Counter()
        if not with_gaps:
            return None
        absent = ", ".join(f"{name} {count:,}" for name, count in sorted(missing.items()))
        line = f"{with_gaps:,} of {loci:,} ANTARES loci lacked extfilter_* properties ({absent})"
        line += ": their cells are blank"
        if centroid:
            line += (f"; {centroid:,} had no extfilter_ra/extfilter_dec (sent by an older version "
                     "of the filter), so their ra/dec are the locus centroid, not the DIASource's")
        return line


LOCUS_GAPS = LocusGaps()


def locus_gaps_line() -> str | None:
    """What LocusGaps.line says about the loci normalized since the last call."""
    return LOCUS_GAPS.line()


def _exact_int(value: Any) -> Any:
    """An id sent as text (or int) as the exact int; anything else as it came, for the error."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _count(value: Any) -> Any:
    """A count property as an int; a wrong-typed one as it is (values.py blanks it, saying so)."""
    return int(value) if isinstance(value, int | float) else (value or 0)


def normalize_locus(locus: dict[str, Any]) -> AlertRecord:
    """A locus message, from the extfilter_* properties only; cutouts come from the REST API."""
    properties = locus.get("properties") or {}
    value = {name: finite(properties.get(prop)) for name, prop in LOCUS_PROPERTIES.items()}
    missing = sorted(prop for name, prop in LOCUS_PROPERTIES.items() if value[name] is None)
    centroid_used = value["ra"] is None or value["dec"] is None
    if centroid_used:
        value["ra"], value["dec"] = finite(locus.get("ra")), finite(locus.get("dec"))
    LOCUS_GAPS.note(missing, centroid_used)
    dia_source_id = _exact_int(value["diaSourceId"])
    ss_object_id = _exact_int(value["ssObjectId"])
    if ss_object_id in (0, "0", ""):
        ss_object_id = None
    has_ss_source = value["hasSSSource"]
    if has_ss_source is None:
        has_ss_source = ss_object_id is not None
    return AlertRecord(
        alertId=dia_source_id,
        diaSourceId=dia_source_id,
        diaObjectId=_exact_int(value["diaObjectId"]),
        ra=value["ra"],
        dec=value["dec"],
        mjd=value["mjd"],
        filterName=value["filterName"],
        psFlux=value["psFlux"],
        psFluxErr=value["psFluxErr"],
        extendednessMedian=value["extendednessMedian"],
        extendednessMin=value["extendednessMin"],
        extendednessMax=value["extendednessMax"],
        ssObjectId=ss_object_id,
        hasSSSource=bool(has_ss_source),
        extendednessCount=_count(value["extendednessCount"]),
        snr=value["snr"],
        reliability=value["reliability"],
        survey="lsst",
        extra={"locusId": locus.get("id"), "tags": list(locus.get("tags") or []),
               "antaresAlertId": properties.get(ANTARES_ALERT_ID)},
    )
