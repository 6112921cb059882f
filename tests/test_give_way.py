"""Two members wrote the same alerts (a partition moved while one held a batch): the ledger
records exactly one member's copy, and the other takes its own copy back and writes the rest.

These tests interleave two members in one thread, deterministically; tests/reliability/
test_rebalance.py makes the same race happen through a real rebalance on a real broker."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from lsst_alert_pipeline.decode.schemas import latest_version
from lsst_alert_pipeline.pipeline.ledger import (
    AlertsTaken,
    BatchRecord,
    DeadLetter,
    Ledger,
    OffsetRange,
    WrittenAlert,
    covered_through,
)
from lsst_alert_pipeline.pipeline.outputdir import OutputDir
from lsst_alert_pipeline.pipeline.run import Pipeline
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts
from lsst_alert_pipeline.sources.base import Message
from lsst_alert_pipeline.sources.files import FileSource

from .alerts import csv_rows
from .reliability.helpers import archived_ids


def partition_messages(count: int, seed: int) -> tuple[list[Message], list[str]]:
    """Simulated wire alerts as the messages of partition 0 of topic `t`; their ids."""
    messages, ids = [], []
    for offset, alert in enumerate(simulate_alerts(count, seed=seed, history=(0, 2))):
        messages.append(Message(encode_wire(alert, latest_version()), f"t/0/{offset}", "t", 0,
                                offset))
        ids.append(str(alert["diaSource"]["diaSourceId"]))
    return messages, ids


def test_the_ledger_records_nothing_of_a_batch_whose_alerts_another_member_recorded(
        tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.record_batch(BatchRecord(
        [WrittenAlert("1", "members/b/data/x.csv"), WrittenAlert("2", "members/b/data/x.csv")],
        {"members/b/data/x.csv": 300}, offset_ranges=[OffsetRange("t", 0, 0, 1, 2)],
        output="members/b", group="g"))
    with pytest.raises(AlertsTaken) as refused:
        ledger.record_batch(BatchRecord(
            [WrittenAlert("2", "members/a/data/x.csv"), WrittenAlert("3", "members/a/data/x.csv")],
            {"members/a/data/x.csv": 400}, [DeadLetter("dead", "why")],
            offset_ranges=[OffsetRange("t", 0, 1, 2, 2)], output="members/a", group="g"))
    assert refused.value.ids == {"2"}
    assert ledger.homes(["1", "2", "3"]) == {"1": "members/b/data/x.csv",
                                             "2": "members/b/data/x.csv"}
    assert "members/a/data/x.csv" not in ledger.csv_lengths()
    assert ledger.deadletter_count() == 0
    assert [(s["first"], s["last"]) for s in ledger.offsets_covered()] == [(0, 1)]
    ledger.close()


def test_a_new_owner_resumes_after_the_range_its_group_recorded(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path)
    for span in [("t", 0, 0, 9, 10), ("t", 0, 10, 19, 10), ("t", 0, 30, 39, 10)]:
        ledger.record_batch(BatchRecord(offset_ranges=[OffsetRange(*span)], group="g"))
    ledger.record_batch(BatchRecord(offset_ranges=[OffsetRange("t", 0, 20, 29, 10)],
                                    group="other"))
    ledger.close()
    assert covered_through(path, "g", "t", 0, 0) == 19  # right at the start of the range
    assert covered_through(path, "g", "t", 0, 12) == 19
    assert covered_through(path, "g", "t", 0, 20) is None  # another group's batch
    assert covered_through(path, "other", "t", 0, 20) == 29
    assert covered_through(path, "g", "t", 1, 0) is None
    assert covered_through(path, "g", "u", 0, 0) is None


def test_a_member_whose_alerts_another_recorded_meanwhile_writes_only_the_rest(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    messages, ids = partition_messages(20, seed=41)
    root = tmp_path / "lsst_alerts"
    a, b = OutputDir(root, "a").open(), OutputDir(root, "b").open()
    member_a, member_b = Pipeline(a), Pipeline(b)
    real_write = member_a.write
    writes = []

    def write_then_lose_the_partition(*args, **kwargs):  # type: ignore[no-untyped-def]
        outcome = real_write(*args, **kwargs)
        writes.append(len(outcome.written))
        if len(writes) == 1:  # the partition's new owner writes the first half meanwhile
            member_b.deliver(FileSource([]), messages[:10])
        return outcome

    member_a.write = write_then_lose_the_partition  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING):
        outcome = member_a.deliver(FileSource([]), messages)
    assert writes == [20, 10]
    assert len(outcome.written) == 10 and outcome.already_written == 10
    assert "t/0 moved to another member while this batch was written" in caplog.text
    assert "10 alerts it had already written are left to it" in caplog.text
    written = {name: [row["diaSourceId"] for row in csv_rows(root / "members" / name)]
               for name in ("a", "b")}
    assert written["b"] == ids[:10] and written["a"] == ids[10:]
    for name in ("a", "b"):  # each member's archive holds exactly its CSV's alerts
        assert sorted(map(str, archived_ids(root / "members" / name) or [])) == sorted(
            written[name])
    cutouts_of_a = Counter(p.name.split("_")[0] for p in (root / "members/a/cutouts").iterdir())
    assert set(cutouts_of_a) == set(ids[10:])
    assert a.ledger is not None
    homes = a.ledger.homes(ids)
    assert all(homes[i].startswith("members/b/data/") for i in ids[:10])
    assert all(homes[i].startswith("members/a/data/") for i in ids[10:])
    a.close()
    b.close()
