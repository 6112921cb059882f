"""One normalized record per alert, whatever format and schema version it came in.

The record carries the specification's CSV fields under the specification's names (so a column,
a JSON key and an attribute are one word everywhere), plus ssObjectId, hasSSSource and the cutouts.
Field names per schema version come from one table in schemas.py; NaN and null both become None.
"""

from __future__ import annotations

import gzip
import math
import statistics
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

CSV_FIELDS = (
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
CUTOUT_KINDS = ("science", "template", "difference")


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
    extendedness) pairs when the caller read them as columns (decode_batch.py)."""
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


# Where each field is found in an ANTARES locus message, first match wins: the properties our
# filter sets (antares_extendedness_filter.py), then ANTARES's own alert properties.
LOCUS_PROPERTIES: dict[str, tuple[str, ...]] = {
    "diaSourceId": ("extfilter_dia_source_id", "lsst_diaSource_diaSourceId"),
    "diaObjectId": ("extfilter_dia_object_id", "lsst_diaSource_diaObjectId"),
    "ra": ("lsst_diaSource_ra", "ant_ra"),
    "dec": ("lsst_diaSource_dec", "ant_dec"),
    "mjd": ("extfilter_mjd", "lsst_diaSource_midpointMjdTai", "ant_mjd"),
    "filterName": ("extfilter_band", "lsst_diaSource_band", "ant_passband"),
    "psFlux": ("extfilter_ps_flux", "lsst_diaSource_psfFlux"),
    "psFluxErr": ("extfilter_ps_flux_err", "lsst_diaSource_psfFluxErr"),
    "extendednessMedian": ("extfilter_extendedness_median",),
    "extendednessMin": ("extfilter_extendedness_min",),
    "extendednessMax": ("extfilter_extendedness_max",),
    "extendednessCount": ("extfilter_extendedness_count",),
    "ssObjectId": ("extfilter_ss_object_id", "lsst_diaSource_ssObjectId"),
    "hasSSSource": ("extfilter_has_sssource",),
    "snr": ("lsst_diaSource_snr",),
    "reliability": ("lsst_diaSource_reliability",),
}


def _first(properties: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = finite(properties.get(name))
        if value is not None:
            return value
    return None


def _as_int(value: Any) -> Any:
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _count(value: Any) -> Any:
    """A count property as an int; a wrong-typed one as it is (values.py blanks it, saying so)."""
    return int(value) if isinstance(value, int | float) else (value or 0)


def normalize_locus(locus: dict[str, Any]) -> AlertRecord:
    """A locus message as far as its properties carry the fields; cutouts come from the REST API."""
    properties = locus.get("properties") or {}
    value = {name: _first(properties, names) for name, names in LOCUS_PROPERTIES.items()}
    dia_source_id = _as_int(value["diaSourceId"])
    ss_object_id = _as_int(value["ssObjectId"])
    if ss_object_id in (0, "0"):
        ss_object_id = None
    has_ss_source = value["hasSSSource"]
    if has_ss_source is None:
        has_ss_source = ss_object_id is not None or any(
            "ssSource" in name or "ssObject_" in name for name in properties
        )
    return AlertRecord(
        alertId=dia_source_id,
        diaSourceId=dia_source_id,
        diaObjectId=_as_int(value["diaObjectId"]),
        ra=value["ra"] if value["ra"] is not None else finite(locus.get("ra")),
        dec=value["dec"] if value["dec"] is not None else finite(locus.get("dec")),
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
               "antaresAlertId": properties.get("extfilter_alert_id")},
    )
