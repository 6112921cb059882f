"""The fast filter path gives the DevKit's verdict, reason and properties on every alert.

The DevKit (devkit_run.py: full decode, whole DevKitLocus, filter_report) is the reference; each
test runs both paths over the same bytes and compares every field of every result but the time.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.normalize import normalize
from lsst_alert_pipeline.decode.schemas import latest_version
from lsst_alert_pipeline.errors import InvalidMessage
from lsst_alert_pipeline.filter import antares_extendedness_filter as extfilter
from lsst_alert_pipeline.filter import fast
from lsst_alert_pipeline.filter.devkit_run import FilterResult, load_filter, run_on_alert
from lsst_alert_pipeline.simulate import encode_wire, plain_alert, simulate_alerts

from .conftest import real_files

FILTER_FILE = Path(extfilter.__file__)
WIRE_DIRS = ("rubin/derived_wire_v9_0", "rubin/derived_wire_v10_0")
CONSTANTS = ("EXTENDEDNESS_MEDIAN_MIN", "EXTENDEDNESS_MEDIAN_MAX", "EXTENDEDNESS_MIN_THRESHOLD",
             "EXTENDEDNESS_MAX_THRESHOLD", "REQUIRE_SSSOURCE")


def comparable(result: FilterResult) -> dict[str, Any]:
    """Everything a result says but the time it took."""
    found = result.as_json()
    found.pop("seconds")
    return found


def devkit_results(payloads: list[bytes], filter_class: Any = None) -> list[list[dict]]:
    """The reference: each payload decoded whole, each alert's DevKit locus through the filter."""
    filter_instance = (filter_class or load_filter())()
    out = []
    for payload in payloads:
        try:
            alerts = decode_message(payload)
        except InvalidMessage as exc:  # as devkit_run.run_filter reports an undecodable file
            out.append([comparable(FilterResult("", None, "errored",
                                                f"cannot decode: {exc.reason}"))])
            continue
        out.append([comparable(run_on_alert(filter_instance, alert, "")) for alert in alerts])
    return out


def fast_results(payloads: list[bytes], filter_class: Any = None
                 ) -> tuple[list[list[dict]], fast.FastFilter]:
    fast_filter = fast.FastFilter(filter_class)
    found = [[comparable(result) for result in results]
             for results in fast_filter.results(payloads)]
    return found, fast_filter


@contextmanager
def constants(**values: Any) -> Iterator[None]:
    """The bundled filter module with some constants set (hypothesis cannot use monkeypatch)."""
    saved = {name: getattr(extfilter, name) for name in values}
    try:
        for name, value in values.items():
            setattr(extfilter, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(extfilter, name, value)


def real_payloads() -> list[bytes]:
    """Every real Rubin alert file: wire files and Avro containers (the DevKit path's)."""
    return [path.read_bytes() for path in real_files("rubin/*/*.wire", "rubin/*/*.avro")]


def wire_alert_count(payloads: list[bytes]) -> int:
    return sum(1 for payload in payloads if payload[:1] == b"\x00")


# --- every real alert ----------------------------------------------------------------------------


@pytest.mark.parametrize("require_sssource", [True, False])
def test_fast_path_gives_the_devkits_results_on_every_real_alert(require_sssource: bool) -> None:
    payloads = real_payloads()
    with constants(REQUIRE_SSSOURCE=require_sssource):
        expected = devkit_results(payloads)
        found, fast_filter = fast_results(payloads)
    assert found == expected
    # The wire alerts were judged by the fast path itself, the containers by the DevKit.
    assert fast_filter.fast_alerts == wire_alert_count(payloads) > 0
    assert fast_filter.devkit_alerts == sum(map(len, expected)) - fast_filter.fast_alerts
    outcomes = {result["outcome"] for results in found for result in results}
    assert {"passed", "failed"} <= outcomes


def edge_settings() -> list[dict[str, Any]]:
    """Each threshold set exactly to a real alert's statistic (passes: the filter compares with
    < and >) and one float past it (fails), the other bounds wide open."""
    records = [normalize(alert) for payload in real_payloads()
               for alert in decode_message(payload) if alert.kind == "rubin"]
    record = max((r for r in records if r.extendednessCount > 1),
                 key=lambda r: r.extendednessCount)
    median, lowest, highest = (record.extendednessMedian, record.extendednessMin,
                               record.extendednessMax)
    assert median is not None and lowest is not None and highest is not None
    wide = {"EXTENDEDNESS_MEDIAN_MIN": -1.0, "EXTENDEDNESS_MEDIAN_MAX": 2.0,
            "EXTENDEDNESS_MIN_THRESHOLD": -1.0, "EXTENDEDNESS_MAX_THRESHOLD": 2.0,
            "REQUIRE_SSSOURCE": record.hasSSSource}
    return [
        {**wide, "EXTENDEDNESS_MEDIAN_MIN": median},
        {**wide, "EXTENDEDNESS_MEDIAN_MIN": math.nextafter(median, math.inf)},
        {**wide, "EXTENDEDNESS_MEDIAN_MAX": median},
        {**wide, "EXTENDEDNESS_MEDIAN_MAX": math.nextafter(median, -math.inf)},
        {**wide, "EXTENDEDNESS_MIN_THRESHOLD": lowest},
        {**wide, "EXTENDEDNESS_MIN_THRESHOLD": math.nextafter(lowest, math.inf)},
        {**wide, "EXTENDEDNESS_MAX_THRESHOLD": highest},
        {**wide, "EXTENDEDNESS_MAX_THRESHOLD": math.nextafter(highest, -math.inf)},
    ]


def test_thresholds_equal_to_a_real_alerts_statistics_decide_as_in_the_devkit() -> None:
    payloads = [path.read_bytes() for path in real_files(*(f"{d}/*.wire" for d in WIRE_DIRS))]
    verdicts = []
    for setting in edge_settings():
        with constants(**setting):
            expected = devkit_results(payloads)
            found, fast_filter = fast_results(payloads)
        assert found == expected, setting
        assert fast_filter.fast_alerts == len(payloads)
        verdicts.append(sum(result["passed"] for results in found for result in results))
    # At each threshold the alert whose statistic it is passes, one float past it it fails.
    assert all(at > past for at, past in zip(verdicts[::2], verdicts[1::2], strict=True))


def test_a_truncated_or_foreign_payload_is_reported_as_the_devkit_reports_it() -> None:
    payloads = [path.read_bytes() for path in real_files(f"{WIRE_DIRS[1]}/*.wire")]
    broken = [payloads[0][:len(payloads[0]) // 2], payloads[1] + b"\x00\x01", b"\x00\x00\x00\x03"
              + payloads[2][5:], b"not an alert"]
    found, _ = fast_results(broken)
    expected = devkit_results(broken)
    assert [[r["outcome"] for r in results] for results in found] == [
        [r["outcome"] for r in results] for results in expected]
    assert [[r["reason"] for r in results] for results in found] == [
        [r["reason"] for r in results] for results in expected]


# --- simulated alerts at every edge ------------------------------------------------------------

VERSION = latest_version()
BASE = plain_alert(next(iter(simulate_alerts(1, schema_version=VERSION, seed=3, history=1,
                                             sso_fraction=0.0))))
HISTORY_ROW = BASE["prvDiaSources"][0]
NAN = float("nan")
# Values a float32 holds exactly, so a threshold can equal what the alert carries.
EDGES = [0.0, 0.25, 0.5, 0.75, 1.0, float(np.nextafter(np.float32(0), np.float32(1))),
         float(np.nextafter(np.float32(1), np.float32(0))),
         float(np.nextafter(np.float32(0.5), np.float32(1)))]
extendedness = st.one_of(st.none(), st.just(NAN), st.sampled_from([math.inf, -math.inf]),
                         st.sampled_from(EDGES), st.floats(-0.5, 1.5, width=32))
history_row = st.tuples(
    st.integers(0, 6),  # index into a small id pool: 0 is the triggering diaSource's own id
    st.one_of(st.floats(60000, 60100), st.just(NAN), st.sampled_from([60050.0, 60050.0])),
    extendedness,
)
alert_spec = st.tuples(
    extendedness,
    st.sampled_from([0, None, 0, 1234567890123]),  # ssObjectId
    st.one_of(st.none(), st.lists(history_row, max_size=6),
              st.lists(history_row, min_size=24, max_size=40)),  # 24+: the columnar read
    st.sampled_from([(12.5, -30.0, 60100.5)] * 6 + [(NAN, -30.0, 60100.5), (12.5, -30.0, NAN)]),
)
threshold = st.sampled_from(EDGES + [-0.5, 1.5])


def simulated_payload(index: int, spec: tuple) -> bytes:
    """A simulated alert with the triggering diaSource and history rows the spec gives."""
    trigger_extendedness, ss_object_id, rows, (ra, dec, mjd) = spec
    alert = dict(BASE)
    dia_source_id = 5_000_000 + 100 * index
    alert["diaSourceId"] = dia_source_id
    alert["diaSource"] = dict(BASE["diaSource"], diaSourceId=dia_source_id, ra=ra, dec=dec,
                              midpointMjdTai=mjd, extendedness=trigger_extendedness,
                              ssObjectId=ss_object_id)
    alert["prvDiaSources"] = None if rows is None else [
        dict(HISTORY_ROW, diaSourceId=dia_source_id + pool, midpointMjdTai=row_mjd,
             extendedness=value) for pool, row_mjd, value in rows]
    return encode_wire(alert, VERSION)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=st.lists(alert_spec, min_size=1, max_size=5), median_min=threshold,
       median_max=threshold, min_threshold=threshold, max_threshold=threshold,
       require_sssource=st.booleans())
def test_fast_path_gives_the_devkits_results_on_simulated_edge_cases(
    specs, median_min, median_max, min_threshold, max_threshold, require_sssource
) -> None:
    """NaN-only, null, empty and long histories, repeated diaSourceIds (the triggering one among
    them), history rows without a finite MJD, thresholds equal to the values carried."""
    payloads = [simulated_payload(index, spec) for index, spec in enumerate(specs)]
    with constants(EXTENDEDNESS_MEDIAN_MIN=median_min, EXTENDEDNESS_MEDIAN_MAX=median_max,
                   EXTENDEDNESS_MIN_THRESHOLD=min_threshold,
                   EXTENDEDNESS_MAX_THRESHOLD=max_threshold, REQUIRE_SSSOURCE=require_sssource):
        expected = devkit_results(payloads)
        found, fast_filter = fast_results(payloads)
    assert found == expected
    # Only alerts whose triggering diaSource has no finite position or MJD leave the fast path.
    odd = sum(1 for spec in specs if not all(map(math.isfinite, spec[3])))
    assert (fast_filter.fast_alerts, fast_filter.devkit_alerts) == (len(specs) - odd, odd)


def test_a_batch_of_the_realistic_mix_gives_the_devkits_results() -> None:
    version = latest_version()
    payloads = [encode_wire(alert, version) for alert in
                simulate_alerts(60, schema_version=version, seed=11, sso_fraction=0.3)]
    with constants(REQUIRE_SSSOURCE=False):
        expected = devkit_results(payloads)
        found, fast_filter = fast_results(payloads)
    assert found == expected
    assert fast_filter.fast_alerts == len(payloads)
    assert any(len(alert["prvDiaSources"] or ()) >= fast.HEAVY_HISTORY for alert in
               simulate_alerts(60, schema_version=version, seed=11, sso_fraction=0.3))


# --- passes(): the consumer's entry -----------------------------------------------------------


def test_passes_says_per_message_whether_the_devkit_tags_it() -> None:
    version = latest_version()
    payloads = real_payloads() + [encode_wire(alert, version) for alert in simulate_alerts(
        30, schema_version=version, seed=7, sso_fraction=0.5, history=(0, 30))]
    expected = [any(result.get("passed") for result in results)
                for results in devkit_results(payloads)]
    assert fast.passes(payloads) == expected
    assert any(expected) and not all(expected)


# --- filter files the fast path understands, and the ones it leaves to the DevKit -------------


def edited_filter(tmp_path: Path, name: str, *replacements: tuple[str, str]) -> Path:
    text = FILTER_FILE.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return path


def test_a_filter_file_with_other_constants_stays_on_the_fast_path(tmp_path: Path) -> None:
    path = edited_filter(
        tmp_path, "tuned",
        ("EXTENDEDNESS_MEDIAN_MIN = 0.0  # Adjust for your science case",
         "EXTENDEDNESS_MEDIAN_MIN = 0.1  # galaxies only"),
        ("EXTENDEDNESS_MAX_THRESHOLD = 1.0", "EXTENDEDNESS_MAX_THRESHOLD = +0.95"),
        ("REQUIRE_SSSOURCE = True", "REQUIRE_SSSOURCE = False"),
        ('OUTPUT_TAG = "lsst_extendedness_sssource"', 'OUTPUT_TAG = "my_galaxies"'),
        ('"""Whether a locus passes, and why;', '"""My own words on the decision;'),
    )
    filter_class = load_filter(path)
    payloads = real_payloads()
    found, fast_filter = fast_results(payloads, filter_class)
    assert fast_filter.fallback is None
    assert fast_filter.fast_alerts == wire_alert_count(payloads)
    assert found == devkit_results(payloads, filter_class)
    assert any(result["new_tags"] == ["my_galaxies"] for results in found for result in results)


@pytest.mark.parametrize(
    ("replacement", "named"),
    [
        (("    if median < median_min:", "    if median <= median_min:"), "function decide"),
        (("EXTENDEDNESS_MEDIAN_MIN = 0.0", "EXTENDEDNESS_MEDIAN_MIN = float('0.1')"),
         "EXTENDEDNESS_MEDIAN_MIN"),
        (("NO_SS_OBJECT_IDS = (0, None, \"0\", \"\")", "NO_SS_OBJECT_IDS = (None,)"),
         "NO_SS_OBJECT_IDS"),
        (("    def _run(self, locus: Any) -> None:",
          "    def _run(self, locus: Any) -> None:\n        locus.timeseries()"),
         "class LsstExtendednessFilter"),
    ],
)
def test_a_filter_file_edited_beyond_its_constants_runs_through_the_devkit(
    tmp_path: Path, replacement: tuple[str, str], named: str
) -> None:
    path = edited_filter(tmp_path, "edited", replacement)
    filter_class = load_filter(path)
    fast_filter = fast.FastFilter(filter_class)
    assert fast_filter.fallback is not None
    assert str(path) in fast_filter.fallback and named in fast_filter.fallback
    payloads = [p.read_bytes() for p in real_files(f"{WIRE_DIRS[0]}/*.wire")]
    found = [[comparable(r) for r in results] for results in fast_filter.results(payloads)]
    assert fast_filter.fast_alerts == 0
    assert found == devkit_results(payloads, filter_class)


def test_a_filter_function_replaced_at_run_time_runs_through_the_devkit(monkeypatch) -> None:
    assert fast.fallback_reason(extfilter.LsstExtendednessFilter) is None
    monkeypatch.setattr(extfilter, "decide", lambda values, has_sssource: (True, "always"))
    reason = fast.fallback_reason(extfilter.LsstExtendednessFilter)
    assert reason is not None and "decide" in reason


def test_passes_says_once_in_the_log_that_it_runs_through_the_devkit(tmp_path: Path,
                                                                     caplog) -> None:
    path = edited_filter(tmp_path, "stricter",
                         ("    if median > median_max:", "    if median >= median_max:"))
    filter_class = load_filter(path)
    payloads = [p.read_bytes() for p in real_files(f"{WIRE_DIRS[1]}/*.wire")]
    with caplog.at_level(logging.WARNING, logger=fast.__name__):
        first = fast.passes(payloads, filter_class)
        second = fast.passes(payloads, filter_class)
    warnings = [record for record in caplog.records if record.name == fast.__name__]
    assert len(warnings) == 1
    assert "through the ANTARES DevKit" in warnings[0].getMessage()
    assert "function decide" in warnings[0].getMessage()
    assert first == second == [any(r.get("passed") for r in results)
                               for results in devkit_results(payloads, filter_class)]


# --- filter-test --------------------------------------------------------------------------------


def test_filter_test_prints_the_devkits_results_by_default_and_with_devkit(
        alert_packets: Path) -> None:
    folders = [str(alert_packets / name) for name in WIRE_DIRS]
    by_default = CliRunner().invoke(main, ["filter-test", "--json", *folders])
    reference = CliRunner().invoke(main, ["filter-test", "--json", "--devkit", *folders])
    assert by_default.exit_code == reference.exit_code == 0, by_default.output
    assert [drop_seconds(line) for line in by_default.stdout.splitlines()] == [
        drop_seconds(line) for line in reference.stdout.splitlines()]
    count = len(by_default.stdout.splitlines())
    assert count > 0
    assert f"{count} by the fast path, 0 through the DevKit" in by_default.stderr
    assert "DevKit time per locus" in reference.stderr
    assert "fast path" not in reference.stderr


def drop_seconds(line: str) -> dict[str, Any]:
    found = json.loads(line)
    assert found.pop("seconds") is not None
    return found


def test_filter_test_says_once_why_an_edited_filter_runs_through_the_devkit(
        alert_packets: Path, tmp_path: Path) -> None:
    path = edited_filter(tmp_path, "mine",
                         ("    if lowest < min_threshold:", "    if lowest <= min_threshold:"))
    folder = str(alert_packets / WIRE_DIRS[0])
    done = CliRunner().invoke(main, ["filter-test", "--filter", str(path), folder])
    assert done.exit_code == 0, done.output
    said = [line for line in done.stderr.splitlines() if "every alert runs through the DevKit"
            in line]
    assert len(said) == 1 and str(path) in said[0] and "function decide" in said[0]
    reference = CliRunner().invoke(main, ["filter-test", "--devkit", "--filter", str(path),
                                          folder])
    assert strip_times(done.stdout) == strip_times(reference.stdout)
    assert "DevKit time per locus" in done.stdout.splitlines()[-1]
    assert "fast path" not in done.stdout


def strip_times(output: str) -> list[str]:
    """The result lines without their times (the closing line differs by design)."""
    import re

    return [re.sub(r" \(\d+\.\d+ ms\)", "", line) for line in output.splitlines()[:-1]]
