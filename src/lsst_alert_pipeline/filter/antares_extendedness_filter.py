"""ANTARES filter: LSST loci by DIASource extendedness and solar-system (SSSource) association.

Upload this one file to ANTARES as it is: it imports only antares_devkit, numpy and the standard
library. Tune the constants below, set SLACK_CHANNEL, test locally with `lsst-alerts filter-test`,
then submit.

A locus passes when the extendedness statistics of its LSST alerts (finite values only) fall in
the bounds below and the solar-system association of its triggering LSST alert matches
REQUIRE_SSSOURCE. A passing locus is tagged OUTPUT_TAG and gets the `extfilter_*` properties
listed in OUTPUT_LOCUS_PROPERTIES: everything the consumer needs from the triggering alert,
because an ANTARES stream message carries only the locus (its centroid, tags and properties),
never the alert itself.
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

# Where ANTARES reports this filter's errors: a channel of the ANTARES Slack or your Slack member
# id. Every production filter sets one; `lsst-alerts filter-test` warns while it is this
# placeholder.
SLACK_CHANNEL = "#your-channel"

# Rubin sets diaSource.ssObjectId to 0, not null, when there is no association; ANTARES's own
# LSST filters (lsst_transient_quality_scimma) also guard against None and the string "0".
NO_SS_OBJECT_IDS = (0, None, "0", "")

LSST_SURVEY = "lsst"
EXTENDEDNESS = "lsst_diaSource_extendedness"
SS_OBJECT_ID = "lsst_diaSource_ssObjectId"
IS_NEGATIVE = "lsst_diaSource_isNegative"

PROPERTY_PREFIX = "extfilter_"
# 64-bit ids are str: as int or float locus properties they can lose digits past 2**53 on their
# way through ANTARES's JSON and search index.
OUTPUT_LOCUS_PROPERTIES_SPEC = (
    ("alert_id", "str", "ANTARES alert id of the triggering alert (its thumbnails' REST API key)."),
    ("dia_source_id", "str", "diaSourceId of the triggering alert (a 64-bit integer as text)."),
    ("dia_object_id", "str", "diaObjectId of the triggering alert (0 for solar-system alerts)."),
    ("ss_object_id", "str", "ssObjectId of the triggering alert; empty when there is none."),
    ("ra", "float", "Right ascension of the triggering DIASource (deg)."),
    ("dec", "float", "Declination of the triggering DIASource (deg)."),
    ("mjd", "float", "midpointMjdTai of the triggering alert."),
    ("band", "str", "Band (filter) of the triggering alert."),
    ("ps_flux", "float", "Difference-image PSF flux of the triggering alert (nJy, signed)."),
    ("ps_flux_err", "float", "Error of that PSF flux (nJy)."),
    ("snr", "float", "Signal-to-noise ratio of the triggering DIASource."),
    ("reliability", "float", "Reliability score of the triggering DIASource."),
    ("extendedness_median", "float", "Median of the finite DIASource extendedness values."),
    ("extendedness_min", "float", "Smallest finite DIASource extendedness value."),
    ("extendedness_max", "float", "Largest finite DIASource extendedness value."),
    ("extendedness_count", "int", "Number of DIASources with a finite extendedness."),
    ("has_sssource", "int", "1 when the triggering alert has a solar-system association."),
)
# Property names of the triggering alert to read each value from, first finite one wins (schema
# v3/v4 and v5+ name some fields differently).
ALERT_SOURCES = {
    "dia_source_id": ("lsst_diaSource_diaSourceId",),
    "dia_object_id": ("lsst_diaSource_diaObjectId",),
    "ra": ("lsst_diaSource_ra", "ant_ra"),
    "dec": ("lsst_diaSource_dec", "lsst_diaSource_decl", "ant_dec"),
    "mjd": ("lsst_diaSource_midpointMjdTai", "lsst_diaSource_midPointTai", "ant_mjd"),
    "band": ("lsst_diaSource_band", "lsst_diaSource_filterName", "ant_passband"),
    "ps_flux": ("lsst_diaSource_psfFlux", "lsst_diaSource_psFlux"),
    "ps_flux_err": ("lsst_diaSource_psfFluxErr", "lsst_diaSource_psFluxErr"),
    "snr": ("lsst_diaSource_snr",),
    "reliability": ("lsst_diaSource_reliability",),
}


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


def id_text(value: Any) -> str | None:
    """A 64-bit id as exact decimal text (ints and numeric text kept digit for digit)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        return text if text.lstrip("-").isdigit() else None
    if isinstance(value, float):
        return str(int(value)) if math.isfinite(value) and value.is_integer() else None
    try:
        return str(int(value))  # int and numpy integers
    except (TypeError, ValueError):
        return None


def solar_system_association(alert: Any) -> tuple[bool, str]:
    """Whether the triggering LSST alert has a solar-system association, and what decided it.

    Decided by the alert's own diaSource.ssObjectId, as ANTARES's LSST production filters do.
    Never by locus tags: a locus collects every survey's alerts over all nights, so a ZTF `sso`
    tag can sit on a locus whose new LSST alert has no association. Not by an ssSource record
    either: nothing ANTARES documents hands the packet's ssSource to filters
    (DevkitAlert.non_persistent_properties names only `lsst_fp_hists`), and in Rubin's packets
    an ssSource record comes with a non-zero ssObjectId."""
    properties = alert.properties
    if SS_OBJECT_ID not in properties:
        return False, "none (no ssObjectId)"
    value = properties[SS_OBJECT_ID]
    if has_ss_object_id(value):
        return True, f"ssObjectId {id_text(value) or value}"
    return False, f"none (ssObjectId {value!r})"


def signed_flux(flux: float, is_negative: Any) -> float:
    """The difference flux with its sign. Rubin's guide to ANTARES says its properties may hold
    a negative flux as a positive value with isNegative set; Rubin's packets hold it signed."""
    if is_negative is not None and bool(is_negative) and flux > 0:
        return -flux
    return flux


def _first(properties: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    """The first property among names that has a finite value."""
    for name in names:
        value = properties.get(name)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue
        return value
    return None


class LsstExtendednessFilter(BaseFilter):
    """Tags LSST loci whose DIASource extendedness statistics and SSSource association match."""

    SLACK_CHANNEL = SLACK_CHANNEL
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
                "filter's thresholds and whose triggering alert's solar-system association "
                "(diaSource.ssObjectId) matches REQUIRE_SSSOURCE."
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
    """Solar-system association of the locus's triggering alert (its ssObjectId)."""
    return solar_system_association(locus.alert)[0]


def triggering_alert_values(alert: Any, has_sssource: bool) -> dict[str, Any]:
    """The extfilter_* values (without prefix) read from the triggering alert itself."""
    properties = alert.properties
    found: dict[str, Any] = {name: _first(properties, names)
                             for name, names in ALERT_SOURCES.items()}
    found["alert_id"] = alert.alert_id
    for name in ("dia_source_id", "dia_object_id"):
        found[name] = id_text(found[name])
    found["ss_object_id"] = (id_text(properties.get(SS_OBJECT_ID)) or "") if has_sssource else ""
    if found["ps_flux"] is not None:
        found["ps_flux"] = signed_flux(float(found["ps_flux"]), properties.get(IS_NEGATIVE))
    return found


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
    found = {
        **triggering_alert_values(locus.alert, has_sssource),
        "extendedness_median": median,
        "extendedness_min": lowest,
        "extendedness_max": highest,
        "extendedness_count": count,
        "has_sssource": int(has_sssource),
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
