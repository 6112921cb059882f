"""The relay commits an input only after the broker acknowledged its outputs.

Real parts throughout: raw alerts on the suite's Tansu broker, the relay's output on a second
Tansu broker that is stopped (SIGSTOP) in the middle of the relay, the bundled filter run by the
DevKit. A message the broker refused, or never acknowledged, leaves its input uncommitted; the
rerun then publishes every passing alert.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.schemas import latest_version
from lsst_alert_pipeline.filter.devkit_run import load_filter, run_on_alert
from lsst_alert_pipeline.filter.relay import RelayDeliveryError, relay
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts
from lsst_alert_pipeline.sources.base import Message
from lsst_alert_pipeline.sources.kafka import KafkaSource
from lsst_alert_pipeline.testing.broker import TansuBroker

from .figures import FIGURES
from .helpers import committed_offset

pytestmark = pytest.mark.kafka
BATCH = 20


def raw_alerts(count: int, seed: int) -> list[bytes]:
    """Simulated wire alerts, most of them solar-system ones (the bundled filter passes those)."""
    return [encode_wire(record, latest_version())
            for record in simulate_alerts(count, seed=seed, history=0, sso_fraction=0.8)]


def passing(payloads: list[bytes]) -> list[int | None]:
    """Per input message, the diaSourceId the relay publishes (None: the filter rejects it)."""
    instance = load_filter()()
    out: list[int | None] = []
    for payload in payloads:
        result = run_on_alert(instance, decode_message(payload)[0], "expected")
        out.append(int(result.diaSourceId) if result.passed and result.diaSourceId else None)
    return out


def published(bootstrap: str, topic: str) -> list[int]:
    """The keys (diaSourceIds) of every message on a single-partition topic."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader",
                       "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        reader.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        keys: list[int] = []
        while True:
            message = reader.poll(10)
            assert message is not None, f"no end of {topic} after {len(keys)} messages"
            if message.error() is not None and message.error().code() == KafkaError._PARTITION_EOF:
                return keys
            assert message.error() is None, message.error()
            keys.append(int(message.key()))
    finally:
        reader.close()


class StoppingSource(KafkaSource):
    """The real Kafka source; when it has handed out `after` batches, the output broker stops."""

    def __init__(self, config: dict[str, Any], topics: list[str], output: TansuBroker,
                 after: int):
        super().__init__(config, topics)
        self.output, self.after, self.batches = output, after, 0

    def poll_batch(self, max_messages: int, timeout: float) -> list[Message]:
        batch = super().poll_batch(max_messages, timeout)
        if batch:
            self.batches += 1
            if self.batches == self.after + 1:
                self.output.pause()  # the broker stops answering, mid-relay
        return batch


def run_relay(source: KafkaSource, producer: Producer, topic: str) -> RelayDeliveryError | None:
    """Relay until caught up; the delivery error that stopped it, if one did."""
    try:
        relay(source, producer, topic, load_filter(), batch_size=BATCH, flush_timeout=15)
    except RelayDeliveryError as exc:
        return exc
    finally:
        source.close()
    return None


def check_commit_point(inputs: list[bytes], committed: int, output: list[int]) -> None:
    """Every passing alert of an input before the committed offset was acknowledged."""
    expected = passing(inputs[:committed])
    missing = {i for i in expected if i is not None} - set(output)
    FIGURES["lost"] += len(missing)
    assert not missing, f"committed past {len(missing)} unacknowledged outputs"


def test_relay_with_its_output_broker_stopped_commits_only_what_was_acknowledged(
        broker, topic, tmp_path: Path) -> None:
    inputs = raw_alerts(200, seed=41)
    broker.produce(topic, inputs)
    group = f"relay-{topic}"
    with TansuBroker(log_path=tmp_path / "out-broker.log") as output:
        output.create_topic("passed")
        source = StoppingSource({"bootstrap.servers": broker.bootstrap, "group.id": group},
                                [topic], output, after=3)
        source.connect()
        producer = Producer({"bootstrap.servers": output.bootstrap, "message.timeout.ms": 3000})
        failure: list[RelayDeliveryError | None] = []
        worker = threading.Thread(target=lambda: failure.append(
            run_relay(source, producer, "passed")))
        worker.start()
        worker.join(120)
        output.resume()
        assert failure and failure[0] is not None, "the relay went on with its broker stopped"
        print(f"\nrelay outage: {failure[0]}")
        committed = committed_offset(broker.bootstrap, group, topic)
        assert 3 * BATCH <= committed < len(inputs)  # stopped in the fourth batch
        check_commit_point(inputs, committed, published(output.bootstrap, "passed"))
        rerun = KafkaSource({"bootstrap.servers": broker.bootstrap, "group.id": group}, [topic])
        rerun.connect()
        assert run_relay(rerun, Producer({"bootstrap.servers": output.bootstrap}),
                         "passed") is None
        assert committed_offset(broker.bootstrap, group, topic) == len(inputs)
        expected = {i for i in passing(inputs) if i is not None}
        assert set(published(output.bootstrap, "passed")) == expected
    FIGURES["relay_outages"] += 1


def test_an_output_over_the_size_limit_stops_the_relay_before_its_input_is_committed(
        broker, topic) -> None:
    inputs = raw_alerts(60, seed=43)
    wanted = passing(inputs)
    big = next(index for index, found in enumerate(wanted) if found and index > BATCH)
    record = list(simulate_alerts(60, seed=43, history=0, sso_fraction=0.8))[big]
    record["cutoutScience"] = record["cutoutScience"] + b"\0" * 2880 * 100  # ~300 KB
    inputs[big] = encode_wire(record, latest_version())
    broker.produce(topic, inputs)
    group, out_topic = f"relay-{topic}", f"{topic}-passed"
    broker.create_topic(out_topic)
    source = KafkaSource({"bootstrap.servers": broker.bootstrap, "group.id": group}, [topic])
    source.connect()
    small = Producer({"bootstrap.servers": broker.bootstrap, "message.max.bytes": 200_000})
    failure = run_relay(source, small, out_topic)
    assert failure is not None and "too large" in str(failure).lower(), failure
    assert committed_offset(broker.bootstrap, group, topic) == big
    check_commit_point(inputs, big, published(broker.bootstrap, out_topic))
    rerun = KafkaSource({"bootstrap.servers": broker.bootstrap, "group.id": group}, [topic])
    rerun.connect()
    roomy = Producer({"bootstrap.servers": broker.bootstrap, "message.max.bytes": 10_000_000})
    assert run_relay(rerun, roomy, out_topic) is None
    assert set(published(broker.bootstrap, out_topic)) == {i for i in wanted if i is not None}
    FIGURES["relay_outages"] += 1
