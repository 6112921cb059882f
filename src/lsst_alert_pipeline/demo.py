"""The demo: a night of simulated alerts run through the whole pipeline, no broker needed.

simulate -> filter (the ANTARES filter file through the real DevKit, as ANTARES would run it)
-> consume (the consumer reading the passing alerts from files) -> the specification's output
layout under OUT/lsst_alerts -> the night's HTML report. One function per stage.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import config
from .decode.batch import decode_packet_files
from .decode.normalize import AlertRecord, normalize
from .decode.schemas import latest_version
from .errors import InvalidMessage
from .pipeline import consume as consumer
from .pipeline.progress import Progress
from .pipeline.run import RunSummary
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
    output: Path
    written: int = 0
    written_csv: int = 0
    exit_code: int = 0
    page: Path | None = None
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


def filter_stage(paths: list[Path], filtered: Path, log: Log) -> tuple[
        list[AlertRecord], list[AlertRecord], Counter[str], int]:
    """Stage 2: decode every alert and run the filter on it; passing alerts' bytes are copied
    to `filtered`, which stands in for the ANTARES output stream. (all, passed, reasons, bad)"""
    from .filter.devkit_run import load_filter, run_on_alert

    filter_instance = load_filter()()
    filtered.mkdir(parents=True, exist_ok=True)
    records: list[AlertRecord] = []
    passed: list[AlertRecord] = []
    reasons: Counter[str] = Counter()
    bad = 0
    for path, alerts in decode_packet_files(paths):
        if isinstance(alerts, InvalidMessage):
            bad += 1
            log(f"bad file {path}: {alerts.reason}")
            continue
        for alert in alerts:
            record = normalize(alert)
            records.append(record)
            result = run_on_alert(filter_instance, alert, str(path))
            if result.passed:
                passed.append(record)
                shutil.copyfile(path, filtered / path.name)
            else:
                # "median 0.93 > 0.8" -> "median > 0.8": count reasons, not values
                reasons[_reason_kind(result.reason)] += 1
    log(f"filter: {len(passed):,} of {len(records):,} alerts passed "
        f"(antares_extendedness_filter.py, REQUIRE_SSSOURCE={_require_sssource()})")
    for reason, count in reasons.most_common():
        log(f"  failed: {count:6,}  {reason}")
    return records, passed, reasons, bad


def _reason_kind(reason: str) -> str:
    words = reason.split()
    if len(words) >= 4 and words[0] in ("median", "min", "max"):
        return f"{words[0]} {words[2]} {words[3]}"
    return reason


def _require_sssource() -> bool:
    from .filter import antares_extendedness_filter

    return bool(antares_extendedness_filter.REQUIRE_SSSOURCE)


def consume_stage(filtered: Path, output_dir: Path, log: Log) -> RunSummary:
    """Stage 3: the consumer reads the filtered alerts into CSV files and FITS cutouts."""
    settings = config.load(environ={}, flags={
        "from_paths": [str(filtered)], "output_dir": str(output_dir),
        "extra_columns": ["ssObjectId", "hasSSSource"]}, require_source=True)
    summary = consumer.consume(settings, progress=Progress(interval=3600))
    log(f"consumer: {summary.line()}")
    return summary


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
        f"{report.decoded:,} alerts simulated ({report.bad} bad), {report.solar_system:,} "
        f"solar-system, {report.passed_filter:,} passed the filter, {report.written_csv:,} "
        "written by the consumer",
        "extendednessMedian of all simulated alerts:",
    ]
    most = max(report.extendedness_median_counts.values(), default=0) or 1
    for label, count in report.extendedness_median_counts.items():
        lines.append(f"  {label:>8}  {count:6,}  {'#' * round(40 * count / most)}")
    return lines


def run_demo(
    out_dir: str | Path, count: int = DEMO_COUNT, seed: int = DEMO_SEED, *, log: Log = print
) -> DemoReport:
    """Simulate a night into out_dir/incoming and run it through filter and consumer."""
    started = time.monotonic()
    out = Path(out_dir)
    report = DemoReport(out_dir=out, incoming=out / "incoming",
                        output=out / "lsst_alerts")
    paths = simulate_stage(report.incoming, count, seed, log)
    report.written = len(paths)
    records, passed, _reasons, report.bad = filter_stage(paths, out / "filtered", log)
    report.decoded = len(records)
    report.solar_system = sum(1 for record in records if record.hasSSSource)
    report.passed_filter = len(passed)
    summary = consume_stage(out / "filtered", report.output, log)
    report.written_csv = summary.alerts_written + summary.already_written
    report.exit_code = summary.exit_code
    report.extendedness_median_counts = extendedness_median_counts(records)
    report.page = report_stage(report.output, log) if report.written_csv else None
    report.seconds = time.monotonic() - started
    for line in summary_lines(report):
        log(line)
    log(f"look at: {report.output / 'data'} (one CSV per night) and "
        f"{report.output / 'cutouts'} (FITS); raw alerts in {report.incoming}")
    if report.page is not None:
        log(f"open in a browser: {report.page}")
    return report


def report_stage(output: Path, log: Log) -> Path:
    """Stage 4: the night's HTML report (counts, histograms, sky map, cutout thumbnails)."""
    from .look.report import write_report

    page = write_report(output)
    log(f"report: {page}")
    return page
