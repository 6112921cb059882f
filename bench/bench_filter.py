"""Time per locus of our filter next to the DevKit's LsstTransientQualityFilterScimma, same run.

Loci are built from the real wire alerts in ../shared/real-alerts (v9.0 and v10.0); each filter
runs on its own fresh copy of every locus, interleaved, timed by the DevKit's filter_report.

    PYTHONPATH=src python bench/bench_filter.py [--repeat 5] [REAL_ALERTS_DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
from collections import Counter
from pathlib import Path

from antares_devkit.filters.lsst_transient_quality_scimma import (
    LsstTransientQualityFilterScimma,
)
from antares_devkit.models import BaseFilter, DevKitLocus
from antares_devkit.utils import filter_report

from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.filter import antares_extendedness_filter as extfilter
from lsst_alert_pipeline.filter.devkit_locus import locus_dict

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("real_alerts", nargs="?", type=Path, default=DEFAULT_REAL_ALERTS)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
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
