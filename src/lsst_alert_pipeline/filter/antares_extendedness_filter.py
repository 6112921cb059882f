"""ANTARES filter: LSST loci by DIASource extendedness and solar-system (SSSource) association.

Upload this one file to ANTARES as it is: it imports only antares_devkit, numpy and the standard
library. Tune the constants below, test locally with `lsst-alerts filter-test`, then submit.

A locus passes when the extendedness statistics of its LSST alerts (finite values only) fall in
the bounds below and its solar-system association matches REQUIRE_SSSOURCE. A passing locus is
tagged OUTPUT_TAG and gets the `extfilter_*` properties listed in OUTPUT_LOCUS_PROPERTIES.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from antares_devkit.models import BaseFilter

# Extendedness thresholds
EXTENDEDNESS_MEDIAN_MIN = 0.0  # Adjust for your science case
EXTENDEDNESS_MEDIAN_MAX = 1.0
EXTENDEDNESS_MIN_THRESHOLD = 0.0
EXTENDEDNESS_MAX_THRESHOLD = 1.0

# SSSource requirement
REQUIRE_SSSOURCE = True  # True = require SSSource, False = exclude SSSource

# The tag a passing locus gets; its name is the ANTARES output stream's name.
OUTPUT_TAG = "lsst_extendedness_sssource"

# Tags that earlier ANTARES filters put on solar-system loci: the `sso` filter (SSOConfirmed,
# antares_devkit/filters/sso) tags "sso_candidates" and its subset "sso_confirmed".
SOLAR_SYSTEM_TAGS = ("sso_candidates", "sso_confirmed")

# Where the raw alert packet's solar-system records may be exposed on the triggering alert
# (DevkitAlert.non_persistent_properties holds packet parts ANTARES does not store).
RAW_SOLAR_SYSTEM_KEYS = ("lsst_ssSource", "lsst_ssObject", "ssSource", "ssObject")

# Rubin sets diaSource.ssObjectId to 0, not null, when there is no association; ANTARES's own
# filters also guard against None and the string "0".
NO_SS_OBJECT_IDS = (0, None, "0", "")

LSST_SURVEY = "lsst"
EXTENDEDNESS = "lsst_diaSource_extendedness"
SS_OBJECT_ID = "lsst_diaSource_ssObjectId"

PROPERTY_PREFIX = "extfilter_"
OUTPUT_LOCUS_PROPERTIES_SPEC = (
    ("extendedness_median", "float", "Median of the finite DIASource extendedness values."),
    ("extendedness_min", "float", "Smallest finite DIASource extendedness value."),
    ("extendedness_max", "float", "Largest finite DIASource extendedness value."),
    ("extendedness_count", "int", "Number of DIASources with a finite extendedness."),
    ("has_sssource", "int", "1 when the triggering alert has a solar-system association."),
    ("alert_id", "str", "ANTARES alert id of the triggering alert (its thumbnails' REST API key)."),
    ("dia_source_id", "int", "diaSourceId of the triggering alert."),
    ("dia_object_id", "int", "diaObjectId of the triggering alert (0 for solar-system alerts)."),
    ("mjd", "float", "midpointMjdTai of the triggering alert."),
    ("band", "str", "Band (filter) of the triggering alert."),
    ("ps_flux", "float", "PSF flux of the triggering alert (nJy)."),
    ("ps_flux_err", "float", "PSF flux error of the triggering alert (nJy)."),
    ("ss_object_id", "str", "ssObjectId of the triggering alert; empty when there is none."),
)


def finite_values(values: Iterable[Any]) -> list[float]:
    """The finite numbers among values (NaN, inf, null and masked entries dropped)."""
    kept = []
    for value in values:
        if value is None or value is np.ma.masked:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            kept.append(number)
    return kept


def extendedness_statistics(values: Iterable[Any]) -> tuple[float, float, float, int] | None:
    """(median, min, max, count) over the finite values; None when there are none."""
    kept = finite_values(values)
    if not kept:
        return None
    return statistics.median(kept), min(kept), max(kept), len(kept)


def _number(value: float) -> str:
    """Short when that is exact, full precision otherwise (so 0.8000001 never prints as 0.8)."""
    short = f"{value:.6g}"
    return short if float(short) == value else repr(value)


def decide(
    extendedness_values: Iterable[Any],
    has_sssource: bool,
    *,
    median_min: float | None = None,
    median_max: float | None = None,
    min_threshold: float | None = None,
    max_threshold: float | None = None,
    require_sssource: bool | None = None,
) -> tuple[bool, str]:
    """Whether a locus passes, and why; unset bounds are read from the module constants."""
    median_min = EXTENDEDNESS_MEDIAN_MIN if median_min is None else median_min
    median_max = EXTENDEDNESS_MEDIAN_MAX if median_max is None else median_max
    min_threshold = EXTENDEDNESS_MIN_THRESHOLD if min_threshold is None else min_threshold
    max_threshold = EXTENDEDNESS_MAX_THRESHOLD if max_threshold is None else max_threshold
    require_sssource = REQUIRE_SSSOURCE if require_sssource is None else require_sssource
    if require_sssource and not has_sssource:
        return False, "no SSSource"
    if not require_sssource and has_sssource:
        return False, "has SSSource"
    stats = extendedness_statistics(extendedness_values)
    if stats is None:
        return False, "no finite extendedness"
    median, lowest, highest, count = stats
    if median < median_min:
        return False, f"median {_number(median)} < {_number(median_min)}"
    if median > median_max:
        return False, f"median {_number(median)} > {_number(median_max)}"
    if lowest < min_threshold:
        return False, f"min {_number(lowest)} < {_number(min_threshold)}"
    if highest > max_threshold:
        return False, f"max {_number(highest)} > {_number(max_threshold)}"
    association = "with SSSource" if has_sssource else "without SSSource"
    return True, (
        f"median {_number(median)}, min {_number(lowest)}, max {_number(highest)} "
        f"over {count} DIASources, {association}"
    )


def has_ss_object_id(value: Any) -> bool:
    """Whether an ssObjectId names an object: 0, "0", null and NaN mean no association."""
    if value in NO_SS_OBJECT_IDS:
        return False
    return not (isinstance(value, float) and not math.isfinite(value))


def _present(record: Any) -> bool:
    """Whether a packet record is there (a record whose every field is null counts as absent)."""
    if record is None:
        return False
    if isinstance(record, Mapping):
        return any(value is not None for value in record.values())
    return bool(record)


def sssource_in_properties(properties: Mapping[str, Any]) -> bool:
    """Solar-system association named by alert properties: ssObjectId or any ssSource/ssObject."""
    if has_ss_object_id(properties.get(SS_OBJECT_ID)):
        return True
    return any(
        ("ssSource" in name or "ssObject_" in name) and _present(value)
        for name, value in properties.items()
    )


def sssource_in_raw_packet(raw: Mapping[str, Any]) -> bool:
    """Solar-system association in the raw packet parts ANTARES exposes on the alert."""
    return any(_present(raw.get(key)) for key in RAW_SOLAR_SYSTEM_KEYS)


def sssource_in_tags(tags: Iterable[str]) -> bool:
    """Solar-system association given by another ANTARES filter's tag on the locus."""
    return any(tag in SOLAR_SYSTEM_TAGS for tag in tags)


def ss_object_id_of(properties: Mapping[str, Any], raw: Mapping[str, Any]) -> str:
    """The triggering alert's ssObjectId as text, from its properties or raw packet; "" if none."""
    candidates = [properties.get(SS_OBJECT_ID)]
    for key in RAW_SOLAR_SYSTEM_KEYS:
        record = raw.get(key)
        if isinstance(record, Mapping):
            candidates.append(record.get("ssObjectId"))
    for value in candidates:
        if has_ss_object_id(value):
            return str(int(value)) if isinstance(value, float) else str(value)
    return ""


def _first(properties: Mapping[str, Any], *names: str) -> Any:
    """The first property among names that has a finite value (v3/v4 and v5+ names differ)."""
    for name in names:
        value = properties.get(name)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue
        return value
    return None


class LsstExtendednessFilter(BaseFilter):
    """Tags LSST loci whose DIASource extendedness statistics and SSSource association match."""

    TRIGGERING_SURVEY = LSST_SURVEY
    REQUIRED_LOCUS_PROPERTIES: list[str] = []
    REQUIRED_TAGS: list[str] = []
    # Only what every LSST alert carries: extendedness is often NaN, so requiring it would skip
    # loci whose history has finite values.
    REQUIRED_ALERT_PROPERTIES = ["lsst_diaSource_diaSourceId"]
    OUTPUT_TAG = OUTPUT_TAG
    OUTPUT_LOCUS_TAGS = [
        {
            "name": OUTPUT_TAG,
            "description": (
                "LSST locus whose DIASource extendedness median/min/max are within the "
                "filter's thresholds and whose solar-system (SSSource) association matches "
                "REQUIRE_SSSOURCE."
            ),
        },
    ]
    OUTPUT_LOCUS_PROPERTIES = [
        {"name": PROPERTY_PREFIX + name, "type": kind, "description": description}
        for name, kind, description in OUTPUT_LOCUS_PROPERTIES_SPEC
    ]

    def _run(self, locus: Any) -> None:
        passed, _reason, found = evaluate(locus)
        if passed:
            locus.tag(OUTPUT_TAG)
            for name, value in found.items():
                locus.set_property(PROPERTY_PREFIX + name, value)


def locus_extendedness(locus: Any) -> list[Any]:
    """Extendedness of every LSST alert of the locus.

    Read from the alerts' properties (only LSST alerts carry lsst_diaSource_*): the DevKit's
    timeseries gives the same values but costs milliseconds per locus with a year of history."""
    return [alert.properties[EXTENDEDNESS] for alert in locus.alerts
            if EXTENDEDNESS in alert.properties]


def locus_has_sssource(locus: Any) -> bool:
    """Solar-system association of the locus's triggering alert, found any of three ways."""
    alert = locus.alert
    return (
        sssource_in_properties(alert.properties)
        or sssource_in_raw_packet(alert.non_persistent_properties)
        or sssource_in_tags(locus.tags)
    )


def evaluate(locus: Any) -> tuple[bool, str, dict[str, Any]]:
    """(passed, reason, the extfilter_* values without prefix) for a DevKit locus."""
    has_sssource = locus_has_sssource(locus)
    values = locus_extendedness(locus)
    passed, reason = decide(values, has_sssource)
    if not passed:
        return passed, reason, {}
    stats = extendedness_statistics(values)
    assert stats is not None  # decide() passes only loci with finite extendedness
    median, lowest, highest, count = stats
    properties = locus.alert.properties
    raw = locus.alert.non_persistent_properties
    found: dict[str, Any] = {
        "extendedness_median": median,
        "extendedness_min": lowest,
        "extendedness_max": highest,
        "extendedness_count": count,
        "has_sssource": int(has_sssource),
        "alert_id": locus.alert.alert_id,
        "dia_source_id": _first(properties, "lsst_diaSource_diaSourceId"),
        "dia_object_id": _first(properties, "lsst_diaSource_diaObjectId"),
        "mjd": _first(properties, "lsst_diaSource_midpointMjdTai",
                      "lsst_diaSource_midPointTai", "ant_mjd"),
        "band": _first(properties, "lsst_diaSource_band", "lsst_diaSource_filterName",
                       "ant_passband"),
        "ps_flux": _first(properties, "lsst_diaSource_psfFlux", "lsst_diaSource_psFlux"),
        "ps_flux_err": _first(properties, "lsst_diaSource_psfFluxErr",
                              "lsst_diaSource_psFluxErr"),
        "ss_object_id": ss_object_id_of(properties, raw),
    }
    # A value the alert does not carry is left unset rather than stored as NaN.
    kinds = {name: kind for name, kind, _ in OUTPUT_LOCUS_PROPERTIES_SPEC}
    typed = {name: _typed(value, kinds[name]) for name, value in found.items() if value is not None}
    return passed, reason, typed


def _typed(value: Any, kind: str) -> Any:
    """The value as the declared property type (numpy scalars and bools become plain types)."""
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return str(value)
