"""Choosing positions and reading where a group stands: pure logic, no broker."""

from __future__ import annotations

import pytest

from lsst_alert_pipeline.errors import ConfigurationError
from lsst_alert_pipeline.pipeline.ledger import (
    BatchRecord,
    Ledger,
    OffsetRange,
    offset_ranges,
    uncounted,
)
from lsst_alert_pipeline.sources.offsets import (
    describe_partition,
    parse_reset,
    reset_time,
    resolve_reset,
)
from lsst_alert_pipeline.sources.retention_watch import RetentionWatch, retention_gap


def never(_ms: int) -> int:
    raise AssertionError("offsets-for-times must not be asked for earliest/latest")


def test_earliest_and_latest_are_the_watermarks() -> None:
    assert resolve_reset("earliest", 40, 90, never) == 40
    assert resolve_reset("latest", 40, 90, never) == 90


def test_a_time_takes_the_brokers_answer_within_the_watermarks() -> None:
    asked: list[int] = []

    def broker(ms: int) -> int:
        asked.append(ms)
        return 57

    assert resolve_reset("2026-02-10T23:00:00Z", 40, 90, broker) == 57
    assert asked == [reset_time("2026-02-10T23:00:00+00:00")]
    # No message at or after the time: the broker says -1, so start at the end.
    assert resolve_reset("2026-02-10T23:00:00Z", 40, 90, lambda ms: -1) == 90
    # An answer below what retention kept cannot be read: start at the low watermark.
    assert resolve_reset("2026-02-10T23:00:00Z", 40, 90, lambda ms: 3) == 40


def test_times_without_zone_are_utc_and_bad_specs_are_named() -> None:
    assert reset_time("2026-02-10T23:00:00") == reset_time("2026-02-10T23:00:00Z")
    assert reset_time("2026-02-10T20:00:00-03:00") == reset_time("2026-02-10T23:00:00Z")
    assert parse_reset("earliest") == "earliest"
    with pytest.raises(ConfigurationError, match="ISO-8601"):
        parse_reset("yesterday")


def test_describe_partition_counts_lag_and_retention_loss() -> None:
    assert describe_partition("t", 0, None, 0, 10)["lag"] == 10
    row = describe_partition("t", 1, 5, 20, 30)
    assert row["lost_to_retention"] == 15 and row["lag"] == 10
    done = describe_partition("t", 2, 30, 20, 30)
    assert done["lag"] == 0 and done["lost_to_retention"] == 0


def test_offset_ranges_span_each_partition_and_count_its_messages() -> None:
    positions = [("t", 1, 7), ("t", 0, 3), ("t", 0, 5), (None, None, None), ("t", 1, 8),
                 ("u", 0, 0)]
    assert offset_ranges(positions) == [("t", 0, 3, 5, 2), ("t", 1, 7, 8, 2), ("u", 0, 0, 0, 1)]


def test_covered_offsets_merge_touching_and_redelivered_ranges(tmp_path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    for span in [("t", 0, 0, 9, 10), ("t", 0, 10, 19, 10), ("t", 0, 15, 19, 5),
                 ("t", 0, 25, 29, 5), ("t", 1, 0, 4, 5)]:
        ledger.record_batch(BatchRecord(offset_ranges=[OffsetRange(*span)]))
    assert ledger.offsets_covered() == [
        {"topic": "t", "partition": 0, "first": 0, "last": 19, "batches": 3},
        {"topic": "t", "partition": 0, "first": 25, "last": 29, "batches": 1},
        {"topic": "t", "partition": 1, "first": 0, "last": 4, "batches": 1}]
    ledger.close()


def test_a_jump_is_a_loss_only_below_the_low_watermark() -> None:
    # Expected offset 10, the next message is 22: what retention deleted is below the low mark.
    assert retention_gap(10, 22, 22) == (10, 22)
    assert retention_gap(10, 22, 15) == (10, 15)  # 15..21 are still held: compaction, markers
    assert retention_gap(10, 22, 30) == (10, 22)  # the message itself is held: 22 is not lost
    assert retention_gap(10, 22, 10) is None  # a gap the broker holds is legitimate
    assert retention_gap(10, 11, 50) == (10, 11)  # one offset skipped and deleted
    assert retention_gap(10, 10, 50) is None  # no jump: nothing asked, nothing lost
    assert retention_gap(None, 22, 50) is None  # first message after an assignment


def test_a_loss_is_committed_past_only_when_recorded_and_what_came_before_is_committed() -> None:
    losses: list[dict[str, int | str]] = []
    watch = RetentionWatch(losses)
    asked: list[int] = []

    def low(key: tuple[str, int]) -> int:
        asked.append(1)
        return 22

    for offset in (8, 9, 22):
        watch.taken(("t", 0), offset, low)
    assert asked == [1]  # only the jump asks the broker
    assert losses == [{"topic": "t", "partition": 0, "from": 10, "to": 22, "lost": 12}]
    owned = {("t", 0)}
    # Not in the ledger yet: no commit may pass it.
    assert watch.past_losses({}, {("t", 0): 10}, owned) == {}
    assert watch.unrecorded() == losses and watch.unrecorded() == []
    # Offsets 8 and 9 not committed yet (committed at 8): not past the loss either.
    assert watch.past_losses({}, {("t", 0): 8}, owned) == {}
    assert watch.past_losses({("t", 0): 10}, {}, owned) == {("t", 0): 22}
    watch.committed({("t", 0): 22})
    assert watch.past_losses({}, {("t", 0): 10}, owned) == {}


def test_each_lost_offset_is_recorded_once(tmp_path) -> None:
    assert uncounted(10, 22, [(0, 5), (12, 15)]) == [(10, 12), (15, 22)]
    assert uncounted(10, 22, [(5, 30)]) == []
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.record_retention_losses([{"topic": "t", "partition": 0, "from": 10, "to": 22,
                                     "lost": 12}])
    # The next run found the same loss from the committed offset 6 at assignment.
    ledger.record_retention_losses([{"topic": "t", "partition": 0, "from": 6, "to": 22,
                                     "lost": 16}])
    assert ledger.retention_lost() == 16
    assert [(loss["from"], loss["to"]) for loss in ledger.retention_losses()] == [(10, 22),
                                                                                  (6, 10)]
    ledger.close()
