"""relay --format antares -> Kafka -> consume: 64-bit ids arrive digit for digit and a negative
difference flux keeps its sign, in the messages antares-client reads and in the CSV."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.normalize import normalize
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.sinks.csv import cell

from .alerts import csv_rows
from .antares_loci import edited, parsed_by_antares_client, sso_packet

pytestmark = pytest.mark.kafka
BIG_SOURCE, BIG_OBJECT = 3068394365163438081, 3068394365163438082
BIG_SS_OBJECT = 3068394365163438083
NEGATIVE_SOURCE = 3068394365163438091
assert BIG_SOURCE > 2**53 and float(BIG_SOURCE) != BIG_SOURCE  # a float would lose digits


@pytest.fixture(scope="module")
def chain(broker, tmp_path_factory) -> dict:
    """Two solar-system packets relayed as ANTARES loci and consumed once for every test here."""
    base = tmp_path_factory.mktemp("antares-chain")
    folder = base / "in"
    folder.mkdir()
    template = sso_packet()
    negative = {"isNegative": True} if "isNegative" in decode_message(template)[0].record[
        "diaSource"] else {}
    packets = {
        "big": edited(template, diaSourceId=BIG_SOURCE, diaObjectId=BIG_OBJECT,
                      ssObjectId=BIG_SS_OBJECT),
        "negative": edited(template, diaSourceId=NEGATIVE_SOURCE, psfFlux=-1234.5, **negative),
    }
    for name, payload in packets.items():
        (folder / f"{name}.wire").write_bytes(payload)
    topic = "antares-chain"
    broker.create_topic(topic, 1)
    done = CliRunner().invoke(main, ["relay", "--from", str(folder), "--format", "antares",
                                     "--to", f"kafka://{broker.bootstrap}/{topic}"])
    assert done.exit_code == 0, done.output
    assert "relayed 2 of 2 alerts" in done.output
    reader = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "antares-chain-raw",
                       "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
    reader.subscribe([topic])
    messages = []
    while len(messages) < 2:
        message = reader.poll(30)
        assert message is not None, "the relayed messages arrive"
        messages.append(message)
    reader.close()
    output = base / "out"
    settings = config.load(environ={}, flags={
        "topics": [topic], "output_dir": str(output), "idle_timeout": 20,
        "extra_columns": ["ssObjectId"],
        "kafka": {"bootstrap.servers": broker.bootstrap, "group.id": "antares-chain",
                  "session.timeout.ms": 6000}})
    summary = consumer.consume(settings)
    assert summary.exit_code == exitcodes.OK, summary.line()
    rows = {row["diaSourceId"]: row for row in csv_rows(output)}
    return {"packets": packets, "messages": messages, "rows": rows}


def test_ids_beyond_2_to_the_53_reach_the_csv_exactly(chain) -> None:
    row = chain["rows"][str(BIG_SOURCE)]
    assert row["diaObjectId"] == str(BIG_OBJECT)
    assert row["ssObjectId"] == str(BIG_SS_OBJECT)
    assert row["alertId"] == str(BIG_SOURCE)


def test_kafka_messages_are_antares_loci_with_ids_as_text(chain) -> None:
    for message in chain["messages"]:
        locus = parsed_by_antares_client(message.value(), message.topic())
        assert not [name for name in locus.properties if name.startswith(("lsst_", "ant_"))]
        assert isinstance(locus.properties["extfilter_dia_source_id"], str)
    by_id = {parsed_by_antares_client(m.value()).properties["extfilter_dia_source_id"]: m
             for m in chain["messages"]}
    big = parsed_by_antares_client(by_id[str(BIG_SOURCE)].value()).properties
    assert (big["extfilter_dia_object_id"], big["extfilter_ss_object_id"]) == (
        str(BIG_OBJECT), str(BIG_SS_OBJECT))


def test_a_negative_difference_flux_keeps_its_sign_end_to_end(chain) -> None:
    row = chain["rows"][str(NEGATIVE_SOURCE)]
    expected = normalize(decode_message(chain["packets"]["negative"])[0])
    assert expected.psFlux == -1234.5
    assert row["psFlux"] == cell(expected.psFlux) == "-1234.5"
    assert float(row["psFluxErr"]) > 0
    for message in chain["messages"]:
        properties = parsed_by_antares_client(message.value()).properties
        if properties["extfilter_dia_source_id"] == str(NEGATIVE_SOURCE):
            assert properties["extfilter_ps_flux"] == -1234.5


def test_the_consumed_rows_are_the_triggering_diasources(chain, tmp_path: Path) -> None:
    for name, payload in chain["packets"].items():
        expected = normalize(decode_message(payload)[0])
        row = chain["rows"][str(expected.diaSourceId)]
        for column in ("ra", "dec", "mjd", "filterName", "psFlux", "psFluxErr",
                       "extendednessMedian", "extendednessMin", "extendednessMax"):
            assert row[column] == cell(getattr(expected, column)), (name, column)
