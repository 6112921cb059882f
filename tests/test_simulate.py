"""The simulator writes alerts that real readers take exactly as they take Rubin's own."""

from __future__ import annotations

import io
import math
import struct
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner
from fastavro.validation import validate

from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.normalize import normalize
from lsst_alert_pipeline.decode.schemas import parsed_bundled_schema, schema_id_for
from lsst_alert_pipeline.decode.times import day_obs
from lsst_alert_pipeline.demo import run_demo
from lsst_alert_pipeline.simulate import (
    encode_body,
    encode_wire,
    make_cutout,
    plain_alert,
    simulate_alerts,
    simulated_versions,
    write_container,
    write_wire_files,
)
from lsst_alert_pipeline.simulate.cutouts import CutoutWcs


def is_solar_system(alert: dict[str, Any]) -> bool:
    return alert.get("ssSource") is not None or alert.get("ssObject") is not None


def finite_extendedness(record: dict[str, Any]) -> list[float]:
    sources = [record["diaSource"], *(record.get("prvDiaSources") or [])]
    values = [s["extendedness"] for s in sources]
    return [v for v in values if v is not None and math.isfinite(v)]


@pytest.fixture(scope="module")
def night() -> list[dict[str, Any]]:
    """400 alerts of the default mix, latest schema."""
    return list(simulate_alerts(400, seed=11))


@pytest.fixture(scope="module")
def night_wire(night: list[dict[str, Any]]) -> list[bytes]:
    return [encode_wire(alert, "11.1") for alert in night]


def test_simulator_covers_every_bundled_version_from_7() -> None:
    assert simulated_versions()[0] == "7.0"
    assert "11.1" in simulated_versions()
    assert all(int(v.split(".")[0]) >= 7 for v in simulated_versions())


@pytest.mark.parametrize("version", simulated_versions())
def test_alerts_of_every_version_validate_and_read_like_real_ones(version: str) -> None:
    schema = parsed_bundled_schema(version)
    alerts = list(simulate_alerts(8, schema_version=version, sso_fraction=0.5, seed=3,
                                  history=(0, 4)))
    assert {is_solar_system(a) for a in alerts} == {True, False}
    for alert in alerts:
        assert validate(alert, schema, raise_errors=True)
        wire = encode_wire(alert, version)
        assert wire[0] == 0 and struct.unpack(">I", wire[1:5])[0] == schema_id_for(version)
        body = io.BytesIO(wire[5:])
        plain = fastavro.schemaless_reader(body, schema, None)
        assert body.tell() == len(wire) - 5
        assert isinstance(plain, dict)
        source = plain["diaSource"]
        assert source["diaSourceId"] == alert["diaSource"]["diaSourceId"]
        if version.startswith("7."):
            assert plain["alertId"] == source["diaSourceId"]

        (decoded,) = decode_message(wire)
        record = normalize(decoded)
        assert decoded.schema_version == version
        assert record.diaSourceId == source["diaSourceId"]
        assert record.psFlux == pytest.approx(source["psfFlux"])
        if is_solar_system(alert):
            assert record.hasSSSource is True
            assert record.ssObjectId == source["ssObjectId"] != 0
            assert plain["diaObject"] is None and source["diaObjectId"] == 0
            assert plain["prvDiaSources"] is None
        else:
            assert record.hasSSSource is False
            assert record.ssObjectId is None and source["ssObjectId"] == 0
            assert plain["diaObject"]["diaObjectId"] == source["diaObjectId"] != 0
        values = finite_extendedness(plain)
        assert record.extendednessCount == len(values)
        if values:
            assert record.extendednessMedian == pytest.approx(float(np.median(values)))
            assert record.extendednessMin == pytest.approx(min(values))
            assert record.extendednessMax == pytest.approx(max(values))
        else:
            assert record.extendednessMedian is None


@pytest.mark.parametrize("version", ["7.0", "9.0", "11.1"])
def test_history_heavy_alerts_encode_exactly_as_fastavro_writes_them(version: str) -> None:
    schema = parsed_bundled_schema(version)
    for alert in simulate_alerts(3, schema_version=version, seed=5, sso_fraction=0.0,
                                 history=(150, 400)):
        reference = io.BytesIO()
        fastavro.schemaless_writer(reference, schema, plain_alert(alert))
        assert encode_body(alert, version) == reference.getvalue()


def test_solar_system_alerts_carry_orbit_records_where_the_schema_has_them() -> None:
    expected = {"7.0": ("ssObject",), "9.0": ("ssSource", "MPCORB"),
                "11.1": ("ssSource", "mpc_orbits")}
    for version, names in expected.items():
        (alert,) = simulate_alerts(1, schema_version=version, sso_fraction=1.0, seed=2)
        for name in names:
            assert alert[name]["ssObjectId" if name != "mpc_orbits" else "designation"]
        if version != "7.0":
            assert alert["ssSource"]["ssObjectId"] == alert["diaSource"]["ssObjectId"]
            assert alert["ssSource"]["diaSourceId"] == alert["diaSource"]["diaSourceId"]


def open_cutout(blob: bytes) -> fits.HDUList:
    return fits.open(io.BytesIO(blob))


def test_cutouts_are_laid_out_like_rubins() -> None:
    wcs = CutoutWcs(ra=150.25, dec=-30.5, crpix1=15.6, crpix2=15.3, rotation_deg=41.5,
                    corner_x=1198, corner_y=2260)
    blob = make_cutout(np.random.default_rng(0), flux=50_000.0, noise_sigma=40.0,
                       extended=False, wcs=wcs)
    assert len(blob) == 34_560
    with open_cutout(blob) as hdus:
        assert [hdu.name for hdu in hdus] == ["PRIMARY", "UNCERT", "PSFIMAGE"]
        image, variance, psf = (hdu.data for hdu in hdus)
        header = hdus[0].header
        assert image.dtype == np.dtype(">f4") and image.shape == (30, 30)
        assert variance.dtype == np.dtype(">f4") and np.all(variance > 0)
        assert psf.dtype == np.dtype(">f8") and psf.sum() == pytest.approx(1.0, abs=1e-9)
        assert header["BUNIT"] == "nJy"
        assert "CTYPE1" not in header and "CD1_1" not in header
        assert header["CRVAL1"] == pytest.approx(150.25)
        assert header["CRVAL2"] == pytest.approx(-30.5)
        assert header["CRPIX1"] == pytest.approx(15.6) and header["PC1_1"] < 0
        assert hdus[1].header["UTYPE"] == "VarianceUncertainty"
        centre = image[13:17, 13:17].mean()
        edges = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).mean()
        assert centre > edges + 10 * 40.0


def test_extended_sources_spread_their_flux_wider_than_point_sources() -> None:
    def central_share(extended: bool) -> float:
        blob = make_cutout(np.random.default_rng(1), flux=1e6, noise_sigma=1.0, extended=extended)
        with open_cutout(blob) as hdus:
            image = hdus[0].data.astype(float)
        return float(image[13:17, 13:17].sum() / image.sum())

    assert central_share(False) > central_share(True) + 0.2


def test_alert_cutouts_open_and_templates_are_sometimes_larger(night: list[dict[str, Any]]) -> None:
    template_sizes = set()
    for alert in night[:60]:
        for kind in ("cutoutScience", "cutoutDifference", "cutoutTemplate"):
            with open_cutout(alert[kind]) as hdus:
                assert [hdu.name for hdu in hdus] == ["PRIMARY", "UNCERT", "PSFIMAGE"]
                assert hdus[0].header["CRVAL1"] == pytest.approx(alert["diaSource"]["ra"])
                if kind == "cutoutTemplate":
                    template_sizes.add(hdus[0].data.shape)
                else:
                    assert len(alert[kind]) == 34_560
    assert {(30, 30), (40, 40)} <= template_sizes


def test_a_night_looks_like_rubins(night: list[dict[str, Any]], night_wire: list[bytes]) -> None:
    solar = [a for a in night if is_solar_system(a)]
    assert 0.06 <= len(solar) / len(night) <= 0.14
    sources = [a["diaSource"] for a in night]
    ids = [s["diaSourceId"] for s in sources]
    assert len(set(ids)) == len(ids) and all(10**17 <= i < 2**63 for i in ids)
    mjds = np.array([s["midpointMjdTai"] for s in sources])
    assert np.all(np.diff(mjds) > 0)
    assert mjds.min() < 61105.0 < mjds.max()  # the night crosses UTC midnight ...
    assert {day_obs(m) for m in mjds} == {"20260305"}  # ... and stays one dayObs
    assert {s["band"] for s in sources} <= set("ugrizy")
    assert all(0 <= s["ra"] < 360 and -90 <= s["dec"] <= 30.5 for s in sources)
    assert all(0 <= s["reliability"] <= 1 for s in sources)
    for s in sources:
        assert s["psfFluxErr"] == pytest.approx(abs(s["psfFlux"]) / s["snr"], rel=1e-5)
        assert s["snr"] >= 5
    everything = [v for a in night for v in
                  [a["diaSource"]["extendedness"]]
                  + [p["extendedness"] for p in a["prvDiaSources"] or []]]
    nan_rate = sum(math.isnan(v) for v in everything) / len(everything)
    assert 0.10 <= nan_rate <= 0.20
    assert all(0 <= v <= 1 for v in everything if not math.isnan(v))
    history = np.array([len(a["prvDiaSources"] or []) for a in night if not is_solar_system(a)])
    assert np.mean(history <= 5) >= 0.35 and np.mean(history >= 100) >= 0.2
    assert history.max() <= 400 and len(set(history.tolist())) > 50
    forced = [len(a["prvDiaForcedSources"]) for a in night if not is_solar_system(a)]
    assert np.corrcoef(history, forced)[0, 1] > 0.9
    sizes = np.array([len(w) for w in night_wire])
    assert np.mean((sizes >= 100_000) & (sizes <= 300_000)) >= 0.9
    assert sizes.max() < 400_000


def test_extended_alerts_have_high_extendedness_and_points_low(night: list[dict[str, Any]]) -> None:
    medians = [normalize(decode_message(encode_wire(a, "11.1"))[0]).extendednessMedian
               for a in night[:150]]
    finite = np.array([m for m in medians if m is not None])
    assert np.mean(finite < 0.3) > 0.5 and np.mean(finite > 0.7) > 0.08


def test_same_seed_writes_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    first = write_wire_files(simulate_alerts(12, seed=7), tmp_path / "a", "11.1")
    again = write_wire_files(simulate_alerts(12, seed=7), tmp_path / "b", "11.1")
    other = write_wire_files(simulate_alerts(12, seed=8), tmp_path / "c", "11.1")
    assert [p.name for p in first] == [p.name for p in again]
    assert all(p.read_bytes() == q.read_bytes() for p, q in zip(first, again, strict=True))
    assert {p.name for p in first}.isdisjoint({p.name for p in other})
    assert all(p.name.endswith(".wire") and p.stem.isdigit() for p in first)
    one = tmp_path / "one.avro"
    two = tmp_path / "two.avro"
    write_container(simulate_alerts(5, seed=7, schema_version="9.0"), one, "9.0")
    write_container(simulate_alerts(5, seed=7, schema_version="9.0"), two, "9.0")
    assert one.read_bytes() == two.read_bytes()


def test_simulate_command_writes_files_that_inspect_reads(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = tmp_path / "alerts"
    result = runner.invoke(main, ["simulate", "--count", "12", "--out", str(folder),
                                  "--seed", "4", "--sso-fraction", "0.5"])
    assert result.exit_code == 0, result.output
    assert "simulated 12 alerts (schema 11.1" in result.output
    assert len(list(folder.glob("*.wire"))) == 12
    inspected = runner.invoke(main, ["inspect", str(folder)])
    assert inspected.exit_code == 0, inspected.output
    assert len(inspected.output.strip().splitlines()) == 13

    container = tmp_path / "night.avro"
    result = runner.invoke(main, ["simulate", "--count", "6", "--out", str(container),
                                  "--format", "ocf", "--schema", "9.0", "--history", "2"])
    assert result.exit_code == 0, result.output
    with container.open("rb") as stream:
        assert stream.read(4) == b"Obj\x01"
    inspected = runner.invoke(main, ["inspect", "--json", str(container)])
    assert inspected.exit_code == 0, inspected.output
    assert len(inspected.output.strip().splitlines()) == 6


def test_simulate_command_refuses_a_schema_it_cannot_write(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["simulate", "--count", "1", "--out", str(tmp_path),
                                       "--schema", "5.0"])
    assert result.exit_code == 2 and "--schema" in result.output


def test_demo_runs_a_small_night_through_every_stage(tmp_path: Path) -> None:
    lines: list[str] = []
    report = run_demo(tmp_path / "demo", 60, seed=1, log=lines.append)
    assert report.written == report.decoded == 60 and report.bad == 0
    assert sum(report.extendedness_median_counts.values()) == 60
    assert len(list((tmp_path / "demo" / "incoming").glob("*.wire"))) == 60
    # The default filter keeps solar-system alerts with finite extendedness, and the consumer
    # writes exactly those, in the specification's layout.
    assert 0 < report.passed_filter <= report.solar_system
    assert report.written_csv == report.passed_filter and report.exit_code == 0
    data = list((tmp_path / "demo" / "lsst_alerts" / "data").glob("lsst_alerts_*.csv"))
    rows = sum(path.read_text().count("\n") - 1 for path in data)
    assert rows == report.passed_filter
    cutouts = list((tmp_path / "demo" / "lsst_alerts" / "cutouts").glob("*.fits"))
    assert len(cutouts) == 3 * report.passed_filter
    assert any("look at" in line for line in lines)
    assert report.page is not None and report.page.name == "index.html" and report.page.exists()
    assert any(str(report.page) in line for line in lines)

    result = CliRunner().invoke(main, ["demo", "--count", "50", "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert "extendednessMedian of all simulated alerts" in result.output
    assert len(list((tmp_path / "cli" / "incoming").glob("*.wire"))) == 50
