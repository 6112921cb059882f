"""Where a consumer group stands: committed offsets, watermarks, lag, alerts lost to retention,
and the choice of a new position for --reset-offsets. Pure functions; Kafka calls stay in
sources/kafka.py and `describe_group`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from ..errors import ConfigurationError
from .kafka_settings import CONSUMER_DEFAULTS, librdkafka_config


def parse_reset(spec: str) -> str:
    """Validate --reset-offsets: earliest, latest or an ISO-8601 time (UTC when no zone)."""
    if spec in ("earliest", "latest"):
        return spec
    try:
        reset_time(spec)
    except ValueError as exc:
        raise ConfigurationError(
            f"--reset-offsets {spec!r}: expected earliest, latest or an ISO-8601 time such as "
            "2026-02-10T23:00:00Z") from exc
    return spec


def reset_time(spec: str) -> int:
    """Milliseconds since the epoch of an ISO-8601 time; a time without zone is UTC."""
    moment = dt.datetime.fromisoformat(spec.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def resolve_reset(spec: str, low: int, high: int, offset_for_time: Callable[[int], int]) -> int:
    """The offset --reset-offsets moves a partition to.

    earliest: the low watermark; latest: the high watermark; a time: the first offset at or
    after it as the broker's offsets-for-times answers, the high watermark when there is none
    (-1), and never below the low watermark (what retention deleted cannot be read)."""
    if spec == "earliest":
        return low
    if spec == "latest":
        return high
    found = offset_for_time(reset_time(spec))
    if found < 0:
        return high
    return min(max(found, low), high)


def describe_partition(topic: str, partition: int, committed: int | None, low: int,
                       high: int) -> dict[str, int | str]:
    """One row of `offsets`: committed (-1 when none), watermarks, lag, lost to retention."""
    start = low if committed is None else max(committed, low)
    lost = 0 if committed is None else max(low - committed, 0)
    return {"topic": topic, "partition": partition,
            "committed": -1 if committed is None else committed, "low": low, "high": high,
            "lag": max(high - start, 0), "lost_to_retention": lost}


def describe_group(kafka: dict[str, Any], topics: list[str] | None) -> list[dict[str, int | str]]:
    """Committed offset, watermarks, lag and retention loss per partition of the group's topics."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**CONSUMER_DEFAULTS,
                         **librdkafka_config(kafka),
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=15)
        names = topics or sorted(t for t in metadata.topics if not t.startswith("__"))
        rows = []
        for name in names:
            if name not in metadata.topics:
                raise ConfigurationError(f"topic {name!r} not found on the broker")
            partitions = [TopicPartition(name, p) for p in sorted(metadata.topics[name].partitions)]
            committed = consumer.committed(partitions, timeout=15)
            for tp in committed:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, tp.partition),
                                                           timeout=15, cached=False)
                offset = tp.offset if tp.offset >= 0 else None
                rows.append(describe_partition(name, tp.partition, offset, low, high))
        return rows
    finally:
        consumer.close()


def list_topics(kafka: dict[str, Any], prefix: str = "") -> list[dict[str, int | str]]:
    """Topics the credentials can see, with partition and message counts."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**librdkafka_config(kafka),
                         "group.id": kafka.get("group.id", "lsst-alerts-topics"),
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=15)
        rows: list[dict[str, int | str]] = []
        for name in sorted(metadata.topics):
            if name.startswith("__") or not name.startswith(prefix):
                continue
            messages = 0
            for partition in metadata.topics[name].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, partition),
                                                           timeout=15, cached=False)
                messages += high - low
            rows.append({"topic": name, "partitions": len(metadata.topics[name].partitions),
                         "messages": messages})
        return rows
    finally:
        consumer.close()
