"""Build the DevKit locus ANTARES would hand a filter for one Rubin alert.

The triggering diaSource is the locus's latest alert and `prvDiaSources` its history. Alert
properties follow ANTARES's naming (docs/antares.md, Locus and alert properties):
`lsst_diaSource_<field>` for every diaSource field plus `ant_mjd`, `ant_ra`, `ant_dec`,
`ant_passband`, `ant_mag`, `ant_magerr` and `ant_survey` = 4. The locus is made by
`DevKitLocus.model_validate` from a dict of the shape `antares_client.models.Locus.to_devkit()`
returns, the way the DevKit's own tests build loci. Its position is the centroid of its alerts
and it carries the locus properties ANTARES maintains itself, so what a relay publishes from it is
what ANTARES would send.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from antares_devkit.models import DevKitLocus

from ..decode.normalize import AB_ZERO_POINT_NJY
from ..decode.schemas import FieldNames, field_names_for

ANT_SURVEY_LSST = 4
MAG_ERR_PER_RELATIVE_FLUX_ERR = 2.5 / math.log(10)
DIA_SOURCE_PREFIX = "lsst_diaSource_"


def stored(value: Any) -> bool:
    """Whether ANTARES keeps a property value: nulls and NaN/inf are not stored (assumption: its
    index cannot hold NaN, and its own filters test for missing properties, not for NaN)."""
    if value is None:
        return False
    return not (isinstance(value, float) and not math.isfinite(value))


def ant_mag(flux: Any) -> float | None:
    """AB magnitude of a PSF flux in nJy (m = 31.4 - 2.5 log10 f); None unless the flux is > 0."""
    if not stored(flux) or flux <= 0:
        return None
    return AB_ZERO_POINT_NJY - 2.5 * math.log10(flux)


def ant_magerr(flux: Any, flux_err: Any) -> float | None:
    """Magnitude error of a PSF flux and its error in nJy; None when either is unusable."""
    if ant_mag(flux) is None or not stored(flux_err):
        return None
    return float(MAG_ERR_PER_RELATIVE_FLUX_ERR * flux_err / flux)


def alert_properties(dia_source: dict[str, Any], names: FieldNames) -> dict[str, Any]:
    """The ANTARES alert properties of one diaSource."""
    properties = {
        DIA_SOURCE_PREFIX + field: value for field, value in dia_source.items() if stored(value)
    }
    flux, flux_err = dia_source.get(names.ps_flux), dia_source.get(names.ps_flux_err)
    derived = {
        "ant_mjd": dia_source.get(names.mjd),
        "ant_ra": dia_source.get("ra"),
        "ant_dec": dia_source.get(names.dec),
        "ant_passband": dia_source.get(names.band),
        "ant_mag": ant_mag(flux),
        "ant_magerr": ant_magerr(flux, flux_err),
        "ant_survey": ANT_SURVEY_LSST,
    }
    properties.update((name, value) for name, value in derived.items() if stored(value))
    return properties


def locus_dia_sources(record: dict[str, Any], names: FieldNames) -> list[dict[str, Any]]:
    """The history oldest first, then the triggering diaSource; a repeated id is kept once, the
    triggering copy winning (prvDiaSources normally excludes it; normalize.py does the same)."""
    trigger = record["diaSource"]
    seen = {trigger.get("diaSourceId")}
    history = []
    for previous in record.get("prvDiaSources") or ():
        if previous.get("diaSourceId") in seen or not stored(previous.get(names.mjd)):
            continue
        seen.add(previous.get("diaSourceId"))
        history.append(previous)
    history.sort(key=lambda source: source[names.mjd])
    return [*history, trigger]


def _nonzero_ids(sources: list[dict[str, Any]], field: str) -> Iterator[str]:
    found: dict[str, None] = {}
    for source in sources:
        value = source.get(field)
        if stored(value) and value not in (0, "0", ""):
            found[str(value)] = None
    yield from found


def centroid(positions: list[tuple[float, float]]) -> tuple[float, float]:
    """The mean position (deg) of (ra, dec) pairs, via unit vectors (RA 359 and 1 average to 0)."""
    x = y = z = 0.0
    for ra, dec in positions:
        ra_rad, dec_rad = math.radians(ra), math.radians(dec)
        x += math.cos(dec_rad) * math.cos(ra_rad)
        y += math.cos(dec_rad) * math.sin(ra_rad)
        z += math.sin(dec_rad)
    ra = math.degrees(math.atan2(y, x)) % 360.0
    dec = math.degrees(math.atan2(z, math.hypot(x, y)))
    return ra, dec


def antares_locus_properties(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """The locus properties ANTARES keeps itself: counts and the newest, oldest and brightest
    alert (id, magnitude, observation time as MJD), for the alerts oldest first."""
    properties: dict[str, Any] = {"num_alerts": len(alerts)}
    with_mag = [alert for alert in alerts if "ant_mag" in alert["properties"]]
    properties["num_mag_values"] = len(with_mag)
    picked = {"newest": alerts[-1], "oldest": alerts[0]}
    if with_mag:
        picked["brightest"] = min(with_mag, key=lambda alert: alert["properties"]["ant_mag"])
    for role, alert in picked.items():
        properties[f"{role}_alert_id"] = alert["id"]
        properties[f"{role}_alert_observation_time"] = alert["mjd"]
        if "ant_mag" in alert["properties"]:
            properties[f"{role}_alert_magnitude"] = alert["properties"]["ant_mag"]
    return properties


def locus_dict(record: dict[str, Any], version: str | None = None) -> dict[str, Any]:
    """The locus of a Rubin alert record as a DevKit locus dict (Locus.to_devkit() shape)."""
    trigger = record.get("diaSource")
    if not isinstance(trigger, dict):
        raise ValueError("Rubin alert has no diaSource record")
    names = field_names_for(version, trigger)
    sources = locus_dia_sources(record, names)
    alerts = [
        {
            "id": f"lsst_diaSource:{source.get('diaSourceId')}",
            "mjd": source[names.mjd],
            "properties": alert_properties(source, names),
        }
        for source in sources
    ]
    dia_object_ids = list(_nonzero_ids(sources, "diaObjectId"))
    ss_object_ids = list(_nonzero_ids(sources, "ssObjectId"))
    locus_key = dia_object_ids[-1] if dia_object_ids else f"ss{ss_object_ids[-1]}" if (
        ss_object_ids) else str(trigger.get("diaSourceId"))
    positions = [(alert["properties"]["ant_ra"], alert["properties"]["ant_dec"])
                 for alert in alerts if {"ant_ra", "ant_dec"} <= alert["properties"].keys()]
    if not positions:
        raise ValueError("no alert of the locus has a finite position")
    ra, dec = centroid(positions)
    return {
        "id": f"local-lsst-{locus_key}",
        "ra": ra,
        "dec": dec,
        "alerts": alerts,
        "internal_properties": {
            **antares_locus_properties(alerts),
            # ANTARES keeps the survey's object ids per locus; its own filters read them here.
            "survey": {"lsst": {"dia_object_id": dia_object_ids, "ss_object_id": ss_object_ids}},
        },
    }


def build_locus(record: dict[str, Any], version: str | None = None) -> DevKitLocus:
    """The DevKitLocus of a Rubin alert record, as ANTARES would hand it to a filter."""
    return DevKitLocus.model_validate(locus_dict(record, version))
