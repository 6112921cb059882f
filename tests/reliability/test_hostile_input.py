"""Hostile bytes never stop the consumer: each bad message is dead-lettered with its reason,
nothing is written outside the output directory, and the good alerts are written exactly once.

Hypothesis draws the hostile messages (random bytes, truncated alerts, wrong magic bytes,
unknown schema ids, valid Avro with absurd ids or positions, non-FITS cutouts, locus messages
whose diaSourceId is a path); fixed ones cover what is too big to draw each time (a 16 MB
cutout, zlib and BSON bombs). They go through `consume --from` files, and a smaller set
through Kafka, interleaved with good alerts.
"""

from __future__ import annotations

import copy
import json
import tempfile
import zlib
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import bson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.decode.formats import MAX_LOCUS_BYTES, decode_message
from lsst_alert_pipeline.decode.schemas import bundled_versions, latest_version, schema_id_for
from lsst_alert_pipeline.filter.relay import locus_message
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts
from lsst_alert_pipeline.sinks.cutouts import MAX_CUTOUT_BYTES

from ..alerts import csv_rows
from .figures import FIGURES
from .helpers import settings_for

GOOD_PER_EXAMPLE = 4
KNOWN_SCHEMA_IDS = {schema_id_for(version) for version in bundled_versions()}
CUTOUT_FIELDS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")


@cache
def templates() -> tuple[str, list[dict[str, Any]], list[bytes]]:
    """A few simulated alerts (no history) to break: version, records, wire bytes."""
    version = latest_version()
    records = list(simulate_alerts(12, seed=11, history=0))
    return version, records, [encode_wire(record, version) for record in records]


def with_changes(index: int, change: dict[str, Any], source: dict[str, Any] | None = None
                 ) -> bytes:
    version, records, _ = templates()
    record = copy.deepcopy(records[index])
    record.update(change)
    if source:
        record["diaSource"].update(source)
    return encode_wire(record, version)


def set_id(dia_source_id: int) -> dict[str, Any]:
    return {"diaSourceId": dia_source_id}


def locus_with_properties(index: int, properties: dict[str, Any]) -> bytes:
    _, _, wires = templates()
    alert = decode_message(wires[index])[0]
    return locus_message(alert, ["extended_sso_candidate"], properties)


def bson_nesting_bomb(depth: int) -> bytes:
    """A small zlib stream of a BSON document nested `depth` levels deep."""
    document = b"\x05\x00\x00\x00\x00"
    for _ in range(depth):
        body = b"\x03a\x00" + document + b"\x00"
        document = (len(body) + 4).to_bytes(4, "little") + body
    return zlib.compress(document, 9)


# Each strategy draws (payload, kind); every payload it draws must be dead-lettered.
# Hostile copies are made of templates the good alerts are not (GOOD_PER_EXAMPLE first ones):
# a broken copy of an alert already written is skipped by the ledger, not dead-lettered.
template_index = st.integers(GOOD_PER_EXAMPLE, 11)
random_bytes = st.binary(max_size=3000).map(lambda b: (b, "random bytes"))
truncated = st.tuples(template_index, st.floats(0, 1, exclude_max=True)).map(
    lambda t: (templates()[2][t[0]][:int(len(templates()[2][t[0]]) * t[1])], "truncated alert"))
wrong_magic = st.tuples(template_index, st.integers(1, 255).filter(lambda b: b not in (0x4F, 0x78))
                        ).map(lambda t: (bytes([t[1]]) + templates()[2][t[0]][1:], "wrong magic"))
unknown_schema = st.tuples(
    template_index, st.integers(0, 2**32 - 1).filter(lambda i: i not in KNOWN_SCHEMA_IDS)
).map(lambda t: (b"\x00" + t[1].to_bytes(4, "big") + templates()[2][t[0]][5:],
                 "unknown schema id"))
absurd_id = st.tuples(template_index, st.sampled_from([0, -1, -(2**63)])).map(
    lambda t: (with_changes(t[0], set_id(t[1]), set_id(t[1])), "absurd diaSourceId"))
not_fits = st.tuples(template_index, st.sampled_from(CUTOUT_FIELDS),
                     st.binary(min_size=1, max_size=200)).map(
    # (an empty cutout is a missing one: the alert is written with a blank path)
    lambda t: (with_changes(t[0], {t[1]: t[2]}), "non-FITS cutout"))
truncated_fits = st.tuples(template_index, st.sampled_from(CUTOUT_FIELDS),
                           st.integers(1, 2879)).map(
    lambda t: (with_changes(t[0], {t[1]: templates()[1][t[0]][t[1]][:-t[2]]}),
               "truncated FITS cutout"))
path_ids = st.sampled_from(["../../etc/x", "/etc/passwd", "..", "x/../../y", "1/../../2",
                            "12 34", "-0", ""])
traversal = st.tuples(template_index, st.sampled_from(["extfilter_dia_source_id",
                                                       "lsst_diaSource_diaSourceId"]),
                      path_ids).map(
    lambda t: (locus_with_properties(t[0], {t[1]: t[2]}), "path-traversal id"))
hostile_message = st.one_of(random_bytes, truncated, wrong_magic, unknown_schema, absurd_id,
                            not_fits, truncated_fits, traversal)


def fixed_hostile_messages() -> list[tuple[bytes, str]]:
    """Too big or too slow to draw every time: one of each."""
    fits_header = templates()[1][0]["cutoutScience"][:2880]
    huge = fits_header + b"\0" * (2880 * (MAX_CUTOUT_BYTES // 2880 + 1) - len(fits_header))
    zlib_bomb = zlib.compress(b"\0" * (MAX_LOCUS_BYTES + 1), 9)
    bson_bomb = zlib.compress(bson.dumps({"id": "x", "pad": "\0" * MAX_LOCUS_BYTES}), 9)
    return [(with_changes(1, {"cutoutScience": huge}), "16 MB cutout"),
            (zlib_bomb, "zlib bomb"), (bson_bomb, "BSON bomb"),
            (bson_nesting_bomb(3000), "BSON nesting bomb"),
            (zlib.compress(b"\x10\x00\x00\x00not bson at all"), "zlib of non-BSON")]


def interleave(good: list[bytes], hostile: list[bytes]) -> list[bytes]:
    out, step = [], max(1, len(hostile) // max(1, len(good)))
    for index in range(max(len(good), len(hostile))):
        out.extend(hostile[index * step:(index + 1) * step] if index < len(good) else [])
        if index < len(good):
            out.append(good[index])
    out.extend(hostile[len(good) * step:])
    return out


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")}


def check_run(parent: Path, output: Path, summary: Any, hostile: list[bytes],
              good_ids: set[int], before: dict[str, int]) -> None:
    """Every hostile message dead-lettered with a reason, good ones once, nothing outside."""
    assert summary.exit_code == exitcodes.OK, summary.line()
    kept = Counter(p.read_bytes() for p in (output / "deadletter").glob("*.bin"))
    missing, extra = Counter(hostile) - kept, kept - Counter(hostile)
    assert not missing and not extra, f"not dead-lettered: {missing}; unexpected: {extra}"
    for letter in (output / "deadletter").glob("*.json"):
        assert json.loads(letter.read_text())["reason"]
    ids = Counter(int(row["diaSourceId"]) for row in csv_rows(output))
    FIGURES["lost"] += len(good_ids - set(ids))
    FIGURES["duplicated"] += sum(n - 1 for n in ids.values())
    assert ids == Counter(good_ids)
    after = {k: v for k, v in snapshot(parent).items()
             if not (parent / k).resolve().is_relative_to(output.resolve())}
    assert after == before, "something was written outside the output directory"
    assert not Path("/etc/x").exists()
    FIGURES["hostile"] += len(hostile)
    FIGURES["deadlettered"] += sum(kept.values())


@settings(max_examples=60, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(hostile_message, min_size=20, max_size=30))
def test_hostile_files_are_dead_lettered_and_good_ones_written_once(
        drawn: list[tuple[bytes, str]]) -> None:
    _, records, wires = templates()
    good = wires[:GOOD_PER_EXAMPLE]
    good_ids = {int(r["diaSource"]["diaSourceId"]) for r in records[:GOOD_PER_EXAMPLE]}
    hostile = [payload for payload, _ in drawn]
    with tempfile.TemporaryDirectory() as temp:
        parent = Path(temp)
        (parent / "in").mkdir()
        for index, payload in enumerate(interleave(good, hostile)):
            (parent / "in" / f"{index:04d}.bin").write_bytes(payload)
        before = snapshot(parent)
        output = parent / "out"
        summary = consumer.consume(config.load(environ={}, flags={
            "from_paths": [str(parent / "in")], "output_dir": str(output), "batch_size": 16}))
        check_run(parent, output, summary, hostile, good_ids, before)


def test_oversized_cutouts_and_decompression_bombs_are_dead_lettered(tmp_path: Path) -> None:
    _, records, wires = templates()
    fixed = fixed_hostile_messages()
    hostile = [payload for payload, _ in fixed]
    (tmp_path / "in").mkdir()
    for index, payload in enumerate(interleave(wires, hostile)):
        (tmp_path / "in" / f"{index:04d}.bin").write_bytes(payload)
    before = snapshot(tmp_path)
    output = tmp_path / "out"
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(tmp_path / "in")], "output_dir": str(output)}))
    reasons = sorted(json.loads(p.read_text())["reason"][:70]
                     for p in (output / "deadletter").glob("*.json"))
    print(f"\nhostile fixed: {', '.join(k for _, k in fixed)}: {reasons}")
    check_run(tmp_path, output, summary, hostile,
              {int(r["diaSource"]["diaSourceId"]) for r in records}, before)


@pytest.mark.kafka
def test_hostile_kafka_messages_are_dead_lettered_and_the_run_goes_on(
        broker, topic, tmp_path: Path) -> None:
    _, records, wires = templates()
    # The 16 MB cutout is over the broker's message size; the file test above covers it.
    fixed = fixed_hostile_messages()[1:]
    drawn = [hostile_message.example() for _ in range(40)]
    hostile = [payload for payload, _ in fixed + drawn]
    wires, records = wires[:GOOD_PER_EXAMPLE], records[:GOOD_PER_EXAMPLE]
    broker.produce(topic, interleave(wires, hostile))
    output = tmp_path / "out"
    before = snapshot(tmp_path)
    summary = consumer.consume(settings_for(broker.bootstrap, topic, output, batch_size=10))
    print(f"\nhostile via Kafka: {len(hostile)} hostile ({', '.join(k for _, k in fixed)}, "
          f"and {len(drawn)} drawn) among {len(wires)} good: {summary.line()}")
    check_run(tmp_path, output, summary, hostile,
              {int(r["diaSource"]["diaSourceId"]) for r in records}, before)
    assert summary.partitions[0]["lag"] == 0
