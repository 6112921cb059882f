"""A realistic Rubin alert simulator: alert records valid for any bundled schema from v7.0 up.

Alerts are built by walking the official schema: each field is filled by name from the tables
below (SOURCE_COLUMNS, OBJECT_FIELDS, BAND_STATISTICS, SOLAR_SYSTEM_FIELDS, ALERT_FIELDS), and any
field not in a table gets a value by its Avro type (NaN for floats, as real wire packets carry
them; null or 0 for the rest). So a new schema version needs at most a table entry, never a code
path. Values follow DESIGN.md's Rubin facts: one Chilean night crossing UTC midnight, fluxes in
nJy with psfFluxErr = |psfFlux| / snr, ssObjectId 0 without a solar-system association, and
prvDiaSources histories from none (new transients) to 400 rows (variable stars).
Everything is drawn from one numpy Generator, so a seed gives byte-identical alerts.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import hashlib
import io
import itertools
import json
import math
import os
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import numpy.typing as npt

from ..decode.schemas import (
    bundled_schema,
    bundled_versions,
    latest_version,
    parsed_bundled_schema,
    schema_id_for,
)
from ..decode.times import MJD_UNIX_EPOCH as UNIX_EPOCH_MJD
from .cutouts import (
    CutoutWcs,
    assemble_cutout,
    cutout_arrays,
    make_cutout,
    primary_header,
)
from .history_rows import FieldLayout, Rows, as_column, encode_array, encode_long, field_layout

__all__ = [
    "encode_wire",
    "make_cutout",
    "simulate_alerts",
    "simulated_versions",
    "write_container",
    "write_wire_files",
]

FloatArray = npt.NDArray[np.float64]

# One Chilean night: ~23:00 UTC to ~10:00 UTC, dayObs 2026-03-05 (DESIGN.md, fink-broker #1152).
NIGHT_START_MJD = 61104.96
NIGHT_END_MJD = 61105.42
AB_ZERO_POINT_NJY = 31.4
BANDS = np.array(list("ugrizy"), dtype=object)
BAND_SHARE = np.array([0.07, 0.10, 0.22, 0.22, 0.20, 0.19])  # the survey's filter balance
SINGLE_VISIT_DEPTH = np.array([23.7, 24.8, 24.4, 24.0, 23.4, 22.5])  # 5-sigma AB magnitudes
DETECTION_SNR = 5.0
NAN_EXTENDEDNESS_RATE = 0.15
ACTIVE_BODY_RATE = 0.08  # comets and active asteroids: extended although on a known orbit
OBSERVATION_REASONS = ("wfd", "wfd", "wfd", "ddf_cosmos", "ddf_edfs_b", "ddf_xmm_lss", "twilight")
TARGET_NAMES = ("lowdust", "dusty_plane", "ddf_cosmos, lowdust", "ddf_edfs_b, lowdust", "nes")
# Non-solar-system objects: (kind, share). History lengths are drawn per kind in history_length().
OBJECT_KINDS = (("new transient", 0.50), ("young transient", 0.15), ("variable star", 0.35))
MIN_SIMULATED_MAJOR = 7


def simulated_versions() -> tuple[str, ...]:
    """The bundled schema versions the simulator writes (7.0 and later)."""
    return tuple(v for v in bundled_versions() if int(v.split(".")[0]) >= MIN_SIMULATED_MAJOR)


# ---------------------------------------------------------------------------------------------
# What is simulated: an object, its measurements, and (for solar-system alerts) its orbit.


@dataclass
class SolarSystemBody:
    """A main-belt asteroid (or an active one) on a known orbit."""

    ss_object_id: int
    designation: str
    packed_designation: str
    ecl_lambda: float
    ecl_beta: float
    a: float
    e: float
    incl: float
    node: float
    argperi: float
    mean_anomaly: float
    h: float
    helio_range: float
    topo_range: float
    phase_angle: float
    elongation: float
    rate_deg_per_day: float
    rate_angle: float
    first_observed_mjd: float


@dataclass
class SimulatedObject:
    """What caused the alert: a transient, a variable star or a solar-system body."""

    kind: str
    extended: bool
    ra: float
    dec: float
    dia_object_id: int
    ss_object_id: int
    template_flux: float  # host galaxy or star, nJy
    host_extended: bool
    peak_flux: float
    peak_mjd: float
    width_days: float
    period_days: float
    phase: float
    body: SolarSystemBody | None = None


@dataclass
class Epochs:
    """Measurements of one object, oldest first, one array element per visit."""

    source_id: npt.NDArray[np.int64]
    mjd: FloatArray
    band: npt.NDArray[np.object_]
    psf_flux: FloatArray
    psf_flux_err: FloatArray
    snr: FloatArray
    science_flux: FloatArray
    science_flux_err: FloatArray
    template_flux: FloatArray
    ra: FloatArray
    dec: FloatArray
    ra_err: FloatArray
    dec_err: FloatArray
    extendedness: FloatArray
    reliability: FloatArray
    x: FloatArray
    y: FloatArray
    detector: npt.NDArray[np.int64]
    visit: npt.NDArray[np.int64]
    processed_mjd: FloatArray
    dia_object_id: int
    ss_object_id: int

    @property
    def count(self) -> int:
        return int(self.mjd.shape[0])


@dataclass
class AlertContext:
    """Everything one alert's fields are drawn from."""

    rng: np.random.Generator
    schema: AlertSchema
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


# ---------------------------------------------------------------------------------------------
# Drawing objects and their light curves.


def sky_position(rng: np.random.Generator) -> tuple[float, float]:
    """Uniform on the sphere within the LSST footprint (dec -90 to +30)."""
    ra = float(rng.uniform(0.0, 360.0))
    dec = math.degrees(math.asin(rng.uniform(-1.0, math.sin(math.radians(30.0)))))
    return ra, dec


def flux_of_magnitude(magnitude: Any) -> Any:
    """AB magnitude to nJy."""
    return 10 ** ((AB_ZERO_POINT_NJY - np.asarray(magnitude)) / 2.5)


def draw_object(rng: np.random.Generator, solar_system: bool, now: float) -> SimulatedObject:
    """The object behind one alert."""
    if solar_system:
        body = draw_body(rng, now)
        ra, dec = ecliptic_to_equatorial(body.ecl_lambda, body.ecl_beta)
        active = bool(rng.random() < ACTIVE_BODY_RATE)
        peak = float(flux_of_magnitude(rng.uniform(19.0, 23.8)))
        return SimulatedObject("solar system", active, ra, dec, 0, body.ss_object_id, 0.0, False,
                               peak, now, 1.0, 1.0, 0.0, body)
    names = [name for name, _ in OBJECT_KINDS]
    kind = str(rng.choice(names, p=[share for _, share in OBJECT_KINDS]))
    ra, dec = sky_position(rng)
    dia_object_id = int(rng.integers(300_000_000_000_000_000, 320_000_000_000_000_000))
    if kind == "variable star":
        star = float(flux_of_magnitude(rng.uniform(16.0, 21.0)))
        amplitude = star * float(rng.uniform(0.03, 0.4))
        return SimulatedObject(kind, bool(rng.random() < 0.03), ra, dec, dia_object_id, 0, star,
                               False, amplitude, now, 1.0, float(rng.uniform(0.2, 300.0)),
                               float(rng.random()))
    hosted = bool(rng.random() < 0.7)
    host = float(flux_of_magnitude(rng.uniform(19.0, 23.5))) if hosted else 0.0
    return SimulatedObject(
        kind,
        bool(rng.random() < 0.25),
        ra,
        dec,
        dia_object_id,
        0,
        host,
        hosted,
        float(flux_of_magnitude(rng.uniform(18.5, 23.5))),
        now + float(rng.uniform(-10.0, 15.0)),
        float(rng.uniform(6.0, 30.0)),
        1.0,
        0.0,
    )


def history_length(rng: np.random.Generator, kind: str, history: Any) -> int:
    """Previous DIASources of an object: 0-5 for new transients, 100-400 for variable stars."""
    if kind == "solar system":
        return 0
    if history is not None:
        if isinstance(history, tuple):
            return int(rng.integers(history[0], history[1] + 1))
        return int(history)
    if kind == "new transient":
        return int(rng.choice(6, p=[0.3, 0.22, 0.16, 0.13, 0.1, 0.09]))
    if kind == "young transient":
        return int(math.exp(rng.uniform(math.log(6), math.log(100))))
    return int(rng.integers(100, 401))


def true_difference_flux(obj: SimulatedObject, mjd: FloatArray) -> FloatArray:
    """The object's flux in the difference image (nJy) at the given times."""
    if obj.kind == "variable star":
        return obj.peak_flux * np.sin(2 * np.pi * (mjd / obj.period_days + obj.phase))
    if obj.kind == "solar system":
        return np.full(mjd.shape, obj.peak_flux)
    return obj.peak_flux * np.exp(-0.5 * ((mjd - obj.peak_mjd) / obj.width_days) ** 2)


def previous_times(rng: np.random.Generator, kind: str, count: int, now: float) -> FloatArray:
    """Earlier visits, oldest first: up to a year back for variable stars, weeks for transients."""
    span = 365 if kind == "variable star" else (60 if kind == "young transient" else 25)
    nights = rng.integers(1, span + 1, count)
    times = np.floor(now) - nights + rng.uniform(-0.04, 0.42, count)
    return np.sort(times)


def source_ids_at(rng: np.random.Generator, mjd: FloatArray) -> npt.NDArray[np.int64]:
    """Rubin-looking 64-bit ids that grow with time (~4.4e12 per day, as real ones do)."""
    base = 170_094_456_248_729_605 + (mjd - 61105.0936) * 4.4e12
    return base.astype(np.int64) + rng.integers(0, 1 << 24, mjd.shape[0])


def visits_at(mjd: FloatArray) -> npt.NDArray[np.int64]:
    """Rubin visit ids: dayObs (the UTC-12h date) * 100000 + sequence number in the night."""
    day = np.floor(mjd - 0.5).astype(np.int64)
    dates = np.datetime64("1858-11-17", "D") + day.astype("timedelta64[D]")
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    sequence = np.clip(((mjd - 0.5) % 1.0 - 0.44) * 86400 / 36, 1, 99_999).astype(np.int64)
    return (years * 10_000 + months * 100 + days) * 100_000 + sequence


def measure(
    rng: np.random.Generator,
    obj: SimulatedObject,
    mjd: FloatArray,
    source_id: npt.NDArray[np.int64],
    detected: bool,
) -> Epochs:
    """Photometry and astrometry of the object at the given times; detections have SNR >= 5."""
    count: int = int(mjd.shape[0])
    band_index = rng.choice(6, count, p=BAND_SHARE)
    depth = SINGLE_VISIT_DEPTH[band_index] + rng.normal(0.0, 0.25, count)
    sky_sigma = flux_of_magnitude(depth) / 5.0
    flux = true_difference_flux(obj, mjd)
    science = obj.template_flux + flux
    error = np.hypot(sky_sigma, np.sqrt(np.abs(science)) * 1.5)
    if detected:
        # A DIASource exists only where the difference image has a 5-sigma peak.
        faint = np.abs(flux) < DETECTION_SNR * error
        sign = np.where(flux < 0, -1.0, 1.0)
        boost = DETECTION_SNR * error * (1.0 + rng.exponential(0.4, count))
        flux = np.where(faint, sign * boost, flux) + rng.normal(0.0, 1.0, count) * error * 0.3
        threshold = DETECTION_SNR * error * 1.001  # stays >= 5 after rounding to float32
        flux = np.where(np.abs(flux) < threshold, sign * threshold, flux)
    else:
        flux = flux + rng.normal(0.0, 1.0, count) * error
    flux32 = flux.astype(np.float32).astype(np.float64)
    snr = (np.abs(flux32) / error).astype(np.float32).astype(np.float64)
    astrometric_err = (0.7 / np.maximum(snr, 1.0)) / 3600 * rng.uniform(0.8, 1.2, count)
    cos_dec = max(math.cos(math.radians(obj.dec)), 1e-3)
    ra = (obj.ra + rng.normal(0.0, 1.0, count) * astrometric_err / cos_dec) % 360.0
    dec = np.clip(obj.dec + rng.normal(0.0, 1.0, count) * astrometric_err, -90.0, 90.0)
    # Extended sources (galaxies, comae) score high, point sources low, both noisy.
    extendedness = rng.beta(6.0, 1.5, count) if obj.extended else rng.beta(0.8, 6.0, count)
    extendedness[rng.random(count) < NAN_EXTENDEDNESS_RATE] = np.nan
    return Epochs(
        source_id=source_id,
        mjd=mjd,
        band=BANDS[band_index],
        psf_flux=flux32,
        # DESIGN: psfFluxErr is |psfFlux| / snr for every DIASource.
        psf_flux_err=np.abs(flux32) / snr if detected else error,
        snr=snr,
        science_flux=science + (flux32 - true_difference_flux(obj, mjd)),
        science_flux_err=np.hypot(error, sky_sigma * 0.1),
        template_flux=np.full(count, obj.template_flux),
        ra=ra,
        dec=dec,
        ra_err=astrometric_err,
        dec_err=astrometric_err * rng.uniform(0.8, 1.2, count),
        extendedness=extendedness,
        reliability=rng.beta(8.0, 1.3, count),
        x=rng.uniform(0.0, 4072.0, count),
        y=rng.uniform(0.0, 4000.0, count),
        detector=rng.integers(0, 189, count),
        visit=visits_at(mjd),
        processed_mjd=mjd + rng.uniform(0.0008, 0.004, count),
        dia_object_id=obj.dia_object_id,
        ss_object_id=obj.ss_object_id,
    )


def band_statistics(epochs: Epochs) -> dict[str, dict[str, float]]:
    """Per-band light-curve statistics of a diaObject, as the APDB computes them."""
    out: dict[str, dict[str, float]] = {}
    for band in set(epochs.band.tolist()):
        chosen = epochs.band == band
        flux, error = epochs.psf_flux[chosen], epochs.psf_flux_err[chosen]
        science = epochs.science_flux[chosen]
        count = int(flux.shape[0])
        mean = float(flux.mean())
        sigma = float(flux.std(ddof=1)) if count > 1 else math.nan
        out[band] = {
            "psfFluxMean": mean,
            "psfFluxMeanErr": float(np.sqrt(np.sum(error**2)) / count),
            "psfFluxSigma": sigma,
            "psfFluxNdata": count,
            "psfFluxMin": float(flux.min()),
            "psfFluxMax": float(flux.max()),
            "psfFluxErrMean": float(error.mean()),
            "psfFluxChi2": float(np.sum(((flux - mean) / error) ** 2)),
            "scienceFluxMean": float(science.mean()),
            "scienceFluxMeanErr": float(np.sqrt(np.sum(epochs.science_flux_err[chosen] ** 2))
                                        / count),
        }
    return out


# ---------------------------------------------------------------------------------------------
# Solar-system bodies.

_OBLIQUITY = math.radians(23.4392911)
# ICRS to Galactic rotation (Hipparcos definition).
_ICRS_TO_GALACTIC = np.array(
    [
        [-0.0548755604162154, -0.8734370902348850, -0.4838350155487132],
        [+0.4941094278755837, -0.4448296299600112, +0.7469822444972189],
        [-0.8676661490190047, -0.1980763734312015, +0.4559837761750669],
    ]
)
_HALF_MONTHS = "ABCDEFGHJKLMNOPQRSTUVWXY"
_SECOND_LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"


def ecliptic_to_equatorial(ecl_lambda: float, ecl_beta: float) -> tuple[float, float]:
    """(ra, dec) in degrees of an ecliptic longitude and latitude."""
    lam, beta = math.radians(ecl_lambda), math.radians(ecl_beta)
    sin_dec = math.sin(beta) * math.cos(_OBLIQUITY) + math.cos(beta) * math.sin(
        _OBLIQUITY) * math.sin(lam)
    ra = math.atan2(
        math.sin(lam) * math.cos(_OBLIQUITY) - math.tan(beta) * math.sin(_OBLIQUITY), math.cos(lam)
    )
    return math.degrees(ra) % 360.0, math.degrees(math.asin(sin_dec))


def galactic_of(ra: float, dec: float) -> tuple[float, float]:
    """(l, b) in degrees of an ICRS position."""
    a, d = math.radians(ra), math.radians(dec)
    vector = np.array([math.cos(d) * math.cos(a), math.cos(d) * math.sin(a), math.sin(d)])
    x, y, z = _ICRS_TO_GALACTIC @ vector
    return math.degrees(math.atan2(y, x)) % 360.0, math.degrees(math.asin(max(-1.0, min(1.0, z))))


def draw_body(rng: np.random.Generator, now: float) -> SolarSystemBody:
    """A main-belt asteroid near the ecliptic, inside the footprint."""
    while True:
        ecl_lambda = float(rng.uniform(0.0, 360.0))
        ecl_beta = float(np.clip(rng.normal(0.0, 7.0), -40.0, 40.0))
        if ecliptic_to_equatorial(ecl_lambda, ecl_beta)[1] <= 30.0:
            break
    a = float(rng.uniform(2.1, 3.4))
    e = float(rng.uniform(0.02, 0.3))
    helio = a * (1 + e * float(rng.uniform(-1.0, 1.0)))
    year = int(rng.integers(1995, 2026))
    half_month = _HALF_MONTHS[int(rng.integers(0, 24))]
    second = _SECOND_LETTERS[int(rng.integers(0, 25))]
    cycle = int(rng.integers(0, 100))
    designation = f"{year} {half_month}{second}{cycle if cycle else ''}"
    packed = f"{'IJK'[year // 100 - 18]}{year % 100:02d}{half_month}{cycle:02d}{second}"
    return SolarSystemBody(
        ss_object_id=int(rng.integers(10_000_000_000_000_000, 30_000_000_000_000_000)),
        designation=designation,
        packed_designation=packed,
        ecl_lambda=ecl_lambda,
        ecl_beta=ecl_beta,
        a=a,
        e=e,
        incl=abs(float(rng.normal(0.0, 8.0))),
        node=float(rng.uniform(0.0, 360.0)),
        argperi=float(rng.uniform(0.0, 360.0)),
        mean_anomaly=float(rng.uniform(0.0, 360.0)),
        h=float(rng.uniform(13.0, 19.5)),
        helio_range=helio,
        topo_range=max(0.2, helio - 1.0 + float(rng.uniform(0.0, 0.4))),
        phase_angle=float(rng.uniform(1.0, 25.0)),
        elongation=float(rng.uniform(100.0, 180.0)),
        rate_deg_per_day=float(rng.uniform(0.1, 0.35)),
        rate_angle=float(rng.uniform(0.0, 2 * math.pi)),
        first_observed_mjd=now - float(rng.uniform(300.0, 12000.0)),
    )


def _body_vector(body: SolarSystemBody, distance: float) -> tuple[float, float, float]:
    lam, beta = math.radians(body.ecl_lambda), math.radians(body.ecl_beta)
    return (
        distance * math.cos(beta) * math.cos(lam),
        distance * math.cos(beta) * math.sin(lam),
        distance * math.sin(beta),
    )


def _apparent_magnitude(body: SolarSystemBody) -> float:
    return body.h + 5 * math.log10(body.helio_range * body.topo_range) + 0.035 * body.phase_angle


def _mpc_orb_json(body: SolarSystemBody) -> str:
    return json.dumps(
        {
            "COM": {
                "coefficient_names": ["q", "e", "i", "node", "argperi", "peri_time"],
                "coefficient_values": [body.a * (1 - body.e), body.e, body.incl, body.node,
                                       body.argperi, _perihelion_time(body)],
            },
            "epoch_data": {"epoch": 61000.0, "timeform": "MJD", "timesystem": "TDT"},
            "magnitude_data": {"G": 0.15, "H": round(body.h, 3)},
            "designation_data": {
                "unpacked_primary_provisional_designation": body.designation,
                "packed_primary_provisional_designation": body.packed_designation,
            },
            "categorization": {"orbit_type_int": 11, "orbit_type_str": "Main Belt"},
        },
        separators=(",", ":"),
    )


def _period_days(body: SolarSystemBody) -> float:
    return 365.25636 * body.a**1.5


def _perihelion_time(body: SolarSystemBody) -> float:
    return 61000.0 + (360.0 - body.mean_anomaly) / (360.0 / _period_days(body))


# ---------------------------------------------------------------------------------------------
# The tables: field name -> how to fill it. A field absent here gets a value by its Avro type.

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
    "ephVmag": lambda c: _apparent_magnitude(_body(c)),
    "predictedVMagnitude": lambda c: _apparent_magnitude(_body(c)),
    "ephRate": lambda c: _body(c).rate_deg_per_day,
    "ephRateRa": lambda c: _body(c).rate_deg_per_day * math.cos(_body(c).rate_angle),
    "ephRateDec": lambda c: _body(c).rate_deg_per_day * math.sin(_body(c).rate_angle),
    "ephOffset": lambda c: math.hypot(*_eph_offset(c)),
    "ephOffsetRa": lambda c: _eph_offset(c)[0],
    "ephOffsetDec": lambda c: _eph_offset(c)[1],
    "residualRa": lambda c: _eph_offset(c)[0],
    "residualDec": lambda c: _eph_offset(c)[1],
    "diaDistanceRank": lambda c: 1,
    "helio_x": lambda c: _body_vector(_body(c), _body(c).helio_range)[0],
    "helio_y": lambda c: _body_vector(_body(c), _body(c).helio_range)[1],
    "helio_z": lambda c: _body_vector(_body(c), _body(c).helio_range)[2],
    "heliocentricX": lambda c: _body_vector(_body(c), _body(c).helio_range)[0],
    "heliocentricY": lambda c: _body_vector(_body(c), _body(c).helio_range)[1],
    "heliocentricZ": lambda c: _body_vector(_body(c), _body(c).helio_range)[2],
    "topo_x": lambda c: _body_vector(_body(c), _body(c).topo_range)[0],
    "topo_y": lambda c: _body_vector(_body(c), _body(c).topo_range)[1],
    "topo_z": lambda c: _body_vector(_body(c), _body(c).topo_range)[2],
    "topocentricX": lambda c: _body_vector(_body(c), _body(c).topo_range)[0],
    "topocentricY": lambda c: _body_vector(_body(c), _body(c).topo_range)[1],
    "topocentricZ": lambda c: _body_vector(_body(c), _body(c).topo_range)[2],
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
    "t_p": lambda c: _perihelion_time(_body(c)),
    "peri_time": lambda c: _perihelion_time(_body(c)),
    "period": lambda c: _period_days(_body(c)),
    "mean_motion": lambda c: 360.0 / _period_days(_body(c)),
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
    "mpc_orb_jsonb": lambda c: _mpc_orb_json(_body(c)),
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


# ---------------------------------------------------------------------------------------------
# Walking a schema.


def _branches(avro_type: Any) -> list[Any]:
    return avro_type if isinstance(avro_type, list) else [avro_type]


def _kind(avro_type: Any) -> str:
    return str(avro_type.get("type") if isinstance(avro_type, dict) else avro_type)


def _full_name(definition: dict[str, Any]) -> str:
    name = str(definition["name"])
    namespace = definition.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _collect_named(avro_type: Any, named: dict[str, dict[str, Any]]) -> None:
    if isinstance(avro_type, list):
        for branch in avro_type:
            _collect_named(branch, named)
    elif isinstance(avro_type, dict):
        kind = avro_type.get("type")
        if kind in ("record", "enum", "fixed"):
            named[_full_name(avro_type)] = avro_type
            for child in avro_type.get("fields", []):
                _collect_named(child["type"], named)
        elif kind == "array":
            _collect_named(avro_type["items"], named)
        elif kind == "map":
            _collect_named(avro_type["values"], named)


def _inline(avro_type: Any, named: dict[str, dict[str, Any]]) -> Any:
    """The type with every reference to a named type replaced by a copy of its definition."""
    if isinstance(avro_type, str):
        return _inline(copy.deepcopy(named[avro_type]), named) if avro_type in named else avro_type
    if isinstance(avro_type, list):
        return [_inline(branch, named) for branch in avro_type]
    if isinstance(avro_type, dict):
        out = dict(avro_type)
        if out.get("type") == "record":
            out["fields"] = [dict(f, type=_inline(f["type"], named)) for f in out["fields"]]
        elif out.get("type") == "array":
            out["items"] = _inline(out["items"], named)
        elif out.get("type") == "map":
            out["values"] = _inline(out["values"], named)
        return out
    return avro_type


def fallback_value(avro_type: Any, schema: AlertSchema) -> Any:
    """A value for a field no table names: NaN for floats (as in real wire packets), else 0/null."""
    branches = [schema.resolve(b) for b in _branches(avro_type)]
    nullable = any(_kind(b) == "null" for b in branches)
    value_type: Any = next((b for b in branches if _kind(b) != "null"), "null")
    kind = _kind(value_type)
    if kind in ("float", "double"):
        return math.nan
    if kind == "boolean":
        return False
    if nullable or kind == "null":
        return None
    if kind in ("int", "long"):
        return 0
    if kind == "string":
        return ""
    if kind == "bytes":
        return b""
    if kind == "array":
        return []
    if kind == "map":
        return {}
    if kind == "enum":
        return value_type["symbols"][0]
    if kind == "record":
        return {f["name"]: fallback_value(f["type"], schema) for f in value_type["fields"]}
    raise NotImplementedError(f"no fallback for Avro type {avro_type!r}")


def value_kind(avro_type: Any, schema: AlertSchema) -> str:
    """The Avro type name of a field's values (its non-null union branch)."""
    branches = [schema.resolve(b) for b in _branches(avro_type)]
    return _kind(next((b for b in branches if _kind(b) != "null"), "null"))


def coerce(kind: str, value: Any) -> Any:
    """A generated value as the Python type fastavro expects for a field of that kind."""
    if value is None or isinstance(value, dt.datetime | Rows | list | dict | bytes):
        return value
    if kind == "float":
        return float(np.float32(value))
    if kind == "double":
        return float(value)
    if kind in ("int", "long"):
        return int(value)
    if kind == "boolean":
        return bool(value)
    if kind == "string":
        return str(value)
    return value


class AlertSchema:
    """One bundled alert schema, with its named types, row layouts and per-field encoders."""

    def __init__(self, version: str):
        self.version = version
        self.definition = bundled_schema(version)
        self.named: dict[str, dict[str, Any]] = {}
        _collect_named(self.definition, self.named)
        self.by_short_name = {name.rsplit(".", 1)[-1]: d for name, d in self.named.items()}
        self.fields = [(f["name"], f["type"]) for f in self.definition["fields"]]
        self.schema_id = schema_id_for(version)
        self._layouts: dict[str, tuple[FieldLayout, ...]] = {}
        self._record_plans: dict[str, list[tuple[str, str, Any]]] = {}
        self._row_plans: dict[str, list[tuple[FieldLayout, SourceColumn | None, Any]]] = {}
        self._segments: list[tuple[tuple[str, ...], Any, Any]] | None = None

    def resolve(self, avro_type: Any) -> Any:
        return self.named.get(avro_type, avro_type) if isinstance(avro_type, str) else avro_type

    def record(self, short_name: str) -> dict[str, Any]:
        return self.by_short_name[short_name]

    def has_record(self, short_name: str) -> bool:
        return short_name in self.by_short_name

    def layouts(self, short_name: str) -> tuple[FieldLayout, ...]:
        if short_name not in self._layouts:
            self._layouts[short_name] = tuple(
                field_layout(f["name"], f["type"]) for f in self.record(short_name)["fields"]
            )
        return self._layouts[short_name]

    def rows(self, short_name: str, epochs: Epochs) -> Rows:
        """History rows of a record type, one per epoch, filled from SOURCE_COLUMNS."""
        if short_name not in self._row_plans:
            fields = self.record(short_name)["fields"]
            self._row_plans[short_name] = [
                (layout, SOURCE_COLUMNS.get(layout.name),
                 as_column(layout, fallback_value(schema_field["type"], self), 0))
                for layout, schema_field in zip(self.layouts(short_name), fields, strict=True)
            ]
        columns = {}
        for layout, column, constant in self._row_plans[short_name]:
            value = constant if column is None else as_column(layout, column(epochs), epochs.count)
            columns[layout.name] = value
        return Rows(self.layouts(short_name), columns, epochs.count)

    def record_plan(self, short_name: str) -> list[tuple[str, str, Any]]:
        """(name, value kind, fallback value) of each field of a record type."""
        if short_name not in self._record_plans:
            self._record_plans[short_name] = [
                (f["name"], value_kind(f["type"], self),
                 coerce(value_kind(f["type"], self), fallback_value(f["type"], self)))
                for f in self.record(short_name)["fields"]
            ]
        return self._record_plans[short_name]

    def fill_record(
        self, short_name: str, table: dict[str, ContextValue], context: AlertContext
    ) -> dict[str, Any] | None:
        """A record of the named type, each field from the table, else from its Avro type."""
        if not self.has_record(short_name):
            return None
        out: dict[str, Any] = {}
        for name, kind, fallback in self.record_plan(short_name):
            value = _table_value(name, table, context)
            if value is _MISSING:
                mutable = isinstance(fallback, list | dict)
                out[name] = copy.deepcopy(fallback) if mutable else fallback
            else:
                out[name] = coerce(kind, value)
        return out

    def segments(self) -> list[tuple[tuple[str, ...], Any, Any]]:
        """The alert's fields in runs fastavro writes in one call, history arrays on their own.

        Each run is (field names, parsed schema of a record holding just those fields, the array
        type if the run is one history array). Avro records have no framing, so a record of some
        of the alert's fields encodes exactly as those fields do inside the alert.
        """
        if self._segments is None:
            runs: list[list[tuple[str, Any]]] = []
            for name, avro_type in self.fields:
                is_array = value_kind(avro_type, self) == "array"
                if is_array or not runs or value_kind(runs[-1][-1][1], self) == "array":
                    runs.append([])
                runs[-1].append((name, avro_type))
            self._segments = []
            for number, run in enumerate(runs):
                wrapper = {"type": "record", "name": f"simulated_fields_{number}",
                           "fields": [{"name": n, "type": _inline(t, self.named)} for n, t in run]}
                array_type = run[0][1] if value_kind(run[0][1], self) == "array" else None
                self._segments.append((tuple(n for n, _ in run),
                                       fastavro.parse_schema(wrapper, named_schemas={}),
                                       array_type))
        return self._segments


_MISSING = object()


def _table_value(name: str, table: dict[str, ContextValue], context: AlertContext) -> Any:
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
    return _MISSING


@functools.cache
def alert_schema(version: str) -> AlertSchema:
    """The simulator's view of a bundled schema version (cached)."""
    if version not in simulated_versions():
        choices = ", ".join(simulated_versions())
        raise ValueError(f"schema {version!r} cannot be simulated; choose one of {choices}")
    return AlertSchema(version)


# ---------------------------------------------------------------------------------------------
# Cutouts of one alert.


def alert_cutouts(rng: np.random.Generator, obj: SimulatedObject, now: Epochs) -> dict[str, bytes]:
    """Science, template and difference cutouts of the triggering DIASource (FITS bytes)."""
    size = 30
    template_size = 40 if rng.random() < 0.2 else 30
    template_psf_size = 55 if rng.random() < 0.5 else 41
    psf_sigma = float(rng.uniform(1.2, 2.2))  # seeing 0.57-1.04 arcsec FWHM
    wcs = CutoutWcs(
        ra=float(now.ra[-1]),
        dec=float(now.dec[-1]),
        crpix1=size / 2 + float(rng.random()),
        crpix2=size / 2 + float(rng.random()),
        rotation_deg=float(rng.uniform(-180.0, 180.0)),
        corner_x=int(rng.integers(0, 4000)),
        corner_y=int(rng.integers(0, 4000)),
    )
    offset = (template_size - size) / 2
    template_wcs = CutoutWcs(wcs.ra, wcs.dec, wcs.crpix1 + offset, wcs.crpix2 + offset,
                             wcs.rotation_deg, wcs.corner_x - int(offset),
                             wcs.corner_y - int(offset))
    # Pixel noise whose PSF-weighted sum gives psfFluxErr (a Gaussian PSF's noise-equivalent area).
    pixel_sigma = float(now.psf_flux_err[-1]) / (math.sqrt(4 * math.pi) * psf_sigma)
    flux = float(now.psf_flux[-1])
    header = primary_header(size, 41, wcs)
    science = cutout_arrays(rng, flux, pixel_sigma, obj.extended, size, wcs, obj.template_flux,
                            obj.host_extended, psf_sigma, 41)
    difference = cutout_arrays(rng, flux, pixel_sigma * 1.1, obj.extended, size, wcs, 0.0, False,
                               psf_sigma, 41)
    template = cutout_arrays(rng, 0.0, pixel_sigma * 0.5, False, template_size, template_wcs,
                             obj.template_flux, obj.host_extended, psf_sigma, template_psf_size)
    return {
        "science": assemble_cutout(header, *science),
        "difference": assemble_cutout(header, *difference),
        "template": assemble_cutout(
            primary_header(template_size, template_psf_size, template_wcs), *template
        ),
    }


# ---------------------------------------------------------------------------------------------
# The alerts.


def simulate_alert(
    rng: np.random.Generator,
    schema: AlertSchema,
    mjd: float,
    solar_system: bool,
    history: Any = None,
    previous_id: int = 0,
) -> dict[str, Any]:
    """One alert record for the schema, triggered at `mjd`."""
    obj = draw_object(rng, solar_system, mjd)
    previous = history_length(rng, obj.kind, history)
    times = np.append(previous_times(rng, obj.kind, previous, mjd), mjd)
    ids = source_ids_at(rng, times)
    ids[-1] = max(int(ids[-1]), previous_id + 1)
    detections = measure(rng, obj, times, ids, detected=True)
    forced = None
    if not solar_system:
        extra = int(rng.integers(0, max(2, previous // 3 + 1)))
        forced_times = previous_times(rng, obj.kind, min(previous + extra, 450), mjd)
        forced = measure(rng, obj, forced_times, source_ids_at(rng, forced_times) + 7,
                         detected=False)
    context = AlertContext(
        rng=rng,
        schema=schema,
        obj=obj,
        detections=detections,
        source_rows=schema.rows("diaSource", detections),
        forced=forced,
        cutouts=alert_cutouts(rng, obj, detections),
    )
    alert: dict[str, Any] = {}
    for name, avro_type in schema.fields:
        value = ALERT_FIELDS[name](context) if name in ALERT_FIELDS else _MISSING
        if value is _MISSING:
            value = fallback_value(avro_type, schema)
        alert[name] = coerce(value_kind(avro_type, schema), value)
    return alert


def simulate_alerts(
    count: int,
    *,
    schema_version: str | None = None,
    sso_fraction: float = 0.1,
    seed: int = 0,
    history: int | tuple[int, int] | None = None,
) -> Iterator[dict[str, Any]]:
    """`count` alerts of one night, in time order, valid for the schema (default: the latest).

    `history` fixes the number of prvDiaSources of non-solar-system alerts (an int, or an
    inclusive (low, high) range); None draws it from the realistic mix.
    """
    if not 0.0 <= sso_fraction <= 1.0:
        raise ValueError(f"sso_fraction must be between 0 and 1, not {sso_fraction}")
    schema = alert_schema(schema_version or latest_version())
    rng = np.random.default_rng(seed)
    span = NIGHT_END_MJD - NIGHT_START_MJD
    previous_id = 0
    for index in range(count):
        mjd = NIGHT_START_MJD + span * (index + float(rng.random())) / count
        alert = simulate_alert(rng, schema, mjd, bool(rng.random() < sso_fraction), history,
                               previous_id)
        previous_id = dia_source_id_of(alert)
        yield alert


def dia_source_id_of(alert: dict[str, Any]) -> int:
    """The alert's key: its triggering diaSourceId."""
    return int(alert["diaSource"]["diaSourceId"])


# ---------------------------------------------------------------------------------------------
# Bytes and files.


def encode_body(alert: dict[str, Any], schema_version: str) -> bytes:
    """The schemaless Avro body of an alert, byte-identical to fastavro.schemaless_writer's."""
    schema = alert_schema(schema_version)
    buffer = io.BytesIO()
    for names, writer, array_type in schema.segments():
        value = alert[names[0]]
        if array_type is not None and isinstance(value, Rows):
            branches = _branches(array_type)
            index = next(i for i, b in enumerate(branches) if _kind(schema.resolve(b)) == "array")
            buffer.write(encode_long(index) if isinstance(array_type, list) else b"")
            buffer.write(encode_array(value))
        else:
            fastavro.schemaless_writer(buffer, writer, {name: alert[name] for name in names})
    return buffer.getvalue()


def encode_wire(alert: dict[str, Any], schema_version: str) -> bytes:
    """The alert as Rubin publishes it: 0x00, the uint32 schema id, the schemaless Avro body."""
    header = b"\x00" + struct.pack(">I", schema_id_for(schema_version))
    return header + encode_body(alert, schema_version)


def iter_wire_files(
    alerts: Iterable[dict[str, Any]], folder: str | os.PathLike[str], schema_version: str
) -> Iterator[Path]:
    """Write each alert to `<diaSourceId>.wire` in the folder, yielding each path when written."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    for alert in alerts:
        path = target / f"{dia_source_id_of(alert)}.wire"
        # A consumer may watch this folder: it must never see a half-written .wire file.
        partial = path.with_suffix(".wire.part")
        partial.write_bytes(encode_wire(alert, schema_version))
        os.replace(partial, path)
        yield path


def write_wire_files(
    alerts: Iterable[dict[str, Any]], folder: str | os.PathLike[str], schema_version: str
) -> list[Path]:
    """Write each alert to `<diaSourceId>.wire` in the folder; the paths written, in order."""
    return list(iter_wire_files(alerts, folder, schema_version))


def plain_alert(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert with history rows as lists of dicts, for tools that want plain containers."""
    return {k: list(v) if isinstance(v, Rows) else v for k, v in alert.items()}


def write_container(
    alerts: Iterable[dict[str, Any]], path: str | os.PathLike[str], schema_version: str
) -> int:
    """Write the alerts to one Avro container file with the official schema; how many written."""
    stream = iter(alerts)
    first = next(stream, None)
    ordered = itertools.chain([] if first is None else [first], stream)
    written = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal written
        for alert in ordered:
            written += 1
            yield plain_alert(alert)

    # fastavro draws a random sync marker; derive it from the content so a seed gives same bytes.
    key = f"{schema_version}:{'' if first is None else dia_source_id_of(first)}"
    sync_marker = hashlib.md5(key.encode()).digest()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with open(partial, "wb") as out:
        fastavro.writer(out, parsed_bundled_schema(schema_version), counted(),
                        sync_marker=sync_marker)
    os.replace(partial, target)
    return written
