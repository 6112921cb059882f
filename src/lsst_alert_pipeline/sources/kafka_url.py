"""`kafka://HOST:PORT/TOPIC` addresses, as `simulate --out` and `relay --from/--to` take them."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import ConfigurationError


def is_kafka_url(text: str) -> bool:
    return text.startswith("kafka://")


def parse_kafka_url(text: str) -> tuple[str, str]:
    """(bootstrap servers, topic) of kafka://HOST:PORT[,HOST:PORT]/TOPIC."""
    parts = urlsplit(text)
    topic = parts.path.lstrip("/")
    if parts.scheme != "kafka" or not parts.netloc or not topic or "/" in topic:
        raise ConfigurationError(
            f"{text!r} is not a Kafka address; write kafka://HOST:PORT/TOPIC")
    return parts.netloc, topic
