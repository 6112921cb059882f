"""The simulated sky: what causes an alert (a transient, a variable star or a solar-system body),
and its measurements at each visit of the night and of the months before.

Values follow Rubin's conventions (docs/formats.md): one Chilean night crossing UTC midnight,
fluxes in nJy with psfFluxErr = |psfFlux| / snr for every DIASource, histories from none (new
transients) to 400 rows (variable stars). Every draw comes from the caller's numpy Generator, so a
seed repeats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..decode.normalize import AB_ZERO_POINT_NJY
from ..decode.times import MJD_EPOCH
from .solar_system import SolarSystemBody, draw_body, ecliptic_to_equatorial

FloatArray = npt.NDArray[np.float64]

# One Chilean night: ~23:00 UTC to ~10:00 UTC, dayObs 2026-03-05 (docs/formats.md, dayObs;
# fink-broker #1152).
NIGHT_START_MJD = 61104.96
NIGHT_END_MJD = 61105.42
BANDS = np.array(list("ugrizy"), dtype=object)
BAND_SHARE = np.array([0.07, 0.10, 0.22, 0.22, 0.20, 0.19])  # the survey's filter balance
SINGLE_VISIT_DEPTH = np.array([23.7, 24.8, 24.4, 24.0, 23.4, 22.5])  # 5-sigma AB magnitudes
DETECTION_SNR = 5.0
NAN_EXTENDEDNESS_RATE = 0.15
ACTIVE_BODY_RATE = 0.08  # comets and active asteroids: extended although on a known orbit
# Non-solar-system objects: (kind, share). History lengths are drawn per kind in history_length().
OBJECT_KINDS = (("new transient", 0.50), ("young transient", 0.15), ("variable star", 0.35))


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
    dates = np.datetime64(MJD_EPOCH, "D") + day.astype("timedelta64[D]")
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    sequence = np.clip(((mjd - 0.5) % 1.0 - 0.44) * 86400 / 36, 1, 99_999).astype(np.int64)
    visits = (years * 10_000 + months * 100 + days) * 100_000 + sequence
    return distinct_visits(visits)


def distinct_visits(visits: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Epochs that fall in one 36 s slot become consecutive visits: a visit is one exposure in
    one band, so an object has one forced measurement per visit (light curves rely on it)."""
    visits = visits.copy()
    while len(np.unique(visits)) < len(visits):
        order = np.argsort(visits, kind="stable")
        ranked = visits[order]
        starts = np.r_[0, np.flatnonzero(np.diff(ranked)) + 1]
        rank = np.arange(len(ranked)) - np.repeat(starts, np.diff(np.r_[starts, len(ranked)]))
        visits[order] = ranked + rank
    return visits


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
