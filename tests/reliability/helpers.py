"""Building blocks of the reliability suite: simulated alerts, consumer processes, verification."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits

import lsst_alert_pipeline
from lsst_alert_pipeline import config
from lsst_alert_pipeline.config import Settings
from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.normalize import normalize
from lsst_alert_pipeline.decode.schemas import latest_version
from lsst_alert_pipeline.pipeline.outputdir import TEMP_PREFIX
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts

from ..alerts import csv_rows
from .figures import FIGURES

SRC = Path(lsst_alert_pipeline.__file__).resolve().parents[1]
# The command line with the crash tests' fault hook (LSST_ALERT_PIPELINE_FAULT) installed.
FAULT_CONSUMER = Path(__file__).resolve().parents[1] / "fault_consumer.py"
CUTOUT_KINDS = ("science", "template", "difference")


@dataclass
class SimulatedAlerts:
    payloads: list[bytes]
    ids: list[int]
    _cutouts: dict[int, dict[str, bytes | None]] = field(default_factory=dict)

    def cutouts(self, dia_source_id: int) -> dict[str, bytes | None]:
        """The cutout bytes the alert carries, by kind (decoded on first use)."""
        if not self._cutouts:
            for payload in self.payloads:
                record = normalize(decode_message(payload)[0])
                assert isinstance(record.diaSourceId, int)
                self._cutouts[record.diaSourceId] = record.cutouts
        return self._cutouts[dia_source_id]


def simulated_alerts(count: int, seed: int) -> SimulatedAlerts:
    """Wire alerts from the simulator, with short histories (0-5 previous sources)."""
    version = latest_version()
    payloads, ids = [], []
    for alert in simulate_alerts(count, seed=seed, history=(0, 5)):
        payloads.append(encode_wire(alert, version))
        ids.append(int(alert["diaSource"]["diaSourceId"]))
    assert len(set(ids)) == count, "the simulator repeated a diaSourceId"
    return SimulatedAlerts(payloads, ids)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a consumer subprocess: this source tree first on the path."""
    env = {k: v for k, v in os.environ.items() if k != "LSST_ALERT_PIPELINE_FAULT"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return {**env, **extra}


def consume_command(bootstrap: str, topic: str, output: Path, *args: str) -> list[str]:
    """`lsst-alerts consume` as a subprocess command.

    The short session is test tuning: a SIGKILLed member stays in the group until its session
    expires, and every restart waits for that (~11 s at 6 s; ~4 s at 1.5 s on Tansu)."""
    return [sys.executable, str(FAULT_CONSUMER), "consume",
            "--bootstrap-servers", bootstrap, "--topic", topic, "--group-id", f"g-{topic}",
            "--output-dir", str(output), "-X", "session.timeout.ms=1500",
            "-X", "heartbeat.interval.ms=300", "--idle-timeout", "30", *args]


def wait_for(condition: Callable[[], bool], timeout: float, what: str,
             interval: float = 0.05) -> None:
    """Poll until the condition holds; fail naming what was awaited after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def count_files(folder: Path) -> int:
    try:
        return sum(1 for _ in os.scandir(folder))
    except FileNotFoundError:
        return 0


def temp_files(output: Path) -> list[Path]:
    return [p for p in output.rglob(TEMP_PREFIX + "*")]


def verify_exactly_once(output: Path, alerts: SimulatedAlerts, expected: set[int],
                        open_with_astropy: bool = True, partial: bool = False) -> set[int]:
    """Every expected alert once in the CSV with valid, identical cutouts; no temp files left.

    `partial`: a run that stopped early, some expected alerts may be missing. Counts what it
    checked (and any loss or duplicate) in the suite's figures; returns the ids found."""
    rows = csv_rows(output)
    seen = Counter(int(row["diaSourceId"]) for row in rows)
    lost = set() if partial else expected - set(seen)
    duplicated = sum(n - 1 for n in seen.values() if n > 1)
    unexpected = set(seen) - expected
    FIGURES["lost"] += len(lost)
    FIGURES["duplicated"] += duplicated
    assert not lost, f"{len(lost)} alerts lost, e.g. {sorted(lost)[:5]}"
    assert not duplicated, f"{duplicated} duplicate rows: {seen.most_common(3)}"
    assert not unexpected, f"rows of alerts never published: {sorted(unexpected)[:5]}"
    for row in rows:
        carried = alerts.cutouts(int(row["diaSourceId"]))
        for kind in CUTOUT_KINDS:
            blob = carried[kind]
            assert blob is not None
            path = output / row[f"{kind}_cutout_path"]
            assert path.is_file(), f"{path} named in the CSV does not exist"
            written = path.read_bytes()
            assert written == blob, f"{path} differs from the alert's {kind} cutout"
            if open_with_astropy:
                with fits.open(io.BytesIO(written)) as hdus:
                    assert hdus[0].data is not None
    assert not temp_files(output), f"temp files left: {temp_files(output)[:3]}"
    archived = archived_ids(output)
    if archived is not None:  # every CSV alert once in the archive's files on disk, no other
        assert sorted(archived) == sorted(seen), "the archive's alerts differ from the CSV's"
    if not partial:
        FIGURES["verified"] += len(rows)
    return set(seen)


def archived_ids(output: Path) -> list[int] | None:
    """The diaSourceId of every row in the archive's Parquet files on disk (None: no archive)."""
    files = sorted(output.glob("archive/*/*.parquet"))
    if not files:
        return None
    import duckdb

    rows = duckdb.sql(f"SELECT diaSourceId FROM read_parquet({[str(f) for f in files]!r}, "
                      "union_by_name = true)").fetchall()
    return [int(row[0]) for row in rows]


def run_to_completion(command: list[str], log: Path, timeout: float = 180,
                      **env: str) -> subprocess.CompletedProcess[str]:
    with open(log, "a") as stderr:
        finished = subprocess.run(command, stderr=stderr, stdout=subprocess.DEVNULL, text=True,
                                  timeout=timeout, env=subprocess_env(**env))
    return finished


def settings_for(bootstrap: str, topic: str, output: Path, **extra: object) -> Settings:
    """In-process consumer settings; a 6 s session (the broker's minimum in real Kafka)."""
    flags: dict[str, object] = {
        "topics": [topic], "output_dir": str(output), "idle_timeout": 20,
        "kafka": {"bootstrap.servers": bootstrap, "group.id": f"g-{topic}",
                  "session.timeout.ms": 6000}}
    flags.update(extra)
    return config.load(environ={}, flags=flags)


def committed_offset(bootstrap: str, group: str, topic: str) -> int:
    """The group's committed offset on partition 0 (0 when it has committed nothing)."""
    from confluent_kafka import Consumer, TopicPartition

    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        found = probe.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
    finally:
        probe.close()
    return max(int(found), 0)
