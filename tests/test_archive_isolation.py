"""One alert whose archive row cannot be built whole never fails its batch: it is archived with
what can be kept (its packet, ids, where it came from), the rest null, logged and counted."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import duckdb
import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.schemas import latest_version
from lsst_alert_pipeline.filter.relay import locus_message
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts
from lsst_alert_pipeline.sinks import archive_rows

from .alerts import csv_rows

BEYOND_INT64 = 2**64 - 2  # BSON's uint64 holds it; a Parquet int64 column cannot


def wire_alerts(count: int, seed: int) -> list[bytes]:
    """Wire alerts encoded with the official schema, with short histories."""
    version = latest_version()
    return [encode_wire(alert, version)
            for alert in simulate_alerts(count, schema_version=version, seed=seed,
                                         history=(0, 4))]


def locus(payload: bytes, **changed: Any) -> bytes:
    """The ANTARES locus message (zlib BSON) of a wire alert, with extfilter_* properties as
    the bundled filter sets them, some changed."""
    alert = decode_message(payload)[0]
    source = alert.record["diaSource"]
    properties = {
        "extfilter_dia_source_id": source["diaSourceId"],
        "extfilter_dia_object_id": source["diaObjectId"],
        "extfilter_mjd": source["midpointMjdTai"], "extfilter_band": source["band"],
        "extfilter_ra": source["ra"], "extfilter_dec": source["dec"],
        "extfilter_ps_flux": source["psfFlux"], "extfilter_ps_flux_err": source["psfFluxErr"],
        "extfilter_extendedness_median": 0.5, "extfilter_extendedness_min": 0.1,
        "extfilter_extendedness_max": 0.9, "extfilter_extendedness_count": 3,
    }
    properties.update({f"extfilter_{name}": value for name, value in changed.items()})
    return locus_message(alert, ["extended_sso_candidate"], properties)


def consume(payloads: list[bytes], tmp_path: Path) -> tuple[consumer.RunSummary, Path]:
    incoming, out = tmp_path / "in", tmp_path / "out"
    incoming.mkdir()
    for number, payload in enumerate(payloads):
        (incoming / f"{number:05d}.bin").write_bytes(payload)
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(incoming)], "output_dir": str(out), "batch_size": 50}))
    return summary, out


def archived(out: Path) -> list[dict[str, Any]]:
    """Every archived row, read by DuckDB straight from the folder."""
    relation = duckdb.connect().execute(
        f"SELECT * FROM read_parquet('{out}/archive/*/*.parquet', hive_partitioning = true, "
        "union_by_name = true)")
    names = [item[0] for item in relation.description or []]
    return [dict(zip(names, row, strict=True)) for row in relation.fetchall()]


def by_packet(rows: list[dict[str, Any]], payloads: list[bytes]) -> dict[bytes, dict[str, Any]]:
    """Each message's archived row, found by its exact bytes; each message archived once."""
    packets = [bytes(row["packet"]) for row in rows]
    assert sorted(packets) == sorted(payloads), "the archive does not hold each message once"
    return dict(zip(packets, rows, strict=True))


def test_values_no_archive_column_can_hold_are_null_in_one_alert_and_the_run_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A locus property of an absurd size (schema-valid BSON) stopped the whole batch before:
    the CSV row was written, then the archive's frame of the batch could not be built."""
    good = wire_alerts(6, seed=41)
    sources = [decode_message(p)[0].record["diaSource"] for p in good]
    count = locus(good[3], extendedness_count=2**40)
    object_id = locus(good[4], dia_object_id=BEYOND_INT64)
    source_id = locus(good[5], dia_source_id=BEYOND_INT64)
    payloads = [good[0], count, good[1], object_id, source_id, good[2]]
    with caplog.at_level(logging.WARNING):
        summary, out = consume(payloads, tmp_path)

    assert summary.exit_code == exitcodes.OK, summary.line()
    written = sorted(int(row["diaSourceId"]) for row in csv_rows(out))
    expected = [*(s["diaSourceId"] for s in sources[:5]), BEYOND_INT64]
    assert written == sorted(expected)
    rows = by_packet(archived(out), payloads)
    for payload, source in zip(good[:3], sources[:3], strict=True):
        assert rows[payload]["diaSourceId"] == source["diaSourceId"]
        assert rows[payload]["midpointMjdTai"] == source["midpointMjdTai"]  # read whole
    assert rows[count]["extendednessCount"] is None
    assert rows[count]["diaSourceId"] == sources[3]["diaSourceId"]
    assert rows[count]["ra"] == sources[3]["ra"]
    assert rows[object_id]["diaObjectId"] is None
    assert rows[object_id]["diaSourceId"] == sources[4]["diaSourceId"]
    assert rows[source_id]["diaSourceId"] is None and rows[source_id]["alertId"] is None
    assert rows[source_id]["ra"] == sources[5]["ra"]
    assert all(row["dayObs"] is not None and row["offset"] is None for row in rows.values())
    assert summary.values_blanked == 4, summary.line()  # count, object id, source and alert id
    warnings = [r.getMessage() for r in caplog.records if "archived alert" in r.getMessage()]
    assert any(str(sources[3]["diaSourceId"]) in w and "extendednessCount null" in w
               for w in warnings), warnings
    assert any(str(BEYOND_INT64) in w and "diaSourceId null" in w for w in warnings), warnings


@pytest.mark.parametrize("failing", [("whole_frame",), ("whole_frame", "spec_frame")])
def test_an_alert_whose_row_cannot_be_built_keeps_its_packet_and_ids_and_the_rest_stay_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        failing: tuple[str, ...]) -> None:
    """Whatever unforeseen failure building one alert's row (here injected: polars panicking on
    its body, and then on its spec columns too) costs only that alert's decoded columns."""
    payloads = wire_alerts(8, seed=42)
    sources = [decode_message(p)[0].record["diaSource"] for p in payloads]
    victim = sources[5]["diaSourceId"]
    for name in failing:
        original = getattr(archive_rows, name)

        def refusing(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            alerts = next(a for a in args if isinstance(a, list | tuple))
            if any(alert.record.diaSourceId == victim for alert in alerts):
                raise RuntimeError("injected: this alert's row cannot be built")
            return _original(*args, **kwargs)

        monkeypatch.setattr(archive_rows, name, refusing)
    with caplog.at_level(logging.WARNING):
        summary, out = consume(payloads, tmp_path)

    assert summary.exit_code == exitcodes.OK, summary.line()
    assert sorted(int(row["diaSourceId"]) for row in csv_rows(out)) == sorted(
        s["diaSourceId"] for s in sources)
    rows = by_packet(archived(out), payloads)
    for payload, source in zip(payloads, sources, strict=True):
        row = rows[payload]
        assert row["diaSourceId"] == source["diaSourceId"]
        assert row["diaObjectId"] == source["diaObjectId"]
        assert (row["topic"], row["origin"] is not None) == (None, True)
        if source["diaSourceId"] != victim:
            assert row["midpointMjdTai"] == source["midpointMjdTai"] and row["ra"] == source["ra"]
            continue
        assert row["midpointMjdTai"] is None  # its packet's own fields: not read whole
        assert (row["ra"] is None) == ("spec_frame" in failing)
    assert summary.values_blanked == len(failing), summary.line()
    warnings = [r.getMessage() for r in caplog.records if "archived alert" in r.getMessage()]
    assert len(warnings) == len(failing) and all(str(victim) in w for w in warnings), warnings
