"""Issue 9, let people look: `show` previews and the nightly `report`, on real and made outputs.

Two output directories: one written by the consumer from the real alerts (skipped visibly when
../shared/real-alerts is absent), and one made here with the consumer's own CSV writer and
astropy-written cutouts, so these tests also run without the real alerts. The made one has no
hasSSSource/ssObjectId columns: SSSource is then derived from diaObjectId == 0.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from astropy.io import fits
from click.testing import CliRunner
from matplotlib import image as mpl_image

from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.normalize import AlertRecord, normalize
from lsst_alert_pipeline.decode.times import day_obs
from lsst_alert_pipeline.look import AlertNotFound, NightNotFound, render_preview, write_report
from lsst_alert_pipeline.look.cutouts import cutout_wcs, north_east, pixel_scale_arcsec
from lsst_alert_pipeline.look.nights import find_alert, history_of, night_files, read_night
from lsst_alert_pipeline.look.preview import LIGHT_CURVE, alert_cutouts, preview_figure
from lsst_alert_pipeline.look.report import hourly_counts, summarize_night
from lsst_alert_pipeline.sinks.csv import SPEC_COLUMNS, DailyCsv, csv_name
from lsst_alert_pipeline.sinks.cutouts import cutout_name, observation_stamp

from .conftest import packets_root

CUTOUT_PANELS = ["science", "template", "difference"]


def packet_records(folder: Path) -> list[AlertRecord]:
    return [normalize(alert) for path in sorted(folder.iterdir())
            for alert in decode_message(path.read_bytes())]


def solar_system_id() -> int:
    """A v10 alert with ssSource set, diaObjectId 0 and its cutouts (real: 170094456480989258)."""
    for record in packet_records(packets_root() / "rubin/derived_wire_v10_0"):
        if record.hasSSSource and record.diaObjectId == 0 and all(record.cutouts.values()):
            assert isinstance(record.diaSourceId, int)
            return record.diaSourceId
    raise AssertionError("no solar-system v10 alert among the packets")


def no_cutouts_id() -> int:
    """An alert of AMPEL's v7.1 copy: all cutouts null (real: 25409118864932952)."""
    record = packet_records(packets_root() / "rubin/ampel_v7_1_nocutouts")[0]
    assert not any(record.cutouts.values()) and isinstance(record.diaSourceId, int)
    return record.diaSourceId


def night_of(folder: str) -> str:
    """The dayObs of the first wire packet in a folder (real v9: 20250905, v10: 20260305)."""
    night = day_obs(packet_records(packets_root() / folder)[0].mjd)
    assert night is not None
    return night


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_output(alert_packets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lsst_alert_pipeline import config
    from lsst_alert_pipeline.pipeline import consume as consumer

    out = tmp_path_factory.mktemp("real-output")
    settings = config.load(environ={}, flags={
        "from_paths": [str(alert_packets / "rubin")], "output_dir": str(out),
        "extra_columns": ["ssObjectId", "hasSSSource"]})
    consumer.consume(settings)
    assert night_files(out), "the consumer wrote no CSV"
    return out


def rubin_like_cutout(path: Path, ra: float, dec: float, peak: float, seed: int) -> None:
    """A 30x30 cutout shaped like Rubin's: PRIMARY nJy image, UNCERT, PSFIMAGE; no CTYPE."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:30, 0:30]
    image = peak * np.exp(-((x - 15) ** 2 + (y - 15) ** 2) / 8.0) + rng.normal(0, 30, (30, 30))
    header = fits.Header()
    header["BUNIT"] = "nJy"
    scale = 0.2 / 3600  # 0.2 arcsec pixels, rotated 30 degrees like a real visit
    cos, sin = np.cos(np.radians(30)), np.sin(np.radians(30))
    for key, value in {"CRPIX1": 15.5, "CRPIX2": 15.5, "CRVAL1": ra, "CRVAL2": dec,
                       "PC1_1": -scale * cos, "PC1_2": scale * sin, "PC2_1": scale * sin,
                       "PC2_2": scale * cos, "CDELT1": 1.0, "CDELT2": 1.0}.items():
        header[key] = value
    psf = np.exp(-((np.mgrid[0:41, 0:41] - 20) ** 2).sum(axis=0) / 8.0)
    fits.HDUList([
        fits.PrimaryHDU(image.astype(np.float32), header),
        fits.ImageHDU(np.full((30, 30), 900.0, np.float32), name="UNCERT"),
        fits.ImageHDU(psf / psf.sum(), name="PSFIMAGE"),
    ]).writeto(path)


# (diaSourceId, diaObjectId, ra, dec, mjd, band, psFlux, ext median/min/max, with cutouts)
MADE_ALERTS = [
    (9001, 501, 150.10, 2.20, 60999.99, "g", 1200.0, 0.80, 0.70, 0.90, True),  # night before
    (9002, 501, 150.10, 2.20, 61000.98, "r", 2100.0, 0.82, 0.70, 0.95, True),  # 23:31 UTC
    (9003, 501, 150.10, 2.20, 61001.02, "g", 1800.0, 0.85, 0.70, 0.95, True),  # 00:28 UTC
    (9004, 0, 151.30, 2.90, 61001.03, "r", 5400.0, 0.95, 0.95, 0.95, True),  # solar system
    (9005, 502, 30.00, -40.0, 61001.05, "i", -800.0, None, None, None, False),  # no cutouts
]
MADE_NIGHT = "20251121"  # dayObs of mjd 61000.98-61001.05 (UTC-12h); 9001 is on 20251120


@pytest.fixture(scope="module")
def made_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An output directory in the consumer's exact format: its CSV writer, its file names."""
    out = tmp_path_factory.mktemp("made-output")
    (out / "data").mkdir()
    (out / "cutouts").mkdir()
    rows: dict[str, list[list[object]]] = {}
    for seed, (source, obj, ra, dec, mjd, band, flux, med, low, high, has_cutouts) in enumerate(
            MADE_ALERTS):
        paths = []
        for kind in CUTOUT_PANELS:
            if not has_cutouts:
                paths.append("")
                continue
            name = cutout_name(source, kind, observation_stamp(mjd))
            rubin_like_cutout(out / "cutouts" / name, ra, dec,
                              0.0 if kind == "template" else flux, seed)
            paths.append(f"cutouts/{name}")
        rows.setdefault(csv_name(day_obs(mjd) or ""), []).append(
            [source, source, obj, ra, dec, mjd, band, flux, 90.0, med, low, high, *paths,
             "2025-11-10T12:00:00Z"])
    DailyCsv(out / "data", SPEC_COLUMNS).append(rows)
    return out


def blank(png: Path) -> bool:
    """True when the PNG is (nearly) one colour."""
    pixels = mpl_image.imread(png)[..., :3]
    return float(pixels.std()) < 0.02


class Links(HTMLParser):
    """Every src and href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def links_of(index: Path) -> list[str]:
    parser = Links()
    parser.feed(index.read_text(encoding="utf-8"))
    return parser.urls


def assert_links_resolve(index: Path) -> None:
    urls = links_of(index)
    assert urls, "the report links to nothing"
    for url in urls:
        parsed = urlparse(url)
        assert not parsed.scheme and not parsed.netloc and not url.startswith("/"), url
        target = (index.parent / unquote(parsed.path)).resolve()
        assert target.is_file(), f"{url} in {index} points at no file"
        assert index.parent.resolve() in target.parents, f"{url} leaves the report folder"


# --- pure pieces ----------------------------------------------------------------------------


def test_compass_follows_the_wcs_without_ctype():
    header = fits.Header({"CRPIX1": 15.5, "CRPIX2": 15.5, "CRVAL1": 10.0, "CRVAL2": -45.0,
                          "PC1_1": -5.56e-5, "PC1_2": 0.0, "PC2_1": 0.0, "PC2_2": 5.56e-5,
                          "CDELT1": 1.0, "CDELT2": 1.0})
    wcs = cutout_wcs(header)
    assert wcs is not None
    assert pixel_scale_arcsec(wcs) == pytest.approx(0.2, rel=1e-3)
    north, east = north_east(wcs, (30, 30))
    # RA grows leftwards when PC1_1 < 0: north up, east left, as on the sky.
    np.testing.assert_allclose(north, [0.0, 1.0], atol=1e-3)
    np.testing.assert_allclose(east, [-1.0, 0.0], atol=1e-3)


def test_no_wcs_without_crval():
    assert cutout_wcs(fits.Header({"CRPIX1": 1.0, "CRPIX2": 1.0})) is None


def test_hours_of_a_night_run_across_utc_midnight_in_time_order(made_output):
    night = summarize_night(MADE_NIGHT, read_night(made_output / "data" / csv_name(MADE_NIGHT)),
                            500)
    assert hourly_counts(night.hours) == [("23", 1), ("00", 2), ("01", 1)]
    assert night.bands == {"r": 2, "g": 1, "i": 1}


def test_ss_source_is_derived_from_dia_object_id_when_the_columns_are_absent(made_output):
    assert find_alert(made_output, 9004).ss_source == "yes"
    assert find_alert(made_output, 9003).ss_source == "no"


def test_ss_source_comes_from_the_has_ss_source_column(real_output):
    alert = find_alert(real_output, solar_system_id())
    assert alert.ss_source == "yes" and alert.ss_object_id
    assert alert.dia_object_id == 0


# --- previews -------------------------------------------------------------------------------


def test_preview_has_three_cutouts_and_a_light_curve_across_nights(made_output):
    alert = find_alert(made_output, 9003)
    history = history_of(made_output, alert)
    assert [a.dia_source_id for a in history] == [9001, 9002, 9003]
    figure = preview_figure(alert, alert_cutouts(made_output, alert), history)
    assert [axes.get_label() for axes in figure.axes] == [*CUTOUT_PANELS, LIGHT_CURVE]
    assert all(axes.images for axes in figure.axes[:3])
    texts = {text.get_text() for axes in figure.axes[:3] for text in axes.texts}
    assert {"N", "E", '2"'} <= texts
    png = render_preview(made_output, 9003)
    assert png == made_output / "previews" / "9003.png"
    assert not blank(png)


def test_solar_system_alert_has_no_light_curve_from_other_zero_objects(made_output):
    alert = find_alert(made_output, 9004)
    # diaObjectId 0 is shared by every solar-system alert: it must never join them.
    assert history_of(made_output, alert) == [alert]


def test_missing_cutouts_are_empty_panels_saying_no_cutout(made_output, tmp_path):
    alert = find_alert(made_output, 9005)
    figure = preview_figure(alert, alert_cutouts(made_output, alert), [alert])
    assert [axes.get_label() for axes in figure.axes] == CUTOUT_PANELS
    for axes in figure.axes:
        assert not axes.images
        assert [text.get_text() for text in axes.texts] == ["no cutout"]
    assert not blank(render_preview(made_output, 9005, tmp_path / "p.png"))


def test_preview_of_a_real_solar_system_alert(real_output, tmp_path):
    alert = find_alert(real_output, solar_system_id())
    cutouts = alert_cutouts(real_output, alert)
    assert all(cutouts[kind] is not None for kind in CUTOUT_PANELS)
    figure = preview_figure(alert, cutouts, history_of(real_output, alert))
    assert [axes.get_label() for axes in figure.axes] == CUTOUT_PANELS
    assert "SSSource yes" in figure.texts[0].get_text()
    png = render_preview(real_output, solar_system_id(), tmp_path / "ss.png")
    assert not blank(png)


def test_real_alert_without_cutouts_renders(real_output, tmp_path):
    assert not blank(render_preview(real_output, no_cutouts_id(), tmp_path / "none.png"))


def test_unknown_id_is_an_error(made_output):
    with pytest.raises(AlertNotFound, match="12345"):
        render_preview(made_output, 12345)


def test_rendering_leaves_no_pyplot_state():
    # Imported in a fresh interpreter: this module's own imports must not hide a pyplot import.
    code = ("import sys, lsst_alert_pipeline.look.report, lsst_alert_pipeline.look.preview; "
            "sys.exit('matplotlib.pyplot' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --- report ---------------------------------------------------------------------------------


def test_report_of_made_night_links_only_files_that_exist(made_output, tmp_path):
    index = write_report(made_output, MADE_NIGHT, tmp_path / "report")
    assert index == tmp_path / "report" / "index.html"
    assert_links_resolve(index)
    page = index.read_text()
    for source in (9002, 9003, 9004, 9005):
        assert f"previews/{source}.png" in page
    assert "9001" not in page  # the night before is another report
    assert page.count("no cutout") == 3
    for plot in ("hours", "bands", "extendedness", "sky"):
        assert not blank(tmp_path / "report" / f"{plot}.png"), plot
    assert "table shows the first" not in page


def test_report_default_is_the_newest_night_in_the_default_folder(made_output):
    index = write_report(made_output)
    assert index == made_output / "reports" / MADE_NIGHT / "index.html"


def test_report_bounds_previews_and_says_so(real_output, tmp_path):
    night = night_of("rubin/derived_wire_v9_0")
    count = sum(1 for _ in read_night(night_files(real_output)[night]))
    assert count > 3
    index = write_report(real_output, night, tmp_path, max_alerts=3)
    assert len(list((tmp_path / "previews").glob("*.png"))) == 3
    assert f"The night has {count} alerts; the table shows the first 3" in index.read_text()
    assert_links_resolve(index)
    assert all(not blank(png) for png in (tmp_path / "thumbnails").glob("*.png"))


def test_report_for_a_missing_night_names_the_nights_there(made_output):
    with pytest.raises(NightNotFound, match=MADE_NIGHT):
        write_report(made_output, "20990101")


# --- command line ---------------------------------------------------------------------------


def test_cli_show_prints_the_png_path(made_output, tmp_path):
    out = tmp_path / "shown.png"
    result = CliRunner().invoke(main, ["show", "9002", "--output-dir", str(made_output),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    assert not blank(out)


def test_cli_show_unknown_id_fails_clearly(made_output):
    result = CliRunner().invoke(main, ["show", "424242", "--output-dir", str(made_output)])
    assert result.exit_code == 2  # a command line naming nothing: the documented status
    assert "error: diaSourceId 424242 is in no CSV" in result.output


def test_cli_report_prints_index_path(real_output, tmp_path):
    night = night_of("rubin/derived_wire_v10_0")
    result = CliRunner().invoke(main, ["report", "--date", night, "--output-dir",
                                       str(real_output), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    index = Path(result.output.strip().splitlines()[-1])
    assert index == tmp_path / "r" / "index.html"
    assert_links_resolve(index)


def test_cli_report_rejects_a_malformed_date(made_output):
    result = CliRunner().invoke(main, ["report", "--date", "21.11.2025", "--output-dir",
                                       str(made_output)])
    assert result.exit_code != 0 and "YYYYMMDD" in result.output


# --- in a real browser ----------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_opens_from_disk_in_headless_chromium(made_output, tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/test.sh installs it when run as root)")
    index = write_report(made_output, MADE_NIGHT, tmp_path / "report")
    shot = tmp_path / "screenshot.png"
    started = time.monotonic()
    run = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1200,2000", "--enable-logging=stderr", "--v=0", index.as_uri()],
        capture_output=True, text=True, timeout=90, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines()
               if "CONSOLE" in line or "ERR_FILE_NOT_FOUND" in line or "Uncaught" in line]
    assert console == [], console
    assert shot.is_file() and not blank(shot)
    assert time.monotonic() - started < 90


def test_text_from_the_csv_is_escaped_in_the_page(made_output, tmp_path):
    from dataclasses import replace

    from lsst_alert_pipeline.look.report import alert_row_html

    alert = replace(find_alert(made_output, 9005), band="<script>&", alert_id='"x"')
    row = alert_row_html(alert, tmp_path, dict.fromkeys(CUTOUT_PANELS), tmp_path / "p.png")
    assert "<script>" not in row and "&lt;script&gt;&amp;" in row and "&quot;x&quot;" in row
