"""Absurd but schema-valid values never stop the consumer: each alert is isolated.

Alerts are simulated and encoded with the official schemas (`encode_wire`), then one value is
set to something no instrument produces. Each such alert is either written with the unusable
value blank (and counted), or dead-lettered with a reason naming the field (decode/values.py
states the rule); every other alert is written once and the run exits 0.
"""

from __future__ import annotations

import copy
import json
import math
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.schemas import bundled_schema, latest_version
from lsst_alert_pipeline.filter.devkit_run import load_filter, run_on_alert
from lsst_alert_pipeline.filter.relay import locus_message
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts

from ..alerts import csv_rows
from .figures import FIGURES
from .helpers import settings_for

GOOD = 4


@cache
def templates() -> tuple[str, list[dict[str, Any]]]:
    """Simulated alerts (no history): the first GOOD stay good, the others are made hostile."""
    return latest_version(), list(simulate_alerts(40, seed=23, history=0))


def alert_id(index: int) -> int:
    return int(templates()[1][index]["diaSource"]["diaSourceId"])


def wire(index: int, source: dict[str, Any] | None = None,
         top: dict[str, Any] | None = None) -> bytes:
    """Template `index` with diaSource (and top-level) fields changed, encoded by the schema."""
    version, records = templates()
    record = copy.deepcopy(records[index])
    record["diaSource"].update(source or {})
    record.update(top or {})
    return encode_wire(record, version)


def locus(index: int, properties: dict[str, Any]) -> bytes:
    """The ANTARES locus message of template `index`: the properties the bundled filter sets
    through the DevKit, with some changed."""
    alert = decode_message(wire(index))[0]
    result = run_on_alert(load_filter()(), alert, "hostile value")
    source = alert.record["diaSource"]
    # what the filter sets on a passing alert (it may reject this one; the values stay real)
    basic = {"extfilter_dia_source_id": str(source["diaSourceId"]),
             "extfilter_mjd": source["midpointMjdTai"], "extfilter_band": source["band"],
             "extfilter_ra": source["ra"], "extfilter_dec": source["dec"]}
    return locus_message(alert, ["extended_sso_candidate"],
                         {**basic, **result.new_properties, **properties})


@dataclass
class Case:
    """One hostile alert and what must become of it."""

    name: str
    payload: bytes
    dia_source_id: int
    dead_naming: str | None = None  # dead-lettered, the reason naming this field
    blank: tuple[str, ...] = ()  # written, these CSV columns blank


def not_fits(index: int) -> bytes:
    return wire(index, top={"cutoutScience": b"this is not a FITS file"})


CASES = [
    lambda i: Case("mjd -1e9", wire(i, {"midpointMjdTai": -1e9}), alert_id(i),
                   dead_naming="midpointMjdTai"),
    lambda i: Case("mjd 1e7", wire(i, {"midpointMjdTai": 1e7}), alert_id(i),
                   dead_naming="midpointMjdTai"),
    lambda i: Case("ra NaN", wire(i, {"ra": math.nan}), alert_id(i), blank=("ra",)),
    lambda i: Case("dec inf", wire(i, {"dec": math.inf}), alert_id(i), blank=("dec",)),
    lambda i: Case("ra 1e300", wire(i, {"ra": 1e300}), alert_id(i), blank=("ra",)),
    lambda i: Case("5,000-character band", wire(i, {"band": "r" * 5000}), alert_id(i),
                   blank=("filterName",)),
    lambda i: Case("band ../../etc", wire(i, {"band": "../../etc"}), alert_id(i),
                   blank=("filterName",)),
    lambda i: Case("extendedness 1e308", wire(i, {"extendedness": 1e308}), alert_id(i),
                   blank=("extendednessMedian", "extendednessMin", "extendednessMax")),
    lambda i: Case("empty cutout", wire(i, top={"cutoutTemplate": b""}), alert_id(i),
                   blank=("template_cutout_path",)),
    lambda i: Case("non-FITS cutout", not_fits(i), alert_id(i), blank=("science_cutout_path",)),
    lambda i: Case("locus mjd of the wrong type", locus(i, {"extfilter_mjd": "yesterday"}),
                   alert_id(i), dead_naming="midpointMjdTai"),
    lambda i: Case("locus band of the wrong type", locus(i, {"extfilter_band": ["r", "g"]}),
                   alert_id(i), blank=("filterName",)),
    lambda i: Case("locus count of the wrong type",
                   locus(i, {"extfilter_extendedness_count": "many"}), alert_id(i)),
    lambda i: Case("locus ra of the wrong type", locus(i, {"extfilter_ra": "north"}),
                   alert_id(i), blank=("ra",)),
]


def all_cases() -> list[Case]:
    return [make(GOOD + n) for n, make in enumerate(CASES)]


def check_outcomes(output: Path, summary: Any, cases: list[Case], good_ids: set[int]) -> None:
    """Exit 0, good alerts once, each case written with its blanks or dead-lettered naming it."""
    assert summary.exit_code == exitcodes.OK, summary.line()
    rows = csv_rows(output)
    by_id = {int(row["diaSourceId"]): row for row in rows}
    ids = Counter(int(row["diaSourceId"]) for row in rows)
    assert all(ids[i] == 1 for i in good_ids), f"good alerts not written once: {ids}"
    letters = {(output / "deadletter" / p.with_suffix(".bin").name).read_bytes():
               json.loads(p.read_text())["reason"]
               for p in (output / "deadletter").glob("*.json")}
    for case in cases:
        if case.dead_naming:
            assert case.payload in letters, f"{case.name}: not dead-lettered"
            assert case.dead_naming in letters[case.payload], (case.name, letters[case.payload])
            assert case.dia_source_id not in ids, f"{case.name}: written as well"
            continue
        assert ids[case.dia_source_id] == 1, f"{case.name}: not written once"
        for column in case.blank:
            assert by_id[case.dia_source_id][column] == "", (case.name, column)
    assert not Path("/etc/x").exists()
    FIGURES["values"] += len(cases)
    FIGURES["values_deadlettered"] += sum(1 for case in cases if case.dead_naming)


def write_inputs(folder: Path, payloads: list[bytes]) -> None:
    folder.mkdir()
    for index, payload in enumerate(payloads):
        (folder / f"{index:04d}.bin").write_bytes(payload)


def test_absurd_values_in_files_blank_or_dead_letter_one_alert_and_the_run_goes_on(
        tmp_path: Path) -> None:
    cases = all_cases()
    good = [wire(i) for i in range(GOOD)]
    write_inputs(tmp_path / "in", [*good[:2], *(c.payload for c in cases), *good[2:]])
    output = tmp_path / "out"
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(tmp_path / "in")], "output_dir": str(output), "batch_size": 8}))
    print(f"\nabsurd values in files: {summary.line()}")
    check_outcomes(output, summary, cases, {alert_id(i) for i in range(GOOD)})
    # NaN/inf are Rubin's "no value" and an unusable cutout is counted as missing: the other
    # blanks (ra 1e300, two bands, locus band, count and ra) are counted as unusable values.
    assert summary.values_blanked == 6, summary.line()


@pytest.mark.kafka
def test_absurd_values_through_kafka_blank_or_dead_letter_one_alert_and_the_run_goes_on(
        broker, topic, tmp_path: Path) -> None:
    cases = all_cases()
    good = [wire(i) for i in range(GOOD)]
    broker.produce(topic, [*good[:2], *(c.payload for c in cases), *good[2:]])
    output = tmp_path / "out"
    summary = consumer.consume(settings_for(broker.bootstrap, topic, output, batch_size=5))
    print(f"\nabsurd values via Kafka: {summary.line()}")
    check_outcomes(output, summary, cases, {alert_id(i) for i in range(GOOD)})
    assert summary.partitions[0]["lag"] == 0


def numeric_fields() -> list[tuple[str, str, bool]]:
    """(name, Avro type, nullable) of every numeric diaSource field of the latest schema."""
    schema = bundled_schema(latest_version())
    source = next(f for f in schema["fields"] if f["name"] == "diaSource")["type"]
    found = []
    for item in source["fields"]:
        kinds = item["type"] if isinstance(item["type"], list) else [item["type"]]
        numeric = [k for k in kinds if k in ("int", "long", "float", "double")]
        if numeric:
            found.append((item["name"], numeric[0], "null" in kinds))
    return found


VALUES = {"int": st.integers(-2**31, 2**31 - 1), "long": st.integers(-2**63, 2**63 - 1),
          "float": st.floats(width=32), "double": st.floats()}
# The CSV columns a diaSource field feeds, and what a written cell must then be.
COLUMNS = {"ra": "ra", "dec": "dec", "midpointMjdTai": "mjd", "psfFlux": "psFlux",
           "psfFluxErr": "psFluxErr", "snr": None, "extendedness": "extendednessMedian"}
BOUNDS = {"ra": (0, 360), "dec": (-90, 90), "mjd": (40000, 80000)}


@st.composite
def absurd_value(draw: st.DrawFn) -> tuple[str, Any]:
    name, kind, nullable = draw(st.sampled_from(numeric_fields()))
    values = st.one_of(st.none(), VALUES[kind]) if nullable else VALUES[kind]
    return name, draw(values)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(drawn=absurd_value())
def test_any_value_the_schema_can_encode_is_written_or_dead_lettered_naming_its_field(
        tmp_path_factory: pytest.TempPathFactory, drawn: tuple[str, Any]) -> None:
    name, value = drawn
    good_ids = {alert_id(i) for i in range(GOOD)}
    if name == "diaSourceId" and value in good_ids:
        value = -1  # a repeat of a good alert's id is skipped as already written, not hostile
    hostile = wire(GOOD, {name: value})
    hostile_id = value if name == "diaSourceId" else alert_id(GOOD)
    folder = tmp_path_factory.mktemp("value")
    write_inputs(folder / "in", [wire(0), wire(1), hostile, wire(2), wire(3)])
    output = folder / "out"
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(folder / "in")], "output_dir": str(output)}))
    reasons = [json.loads(p.read_text())["reason"]
               for p in (output / "deadletter").glob("*.json")]
    written = [row for row in csv_rows(output) if int(row["diaSourceId"]) == hostile_id]
    check_outcomes(output, summary, [], good_ids)
    FIGURES["values"] += 1
    if reasons:
        FIGURES["values_deadlettered"] += 1
        assert not written and len(reasons) == 1 and name in reasons[0], (name, value, reasons)
        return
    assert len(written) == 1, (name, value, summary.line())
    column = COLUMNS.get(name)
    cell = written[0][column] if column else ""
    if cell:
        number = float(cell)
        low, high = BOUNDS.get(column or "", (-math.inf, math.inf))
        assert math.isfinite(number) and low <= number <= high, (name, value, cell)
