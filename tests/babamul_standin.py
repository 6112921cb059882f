"""Babamul's LSST stream as BOOM writes it, and a stand-in for Babamul's cutout API.

Built from boom-astro/boom @ 8ebd463d (MIT), read with `fetch`:
- `src/enrichment/babamul.rs`: `BabamulLsstAlert {candid, objectId, candidate, prv_candidates,
  fp_hists, properties, survey_matches}`, written per message as an Avro container file of one
  record with codec null (`Writer::with_codec(schema, Null)`);
- `src/alert/lsst.rs`: `LsstCandidate` = the `DiaSource` fields flattened (ids of "no
  association" read as null by `deserialize_optional_id`), plus `objectId` (diaObjectId, or
  `sso<ssObjectId>`), `jd` (TAI MJD to UTC JD), `magpsf`, `sigmapsf`, `diffmaglim`, ... made by
  `LsstCandidate::new`, which refuses a source without psfFlux or apFlux;
- `AlertPhotometry {jd, psfFlux, psfFluxErr, band, ra, dec}` (prvDiaSources with a flux and a
  position) and `ForcedPhotometry {jd, psfFlux?, psfFluxErr, band}`: no diaSourceId, no
  extendedness; `LsstAlertProperties`, `PerBandProperties` (lightcurves.rs);
- `src/api/routes/babamul/surveys/cutouts.rs`: `GET /babamul/surveys/{survey}/cutouts?candid=`
  answers 401 without a user, 404 `{message}` without cutouts, else 200 `{message, data:
  {candid, cutoutScience, cutoutTemplate, cutoutDifference}}`, each base64.

The schema below is what apache-avro's derive makes of those Rust structs (Option<T> a union
["null", T], f32 float, f64 double, i32 int, i64 long, Band an enum). The babamul client
(PyPI `babamul` 0.2, `avro.py` deserialize_alert) reads a value with
`next(fastavro.reader(io.BytesIO(data)))`; the package needs pandas 3, scipy and matplotlib,
so `client_decode` is that call, reproduced as written.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import math
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, cast

import fastavro

from .http_standin import RequestLog, StandinHandler, StandinServer
from .lasair_standin import rubin_packets

TOKEN = "bbml_test_token"
LSST_ZP_AB_NJY = 31.4  # 8.9 + 22.5: BOOM's zero point for fluxes in nJy
TAI_MINUS_UTC_DAYS = 37 / 86400
BAND: dict[str, Any] = {"type": "enum", "name": "Band", "symbols": ["g", "r", "i", "z", "y", "u"]}
F, D, B, N, L = "float", "double", "boolean", "int", "long"  # f32 f64 bool i32 i64


def _opt(kind: Any) -> list[Any]:
    return ["null", kind]


_DIA_SOURCE = [
    ("diaSourceId", L), ("visit", L), ("detector", N), ("diaObjectId", _opt(L)),
    ("ssObjectId", _opt(L)), ("parentDiaSourceId", _opt(L)), ("midpointMjdTai", D), ("ra", D),
    ("raErr", _opt(F)), ("dec", D), ("decErr", _opt(F)), ("centroid_flag", _opt(B)),
    ("apFlux", _opt(F)), ("apFluxErr", _opt(F)), ("apFlux_flag", _opt(B)),
    ("apFlux_flag_apertureTruncated", _opt(B)), ("isNegative", _opt(B)), ("snr", _opt(F)),
    ("psfFlux", _opt(F)), ("psfFluxErr", _opt(F)), ("psfChi2", _opt(F)), ("psfNdata", _opt(N)),
    ("psfFlux_flag", _opt(B)), ("psfFlux_flag_edge", _opt(B)),
    ("psfFlux_flag_noGoodPixels", _opt(B)), ("trailFlux", _opt(F)), ("trailFluxErr", _opt(F)),
    ("trailRa", _opt(D)), ("trailRaErr", _opt(F)), ("trailDec", _opt(D)),
    ("trailDecErr", _opt(F)), ("trailLength", _opt(F)), ("trailLengthErr", _opt(F)),
    ("trailAngle", _opt(F)), ("trailAngleErr", _opt(F)), ("trailChi2", _opt(F)),
    ("trailNdata", _opt(N)), ("trail_flag_edge", _opt(B)), ("scienceFlux", _opt(F)),
    ("scienceFluxErr", _opt(F)), ("forced_PsfFlux_flag", _opt(B)),
    ("forced_PsfFlux_flag_edge", _opt(B)), ("forced_PsfFlux_flag_noGoodPixels", _opt(B)),
    ("templateFlux", _opt(F)), ("templateFluxErr", _opt(F)), ("shape_flag", _opt(B)),
    ("shape_flag_no_pixels", _opt(B)), ("shape_flag_not_contained", _opt(B)),
    ("shape_flag_parent_source", _opt(B)), ("extendedness", _opt(F)), ("reliability", _opt(F)),
    ("band", _opt(BAND)), ("isDipole", _opt(B)), ("pixelFlags", _opt(B)),
    *((f"pixelFlags_{flag}", _opt(B)) for flag in (
        "bad", "cr", "crCenter", "edge", "nodata", "nodataCenter", "interpolated",
        "interpolatedCenter", "offimage", "saturated", "saturatedCenter", "suspect",
        "suspectCenter", "streak", "streakCenter", "injected", "injectedCenter",
        "injected_template", "injected_templateCenter")),
    ("glint_trail", _opt(B)),
]
_CANDIDATE_EXTRAS = [
    ("objectId", "string"), ("jd", D), ("magpsf", F), ("sigmapsf", F), ("snr_psf", _opt(F)),
    ("chipsf", _opt(F)), ("diffmaglim", F), ("isdiffpos", B), ("magap", F), ("sigmagap", F),
    ("snr_ap", _opt(F)), ("jdstarthist", _opt(D)), ("ndethist", _opt(N)),
]
_RATE = {"type": "record", "name": "BandRateProperties", "fields": [
    {"name": n, "type": t} for n, t in (("rate", F), ("rate_error", F), ("red_chi2", F),
                                        ("nb_data", N), ("dt", F))]}
_BAND_PROPERTIES = {"type": "record", "name": "BandProperties", "fields": [
    {"name": "peak_jd", "type": D}, {"name": "peak_mag", "type": F},
    {"name": "peak_mag_err", "type": F}, {"name": "dt", "type": F},
    {"name": "rising", "type": _opt(_RATE)},
    {"name": "fading", "type": _opt("BandRateProperties")}]}
_PER_BAND = {"type": "record", "name": "PerBandProperties", "fields": [
    {"name": "g", "type": _opt(_BAND_PROPERTIES)},
    *({"name": b, "type": _opt("BandProperties")} for b in "rizyujhk")]}
_PHOTOMETRY = {"type": "record", "name": "AlertPhotometry", "fields": [
    {"name": "jd", "type": D}, {"name": "psfFlux", "type": D}, {"name": "psfFluxErr", "type": D},
    {"name": "band", "type": "Band"}, {"name": "ra", "type": D}, {"name": "dec", "type": D}]}
_FORCED = {"type": "record", "name": "ForcedPhotometry", "fields": [
    {"name": "jd", "type": D}, {"name": "psfFlux", "type": _opt(D)},
    {"name": "psfFluxErr", "type": D}, {"name": "band", "type": "Band"}]}
_NONDETECTION = {"type": "record", "name": "NonDetectionPhotometry", "fields": [
    {"name": "jd", "type": D}, {"name": "psfFluxErr", "type": D}, {"name": "band", "type": "Band"}]}
_MATCH = {"type": "record", "name": "BabamulSurveyMatch", "fields": [
    {"name": "objectId", "type": "string"}, {"name": "ra", "type": D}, {"name": "dec", "type": D},
    {"name": "prv_candidates", "type": {"type": "array", "items": "AlertPhotometry"}},
    {"name": "prv_nondetections", "type": {"type": "array", "items": _NONDETECTION}},
    {"name": "fp_hists", "type": {"type": "array", "items": "ForcedPhotometry"}}]}
SCHEMA: dict[str, Any] = {
    "type": "record", "name": "BabamulLsstAlert", "fields": [
        {"name": "candid", "type": L},
        {"name": "objectId", "type": "string"},
        {"name": "candidate", "type": {"type": "record", "name": "LsstCandidate", "fields": [
            {"name": n, "type": t} for n, t in [*_DIA_SOURCE, *_CANDIDATE_EXTRAS]]}},
        {"name": "prv_candidates", "type": {"type": "array", "items": _PHOTOMETRY}},
        {"name": "fp_hists", "type": {"type": "array", "items": _FORCED}},
        {"name": "properties", "type": {"type": "record", "name": "LsstAlertProperties",
                                        "fields": [
            {"name": "rock", "type": B}, {"name": "stationary", "type": B},
            {"name": "star", "type": _opt(B)}, {"name": "near_brightstar", "type": _opt(B)},
            {"name": "photstats", "type": _PER_BAND},
            {"name": "multisurvey_photstats", "type": "PerBandProperties"}]}},
        {"name": "survey_matches", "type": {"type": "record", "name": "BabamulSurveyMatches",
                                            "fields": [
            {"name": "ztf", "type": _opt(_MATCH)},
            {"name": "lsst", "type": _opt("BabamulSurveyMatch")}]}},
    ]}
PARSED = fastavro.parse_schema(SCHEMA)


def client_decode(value: bytes) -> dict[str, Any]:
    """The babamul client's deserialize_alert."""
    return cast(dict[str, Any], next(fastavro.reader(io.BytesIO(value))))


def _id(value: Any) -> Any:
    """deserialize_optional_id: Rubin's 0 for "no association" is null in BOOM."""
    return None if value in (None, 0) else value


def _jd(mjd_tai: float) -> float:
    return mjd_tai + 2400000.5 - TAI_MINUS_UTC_DAYS


def _mag(flux: float, err: float) -> tuple[float, float]:
    return -2.5 * math.log10(flux) + LSST_ZP_AB_NJY, 2.5 / math.log(10) * err / flux


def candidate(packet: dict[str, Any]) -> dict[str, Any] | None:
    """LsstCandidate::new for a Rubin alert (None when BOOM refuses it: no psfFlux/apFlux)."""
    source = packet["diaSource"]
    names = [name for name, _ in _DIA_SOURCE]
    flat = {name: source.get(name) for name in names}
    flat["diaObjectId"], flat["ssObjectId"] = (_id(source.get("diaObjectId")),
                                               _id(source.get("ssObjectId")))
    if None in (source.get("psfFlux"), source.get("psfFluxErr"), source.get("apFlux"),
                source.get("apFluxErr")):
        return None
    psf, psf_err = abs(source["psfFlux"]), source["psfFluxErr"]
    ap, ap_err = abs(source["apFlux"]), source["apFluxErr"]
    magpsf, sigmapsf = _mag(psf, psf_err)
    magap, sigmagap = _mag(ap, ap_err)
    object_id = (str(flat["diaObjectId"]) if flat["diaObjectId"] is not None
                 else f"sso{flat['ssObjectId']}")
    dia_object = packet.get("diaObject") or {}
    return {**flat, "objectId": object_id, "jd": _jd(source["midpointMjdTai"]),
            "magpsf": magpsf, "sigmapsf": sigmapsf, "snr_psf": psf / psf_err, "chipsf": None,
            "diffmaglim": LSST_ZP_AB_NJY - 2.5 * math.log10(5 * psf_err),
            "isdiffpos": source["psfFlux"] > 0, "magap": magap, "sigmagap": sigmagap,
            "snr_ap": ap / ap_err,
            "jdstarthist": (_jd(dia_object["firstDiaSourceMjdTai"])
                            if dia_object.get("firstDiaSourceMjdTai") else None),
            "ndethist": dia_object.get("nDiaSources")}


def babamul_record(packet: dict[str, Any]) -> dict[str, Any] | None:
    """BabamulLsstAlert::from_alert_and_properties for a Rubin alert."""
    cand = candidate(packet)
    if cand is None:
        return None
    prv = [{"jd": _jd(p["midpointMjdTai"]), "psfFlux": p["psfFlux"],
            "psfFluxErr": p["psfFluxErr"], "band": p["band"], "ra": p["ra"], "dec": p["dec"]}
           for p in packet.get("prvDiaSources") or ()
           if p.get("psfFlux") is not None and p.get("ra") is not None]
    forced = [{"jd": _jd(p["midpointMjdTai"]), "psfFlux": p.get("psfFlux"),
               "psfFluxErr": p["psfFluxErr"], "band": p["band"]}
              for p in packet.get("prvDiaForcedSources") or ()]
    no_stats = dict.fromkeys("grizyujhk")
    return {"candid": packet["diaSource"]["diaSourceId"], "objectId": cand["objectId"],
            "candidate": cand, "prv_candidates": prv, "fp_hists": forced,
            "properties": {"rock": cand["ssObjectId"] is not None, "stationary": False,
                           "star": None, "near_brightstar": None, "photstats": no_stats,
                           "multisurvey_photstats": no_stats},
            "survey_matches": {"ztf": None, "lsst": None}}


def message(record: dict[str, Any]) -> bytes:
    """One Kafka value: an Avro container of one record, codec null."""
    out = io.BytesIO()
    fastavro.writer(out, PARSED, [record], codec="null")
    return out.getvalue()


@dataclass
class BabamulStream:
    packets: list[dict[str, Any]]  # the Rubin alerts sent on, in order
    records: list[dict[str, Any]]

    def values(self) -> list[bytes]:
        return [message(record) for record in self.records]


def babamul_stream() -> BabamulStream:
    packets, records = [], []
    for packet in rubin_packets():
        record = babamul_record(packet)
        if record is not None:
            packets.append(packet)
            records.append(record)
    return BabamulStream(packets, records)


@dataclass
class ApiState(RequestLog):
    cutouts: dict[str, dict[str, bytes]] = field(default_factory=dict)  # candid -> field


class BabamulApi(StandinServer):
    """`/api/babamul/surveys/LSST/cutouts?candid=` on 127.0.0.1, as BOOM answers it."""

    def __init__(self) -> None:
        self.state = ApiState()
        super().__init__(_Handler, "babamul-standin")

    @property
    def base_url(self) -> str:
        return f"{self.origin}/api/babamul"

    def store(self, candid: int, cutouts: dict[str, bytes], gzipped: bool = False) -> None:
        with self.state.lock:
            self.state.cutouts[str(candid)] = {
                f"cutout{kind.title()}": gzip.compress(blob, mtime=0) if gzipped else blob
                for kind, blob in cutouts.items()}


class _Handler(StandinHandler):
    server: BabamulApi

    def _answer(self, status: int, body: dict[str, Any] | str) -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_body(status, data, "application/json")

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        parts = urllib.parse.urlsplit(self.path)
        with self.server.state.lock:
            self.server.state.requests.append(self.path)
            stored = self.server.state.cutouts.get(
                urllib.parse.parse_qs(parts.query).get("candid", [""])[0])
        if parts.path != "/api/babamul/surveys/LSST/cutouts":
            return self._answer(404, {"message": "not found"})
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._answer(401, "Unauthorized")
        candid = urllib.parse.parse_qs(parts.query)["candid"][0]
        if stored is None:
            return self._answer(404, {"message": f"no cutouts found for candid {candid}"})
        data = {"candid": int(candid), **{name: base64.b64encode(blob).decode()
                                           for name, blob in stored.items()}}
        return self._answer(200, {"message": f"cutouts found for candid: {candid}",
                                  "data": data})
