"""`lsst-alerts simulate`: a night of simulated alerts written where asked, a folder of wire
files, one Avro container file, or a Kafka topic, with a summary of what was written."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .encode import encode_wire, iter_wire_files, write_container
from .packets import dia_source_id_of, simulate_alerts
from .publish import parse_kafka_url, publish

OutputFormat = Literal["wire", "ocf"]


@dataclass
class SimulationReport:
    """What a simulation wrote, how fast, and which messages a Kafka topic did not take."""

    count: int
    version: str
    seed: int
    out: str
    seconds: float = 0.0
    written_bytes: int = 0
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The one-line summary `simulate` prints."""
        seconds = max(self.seconds, 1e-9)
        size = (f", {self.written_bytes / self.count / 1024:,.0f} KB per alert"
                if self.written_bytes else "")
        return (f"simulated {self.count:,} alerts (schema {self.version}, seed {self.seed}) to "
                f"{self.out} in {seconds:.1f} s ({self.count / seconds:,.0f} alerts/s{size})")


def simulate_to(out: str, count: int, version: str, *, sso_fraction: float = 0.1, seed: int = 0,
                history: int | None = None, output_format: OutputFormat = "wire",
                on_alert: Callable[[], None] | None = None) -> SimulationReport:
    """Simulate `count` alerts into kafka://HOST:PORT/TOPIC, an .avro container (`ocf`) or a
    folder of wire files; `on_alert` is called as each alert is written or sent."""
    tick = on_alert or (lambda: None)
    alerts = simulate_alerts(count, schema_version=version, sso_fraction=sso_fraction, seed=seed,
                             history=history)
    report = SimulationReport(count, version, seed, out)
    started = time.monotonic()
    target = parse_kafka_url(out)
    if target is not None:
        messages = ((str(dia_source_id_of(a)).encode("ascii"), encode_wire(a, version))
                    for a in alerts)
        report.errors = publish(messages, target, on_sent=tick).errors
    elif output_format == "ocf":
        write_container(_ticking(alerts, tick), out, version)
        report.written_bytes = Path(out).stat().st_size
    else:
        for path in iter_wire_files(alerts, out, version):
            report.written_bytes += path.stat().st_size
            tick()
    report.seconds = time.monotonic() - started
    return report


def _ticking(alerts: Iterable[dict[str, Any]], tick: Callable[[], None]
             ) -> Iterator[dict[str, Any]]:
    for alert in alerts:
        yield alert
        tick()
