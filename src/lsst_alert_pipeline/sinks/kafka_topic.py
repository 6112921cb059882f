"""A Kafka topic as an output: what `relay`, `simulate --out kafka://` and the test broker produce
through."""

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
