"""The ANTARES extendedness/SSSource filter, run through the real DevKit on real Rubin alerts."""

from __future__ import annotations

import ast
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from antares_devkit.models import DevkitAlert
from antares_devkit.utils import filter_report
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.decode.formats import DecodedAlert, decode_message
from lsst_alert_pipeline.decode.normalize import AlertRecord, normalize
from lsst_alert_pipeline.filter import antares_extendedness_filter as extfilter
from lsst_alert_pipeline.filter.devkit_locus import build_locus
from lsst_alert_pipeline.filter.devkit_run import load_filter, run_filter, run_on_alert

from .antares_loci import edited, lsst_wire_packets
from .conftest import real_files

FILTER_FILE = Path(extfilter.__file__)
WIRE_DIRS = ("rubin/derived_wire_v9_0", "rubin/derived_wire_v10_0")


def rubin_alerts() -> list[tuple[Path, DecodedAlert, AlertRecord]]:
    """Every real LSST alert, wire and container files alike, with its normalized record."""
    found = []
    for path in real_files("rubin/*/*.avro", "rubin/*/*.wire"):
        for alert in decode_message(path.read_bytes()):
            if alert.kind == "rubin":
                found.append((path, alert, normalize(alert)))
    return found


@pytest.fixture(scope="module")
def alerts(alert_packets: Path) -> list[tuple[Path, DecodedAlert, AlertRecord]]:
    return rubin_alerts()


def alert_with(alerts, has_sssource: bool, finite: bool) -> DecodedAlert:
    """A real alert with the given SSSource association and (no) finite extendedness."""
    for _path, alert, record in alerts:
        if record.hasSSSource == has_sssource and (record.extendednessCount > 0) == finite:
            return alert
    raise AssertionError("no such real alert")


# --- the filter on every real alert, through the DevKit --------------------------------------


@pytest.mark.parametrize("require_sssource", [True, False])
def test_devkit_passes_alert_packets_by_sssource_and_finite_extendedness(
    alerts, monkeypatch, require_sssource: bool
) -> None:
    monkeypatch.setattr(extfilter, "REQUIRE_SSSOURCE", require_sssource)
    filter_instance = load_filter()()
    assert any(record.hasSSSource for _, _, record in alerts)
    assert any(not record.hasSSSource for _, _, record in alerts)
    for path, alert, record in alerts:
        result = run_on_alert(filter_instance, alert, str(path))
        expected = record.hasSSSource == require_sssource and record.extendednessCount > 0
        assert result.outcome == ("passed" if expected else "failed"), (path, result.reason)
        if not expected:
            wanted = "no finite extendedness" if record.hasSSSource == require_sssource else (
                "no SSSource" if require_sssource else "has SSSource")
            assert result.reason == wanted
            assert result.new_tags == [] and result.new_properties == {}
            continue
        assert result.new_tags == [extfilter.OUTPUT_TAG]
        found = result.new_properties
        assert found["extfilter_extendedness_median"] == record.extendednessMedian
        assert found["extfilter_extendedness_min"] == record.extendednessMin
        assert found["extfilter_extendedness_max"] == record.extendednessMax
        assert found["extfilter_extendedness_count"] == record.extendednessCount
        assert found["extfilter_has_sssource"] == int(record.hasSSSource)
        assert found["extfilter_dia_source_id"] == str(record.diaSourceId)
        assert found["extfilter_dia_object_id"] == str(record.diaObjectId)
        assert found["extfilter_alert_id"] == f"lsst_diaSource:{record.diaSourceId}"
        assert (found["extfilter_ra"], found["extfilter_dec"]) == (record.ra, record.dec)
        assert found["extfilter_mjd"] == record.mjd
        assert found["extfilter_band"] == record.filterName
        assert found.get("extfilter_ps_flux") == record.psFlux
        assert found.get("extfilter_snr") == record.snr
        assert found.get("extfilter_reliability") == record.reliability
        assert found["extfilter_ss_object_id"] == (
            "" if record.ssObjectId is None else str(record.ssObjectId))


def test_filter_statistics_equal_normalize_for_every_real_alert(alerts) -> None:
    for path, alert, record in alerts:
        locus = build_locus(alert.record, alert.schema_version)
        stats = extfilter.extendedness_statistics(extfilter.locus_extendedness(locus))
        expected = (record.extendednessMedian, record.extendednessMin, record.extendednessMax,
                    record.extendednessCount)
        assert (stats or (None, None, None, 0)) == expected, path
        assert extfilter.locus_has_sssource(locus) == record.hasSSSource, path


def test_declarations_follow_the_devkit_shape() -> None:
    cls = extfilter.LsstExtendednessFilter
    assert cls.TRIGGERING_SURVEY == "lsst"
    assert all(name.startswith(("lsst_", "ant_")) for name in cls.REQUIRED_ALERT_PROPERTIES)
    assert [tag["name"] for tag in cls.OUTPUT_LOCUS_TAGS] == [extfilter.OUTPUT_TAG]
    assert all(set(tag) == {"name", "description"} for tag in cls.OUTPUT_LOCUS_TAGS)
    for prop in cls.OUTPUT_LOCUS_PROPERTIES:
        assert set(prop) == {"name", "type", "description"}
        assert prop["type"] in {"str", "int", "float"} and prop["description"]


def test_specification_constants_keep_their_names_and_defaults() -> None:
    assert extfilter.EXTENDEDNESS_MEDIAN_MIN == 0.0
    assert extfilter.EXTENDEDNESS_MEDIAN_MAX == 1.0
    assert extfilter.EXTENDEDNESS_MIN_THRESHOLD == 0.0
    assert extfilter.EXTENDEDNESS_MAX_THRESHOLD == 1.0
    assert extfilter.REQUIRE_SSSOURCE is True
    assert Path("antares_extendedness_filter.py").resolve() == FILTER_FILE.resolve()


# --- the decision at its edges ---------------------------------------------------------------

VALUES = [0.2, 0.5, 0.8]  # median 0.5, min 0.2, max 0.8


@pytest.mark.parametrize(
    ("bounds", "passed", "reason"),
    [
        ({"median_min": 0.5}, True, None),
        ({"median_min": math.nextafter(0.5, 1)}, False, "median 0.5 < 0.5000000000000001"),
        ({"median_max": 0.5}, True, None),
        ({"median_max": math.nextafter(0.5, 0)}, False, "median 0.5 > 0.49999999999999994"),
        ({"min_threshold": 0.2}, True, None),
        ({"min_threshold": math.nextafter(0.2, 1)}, False, "min 0.2 < 0.20000000000000004"),
        ({"max_threshold": 0.8}, True, None),
        ({"max_threshold": math.nextafter(0.8, 0)}, False, "max 0.8 > 0.7999999999999999"),
    ],
)
def test_threshold_edges(bounds, passed: bool, reason: str | None) -> None:
    decision = extfilter.decide(VALUES, True, require_sssource=True, **bounds)
    assert decision[0] is passed
    if reason is not None:
        assert decision[1] == reason


def test_module_constants_are_read_at_decision_time(monkeypatch) -> None:
    monkeypatch.setattr(extfilter, "EXTENDEDNESS_MEDIAN_MAX", 0.8)
    assert extfilter.decide([0.93], True) == (False, "median 0.93 > 0.8")
    monkeypatch.setattr(extfilter, "REQUIRE_SSSOURCE", False)
    assert extfilter.decide([0.5], True) == (False, "has SSSource")


def test_no_finite_extendedness_does_not_pass() -> None:
    nan = float("nan")
    assert extfilter.decide([nan, None, float("inf")], True) == (False, "no finite extendedness")
    assert extfilter.decide([], False, require_sssource=False) == (
        False, "no finite extendedness")


def test_sssource_requirement_reasons() -> None:
    assert extfilter.decide([0.5], False) == (False, "no SSSource")
    assert extfilter.decide([0.5], False, require_sssource=False)[0] is True


# --- what counts as a solar-system association -----------------------------------------------


def lsst_alert(properties: dict) -> DevkitAlert:
    return DevkitAlert(id="lsst_diaSource:1", mjd=61000.0,
                       properties={"ant_survey": 4, **properties})


@pytest.mark.parametrize("value", [0, "0", None, float("nan"), ""])
def test_ss_object_id_zero_means_no_association(value) -> None:
    assert not extfilter.has_ss_object_id(value)
    decided = extfilter.solar_system_association(lsst_alert({extfilter.SS_OBJECT_ID: value}))
    assert decided == (False, f"none (ssObjectId {value!r})")


def test_the_triggering_alerts_ss_object_id_decides_and_says_so() -> None:
    alert = lsst_alert({extfilter.SS_OBJECT_ID: 3068394365163438083})
    assert extfilter.solar_system_association(alert) == (True, "ssObjectId 3068394365163438083")
    assert extfilter.solar_system_association(lsst_alert({})) == (False, "none (no ssObjectId)")


def plain_locus():
    """The DevKit locus of a packet with no solar-system association and finite extendedness."""
    for payload in lsst_wire_packets():
        alert = decode_message(payload)[0]
        if alert.record["diaSource"].get("ssObjectId") in (0, None):
            return build_locus(decode_message(edited(payload, extendedness=0.3))[0].record,
                               alert.schema_version)
    raise AssertionError("no packet without a solar-system association")


def test_a_ztf_sso_tag_on_the_locus_does_not_pass_an_lsst_alert_without_ssobjectid() -> None:
    locus = plain_locus()
    assert locus.alert.properties[extfilter.SS_OBJECT_ID] == 0
    # The locus also holds a ZTF alert that ANTARES's `sso` filter tagged, on an earlier night.
    ztf = DevkitAlert(id="ztf_candidate:1", mjd=locus.alerts[0].mjd - 400,
                      properties={"ant_survey": 1, "ztf_ssnamenr": "12345", "ant_mag": 19.0})
    locus.alerts.insert(0, ztf)
    locus.tag("sso_candidates")
    locus.tag("sso_confirmed")
    report = filter_report(extfilter.LsstExtendednessFilter(), locus)
    assert report["new_tags"] == [] and report["new_locus_properties"] == []
    from lsst_alert_pipeline.filter.devkit_run import run_on_locus

    result = run_on_locus(extfilter.LsstExtendednessFilter(), locus, "ztf-tagged", 1)
    assert (result.outcome, result.reason) == ("failed", "no SSSource")
    assert result.sso == "none (ssObjectId 0)"


def test_an_sssource_under_an_undocumented_key_is_not_read() -> None:
    locus = plain_locus()
    locus.alert.non_persistent_properties["lsst_ssSource"] = {"ssObjectId": 21163624394469969}
    locus.alert.properties["lsst_ssSource_ssObjectId"] = 21163624394469969
    report = filter_report(extfilter.LsstExtendednessFilter(), locus)
    assert report["new_tags"] == []


# --- the file ANTARES loads ------------------------------------------------------------------


def test_filter_file_imports_only_devkit_numpy_and_stdlib() -> None:
    tree = ast.parse(FILTER_FILE.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported - sys.stdlib_module_names <= {"antares_devkit", "numpy"}


def test_filter_file_imports_alone_in_a_fresh_interpreter(tmp_path: Path) -> None:
    shutil.copy(FILTER_FILE, tmp_path / "antares_extendedness_filter.py")
    # The venv may hold an editable install of the package: block it, so any import of it fails.
    script = (
        "sys.modules['lsst_alert_pipeline'] = None\n"
        "try:\n"
        "    import lsst_alert_pipeline\n"
        "    raise SystemExit('lsst_alert_pipeline is importable')\n"
        "except ImportError:\n"
        "    pass\n"
        "import antares_extendedness_filter as f\n"
        "from antares_devkit.models import BaseFilter\n"
        "assert issubclass(f.LsstExtendednessFilter, BaseFilter)\n"
        "f.LsstExtendednessFilter()\n"
        "print('ok')\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, '.')\n{script}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# --- filter-test -----------------------------------------------------------------------------


def test_filter_test_cli_counts_add_up(alert_packets: Path) -> None:
    folders = [str(alert_packets / name) for name in WIRE_DIRS]
    expected = sum(1 for _ in run_filter(folders))
    done = CliRunner().invoke(main, ["filter-test", "--devkit", *folders])
    assert done.exit_code == 0, done.output
    summary = done.stdout.strip().splitlines()[-1]
    counts = {name: int(summary.split(f" {name}")[0].split()[-1])
              for name in ("passed", "failed", "skipped", "errored")}
    assert sum(counts.values()) == expected == 27
    assert counts["errored"] == 0 and counts["passed"] > 0 and counts["failed"] > 0
    assert "DevKit time per locus: median" in summary


def test_filter_test_cli_json_lines(alert_packets: Path) -> None:
    folders = [str(alert_packets / name) for name in WIRE_DIRS]
    done = CliRunner().invoke(main, ["filter-test", "--json", *folders])
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 27
    for line in lines:
        assert {"diaSourceId", "passed", "reason"} <= set(line)
        assert isinstance(line["passed"], bool) and line["reason"]
    assert any(line["passed"] for line in lines)


def test_filter_test_cli_skips_ztf_alerts(alert_packets: Path) -> None:
    done = CliRunner().invoke(main, ["filter-test", "--json", str(alert_packets / "ztf")])
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines and all(line["outcome"] == "skipped" for line in lines)
    assert all("not a Rubin alert" in line["reason"] for line in lines)


def test_filter_test_cli_exits_non_zero_only_when_the_filter_errors(
    alert_packets: Path, tmp_path: Path
) -> None:
    crashing = tmp_path / "crashing_filter.py"
    crashing.write_text(
        "from antares_devkit.models import BaseFilter\n\n\n"
        "class Crashing(BaseFilter):\n"
        "    TRIGGERING_SURVEY = 'lsst'\n\n"
        "    def _run(self, locus):\n"
        "        raise RuntimeError('boom')\n"
    )
    folder = str(alert_packets / "rubin/derived_wire_v10_0")
    done = CliRunner().invoke(main, ["filter-test", "--filter", str(crashing), "--json", folder])
    assert done.exit_code == 1
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 7
    assert all(line["outcome"] == "errored" and "boom" in line["reason"] for line in lines)


@given(
    values=st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=20),
    junk=st.lists(st.sampled_from([float("nan"), float("inf"), None]), max_size=5),
    has_sssource=st.booleans(),
)
def test_decision_ignores_order_and_non_finite_values(values, junk, has_sssource) -> None:
    bounds = {"median_min": 0.25, "median_max": 0.75, "min_threshold": 0.1, "max_threshold": 0.9}
    plain = extfilter.decide(values, has_sssource, **bounds)
    assert extfilter.decide([*junk, *reversed(values)], has_sssource, **bounds) == plain
    median = statistics.median(values)
    expected = has_sssource and 0.25 <= median <= 0.75 and min(values) >= 0.1 and max(values) <= 0.9
    assert plain[0] is expected


# --- filter-test says what decided the association, and whether the filter is ready ---------


@pytest.fixture
def packet_folder(tmp_path: Path) -> Path:
    """Rubin packets (real when available, simulated otherwise) as files."""
    folder = tmp_path / "packets"
    folder.mkdir()
    for index, payload in enumerate(lsst_wire_packets()):
        (folder / f"{index}.wire").write_bytes(payload)
    return folder


def test_filter_test_reports_which_ss_object_id_decided(packet_folder: Path) -> None:
    done = CliRunner().invoke(main, ["filter-test", "--json", str(packet_folder)])
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines
    for line in lines:
        record = normalize(decode_message((packet_folder / Path(line["path"]).name)
                                          .read_bytes())[0])
        expected = (f"ssObjectId {record.ssObjectId}" if record.ssObjectId is not None
                    else "none (ssObjectId 0)")
        assert line["sso"] == expected
    plain = CliRunner().invoke(main, ["filter-test", str(packet_folder)])
    assert all("; sso: ssObjectId " in line or "; sso: none (ssObjectId 0)" in line
               for line in plain.stdout.splitlines()[:-1])


def test_filter_test_warns_while_slack_channel_is_the_placeholder(packet_folder: Path,
                                                                  tmp_path: Path) -> None:
    done = CliRunner().invoke(main, ["filter-test", str(packet_folder)])
    assert done.exit_code == 0
    assert "SLACK_CHANNEL is '#your-channel'" in done.stderr
    assert extfilter.LsstExtendednessFilter.SLACK_CHANNEL == "#your-channel"
    edited_copy = tmp_path / "my_filter.py"
    edited_copy.write_text(FILTER_FILE.read_text().replace(
        'SLACK_CHANNEL = "#your-channel"', 'SLACK_CHANNEL = "#my-team-alerts"'))
    done = CliRunner().invoke(main, ["filter-test", "--filter", str(edited_copy),
                                     str(packet_folder)])
    assert done.exit_code == 0 and "SLACK_CHANNEL" not in done.stderr
    unset = tmp_path / "unset_filter.py"
    unset.write_text("from antares_devkit.models import BaseFilter\n\n\n"
                     "class Unset(BaseFilter):\n    TRIGGERING_SURVEY = 'lsst'\n\n"
                     "    def _run(self, locus):\n        pass\n")
    done = CliRunner().invoke(main, ["filter-test", "--filter", str(unset), str(packet_folder)])
    assert "Unset.SLACK_CHANNEL is unset" in done.stderr


# --- negative difference fluxes ----------------------------------------------------------------


def test_a_negative_psf_flux_keeps_its_sign_in_the_filters_property(monkeypatch) -> None:
    monkeypatch.setattr(extfilter, "REQUIRE_SSSOURCE", False)
    locus = plain_locus()
    locus.alert.properties["lsst_diaSource_psfFlux"] = -1234.5
    assert extfilter.evaluate(locus)[2]["ps_flux"] == -1234.5


def test_a_flux_reported_positive_with_is_negative_set_gets_its_sign_back(monkeypatch) -> None:
    """Rubin's guide to reading alerts from ANTARES: its properties may report a negative flux
    as a positive value with isNegative set."""
    monkeypatch.setattr(extfilter, "REQUIRE_SSSOURCE", False)
    locus = plain_locus()
    locus.alert.properties["lsst_diaSource_psfFlux"] = 1234.5
    locus.alert.properties[extfilter.IS_NEGATIVE] = True
    assert extfilter.evaluate(locus)[2]["ps_flux"] == -1234.5
    locus.alert.properties[extfilter.IS_NEGATIVE] = False
    assert extfilter.evaluate(locus)[2]["ps_flux"] == 1234.5
