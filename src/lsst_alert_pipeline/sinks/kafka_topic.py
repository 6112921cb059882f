"""Producing to a Kafka topic: `produce_waiting`, the full-queue retry shared by `relay`,
`simulate --out kafka://` and the test broker."""

from __future__ import annotations

from typing import Any


def produce_waiting(producer: Any, topic: str, value: bytes, **kwargs: Any) -> None:
    """Produce one message; while the local queue is full, serve delivery reports until there
    is room (confluent-kafka raises BufferError rather than blocking)."""
    while True:
        try:
            producer.produce(topic, value, **kwargs)
            break
        except BufferError:
            producer.poll(0.1)
    producer.poll(0)
