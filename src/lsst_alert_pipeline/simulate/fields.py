"""The simulator's field tables: for each alert field, by name, how to fill it from the simulated
object and its measurements (SOURCE_COLUMNS, OBJECT_FIELDS, SOLAR_SYSTEM_FIELDS, ALERT_FIELDS).

A field absent from every table gets a value by its Avro type (packets.py), so a new schema version
needs at most a table entry here, never a code path.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..decode.times import MJD_UNIX_EPOCH as UNIX_EPOCH_MJD
from .history_rows import Rows
from .population import Epochs, SimulatedObject, band_statistics
from .solar_system import (
    SolarSystemBody,
    apparent_magnitude,
    body_vector,
    galactic_of,
    mpc_orb_json,
    orbital_period_days,
    perihelion_time,
)

OBSERVATION_REASONS = ("wfd", "wfd", "wfd", "ddf_cosmos", "ddf_edfs_b", "ddf_xmm_lss", "twilight")
TARGET_NAMES = ("lowdust", "dusty_plane", "ddf_cosmos, lowdust", "ddf_edfs_b, lowdust", "nes")


class RecordSchema(Protocol):
    """What a field drawer asks of the alert schema (simulate/packets.py's AlertSchema)."""

    def rows(self, short_name: str, epochs: Epochs) -> Rows: ...

    def fill_record(self, short_name: str, table: dict[str, ContextValue],
                    context: AlertContext) -> dict[str, Any] | None: ...


@dataclass
class AlertContext:
    """Everything one alert's fields are drawn from."""

    rng: np.random.Generator
    schema: RecordSchema
    obj: SimulatedObject
    detections: Epochs
    source_rows: Rows
    forced: Epochs | None
    cutouts: dict[str, bytes]
    _band_stats: dict[str, dict[str, float]] | None = field(default=None, repr=False)

    @property
    def dia_source_id(self) -> int:
        return int(self.detections.source_id[-1])

    @property
    def now(self) -> float:
        return float(self.detections.mjd[-1])

    @property
    def processed(self) -> float:
        return float(self.detections.processed_mjd[-1])

    def band_stats(self, band: str) -> dict[str, float]:
        if self._band_stats is None:
            self._band_stats = band_statistics(self.detections)
        return self._band_stats.get(band, {})


SourceColumn = Callable[[Epochs], Any]

SOURCE_COLUMNS: dict[str, SourceColumn] = {
    "diaSourceId": lambda e: e.source_id,
    "diaForcedSourceId": lambda e: e.source_id,
    "visit": lambda e: e.visit,
    "detector": lambda e: e.detector,
    "diaObjectId": lambda e: e.dia_object_id,
    "ssObjectId": lambda e: e.ss_object_id,
    "parentDiaSourceId": lambda e: 0,
    "midpointMjdTai": lambda e: e.mjd,
    "ra": lambda e: e.ra,
    "dec": lambda e: e.dec,
    "raErr": lambda e: e.ra_err,
    "decErr": lambda e: e.dec_err,
    "ra_dec_Cov": lambda e: e.ra_err * e.dec_err * 0.05,
    "x": lambda e: e.x,
    "y": lambda e: e.y,
    "xErr": lambda e: e.ra_err * 3600 / 0.2,
    "yErr": lambda e: e.dec_err * 3600 / 0.2,
    "centroid_flag": lambda e: False,
    "apFlux": lambda e: e.psf_flux * 1.04,
    "apFluxErr": lambda e: e.psf_flux_err * 1.7,
    "snr": lambda e: e.snr,
    "psfFlux": lambda e: e.psf_flux,
    "psfFluxErr": lambda e: e.psf_flux_err,
    "psfChi2": lambda e: 1681.0 * (1.0 + 0.05 * np.cos(e.mjd * 7.0)),
    "psfNdata": lambda e: 1681,
    "scienceFlux": lambda e: e.science_flux,
    "scienceFluxErr": lambda e: e.science_flux_err,
    "templateFlux": lambda e: e.template_flux,
    "templateFluxErr": lambda e: np.sqrt(np.abs(e.template_flux)) * 0.1 + 13.0,
    "ixxPSF": lambda e: 0.3 + 0.05 * np.sin(e.mjd),
    "iyyPSF": lambda e: 0.3 + 0.05 * np.cos(e.mjd),
    "ixyPSF": lambda e: 0.01 * np.sin(3 * e.mjd),
    "extendedness": lambda e: e.extendedness,
    "reliability": lambda e: e.reliability,
    "band": lambda e: e.band,
    "isNegative": lambda e: e.psf_flux < 0,
    "is_negative": lambda e: e.psf_flux < 0,
    "timeProcessedMjdTai": lambda e: e.processed_mjd,
    "time_processed": lambda e: ((e.processed_mjd - UNIX_EPOCH_MJD) * 86_400e6).astype(np.int64),
    "bboxSize": lambda e: 18 + (e.source_id % 20),
    "trailNdata": lambda e: 0,
    "dipoleNdata": lambda e: 0,
    "exposureTime": lambda e: 30.0,
}

ContextValue = Callable[[AlertContext], Any]


def _micros_to_datetime(mjd: float) -> dt.datetime:
    seconds = round((mjd - UNIX_EPOCH_MJD) * 86_400e6) / 1e6
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


OBJECT_FIELDS: dict[str, ContextValue] = {
    "diaObjectId": lambda c: c.obj.dia_object_id,
    "ra": lambda c: c.obj.ra,
    "dec": lambda c: c.obj.dec,
    "raErr": lambda c: float(np.median(c.detections.ra_err)) / math.sqrt(c.detections.count),
    "decErr": lambda c: float(np.median(c.detections.dec_err)) / math.sqrt(c.detections.count),
    "radecMjdTai": lambda c: c.now,
    "validityStartMjdTai": lambda c: c.processed,
    "validityStart": lambda c: _micros_to_datetime(c.processed),
    "nDiaSources": lambda c: c.detections.count,
    "firstDiaSourceMjdTai": lambda c: float(c.detections.mjd[0]),
    "lastDiaSourceMjdTai": lambda c: c.now,
}
BAND_NAMED = re.compile(r"^([ugrizy])_(\w+)$")
BAND_STATISTIC_NAMES = (
    "psfFluxMean", "psfFluxMeanErr", "psfFluxSigma", "psfFluxNdata", "psfFluxMin", "psfFluxMax",
    "psfFluxErrMean", "psfFluxChi2", "scienceFluxMean", "scienceFluxMeanErr",
)


def _body(c: AlertContext) -> SolarSystemBody:
    assert c.obj.body is not None
    return c.obj.body


def _eph_offset(c: AlertContext) -> tuple[float, float]:
    # Arcseconds between the detection and the ephemeris: small for a good orbit.
    ra, dec = c.detections.ra[-1], c.detections.dec[-1]
    return (float(ra - c.obj.ra) * 3600 * math.cos(math.radians(c.obj.dec)) + 0.02,
            float(dec - c.obj.dec) * 3600 - 0.015)


SOLAR_SYSTEM_FIELDS: dict[str, ContextValue] = {
    "ssObjectId": lambda c: _body(c).ss_object_id,
    "diaSourceId": lambda c: c.dia_source_id,
    "designation": lambda c: _body(c).designation,
    "mpcDesignation": lambda c: _body(c).designation,
    "unpacked_primary_provisional_designation": lambda c: _body(c).designation,
    "packed_primary_provisional_designation": lambda c: _body(c).packed_designation,
    "eclLambda": lambda c: _body(c).ecl_lambda,
    "eclipticLambda": lambda c: _body(c).ecl_lambda,
    "eclBeta": lambda c: _body(c).ecl_beta,
    "eclipticBeta": lambda c: _body(c).ecl_beta,
    "galLon": lambda c: galactic_of(c.obj.ra, c.obj.dec)[0],
    "galacticL": lambda c: galactic_of(c.obj.ra, c.obj.dec)[0],
    "galLat": lambda c: galactic_of(c.obj.ra, c.obj.dec)[1],
    "galacticB": lambda c: galactic_of(c.obj.ra, c.obj.dec)[1],
    "elongation": lambda c: _body(c).elongation,
    "phaseAngle": lambda c: _body(c).phase_angle,
    "topoRange": lambda c: _body(c).topo_range,
    "topocentricDist": lambda c: _body(c).topo_range,
    "helioRange": lambda c: _body(c).helio_range,
    "heliocentricDist": lambda c: _body(c).helio_range,
    "topoRangeRate": lambda c: 0.004 * math.cos(_body(c).rate_angle),
    "helioRangeRate": lambda c: 0.002 * math.sin(_body(c).rate_angle),
    "ephRa": lambda c: c.obj.ra,
    "ephDec": lambda c: c.obj.dec,
    "ephVmag": lambda c: apparent_magnitude(_body(c)),
    "predictedVMagnitude": lambda c: apparent_magnitude(_body(c)),
    "ephRate": lambda c: _body(c).rate_deg_per_day,
    "ephRateRa": lambda c: _body(c).rate_deg_per_day * math.cos(_body(c).rate_angle),
    "ephRateDec": lambda c: _body(c).rate_deg_per_day * math.sin(_body(c).rate_angle),
    "ephOffset": lambda c: math.hypot(*_eph_offset(c)),
    "ephOffsetRa": lambda c: _eph_offset(c)[0],
    "ephOffsetDec": lambda c: _eph_offset(c)[1],
    "residualRa": lambda c: _eph_offset(c)[0],
    "residualDec": lambda c: _eph_offset(c)[1],
    "diaDistanceRank": lambda c: 1,
    "helio_x": lambda c: body_vector(_body(c), _body(c).helio_range)[0],
    "helio_y": lambda c: body_vector(_body(c), _body(c).helio_range)[1],
    "helio_z": lambda c: body_vector(_body(c), _body(c).helio_range)[2],
    "heliocentricX": lambda c: body_vector(_body(c), _body(c).helio_range)[0],
    "heliocentricY": lambda c: body_vector(_body(c), _body(c).helio_range)[1],
    "heliocentricZ": lambda c: body_vector(_body(c), _body(c).helio_range)[2],
    "topo_x": lambda c: body_vector(_body(c), _body(c).topo_range)[0],
    "topo_y": lambda c: body_vector(_body(c), _body(c).topo_range)[1],
    "topo_z": lambda c: body_vector(_body(c), _body(c).topo_range)[2],
    "topocentricX": lambda c: body_vector(_body(c), _body(c).topo_range)[0],
    "topocentricY": lambda c: body_vector(_body(c), _body(c).topo_range)[1],
    "topocentricZ": lambda c: body_vector(_body(c), _body(c).topo_range)[2],
    # Orbits (MPCORB in v8/v9, mpc_orbits from v10, ssObject in v7).
    "a": lambda c: _body(c).a,
    "e": lambda c: _body(c).e,
    "q": lambda c: _body(c).a * (1 - _body(c).e),
    "i": lambda c: _body(c).incl,
    "incl": lambda c: _body(c).incl,
    "node": lambda c: _body(c).node,
    "argperi": lambda c: _body(c).argperi,
    "peri": lambda c: _body(c).argperi,
    "M": lambda c: _body(c).mean_anomaly,
    "mean_anomaly": lambda c: _body(c).mean_anomaly,
    "epoch": lambda c: 61000.0,
    "epoch_mjd": lambda c: 61000.0,
    "t_p": lambda c: perihelion_time(_body(c)),
    "peri_time": lambda c: perihelion_time(_body(c)),
    "period": lambda c: orbital_period_days(_body(c)),
    "mean_motion": lambda c: 360.0 / orbital_period_days(_body(c)),
    "mpcH": lambda c: _body(c).h,
    "h": lambda c: _body(c).h,
    "g": lambda c: 0.15,
    "id": lambda c: _body(c).ss_object_id % 1_000_000,
    "orbit_type_int": lambda c: 11,
    "u_param": lambda c: 0,
    "nopp": lambda c: 3 + _body(c).ss_object_id % 20,
    "nobs_total": lambda c: 40 + _body(c).ss_object_id % 500,
    "nobs_total_sel": lambda c: 38 + _body(c).ss_object_id % 500,
    "arc_length_total": lambda c: c.now - _body(c).first_observed_mjd,
    "arc_length_sel": lambda c: c.now - _body(c).first_observed_mjd,
    "arc": lambda c: c.now - _body(c).first_observed_mjd,
    "firstObservationDate": lambda c: _body(c).first_observed_mjd,
    "discoverySubmissionDate": lambda c: _body(c).first_observed_mjd + 2.0,
    "numObs": lambda c: 40 + _body(c).ss_object_id % 500,
    "normalized_rms": lambda c: 0.85,
    "mpc_orb_jsonb": lambda c: mpc_orb_json(_body(c)),
    "created_at": lambda c: _micros_to_datetime(61096.67),
    "updated_at": lambda c: _micros_to_datetime(61096.67),
    "fitting_datetime": lambda c: _micros_to_datetime(61096.67),
    "medianExtendedness": lambda c: 0.8 if c.obj.extended else 0.1,
    "yarkovsky": lambda c: 0.0, "srp": lambda c: 0.0, "a1": lambda c: 0.0,
    "a2": lambda c: 0.0, "a3": lambda c: 0.0, "dt": lambda c: 0.0,
}
SOLAR_SYSTEM_BAND_FIELDS: dict[str, Callable[[AlertContext, str], Any]] = {
    "H": lambda c, band: _body(c).h + {"u": 1.6, "g": 0.4, "r": 0.0, "i": -0.15}.get(band, -0.3),
    "G12": lambda c, band: 0.62,
    "HErr": lambda c, band: 0.05,
    "G12Err": lambda c, band: 0.1,
    "Ndata": lambda c, band: 4,
    "Chi2": lambda c, band: 1.1,
}


def _cutout(kind: str) -> ContextValue:
    return lambda c: c.cutouts[kind]


def _history(c: AlertContext) -> Rows | None:
    return c.source_rows[:-1] if c.detections.count > 1 else None


def _forced(c: AlertContext) -> Rows | None:
    if c.forced is None:
        return None
    return c.schema.rows("diaForcedSource", c.forced)


def _record_field(name: str, table: dict[str, ContextValue], wanted: Callable[[AlertContext], bool]
                  ) -> ContextValue:
    def fill(c: AlertContext) -> dict[str, Any] | None:
        if not wanted(c):
            return None
        return c.schema.fill_record(name, table, c)

    return fill


def _is_solar_system(c: AlertContext) -> bool:
    return c.obj.body is not None


ALERT_FIELDS: dict[str, ContextValue] = {
    "alertId": lambda c: c.dia_source_id,  # v7 keys alerts by alertId = diaSourceId
    "diaSourceId": lambda c: c.dia_source_id,
    "observation_reason": lambda c: OBSERVATION_REASONS[c.dia_source_id % len(OBSERVATION_REASONS)],
    "target_name": lambda c: TARGET_NAMES[c.dia_source_id // 7 % len(TARGET_NAMES)],
    "diaSource": lambda c: c.source_rows[-1],
    "prvDiaSources": _history,
    "prvDiaForcedSources": _forced,
    "prvDiaNondetectionLimits": lambda c: None,
    "diaObject": _record_field("diaObject", OBJECT_FIELDS, lambda c: not _is_solar_system(c)),
    "ssSource": _record_field("ssSource", SOLAR_SYSTEM_FIELDS, _is_solar_system),
    "ssObject": _record_field("ssObject", SOLAR_SYSTEM_FIELDS, _is_solar_system),
    "MPCORB": _record_field("MPCORB", SOLAR_SYSTEM_FIELDS, _is_solar_system),
    "mpc_orbits": _record_field("mpc_orbits", SOLAR_SYSTEM_FIELDS, _is_solar_system),
    "cutoutScience": _cutout("science"),
    "cutoutTemplate": _cutout("template"),
    "cutoutDifference": _cutout("difference"),
}


MISSING = object()  # a table has no value for the field: it gets one by its Avro type


def table_value(name: str, table: dict[str, ContextValue], context: AlertContext) -> Any:
    """The table's value for a field of the alert, per-band statistics included; else MISSING."""
    if name in table:
        return table[name](context)
    match = BAND_NAMED.match(name)
    if match:
        band, statistic = match.groups()
        if table is OBJECT_FIELDS and statistic in BAND_STATISTIC_NAMES:
            return context.band_stats(band).get(statistic, 0 if statistic.endswith("Ndata")
                                                else math.nan)
        if table is SOLAR_SYSTEM_FIELDS and statistic in SOLAR_SYSTEM_BAND_FIELDS:
            return SOLAR_SYSTEM_BAND_FIELDS[statistic](context, band)
    return MISSING
