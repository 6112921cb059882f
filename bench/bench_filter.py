"""Our filter's throughput: the fast path next to the DevKit on the realistic mix, and its time
per locus next to the DevKit's LsstTransientQualityFilterScimma, same run.

Mix: bench_pipeline.py's realistic mix (the real v9.0/v10.0 wire alerts plus simulated ones with
the simulator's history mix, seed 1) as bytes in memory, in chunks of --chunk alerts, each chunk
through the fast path (filter/fast.py: batch decode, the filter's run() on a light locus) and
then through the DevKit (full decode, DevKitLocus, filter_report: what `filter-test --devkit`
does); prints alerts/s of both (wall clock and CPU time of the process), the ratio, and checks
that every result but its time is the same. Loci: built from the real wire alerts; each filter
runs on its own fresh copy of every locus, interleaved, timed by the DevKit's filter_report.

    PYTHONPATH=src python bench/bench_filter.py [--mix 3000] [--chunk 250] [--repeat 5]
                                                [REAL_ALERTS_DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time
from collections import Counter
from pathlib import Path

import fastavro
from antares_devkit.filters.lsst_transient_quality_scimma import (
    LsstTransientQualityFilterScimma,
)
from antares_devkit.models import BaseFilter, DevKitLocus
from antares_devkit.utils import filter_report

from lsst_alert_pipeline.decode.batch import HEAVY_HISTORY, history_length, split_schema
from lsst_alert_pipeline.decode.formats import decode_message, wire_schema_id
from lsst_alert_pipeline.decode.schemas import latest_version, version_for
from lsst_alert_pipeline.filter import antares_extendedness_filter as extfilter
from lsst_alert_pipeline.filter.devkit_locus import locus_dict
from lsst_alert_pipeline.filter.devkit_run import FilterResult, load_filter, run_on_alert
from lsst_alert_pipeline.filter.fast import FastFilter
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts

DEFAULT_REAL_ALERTS = Path(__file__).resolve().parents[2] / "shared" / "real-alerts"
FOLDERS = ("rubin/derived_wire_v9_0", "rubin/derived_wire_v10_0")


def locus_dicts(real_alerts: Path) -> list[dict]:
    """One DevKit locus dict per real wire alert."""
    found = []
    for folder in FOLDERS:
        for path in sorted((real_alerts / folder).glob("*.wire")):
            for alert in decode_message(path.read_bytes()):
                found.append(locus_dict(alert.record, alert.schema_version))
    return found


def time_once(filter_instance: BaseFilter, locus: dict) -> tuple[float, str]:
    """filter_report's time for one run on a fresh locus, and the status run() returned."""
    fresh = DevKitLocus.model_validate(locus)
    with contextlib.redirect_stdout(io.StringIO()):  # timeseries() prints a line per call
        report = filter_report(filter_instance, fresh)
    return report["time"], "tagged" if report["new_tags"] else "not tagged"


def bench(loci: list[dict], repeat: int) -> dict[str, tuple[float, Counter]]:
    """Median (over loci) of each locus's median (over repeats) time, and outcome counts."""
    filters: dict[str, BaseFilter] = {
        "LsstExtendednessFilter (REQUIRE_SSSOURCE=True)": extfilter.LsstExtendednessFilter(),
        "LsstTransientQualityFilterScimma": LsstTransientQualityFilterScimma(),
    }
    per_locus: dict[str, list[float]] = {name: [] for name in filters}
    outcomes: dict[str, Counter] = {name: Counter() for name in filters}
    for locus in loci:
        for name, filter_instance in filters.items():
            runs = [time_once(filter_instance, locus) for _ in range(repeat)]
            per_locus[name].append(statistics.median(seconds for seconds, _ in runs))
            outcomes[name][runs[0][1]] += 1
    return {name: (statistics.median(per_locus[name]), outcomes[name]) for name in filters}


def realistic_mix(count: int, real_alerts: Path) -> list[bytes]:
    """bench_pipeline.py's realistic mix: the real wire alerts, then simulated ones (seed 1)."""
    real = [path.read_bytes() for path in sorted(real_alerts.glob("rubin/derived_wire_v*/*.wire"))]
    version = latest_version()
    return real[:count] + [encode_wire(alert, version) for alert in
                           simulate_alerts(max(0, count - len(real)), schema_version=version,
                                           seed=1)]


def history_rows(payload: bytes) -> int:
    """How many prvDiaSources a wire alert of a bundled schema holds (its first array block)."""
    version = version_for(wire_schema_id(payload))
    split = split_schema(version)
    assert split is not None
    body = io.BytesIO(payload)
    body.seek(5)
    fastavro.schemaless_reader(body, split.prefix, None)
    return history_length(payload, body.tell(), split.array_branch)


def devkit_chunk(payloads: list[bytes]) -> list[FilterResult]:
    """What `filter-test --devkit` does with each payload: full decode, DevKit locus, run."""
    filter_instance = load_filter()()
    return [run_on_alert(filter_instance, alert, "") for payload in payloads
            for alert in decode_message(payload)]


def comparable(result: FilterResult) -> tuple:
    return (result.outcome, result.reason, result.new_tags, result.new_properties, result.sso)


def bench_mix(payloads: list[bytes], chunk: int) -> None:
    """Fast path and DevKit on the same chunks in turn; alerts/s of each, and their ratio."""
    fast_filter = FastFilter()
    assert fast_filter.fallback is None, fast_filter.fallback
    spent = {"fast path": [0.0, 0.0], "DevKit": [0.0, 0.0]}  # wall, CPU seconds
    alerts = differing = 0
    for start in range(0, len(payloads), chunk):
        part = payloads[start:start + chunk]
        results = {}
        for name, run in (("fast path", lambda part=part: [
                result for results in fast_filter.results(part) for result in results]),
                          ("DevKit", lambda part=part: devkit_chunk(part))):
            wall, cpu = time.perf_counter(), time.process_time()
            results[name] = run()
            spent[name][0] += time.perf_counter() - wall
            spent[name][1] += time.process_time() - cpu
        alerts += len(results["DevKit"])
        differing += sum(comparable(a) != comparable(b) for a, b in zip(
            results["fast path"], results["DevKit"], strict=True))
    heavy = sum(1 for payload in payloads if history_rows(payload) >= HEAVY_HISTORY)
    print(f"realistic mix: {len(payloads):,} alerts ({heavy:,} with {HEAVY_HISTORY}+ "
          f"prvDiaSources), chunks of {chunk}, REQUIRE_SSSOURCE={extfilter.REQUIRE_SSSOURCE}")
    print(f"{'path':12} {'alerts/s (wall)':>16} {'alerts/s (CPU)':>15}")
    for name, (wall, cpu) in spent.items():
        print(f"{name:12} {alerts / wall:16.0f} {alerts / cpu:15.0f}")
    fast_wall, fast_cpu = spent["fast path"]
    devkit_wall, devkit_cpu = spent["DevKit"]
    print(f"{'ratio':12} {devkit_wall / fast_wall:15.1f}x {devkit_cpu / fast_cpu:14.1f}x")
    print(f"fast path judged {fast_filter.fast_alerts:,} alerts itself, passed "
          f"{fast_filter.devkit_alerts:,} to the DevKit; results differing from the DevKit's: "
          f"{differing} of {alerts:,}")
    if differing:
        raise SystemExit("the fast path disagrees with the DevKit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("real_alerts", nargs="?", type=Path, default=DEFAULT_REAL_ALERTS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--mix", type=int, default=3000,
                        help="alerts of the realistic mix for fast path vs DevKit (0: skip)")
    parser.add_argument("--chunk", type=int, default=250, help="alerts per chunk of the mix")
    args = parser.parse_args()
    if args.mix:
        bench_mix(realistic_mix(args.mix, args.real_alerts), args.chunk)
        print()
    loci = locus_dicts(args.real_alerts)
    sizes = sorted(len(locus["alerts"]) for locus in loci)
    print(f"{len(loci)} loci from {', '.join(FOLDERS)}; alerts per locus "
          f"{sizes[0]}-{sizes[-1]} (median {statistics.median(sizes):g}); {args.repeat} runs each")
    results = bench(loci, args.repeat)
    # Without an SSSource requirement most loci get past the cheap association check, so the
    # extendedness timeseries is built: the filter's worst case on these loci.
    original = extfilter.REQUIRE_SSSOURCE
    extfilter.REQUIRE_SSSOURCE = False
    try:
        worst = bench(loci, args.repeat)
    finally:
        extfilter.REQUIRE_SSSOURCE = original
    name = "LsstExtendednessFilter (REQUIRE_SSSOURCE=True)"
    results["LsstExtendednessFilter (REQUIRE_SSSOURCE=False)"] = worst[name]
    scimma = results["LsstTransientQualityFilterScimma"][0]
    print(f"{'filter':52} {'median ms/locus':>16} {'x Scimma':>9}  outcomes")
    for label, (seconds, counts) in results.items():
        print(f"{label:52} {seconds * 1000:16.3f} {seconds / scimma:9.1f}  {dict(counts)}")


if __name__ == "__main__":
    main()
