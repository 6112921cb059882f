"""`--preset fink`: Fink's LSST topics read as fink-client reads them, each alert written once with
the values of the Rubin packet it came from (tests/fink_standin.py builds the messages)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.decode.fink import fink_records
from lsst_alert_pipeline.errors import ConfigurationError
from lsst_alert_pipeline.sinks.archive_read import archive_files
from lsst_alert_pipeline.sinks.csv import CUTOUT_PATH_COLUMNS

from .alerts import csv_rows
from .conftest import real_files
from .fink_standin import client_decode, fink_stream

WIRE_V10 = "rubin/derived_wire_v10_0/*.wire"


def consume_cli(*args: str) -> int:
    result = CliRunner().invoke(main, ["consume", "--idle-timeout", "20",
                                       "-X", "session.timeout.ms=6000", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code


def by_id(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["diaSourceId"]: row for row in rows}


def test_the_stand_in_messages_decode_with_fink_clients_logic_to_the_sample_records() -> None:
    stream = fink_stream()
    decoded = [client_decode(key, value) for key, value in zip(stream.keys, stream.values(),
                                                                strict=True)]
    assert repr(decoded) == repr(stream.records)  # repr: NaN equals NaN
    assert all(isinstance(record["ssSource"], dict) for record in decoded)  # Spark's nulls


def test_the_association_is_read_from_ssobjectid_never_from_sssource_being_there() -> None:
    stream = fink_stream()
    for key, value, record in zip(stream.keys, stream.values(), stream.records, strict=True):
        (alert,) = fink_records(key, value)
        associated = record["ssSource"].get("ssObjectId") is not None
        assert alert.hasSSSource is associated, record["diaSource"]["diaSourceId"]
    assert any(r["ssSource"].get("ssObjectId") is None for r in stream.records)


@pytest.mark.kafka
def test_fink_preset_writes_each_alert_once_with_the_values_of_its_rubin_packet(
        broker, tmp_path: Path) -> None:
    stream = fink_stream()
    broker.create_topic("fink_extragalactic_lsst", 1)
    broker.produce("fink_extragalactic_lsst", stream.values(), keys=stream.keys)
    fink_out, rubin_out = tmp_path / "fink", tmp_path / "rubin"
    code = consume_cli("--preset", "fink", "--bootstrap-servers", broker.bootstrap,
                       "--topic", "extragalactic", "--group-id", "g-fink",
                       "--no-local-filter", "--output-dir", str(fink_out))
    assert code == exitcodes.OK
    wire_folder = str(real_files(WIRE_V10)[0].parent)
    assert consume_cli("--from", wire_folder, "--output-dir", str(rubin_out)) == exitcodes.OK

    fink_rows, rubin_rows = csv_rows(fink_out), by_id(csv_rows(rubin_out))
    ids = [str(record["diaSource"]["diaSourceId"]) for record in stream.records]
    assert sorted(row["diaSourceId"] for row in fink_rows) == sorted(ids)  # each once
    for row in fink_rows:
        rubin = rubin_rows[row["diaSourceId"]]
        assert {k: v for k, v in row.items() if k != "timestamp"} == \
            {k: v for k, v in rubin.items() if k != "timestamp"}
        for column in CUTOUT_PATH_COLUMNS:
            assert row[column], (row["diaSourceId"], column)
            assert (fink_out / row[column]).read_bytes() == (rubin_out / rubin[column]).read_bytes()

    archived = archive_rows(fink_out)
    for record in stream.records:
        row = archived[record["diaSource"]["diaSourceId"]]
        assert row["broker"] == "fink" and row["topic"] == "fink_extragalactic_lsst"
        assert row["hasSSSource"] is (record["ssSource"].get("ssObjectId") is not None)
        assert row["fink_clf_cats_class"] == record["clf"]["cats_class"]
        assert row["fink_pred_is_sso"] == record["pred"]["is_sso"]
        assert row["diaSourceId"] not in (None, 0)
    # a second run delivers nothing new: the group's offsets were committed after the outputs
    assert consume_cli("--preset", "fink", "--bootstrap-servers", broker.bootstrap,
                       "--topic", "extragalactic", "--group-id", "g-fink",
                       "--no-local-filter", "--output-dir", str(fink_out)) == exitcodes.OK
    assert len(csv_rows(fink_out)) == len(ids)


def archive_rows(output: Path) -> dict[int, dict[str, Any]]:
    files = [str(path) for path in archive_files(output)]
    frame = duckdb.connect().execute(
        "SELECT * FROM read_parquet(?, union_by_name=true)", [files]).to_arrow_table()
    return {row["diaSourceId"]: row for row in frame.to_pylist()}


@pytest.mark.kafka
def test_a_fink_message_without_its_schema_key_is_dead_lettered_naming_the_key(
        broker, tmp_path: Path) -> None:
    stream = fink_stream()
    broker.create_topic("fink_nokey_lsst", 1)
    values = stream.values()
    broker.produce("fink_nokey_lsst", values[:2], keys=[stream.keys[0], b""])
    code = consume_cli("--preset", "fink", "--bootstrap-servers", broker.bootstrap,
                       "--topic", "nokey", "--group-id", "g-nokey", "--no-local-filter",
                       "--output-dir", str(tmp_path))
    assert code == exitcodes.OK
    assert [row["diaSourceId"] for row in csv_rows(tmp_path)] == \
        [str(stream.records[0]["diaSource"]["diaSourceId"])]
    (letter,) = [p for p in (tmp_path / "deadletter").iterdir() if p.suffix == ".json"]
    assert "without a key" in letter.read_text()


def test_fink_preset_uses_scram_sha_512_over_sasl_plaintext_only_with_credentials() -> None:
    plain = config.load(environ={}, flags={"preset": "fink", "topics": ["early_sn"],
                                           "kafka": {"bootstrap.servers": "fink:9092"}})
    assert "security.protocol" not in plain.kafka and "sasl.mechanisms" not in plain.kafka
    assert plain.topics == ["fink_early_sn_lsst"]
    assert plain.kafka["auto.offset.reset"] == "earliest"
    assert plain.kafka["group.id"] != config.SHARED_GROUP_ID
    secured = config.load(environ={"LSST_ALERTS_FINK_USERNAME": "ada",
                                   "LSST_ALERTS_FINK_PASSWORD": "s3cret"},
                          flags={"preset": "fink", "topics": ["fink_early_sn_lsst"],
                                 "kafka": {"bootstrap.servers": "fink:9092",
                                           "group.id": "mine"}})
    assert secured.kafka["security.protocol"] == "SASL_PLAINTEXT"
    assert secured.kafka["sasl.mechanisms"] == "SCRAM-SHA-512"
    assert secured.kafka["sasl.username"] == "ada" and secured.kafka["group.id"] == "mine"
    assert secured.topics == ["fink_early_sn_lsst"]
    assert config.masked(secured)["kafka"]["sasl.password"] == "***"


def test_fink_preset_refuses_a_username_without_password_and_a_run_without_topic() -> None:
    with pytest.raises(ConfigurationError, match="username needs a password"):
        config.load(environ={"LSST_ALERTS_FINK_USERNAME": "ada"},
                    flags={"preset": "fink", "topics": ["x"],
                           "kafka": {"bootstrap.servers": "fink:9092"}})
    with pytest.raises(ConfigurationError, match="no topic configured"):
        config.load(environ={}, flags={"preset": "fink",
                                       "kafka": {"bootstrap.servers": "fink:9092"}})
