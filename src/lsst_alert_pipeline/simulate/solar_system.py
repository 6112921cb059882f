"""Solar-system bodies for the simulator: main-belt asteroids on known orbits, their designations,
and the ecliptic and galactic coordinates their alert fields are given in."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np


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


def body_vector(body: SolarSystemBody, distance: float) -> tuple[float, float, float]:
    """Ecliptic (x, y, z) in au of the body at `distance` along its line of sight."""
    lam, beta = math.radians(body.ecl_lambda), math.radians(body.ecl_beta)
    return (
        distance * math.cos(beta) * math.cos(lam),
        distance * math.cos(beta) * math.sin(lam),
        distance * math.sin(beta),
    )


def apparent_magnitude(body: SolarSystemBody) -> float:
    """V magnitude from H, the distances and a linear phase term."""
    return body.h + 5 * math.log10(body.helio_range * body.topo_range) + 0.035 * body.phase_angle


def mpc_orb_json(body: SolarSystemBody) -> str:
    """The orbit as the MPC's JSON (mpc_orbits.mpc_orb_jsonb from v10)."""
    return json.dumps(
        {
            "COM": {
                "coefficient_names": ["q", "e", "i", "node", "argperi", "peri_time"],
                "coefficient_values": [body.a * (1 - body.e), body.e, body.incl, body.node,
                                       body.argperi, perihelion_time(body)],
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


def orbital_period_days(body: SolarSystemBody) -> float:
    """Kepler's third law: a in au, period in days."""
    return 365.25636 * body.a**1.5


def perihelion_time(body: SolarSystemBody) -> float:
    """MJD of the perihelion passage after the orbit's epoch (61000)."""
    return 61000.0 + (360.0 - body.mean_anomaly) / (360.0 / orbital_period_days(body))
