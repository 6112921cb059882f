"""A stand-in for ../shared/real-alerts built by the simulator with the official schemas.

Same layout as the real folder (rubin/derived_wire_v9_0/*.wire, rubin/derived_wire_v10_0/*.wire,
rubin/boom_wire/*.avro, broker copies as Avro container files, rubin/cutouts/*.fits), so a test
that reads packets by folder runs the same assertions on a clean clone. There is no ZTF
simulator: one ZTF container is written with the ZTF schema fields the consumer reads.
"""

from __future__ import annotations

import atexit
import functools
import gzip
import io
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import fastavro

from lsst_alert_pipeline.decode.schemas import (
    bundled_schema,
    inline_named_types,
    parsed_bundled_schema,
)
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts


def _ocf(version: str, records: list[dict[str, Any]]) -> bytes:
    out = io.BytesIO()
    fastavro.writer(out, parsed_bundled_schema(version), records)
    return out.getvalue()


def _nullable(avro_type: Any) -> Any:
    """The type as Spark writes it: every field nullable, records all the way down."""
    if isinstance(avro_type, list):
        return [_nullable(branch) for branch in avro_type]
    if isinstance(avro_type, dict) and avro_type.get("type") == "record":
        fields = [dict(f, type=_or_null(_nullable(f["type"])), default=None)
                  for f in avro_type["fields"]]
        return dict(avro_type, fields=fields)
    if isinstance(avro_type, dict) and avro_type.get("type") == "array":
        return dict(avro_type, items=_nullable(avro_type["items"]))
    return avro_type


def _or_null(avro_type: Any) -> Any:
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    return branches if "null" in branches else ["null", *branches]


def spark_copy(version: str, records: list[dict[str, Any]]) -> bytes:
    """A broker's copy (fink-client style): record `topLevelRecord`, every field nullable, the
    schema named in a field, and a record without an SSSource written as one whose every field
    is null (what Spark makes of a null record)."""
    schema = _nullable(inline_named_types(bundled_schema(version)))
    schema = dict(schema, name="topLevelRecord", namespace="", fields=[
        *schema["fields"], {"name": "lsst_schema_version", "type": ["null", "string"],
                            "default": None}])
    ss_type = next(f["type"] for f in schema["fields"] if f["name"] == "ssSource")
    ss_fields = next(b for b in ss_type if isinstance(b, dict))["fields"]
    rows = []
    for record in records:
        row = dict(record, lsst_schema_version=f"lsst.v{version.replace('.', '_')}.alert")
        if row.get("ssSource") is None:
            row["ssSource"] = {f["name"]: None for f in ss_fields}
        rows.append(row)
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(schema, named_schemas={}), rows)
    return out.getvalue()


# The fields of ZTF's alert schema (ztf.alert, v4.02) the consumer reads, under their names and
# types. The full official schema is not in this environment; these are enough for a ZTF packet
# that takes the same path through the decoder (an Avro container whose record has `candidate`).
ZTF_STAMP = {"type": "record", "name": "cutout", "namespace": "ztf.alert",
             "fields": [{"name": "fileName", "type": "string"},
                        {"name": "stampData", "type": "bytes"}]}
ZTF_SCHEMA = {
    "type": "record", "name": "alert", "namespace": "ztf", "fields": [
        {"name": "schemavsn", "type": "string"},
        {"name": "publisher", "type": "string"},
        {"name": "objectId", "type": "string"},
        {"name": "candid", "type": "long"},
        {"name": "candidate", "type": {"type": "record", "name": "candidate",
                                       "namespace": "ztf.alert", "fields": [
            {"name": "jd", "type": "double"}, {"name": "fid", "type": "int"},
            {"name": "candid", "type": "long"}, {"name": "isdiffpos", "type": "string"},
            {"name": "ra", "type": "double"}, {"name": "dec", "type": "double"},
            {"name": "magpsf", "type": "float"}, {"name": "sigmapsf", "type": "float"},
            {"name": "ssnamenr", "type": ["null", "string"], "default": None},
            {"name": "drb", "type": ["null", "float"], "default": None}]}},
        {"name": "cutoutScience", "type": ["null", ZTF_STAMP], "default": None},
        {"name": "cutoutTemplate", "type": ["null", "ztf.alert.cutout"], "default": None},
        {"name": "cutoutDifference", "type": ["null", "ztf.alert.cutout"], "default": None},
    ]}


def ztf_container(candid: int, object_id: str, mjd: float, fits_bytes: bytes) -> bytes:
    """A ZTF alert as brokers pass them on: an Avro container, stamps gzip-compressed FITS."""
    stamp = {"fileName": "stamp.fits.gz", "stampData": gzip.compress(fits_bytes)}
    record = {"schemavsn": "4.02", "publisher": "simulated", "objectId": object_id,
              "candid": candid, "candidate": {
                  "jd": mjd + 2400000.5, "fid": 2, "candid": candid, "isdiffpos": "t",
                  "ra": 254.1, "dec": 35.2, "magpsf": 18.5, "sigmapsf": 0.05,
                  "ssnamenr": None, "drb": 0.99},
              "cutoutScience": stamp, "cutoutTemplate": stamp, "cutoutDifference": stamp}
    out = io.BytesIO()
    fastavro.writer(out, fastavro.parse_schema(ZTF_SCHEMA, named_schemas={}), [record])
    return out.getvalue()


def _ids(records: list[dict[str, Any]]) -> list[int]:
    return [int(record["diaSource"]["diaSourceId"]) for record in records]


def pinned(version: str, seed: int, source: dict[str, Any], extendedness: list[float],
           sso: bool = False, top: dict[str, Any] | None = None) -> dict[str, Any]:
    """A simulated alert carrying the values the tests know of one real packet: diaSource
    fields, the extendedness of the triggering source then of its previous ones (each with its
    own diaSourceId), and top-level fields."""
    (record,) = simulate_alerts(1, schema_version=version, seed=seed,
                                sso_fraction=1.0 if sso else 0.0,
                                history=max(len(extendedness) - 1, 0))
    record["diaSource"].update(source, extendedness=extendedness[0] if extendedness else None)
    rows = [dict(row) for row in record.get("prvDiaSources") or []]  # the simulator's are lazy
    if rows:
        record["prvDiaSources"] = rows
    for index, (row, value) in enumerate(zip(rows, extendedness[1:], strict=False)):
        row["extendedness"] = value
        row["diaSourceId"] = int(source["diaSourceId"]) - 1 - index
    record.update(top or {})
    return record


def padded(blob: bytes, size: int) -> bytes:
    """A FITS file grown to `size` bytes with zero blocks (readers stop at the data's end)."""
    return blob + b"\0" * (size - len(blob)) if len(blob) < size else blob


def real_like_v10() -> list[dict[str, Any]]:
    """The two v10 packets tests know by id: a variable star with 292 sources of extendedness
    (median 0.378..., min 4.5e-07, max 1.0) and a solar-system alert with diaObjectId 0."""
    low, median = 4.520520064943412e-07, 0.3783394545316696
    star = pinned("10.0", 1011, {
        "diaSourceId": 170094456248729605, "diaObjectId": 313893023095193658,
        "ra": 62.51766199253057, "dec": -47.78624726515006, "midpointMjdTai": 61105.093643486834,
        "band": "i", "psfFlux": 8130.5458984375, "psfFluxErr": 513.67578125, "ssObjectId": 0,
    }, [median, low, 1.0, *[median] * 289])
    for kind, size in (("cutoutScience", 34560), ("cutoutTemplate", 46080),
                       ("cutoutDifference", 34560)):
        star[kind] = padded(star[kind], size)
    sso = pinned("10.0", 1012, {"diaSourceId": 170094456480989258, "diaObjectId": 0,
                                "ssObjectId": 21163624394469969}, [0.02388470619916916],
                 sso=True)
    plain = pinned("10.0", 1013, {"diaSourceId": 170094456272322680, "ssObjectId": 0},
                   [0.2, 0.3, 0.4])
    return [star, sso, plain]


def real_like_v9() -> list[dict[str, Any]]:
    """The three v9 packets tests know by id: ssObjectId 0 on the wire, NaN extendedness, and a
    solar-system alert."""
    plain = pinned("9.0", 911, {"diaSourceId": 169298433314652171,
                                "diaObjectId": 169298432639893512, "psfFlux": 362229.40625,
                                "ssObjectId": 0},
                   [0.0006929337760084309, 0.00013962651428300887, 0.0012462410377338529])
    nan_ext = pinned("9.0", 912, {"diaSourceId": 169298432605814947, "ssObjectId": 0},
                     [math.nan])
    sso = pinned("9.0", 913, {"diaSourceId": 169298432645136561, "diaObjectId": 0,
                              "ssObjectId": 21164719644750924}, [0.1], sso=True)
    return [plain, nan_ext, sso]


def build(root: Path) -> Path:
    """Write the simulated tree under root; return root."""
    rubin = root / "rubin"
    v9 = [*real_like_v9(),
          *simulate_alerts(17, schema_version="9.0", seed=901, sso_fraction=0.3)]
    # v10: variable stars with long histories (the columnar path) and solar-system alerts
    v10 = [*real_like_v10(), *simulate_alerts(4, schema_version="10.0", seed=1001,
                                              sso_fraction=0.3, history=(24, 120))]
    for version, records in (("9_0", v9), ("10_0", v10)):
        folder = rubin / f"derived_wire_v{version}"
        folder.mkdir(parents=True)
        for record, dia_source_id in zip(records, _ids(records), strict=True):
            (folder / f"{dia_source_id}.v{version}.wire").write_bytes(
                encode_wire(record, version.replace("_", ".")))
    boom = rubin / "boom_wire"
    boom.mkdir()
    for version, seed in (("7.1", 701), ("7.3", 703), ("9.0", 900)):
        (record,) = simulate_alerts(1, schema_version=version, seed=seed, history=(0, 6))
        if version == "7.3":  # the v7.3 packet tests know: alertId, band, flux, no extendedness
            record = pinned("7.3", 7031, {"band": "g", "psfFlux": 1485.483642578125}, [],
                            top={"alertId": 3527242430321524769})
        boom_id = record.get("alertId") or record["diaSource"]["diaSourceId"]
        (boom / f"lsst_schema{version.replace('.', '0')}_{boom_id}.avro").write_bytes(
            encode_wire(record, version))
    fink9 = rubin / "fink_broker_v9_0"
    fink9.mkdir()
    for record, dia_source_id in zip(v9, _ids(v9), strict=True):
        (fink9 / f"{dia_source_id}_{dia_source_id}.avro").write_bytes(_ocf("9.0", [record]))
    (rubin / "fink_client_v10_0").mkdir()
    (rubin / "fink_client_v10_0" / "part-2-918301.avro").write_bytes(spark_copy("10.0", v10))
    v74 = [pinned("7.4", 741, {"diaSourceId": 58804293150441527}, [
        0.4750067889690399, 0.2556994557380676, 0.2556994557380676, 0.4750067889690399,
        0.516466498374939, 0.516466498374939], top={"alertId": 58804293150441527}),
        *simulate_alerts(2, schema_version="7.4", seed=704, history=(1, 8))]
    (rubin / "fink_broker_v7_4").mkdir()
    for record, dia_source_id in zip(v74, _ids(v74), strict=True):
        (rubin / "fink_broker_v7_4" / f"{dia_source_id}_{dia_source_id}.avro").write_bytes(
            _ocf("7.4", [record]))
    ampel = [pinned("7.1", 712, {"diaSourceId": 25409118864932952, "band": "g"}, [0.5],
                    top={"alertId": 25409118864932952}),
             *simulate_alerts(9, schema_version="7.1", seed=711, history=(0, 4))]
    for record in ampel:
        for kind in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
            record[kind] = None
    (rubin / "ampel_v7_1_nocutouts").mkdir()
    (rubin / "ampel_v7_1_nocutouts" / "schema_701.avro").write_bytes(_ocf("7.1", ampel))
    (root / "ztf").mkdir()
    (root / "ztf" / "boom_ztf_2695378462115010012.avro").write_bytes(ztf_container(
        2695378462115010012, "ZTF18abudxnw", 60449.37846060004, v10[0]["cutoutScience"]))
    (rubin / "cutouts").mkdir()
    for kind in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
        (rubin / "cutouts" / f"{_ids(v10)[0]}_{kind}.fits").write_bytes(v10[0][kind])
    return root


@functools.cache
def simulated_tree() -> Path:
    """The simulated tree, built once per test process in a temporary folder."""
    root = Path(tempfile.mkdtemp(prefix="simulated-alerts-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return build(root)
