"""`verify` against the broker (real test broker): each partition's committed offset against the
offsets the ledger covers, and `--repair` refilling from what the broker still holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, TopicPartition

from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.testing.broker import TansuBroker

from .alerts import csv_rows, many_real_alerts
from .reliability.figures import FIGURES
from .test_replay_catchup import settings_for


def verify(root: Path, bootstrap: str | None, topic: str, group: str, *extra: str
           ) -> tuple[int, dict[str, Any], str]:
    """Exit status, the --json report, and the table of `verify` with these Kafka settings."""
    kafka = ["--bootstrap-servers", bootstrap, "--topic", topic, "--group-id", group] \
        if bootstrap else []
    args = ["verify", "--output-dir", str(root), *kafka, *extra]
    table = CliRunner().invoke(main, args)
    if "--repair" in extra:  # a second run would find nothing left to repair
        return table.exit_code, {}, table.output
    facts = CliRunner().invoke(main, [*args, "--json"])
    assert facts.exit_code == table.exit_code, facts.output
    return table.exit_code, json.loads(facts.stdout), table.output


def commit(bootstrap: str, group: str, topic: str, offset: int) -> None:
    """Commit for the group as a broken consumer would: without writing anything."""
    plain = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    plain.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    plain.close()


@pytest.mark.kafka
def test_verify_compares_committed_offsets_and_repair_refills_rows_and_unwritten_offsets(
        alert_packets, broker, topic, tmp_path: Path) -> None:
    payloads = many_real_alerts(30, first_id=6_400_000_000)
    broker.produce(topic, payloads[:20])
    root = tmp_path / "out"
    assert consumer.consume(settings_for(broker, topic, root, "v1")).alerts_written == 20
    status, facts, table = verify(root, broker.bootstrap, topic, "v1")
    assert status == 0, table
    row = facts["partitions"][0]
    assert (row["committed"], row["covered"], row["not_on_disk"], row["lag"]) == (20, "0-19",
                                                                                   "-", 0)
    assert f"{topic}/0" in table and "covered_not_committed" in table
    # The group's offset moves past offsets that were never written (a consumer that committed
    # without writing), and the night's CSV file is deleted.
    broker.produce(topic, payloads[20:])
    commit(broker.bootstrap, "v1", topic, 25)
    rows_before = {r["diaSourceId"]: r for r in csv_rows(root)}
    (root / "data").joinpath(next(p.name for p in (root / "data").glob("*.csv"))).unlink()
    status, facts, table = verify(root, broker.bootstrap, topic, "v1")
    assert status == 1
    assert facts["partitions"][0]["not_on_disk"] == "20-24"
    assert "5 offsets were committed but are not on disk" in table
    FIGURES["verify_problems"] += facts["partitions"][0]["not_on_disk_count"]
    status, _, said = verify(root, broker.bootstrap, topic, "v1", "--repair")
    assert status == 0, said
    assert "forgot 20 broken alerts" in said and "wrote 25 alerts and 0 cutouts again" in said
    after = {r["diaSourceId"]: r for r in csv_rows(root)}
    assert len(after) == len(csv_rows(root)) == 25 and set(rows_before) < set(after)
    FIGURES["verify_refilled"] += 25
    status, facts, table = verify(root, broker.bootstrap, topic, "v1")
    assert status == 0, table
    assert (facts["partitions"][0]["covered"], facts["partitions"][0]["not_on_disk"]) == (
        "0-24", "-")


@pytest.mark.kafka
def test_repair_writes_broken_cutouts_again_under_their_rows(alert_packets, broker, topic,
                                                             tmp_path: Path) -> None:
    broker.produce(topic, many_real_alerts(10, first_id=6_500_000_000))
    root = tmp_path / "out"
    consumer.consume(settings_for(broker, topic, root, "v2"))
    rows = csv_rows(root)
    science, difference = (root / rows[2]["science_cutout_path"],
                           root / rows[7]["difference_cutout_path"])
    originals = {science: science.read_bytes(), difference: difference.read_bytes()}
    science.unlink()
    difference.write_bytes(b"SIMPLE  =   broken")
    status, facts, table = verify(root, broker.bootstrap, topic, "v2")
    assert status == 1 and "difference_cutout_path not valid FITS" in table
    status, _, said = verify(root, broker.bootstrap, topic, "v2", "--repair")
    assert status == 0 and "wrote 0 alerts and 2 cutouts again" in said, said
    assert {path: path.read_bytes() for path in originals} == originals
    FIGURES["verify_refilled"] += 2
    assert csv_rows(root) == rows  # no row added: the rows were whole
    assert verify(root, broker.bootstrap, topic, "v2")[0] == 0


@pytest.mark.kafka
def test_repair_says_what_the_broker_no_longer_has_is_gone_for_good(
        alert_packets, broker, topic, tmp_path: Path) -> None:
    broker.produce(topic, many_real_alerts(8, first_id=6_600_000_000))
    root = tmp_path / "out"
    consumer.consume(settings_for(broker, topic, root, "v3"))
    for csv in (root / "data").glob("*.csv"):
        csv.unlink()
    # Another broker, which does not have the topic: nothing can be read again.
    with TansuBroker() as elsewhere:
        status, _, said = verify(root, elsewhere.bootstrap, topic, "v3", "--repair")
    assert status == 1
    assert "8 alerts are gone for good" in said
    assert f"{topic}: the broker does not have this topic" in said


def test_without_kafka_settings_verify_says_the_partition_check_needs_the_broker(
        tmp_path: Path) -> None:
    from .test_merge import consume_files, write_alert_files

    write_alert_files(tmp_path / "alerts", 3, seed=43)
    root = tmp_path / "out"
    consume_files(root, tmp_path / "alerts")
    status, facts, table = verify(root, None, "", "")
    assert status == 0 and facts["partitions"] is None
    assert "the partition check needs the broker: no Kafka settings given" in table
