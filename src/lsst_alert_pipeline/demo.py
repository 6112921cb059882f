"""The demo: a night of simulated alerts run through the pipeline's stages, one function each.

simulate -> decode + normalize -> filter -> consume. The filter and consumer stages are being
written elsewhere; until they land, `filter_stage` passes everything and `consume_stage` prints a
summary. Each stage takes the previous stage's output, so slotting the real ones in is one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .decode import decode_message
from .errors import InvalidMessage
from .normalize import AlertRecord, normalize
from .schemas import latest_version
from .simulate import iter_wire_files, simulate_alerts

DEMO_COUNT = 3_000
DEMO_SEED = 20260305  # the simulated night's dayObs: same demo, same bytes, every time
DEMO_SSO_FRACTION = 0.1
EXTENDEDNESS_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)

Log = Callable[[str], None]


@dataclass
class DemoReport:
    """What the demo made and where it put it."""

    out_dir: Path
    incoming: Path
    written: int = 0
    decoded: int = 0
    bad: int = 0
    solar_system: int = 0
    passed_filter: int = 0
    extendedness_median_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def simulate_stage(incoming: Path, count: int, seed: int, log: Log) -> list[Path]:
    """Stage 1: a night of alerts as Rubin wire-format files in `incoming`."""
    version = latest_version()
    log(f"simulating {count:,} alerts (schema {version}, seed {seed}) into {incoming}")
    alerts = simulate_alerts(count, schema_version=version, sso_fraction=DEMO_SSO_FRACTION,
                             seed=seed)
    return list(iter_wire_files(alerts, incoming, version))


def decode_stage(paths: list[Path], log: Log) -> tuple[list[AlertRecord], int]:
    """Stage 2: every file decoded and normalized; (records, number of bad files)."""
    records: list[AlertRecord] = []
    bad = 0
    for path in paths:
        try:
            records.extend(normalize(alert) for alert in decode_message(path.read_bytes()))
        except InvalidMessage as exc:
            bad += 1
            log(f"bad file {path}: {exc.reason}")
    log(f"decoded {len(records):,} alerts, {bad} bad files")
    return records, bad


def filter_stage(records: list[AlertRecord], log: Log) -> list[AlertRecord]:
    """Stage 3 (hook): the ANTARES filter's decision; passes everything until the filter lands."""
    log("filter stage: not wired in yet, passing every alert")
    return records


def consume_stage(records: list[AlertRecord], out_dir: Path, log: Log) -> None:
    """Stage 4 (hook): the consumer's CSV and cutouts; summarizes what arrived until it lands."""
    log("consumer stage: not wired in yet, summarizing what would be written")


def extendedness_median_counts(records: list[AlertRecord]) -> dict[str, int]:
    """How many alerts fall in each extendednessMedian bin (and how many have none)."""
    edges = zip(EXTENDEDNESS_BINS, EXTENDEDNESS_BINS[1:], strict=False)
    labels = [f"{low:.1f}-{high:.1f}" for low, high in edges]
    counts = dict.fromkeys([*labels, "blank"], 0)
    for record in records:
        median = record.extendednessMedian
        if median is None:
            counts["blank"] += 1
            continue
        index = min(int(median / 0.2), len(labels) - 1)
        counts[labels[index]] += 1
    return counts


def summary_lines(report: DemoReport) -> list[str]:
    """The demo's summary as printed lines: counts and the extendednessMedian distribution."""
    lines = [
        f"{report.decoded:,} alerts decoded ({report.bad} bad), {report.solar_system:,} "
        f"solar-system, {report.passed_filter:,} passed the filter",
        "extendednessMedian distribution:",
    ]
    most = max(report.extendedness_median_counts.values(), default=0) or 1
    for label, count in report.extendedness_median_counts.items():
        lines.append(f"  {label:>8}  {count:6,}  {'#' * round(40 * count / most)}")
    return lines


def run_demo(
    out_dir: str | Path, count: int = DEMO_COUNT, seed: int = DEMO_SEED, *, log: Log = print
) -> DemoReport:
    """Simulate a night into out_dir/incoming and run it through every stage there is."""
    started = time.monotonic()
    out = Path(out_dir)
    report = DemoReport(out_dir=out, incoming=out / "incoming")
    paths = simulate_stage(report.incoming, count, seed, log)
    report.written = len(paths)
    records, report.bad = decode_stage(paths, log)
    report.decoded = len(records)
    report.solar_system = sum(1 for record in records if record.hasSSSource)
    passed = filter_stage(records, log)
    report.passed_filter = len(passed)
    consume_stage(passed, out, log)
    report.extendedness_median_counts = extendedness_median_counts(passed)
    report.seconds = time.monotonic() - started
    for line in summary_lines(report):
        log(line)
    log(f"look at: {report.incoming} (alert files; `lsst-alerts inspect {report.incoming}`)")
    return report
