"""Publishing wire-format alerts to a Kafka topic, as Rubin does (`simulate --out kafka://...`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigurationError
from ..sinks.kafka_topic import produce_waiting
from ..sources import kafka_url
from ..sources.kafka_url import is_kafka_url


@dataclass(frozen=True)
class KafkaTarget:
    """Where to publish: a bootstrap server list and one topic."""

    bootstrap_servers: str
    topic: str


@dataclass
class PublishReport:
    """What happened to the messages handed to the producer."""

    sent: int = 0
    delivered: int = 0
    errors: list[str] = field(default_factory=list)


def parse_kafka_url(url: str) -> KafkaTarget | None:
    """kafka://HOST:PORT/TOPIC as a target; None for anything that is not a kafka:// URL."""
    if not is_kafka_url(url):
        return None
    return KafkaTarget(*kafka_url.parse_kafka_url(url))


def publish(
    messages: Iterable[tuple[bytes, bytes]],
    target: KafkaTarget,
    *,
    producer_config: dict[str, Any] | None = None,
    on_sent: Callable[[], None] | None = None,
    flush_timeout: float = 60.0,
) -> PublishReport:
    """Produce (key, value) messages, wait for every delivery report, and say how it went."""
    from confluent_kafka import KafkaException, Producer

    report = PublishReport()
    config = {
        "bootstrap.servers": target.bootstrap_servers,
        # A history-heavy alert is ~300 KB; leave room above librdkafka's 1 MB default.
        "message.max.bytes": 8_000_000,
        "linger.ms": 20,
        **(producer_config or {}),
    }
    try:
        producer = Producer(config)
    except KafkaException as exc:
        raise ConfigurationError(f"cannot create a Kafka producer for {target}: {exc}") from exc

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            report.errors.append(f"key {message.key()!r}: {error}")
        else:
            report.delivered += 1

    for key, value in messages:
        produce_waiting(producer, target.topic, value, key=key, on_delivery=delivered)
        report.sent += 1
        if on_sent is not None:
            on_sent()
    left = producer.flush(flush_timeout)
    if left:
        report.errors.append(
            f"{left} messages still undelivered after {flush_timeout:.0f} s "
            f"(is {target.bootstrap_servers} reachable?)"
        )
    return report
