"""The Kafka client settings our consumers start from, and the keys librdkafka must not see."""

from __future__ import annotations

from typing import Any

from .kafka_log import librdkafka_logger

# A batch is at most this many bytes of messages, whatever --batch-size says. Room for the
# default 500 alerts of the realistic mix (~145 KB each): at 32 MB a batch held ~220, and each
# batch pays an offset commit's round trip, a sync and its last wait for the fetcher. Measured
# on 6,000 alerts from the test broker, alternating: 544-687 alerts/s at 32 MB, 809-818 at
# 80 MB, peak RSS 1.11-1.27 GB against 1.25-1.34 GB.
BATCH_BYTES = 80 * 1024 * 1024
# Defaults a user may override; a short session makes a cron run's group form in seconds, not ~23.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "group.id": "lsst-alert-consumer",
    "auto.offset.reset": "earliest",
    "session.timeout.ms": 10000,
    "fetch.message.max.bytes": 10 * 1024 * 1024,
    # librdkafka's own read-ahead: two batches (BATCH_BYTES), so that the next batch is
    # fetched while one is decoded. At its default (64 MB, less than one batch of the mix) the
    # prefetch thread waited for the broker after every batch. Measured on 6,000 alerts of the
    # mix from the test broker, alternating, with 80 MB batches: 767-805 alerts/s at 64 MB,
    # 1,083-1,094 at 160 MB (the wait for the broker 4.1 s -> 0.35 s, the commits' 1.4 s ->
    # 0.06 s); peak RSS 1.20-1.29 GB against 1.46-1.53 GB.
    "queued.max.messages.kbytes": 2 * BATCH_BYTES // 1024,
    # librdkafka's lines through our log, each kind once (kafka_log.py), not raw to stderr.
    "logger": librdkafka_logger(),
}
# Ours to decide, whatever the configuration says: commits follow durability, never a timer.
CONSUMER_FORCED: dict[str, Any] = {"enable.auto.commit": False, "enable.auto.offset.store": False}
# Keys of the kafka settings that are ours (the decoder's Schema Registry client reads them, as
# Confluent's clients name them), not librdkafka's, which refuses keys it does not know.
NOT_FOR_LIBRDKAFKA = frozenset({"schema.registry.url", "basic.auth.user.info",
                                "basic.auth.credentials.source"})


def librdkafka_config(kafka: dict[str, Any]) -> dict[str, Any]:
    """The user's kafka settings without the keys that are ours, not librdkafka's."""
    return {key: value for key, value in kafka.items() if key not in NOT_FOR_LIBRDKAFKA}
