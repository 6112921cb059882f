"""A stand-in for ../shared/real-alerts built by the simulator with the official schemas.

Same layout as the real folder (rubin/derived_wire_v9_0/*.wire, rubin/derived_wire_v10_0/*.wire,
rubin/boom_wire/*.avro, broker copies as Avro container files, rubin/cutouts/*.fits), so a test
that reads packets by folder runs the same assertions on a clean clone. ZTF packets have no
simulator: tests of them need the real folder.
"""

from __future__ import annotations

import atexit
import functools
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

import fastavro

from lsst_alert_pipeline.decode.schemas import parsed_bundled_schema
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts


def _ocf(version: str, records: list[dict[str, Any]]) -> bytes:
    out = io.BytesIO()
    fastavro.writer(out, parsed_bundled_schema(version), records)
    return out.getvalue()


def _ids(records: list[dict[str, Any]]) -> list[int]:
    return [int(record["diaSource"]["diaSourceId"]) for record in records]


def build(root: Path) -> Path:
    """Write the simulated tree under root; return root."""
    rubin = root / "rubin"
    v9 = list(simulate_alerts(20, schema_version="9.0", seed=901, sso_fraction=0.3))
    # v10: variable stars with long histories (the columnar path) and solar-system alerts
    v10 = list(simulate_alerts(7, schema_version="10.0", seed=1001, sso_fraction=0.3,
                               history=(24, 120)))
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
        boom_id = record.get("alertId") or record["diaSource"]["diaSourceId"]
        (boom / f"lsst_schema{version.replace('.', '0')}_{boom_id}.avro").write_bytes(
            encode_wire(record, version))
    fink9 = rubin / "fink_broker_v9_0"
    fink9.mkdir()
    for record, dia_source_id in zip(v9, _ids(v9), strict=True):
        (fink9 / f"{dia_source_id}_{dia_source_id}.avro").write_bytes(_ocf("9.0", [record]))
    (rubin / "fink_client_v10_0").mkdir()
    (rubin / "fink_client_v10_0" / "part-2-918301.avro").write_bytes(_ocf("10.0", v10))
    v74 = list(simulate_alerts(3, schema_version="7.4", seed=704, history=(1, 8)))
    (rubin / "fink_broker_v7_4").mkdir()
    for record, dia_source_id in zip(v74, _ids(v74), strict=True):
        (rubin / "fink_broker_v7_4" / f"{dia_source_id}_{dia_source_id}.avro").write_bytes(
            _ocf("7.4", [record]))
    ampel = list(simulate_alerts(10, schema_version="7.1", seed=711, history=(0, 4)))
    for record in ampel:
        for kind in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
            record[kind] = None
    (rubin / "ampel_v7_1_nocutouts").mkdir()
    (rubin / "ampel_v7_1_nocutouts" / "schema_701.avro").write_bytes(_ocf("7.1", ampel))
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
