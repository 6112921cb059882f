"""`verify` against the broker: per partition, the group's committed offset and the watermarks
beside the offsets the ledger recorded as durable (its `offset_ranges`).

Offsets are half-open spans [first, end). Committed offsets the ledger does not cover are
explained when they can be (recorded as lost to retention, or before the first range the ledger
recorded: where the group started, or a reset); the rest were committed without being written,
which is a loss. Offsets covered but not yet committed are fine: the next run skips them.
Nothing here joins the group or commits: a plain consumer with the group's id asks `committed()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..pipeline.ledger import Ledger, Span, minus
from ..sources.kafka_settings import CONSUMER_DEFAULTS, librdkafka_config


def within(spans: list[Span], low: int, high: int) -> list[Span]:
    """The parts of `spans` inside [low, high)."""
    return [(max(a, low), min(b, high)) for a, b in spans if min(b, high) > max(a, low)]


def merged(spans: list[Span]) -> list[Span]:
    """The spans sorted, those that touch or overlap joined."""
    out: list[Span] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def group_of(kafka: dict[str, Any]) -> str:
    """The consumer group these settings read as."""
    return str(kafka.get("group.id") or CONSUMER_DEFAULTS["group.id"])


def size(spans: list[Span]) -> int:
    return sum(b - a for a, b in spans)


def words(spans: list[Span]) -> str:
    """Spans as a user reads them: 0-9, 22-29 (inclusive), or '-' for none."""
    return ", ".join(f"{a}-{b - 1}" if b - a > 1 else str(a) for a, b in spans) or "-"


@dataclass
class PartitionCheck:
    topic: str
    partition: int
    low: int
    high: int
    committed: int | None
    covered: list[Span] = field(default_factory=list)
    lost_to_retention: list[Span] = field(default_factory=list)
    before_first: list[Span] = field(default_factory=list)
    not_on_disk: list[Span] = field(default_factory=list)
    ahead: list[Span] = field(default_factory=list)

    @property
    def lag(self) -> int:
        return max(self.high - max(self.committed or 0, self.low), 0)

    def as_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "low": self.low,
                "high": self.high, "committed": -1 if self.committed is None else self.committed,
                "lag": self.lag, "covered": words(self.covered),
                "covered_count": size(self.covered),
                "lost_to_retention": words(self.lost_to_retention),
                "before_first_range": words(self.before_first),
                "not_on_disk": words(self.not_on_disk),
                "not_on_disk_count": size(self.not_on_disk),
                "covered_not_committed": words(self.ahead)}


def check_partition(topic: str, partition: int, low: int, high: int, committed: int | None,
                    covered: list[Span], losses: list[Span]) -> PartitionCheck:
    """Compare what the group committed with what the ledger covers on one partition."""
    check = PartitionCheck(topic, partition, low, high, committed, merged(covered))
    done = committed or 0
    uncovered = minus([(0, done)], check.covered)
    check.lost_to_retention = within(sorted(losses), 0, done)
    rest = minus(uncovered, check.lost_to_retention)
    start = check.covered[0][0] if check.covered else done
    check.before_first = within(rest, 0, start)
    check.not_on_disk = minus(rest, check.before_first)
    check.ahead = within(check.covered, done, max(high, done) + 1)
    return check


def broker_positions(kafka: dict[str, Any], topics: list[str]
                     ) -> tuple[list[tuple[str, int, int, int, int | None]], list[str]]:
    """(topic, partition, low, high, committed or None) of every partition of the topics, asked
    without joining the group and without committing anything; and the topics not found."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**CONSUMER_DEFAULTS, **librdkafka_config(kafka),
                         "enable.auto.commit": False, "socket.timeout.ms": 10000})
    try:
        metadata = consumer.list_topics(timeout=10)
        rows = []
        missing = [topic for topic in topics if topic not in metadata.topics]
        for topic in topics:
            if topic in missing:
                continue
            partitions = [TopicPartition(topic, p)
                          for p in sorted(metadata.topics[topic].partitions)]
            for tp in consumer.committed(partitions, timeout=10):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition),
                                                           timeout=10, cached=False)
                rows.append((topic, tp.partition, int(low), int(high),
                             int(tp.offset) if tp.offset >= 0 else None))
        return rows, missing
    finally:
        consumer.close()


def ledger_spans(ledger: Ledger, group: str) -> tuple[dict[tuple[str, int], list[Span]],
                                                      dict[tuple[str, int], list[Span]]]:
    """Per partition: the offsets the ledger covers for the group (and those recorded before
    ranges named their group), and those it recorded lost to retention."""
    covered: dict[tuple[str, int], list[Span]] = {}
    for span in [*ledger.offsets_covered(group), *ledger.offsets_covered("")]:
        covered.setdefault((span["topic"], span["partition"]), []).append(
            (span["first"], span["last"] + 1))
    losses: dict[tuple[str, int], list[Span]] = {}
    for loss in ledger.retention_losses():
        losses.setdefault((loss["topic"], loss["partition"]), []).append(
            (loss["from"], loss["to"]))
    return covered, losses


def check_partitions(ledger: Ledger, kafka: dict[str, Any],
                     topics: list[str]) -> tuple[list[PartitionCheck], list[str]]:
    """Every partition of the ledger's topics (or `topics` when it records none) checked; and
    the topics the broker does not have (nothing of them can be compared or read again)."""
    covered, losses = ledger_spans(ledger, group_of(kafka))
    named = sorted({topic for topic, _ in covered} | {topic for topic, _ in losses}) or topics
    positions, missing = broker_positions(kafka, named)
    return [check_partition(topic, partition, low, high, committed,
                            covered.get((topic, partition), []),
                            losses.get((topic, partition), []))
            for topic, partition, low, high, committed in positions], missing
