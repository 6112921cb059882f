"""ANTARES locus messages consumed with cutouts from a REST API that answers after 150 ms:
the sequential path (one request after another, as before) next to the concurrent one, in one run.

    PYTHONPATH=src .venv/bin/python bench/bench_antares_cutouts.py [--sequential 60]
        [--concurrent 300] [--latency 0.15] [--concurrency 24] [--json out.json]

Both runs go end to end through `consume()` (files of locus messages built by running our
filter through the real DevKit, as `relay --format antares` does) against the local stand-in for
the ANTARES REST API (tests/antares_standin.py), and check that every alert got its three
cutouts. Prints alerts/s for each and the ratio. Targets (issue 16): >= 15 alerts/s with all
cutouts, >= 10x the sequential path.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/antares_standin.py

from lsst_alert_pipeline import config  # noqa: E402
from lsst_alert_pipeline.decode.schemas import latest_version  # noqa: E402
from lsst_alert_pipeline.pipeline import consume as consumer  # noqa: E402
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts  # noqa: E402
from tests.antares_standin import (  # noqa: E402
    AntaresStandin,
    StreamedAlert,
    serve,
    streamed_alerts,
)


def passing_alerts(count: int, seed: int) -> list[StreamedAlert]:
    """`count` simulated solar-system alerts that pass the filter, as ANTARES would stream them."""
    version = latest_version()
    found: list[StreamedAlert] = []
    batch = 0
    while len(found) < count:
        wire = [encode_wire(alert, version)
                for alert in simulate_alerts(count, sso_fraction=1.0, seed=seed + batch)]
        found.extend(streamed_alerts(wire))
        batch += 1
    return found[:count]


def run(alerts: list[StreamedAlert], standin: AntaresStandin, concurrency: int,
        workdir: Path) -> dict[str, float]:
    """Consume the alerts' locus messages from files, cutouts from the stand-in; alerts/s."""
    folder = workdir / "in"
    folder.mkdir(parents=True)
    for index, alert in enumerate(alerts):
        (folder / f"{index:05d}.zlib").write_bytes(alert.locus_message)
    settings = config.load(environ={}, flags={
        "from_paths": [str(folder)], "output_dir": str(workdir / "out"),
        "antares_fetch_cutouts": True, "antares_api_url": standin.base_url,
        "antares_concurrency": concurrency})
    started = time.perf_counter()
    summary = consumer.consume(settings)
    seconds = time.perf_counter() - started
    cutouts = len(list((workdir / "out" / "cutouts").glob("*.fits")))
    if summary.alerts_written != len(alerts) or summary.missing_cutouts or cutouts != 3 * len(
            alerts):
        raise SystemExit(f"incomplete run: {summary.line()}; {cutouts} cutout files")
    return {"alerts": len(alerts), "seconds": seconds, "alerts_per_s": len(alerts) / seconds,
            "cutout_files": cutouts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sequential", type=int, default=60, help="alerts, sequential path")
    parser.add_argument("--concurrent", type=int, default=300, help="alerts, concurrent path")
    parser.add_argument("--latency", type=float, default=0.15, help="seconds per request")
    parser.add_argument("--concurrency", type=int, default=24, help="requests in flight")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    alerts = passing_alerts(args.sequential + args.concurrent, seed=11)
    figures = {}
    with AntaresStandin(latency=args.latency) as standin, \
            tempfile.TemporaryDirectory() as tmp:
        serve(standin, alerts)
        figures["sequential"] = run(alerts[:args.sequential], standin, 1, Path(tmp) / "seq")
        figures["concurrent"] = run(alerts[args.sequential:], standin, args.concurrency,
                                    Path(tmp) / "conc")
    ratio = figures["concurrent"]["alerts_per_s"] / figures["sequential"]["alerts_per_s"]
    print(f"ANTARES cutouts, REST API answering after {args.latency * 1000:.0f} ms per request "
          "(listing + 3 files per alert), end to end through consume():")
    for name, row in figures.items():
        print(f"  {name:>10}: {row['alerts']:4d} alerts, all 3 cutouts each, in "
              f"{row['seconds']:6.1f} s = {row['alerts_per_s']:6.1f} alerts/s")
    print(f"  ratio concurrent/sequential: {ratio:.1f}x (targets: >= 15 alerts/s, >= 10x)")
    if args.json:
        args.json.write_text(json.dumps({**figures, "ratio": ratio}, indent=2))


if __name__ == "__main__":
    main()
