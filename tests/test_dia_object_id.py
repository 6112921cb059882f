"""diaObjectId comes from diaObject when the DIASource's is null (issue 24), whichever decoder
reads the packet (fastavro for light alerts, polars for history-heavy ones, whole packets for
the archive), and the CSV and the archive both get it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.decode import batch as decode_batch
from lsst_alert_pipeline.decode.batch import decode_and_normalize
from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.normalize import normalize
from lsst_alert_pipeline.decode.schemas import SchemaSource
from lsst_alert_pipeline.errors import InvalidMessage
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts
from lsst_alert_pipeline.sinks.archive_read import archive_files

from .alerts import csv_rows

VERSIONS = ["7.0", "9.0", "10.0", "11.1"]
# A light alert (fastavro reads it on) and a heavy one (polars' columnar read).
HISTORIES = (2, decode_batch.HEAVY_HISTORY + 6)


def null_source_object_ids(version: str, dia_object: bool = True) -> list[dict[str, Any]]:
    """Simulated alerts whose diaSource has no diaObjectId; diaObject kept or dropped."""
    alerts = []
    for seed, history in enumerate(HISTORIES):
        alert = next(simulate_alerts(1, schema_version=version, seed=seed, sso_fraction=0.0,
                                     history=history))
        assert alert["diaObject"] and alert["diaSource"]["diaObjectId"] is not None
        alert["diaSource"]["diaObjectId"] = None
        if not dia_object:
            alert["diaObject"] = None
        alerts.append(alert)
    return alerts


@pytest.mark.parametrize("whole", [False, True], ids=["csv-path", "whole-packets"])
@pytest.mark.parametrize("version", VERSIONS)
def test_a_null_dia_source_object_id_is_the_dia_objects_on_every_decoder_path(
        version: str, whole: bool) -> None:
    alerts = null_source_object_ids(version)
    payloads = [encode_wire(alert, version) for alert in alerts]
    outcomes = decode_and_normalize(payloads, SchemaSource(), whole=whole)
    for alert, payload, outcome in zip(alerts, payloads, outcomes, strict=True):
        assert not isinstance(outcome, InvalidMessage), outcome
        expected = alert["diaObject"]["diaObjectId"]
        assert outcome[0].diaObjectId == expected
        assert [normalize(a).diaObjectId for a in decode_message(payload)] == [expected]
    # Both paths were taken: the heavy alert's history is read as columns.
    assert [o[0].extendednessCount >= decode_batch.HEAVY_HISTORY
            for o in outcomes if not isinstance(o, InvalidMessage)] == [False, True]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_null_in_both_stays_null_on_every_decoder_path(version: str) -> None:
    payloads = [encode_wire(alert, version)
                for alert in null_source_object_ids(version, dia_object=False)]
    for whole in (False, True):
        outcomes = decode_and_normalize(payloads, SchemaSource(), whole=whole)
        assert [o[0].diaObjectId for o in outcomes if not isinstance(o, InvalidMessage)] == \
            [None, None]
    assert [normalize(a).diaObjectId for p in payloads for a in decode_message(p)] == \
        [None, None]


def test_a_set_dia_source_object_id_is_kept_over_the_dia_objects() -> None:
    alert = next(simulate_alerts(1, schema_version="10.0", seed=3, sso_fraction=0.0))
    alert["diaObject"]["diaObjectId"] = alert["diaSource"]["diaObjectId"] + 1
    outcome = decode_and_normalize([encode_wire(alert, "10.0")], SchemaSource())[0]
    assert not isinstance(outcome, InvalidMessage)
    assert outcome[0].diaObjectId == alert["diaSource"]["diaObjectId"]


def test_the_csv_and_the_archive_get_the_dia_objects_id(tmp_path: Path) -> None:
    alerts = null_source_object_ids("10.0")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for number, alert in enumerate(alerts):
        (incoming / f"{number}.wire").write_bytes(encode_wire(alert, "10.0"))
    output = tmp_path / "out"
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(incoming)], "output_dir": str(output)}))
    assert summary.exit_code == exitcodes.OK and summary.alerts_written == len(alerts)
    expected = {alert["diaSource"]["diaSourceId"]: alert["diaObject"]["diaObjectId"]
                for alert in alerts}
    assert {int(row["diaSourceId"]): int(row["diaObjectId"]) for row in csv_rows(output)} == \
        expected
    files = [str(path) for path in archive_files(output)]
    archived = duckdb.connect().execute(
        "SELECT diaSourceId, diaObjectId FROM read_parquet(?, union_by_name=true)",
        [files]).fetchall()
    assert dict(archived) == expected
