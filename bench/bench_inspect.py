"""`inspect --json` on 700 history-heavy alerts: the batch decoder next to per-message decoding.

    .venv/bin/python bench/bench_inspect.py [--copies 140] [--rounds 1] [--baseline-src DIR]

The alerts are the 5 real v10 variable stars (303-391 prvDiaSources) copied 140 times into a
temporary folder (simulated alerts with 350 prvDiaSources when the real ones are absent). Prints,
in one run: files/s of the per-message path inspect used to take (`decode_message` + `normalize`)
and of `decode_files` (the batch decoder every command now reads alerts through), both in-process
and printing each record as JSON; then the `inspect --json` command itself as a subprocess, and,
with --baseline-src (e.g. an older checkout's src/), the same command run from that code, with the
ratio.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lsst_alert_pipeline.decode.batch import decode_files
from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.normalize import normalize
from lsst_alert_pipeline.errors import InvalidMessage
from lsst_alert_pipeline.simulate import simulate_alerts, write_wire_files

REAL = Path(os.environ.get("LSST_REAL_ALERTS",
                           Path(__file__).resolve().parents[2] / "shared" / "real-alerts"))
HEAVY = "rubin/derived_wire_v10_0/*.wire"
MIN_HEAVY_BYTES = 200_000  # the variable stars; the two solar-system alerts are ~100 KB


def heavy_folder(target: Path, copies: int) -> int:
    """Fill `target` with history-heavy alert files; how many."""
    stars = [p for p in sorted(REAL.glob(HEAVY)) if p.stat().st_size >= MIN_HEAVY_BYTES]
    if stars:
        for copy in range(copies):
            for star in stars:
                shutil.copyfile(star, target / f"{copy:04d}-{star.name}")
        return copies * len(stars)
    alerts = simulate_alerts(copies * 5, schema_version="10.0", sso_fraction=0.0, history=350)
    return len(write_wire_files(alerts, target, "10.0"))


def per_message(folder: Path, out: io.StringIO) -> None:
    """How inspect decoded before: each file on its own, fastavro's full record, then normalize."""
    for path in sorted(folder.iterdir()):
        try:
            records = [normalize(alert) for alert in decode_message(path.read_bytes())]
        except InvalidMessage:
            continue
        for record in records:
            out.write(json.dumps(record.as_json()) + "\n")


def batched(folder: Path, out: io.StringIO) -> None:
    """How inspect decodes now: decode_files, the consumer's batch decoder."""
    for _path, outcome in decode_files([folder]):
        if isinstance(outcome, InvalidMessage):
            continue
        for record in outcome:
            out.write(json.dumps(record.as_json()) + "\n")


def best_seconds(work: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def command(folder: Path, src: str) -> Callable[[], object]:
    """`lsst-alerts inspect --json FOLDER` with the package imported from `src`."""
    environment = {**os.environ, "PYTHONPATH": src}
    script = "from lsst_alert_pipeline.cli import main; main()"

    def run() -> object:
        return subprocess.run([sys.executable, "-c", script, "inspect", "--json", str(folder)],
                              env=environment, stdout=subprocess.DEVNULL, check=True)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=140)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--baseline-src", help="src/ of another checkout to run inspect from")
    args = parser.parse_args()
    ours_src = str(Path(__file__).resolve().parents[1] / "src")
    with tempfile.TemporaryDirectory(prefix="bench-inspect-") as temp:
        folder = Path(temp)
        count = heavy_folder(folder, args.copies)
        sink = io.StringIO()
        old = best_seconds(lambda: per_message(folder, sink), args.rounds)
        new = best_seconds(lambda: batched(folder, sink), args.rounds)
        print(f"{count} history-heavy alert files, best of {args.rounds}")
        print(f"  in-process, per-message decode_message+normalize: {count / old:7.0f} files/s")
        print(f"  in-process, decode_files (batch decoder):         {count / new:7.0f} files/s"
              f"  ratio {old / new:.2f}x")
        ours = best_seconds(command(folder, ours_src), args.rounds)
        print(f"  inspect --json, this checkout:                    {ours:7.2f} s")
        if args.baseline_src:
            base = best_seconds(command(folder, args.baseline_src), args.rounds)
            print(f"  inspect --json, {args.baseline_src}: {base:7.2f} s"
                  f"  ratio {base / ours:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
