"""Catch-up benchmark: a backlog of the realistic mix consumed by `lsst-alerts consume`, this
checkout against another (`--baseline`), side by side in one run.

    .venv/bin/python bench/bench_catchup.py [--alerts 100000] [--source files|kafka]
        [--baseline OLD_CHECKOUT/src] [--rounds 1] [--json FILE]

Issue 25 point 3: a backlog of 100,000 alerts of the mix consumed in at most a third of the
time of the consumer as it was when the issue was filed (git worktree of 1eaf03d as the
baseline), memory bounded (each consumer is its own process; its peak RSS is printed), progress
shown with an estimate of the time left (the consumer's own log lines, shown as they come).

The backlog is alert files (`consume --from`) by default: the test broker keeps every message
in memory, and 100,000 alerts of the mix are ~15 GB. `--source kafka` publishes them to the
test broker instead (keep `--alerts` to what memory holds, ~20,000). Input and each run's output
are on the disk beside this file's temp folder; outputs are kept until the end, or until the
disk needs the room (bench/outputs.py says why a deletion between runs would skew them).

With files, each round also times the I/O floor (io_floor.py): the same bytes read, written and
synced as ours' output of this backlog, in the consumer's order, with nothing decoded or
encoded. A consumer that also decodes should take longer, so the table says how far each
consumer is from it, and how much of the baseline's time the floor alone takes. It is a floor
on average, not run by run: at 20,000 alerts the VM's noise let ours beat it once
(docs/benchmarks.md); at 100,000 the runs separate.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from outputs import RunFolders, folder_bytes

BENCH = Path(__file__).resolve().parent
SRC = BENCH.parent / "src"
TARGET = 1 / 3  # issue 25: at most a third of the baseline's time
FLOOR = "I/O floor"  # the bytes read, written and synced the consumer's way, nothing else
OUTPUT_PER_ALERT = 200_000  # bytes an alert of the mix takes in an output, before one is measured


def make_backlog(count: int, folder: Path) -> int:
    """The realistic mix (the simulator's history mix) as wire files, with a progress line."""
    from lsst_alert_pipeline.decode.schemas import latest_version
    from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts

    version = latest_version()
    folder.mkdir(parents=True)
    started = time.perf_counter()
    for index, alert in enumerate(simulate_alerts(count, schema_version=version, seed=25)):
        (folder / f"{index:07d}.wire").write_bytes(encode_wire(alert, version))
        if index % 10_000 == 9_999:
            print(f"  {index + 1:,} of {count:,} alerts simulated "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
    return count


def publish(broker: Any, folder: Path, topic: str) -> None:
    broker.create_topic(topic, 1)
    chunk: list[bytes] = []
    for path in sorted(folder.iterdir()):
        chunk.append(path.read_bytes())
        if len(chunk) == 1000:
            broker.produce(topic, chunk, **{"linger.ms": 20, "batch.num.messages": 1000})
            chunk = []
    broker.produce(topic, chunk, **{"linger.ms": 20, "batch.num.messages": 1000})


def consume(name: str, src: Path, source: list[str], output: Path) -> dict[str, Any]:
    """One `consume` in its own process: wall time, its peak RSS (wait4's rusage is this child's
    alone), the progress lines it logged, and its summary line."""
    env = dict(os.environ, PYTHONPATH=str(src))
    command = [sys.executable, "-m", "lsst_alert_pipeline.cli", "consume", *source,
               "--output-dir", str(output)]
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    assert child.stdout is not None
    progress, summary = [], ""
    for line in child.stdout:
        if "progress:" in line:
            progress.append(line.strip())
            print(f"  [{name}] {line.strip()[-150:]}", flush=True)
        elif "finished (exit" in line or "caught up:" in line:
            summary = line.strip()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{name}: consume exited {child.returncode}: {summary}")
    written = sum(1 for _ in (output / "cutouts").iterdir()) // 3
    return {"run": name, "seconds": round(seconds, 1), "alerts": written,
            "output_bytes": folder_bytes(output),
            "cutout_bytes": folder_bytes(output / "cutouts"),
            "alerts_per_s": round(written / seconds, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
            "progress_lines": len(progress),
            "last_progress": progress[-1] if progress else "", "summary": summary}


def io_floor(backlog: Path, output: Path, measured: dict[str, Any]) -> dict[str, Any]:
    """The I/O floor (io_floor.py) in its own process: the same bytes read and written as
    `measured` (a consumer's run on this backlog), synced alike, and nothing else."""
    alerts = measured["alerts"]
    cutout = measured["cutout_bytes"] // (3 * alerts)
    other = (measured["output_bytes"] - measured["cutout_bytes"]) // alerts
    started = time.perf_counter()
    child = subprocess.run([sys.executable, str(BENCH / "io_floor.py"), str(backlog),
                            str(output), "--cutout-bytes", str(cutout), "--other-bytes",
                            str(other)], capture_output=True, text=True, check=True,
                           env=dict(os.environ, PYTHONPATH=str(SRC)))
    seconds = time.perf_counter() - started
    floor = json.loads(child.stdout)
    return {"run": FLOOR, "seconds": round(seconds, 1), "alerts": floor["alerts"],
            "output_bytes": folder_bytes(output), "cutout_bytes": cutout * 3 * alerts,
            "alerts_per_s": round(floor["alerts"] / seconds, 1), "peak_rss_mb": 0,
            "cpu_seconds": floor["cpu_seconds"], "progress_lines": 0, "last_progress": "",
            "summary": f"{cutout} bytes per cutout, {other} other bytes per alert"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--source", choices=("files", "kafka"), default="files")
    parser.add_argument("--baseline", type=Path, help="another checkout's src/ to compare with")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path, default=BENCH / "results" / "catchup.json")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="lsst-catchup-", dir=BENCH.parent.parent))
    print(f"simulating a backlog of {args.alerts:,} alerts of the mix in {workdir} ...",
          flush=True)
    backlog = workdir / "backlog"
    make_backlog(args.alerts, backlog)
    # The backlog's GBs would otherwise still be in the page cache, unwritten, when the first
    # run starts, and that run's first sync would write them all (syncfs is the whole file
    # system): measured, the first run took 27.0 s and the same consumer's second 12.6 s.
    os.sync()
    runs: list[tuple[str, Path | None]] = [("ours", SRC)]
    runs += [("baseline", args.baseline)] if args.baseline else []
    runs += [(FLOOR, None)] if args.source == "files" else []  # needs ours' output measured
    results: list[dict[str, Any]] = []
    outputs = RunFolders(workdir)  # kept until the end: a deletion slows the next run
    broker = None
    try:
        if args.source == "kafka":
            from lsst_alert_pipeline.testing.broker import TansuBroker

            broker = TansuBroker(log_path=workdir / "tansu.log").__enter__()
            publish(broker, backlog, "backlog")
            shutil.rmtree(backlog)
        for round_ in range(args.rounds):
            for name, src in (runs if round_ % 2 == 0 else runs[::-1]):
                if broker is not None:
                    group = f"catchup-{name}-{round_}"
                    source = ["--topic", "backlog", "--bootstrap-servers", broker.bootstrap,
                              "--group-id", group]
                else:
                    source = ["--from", str(backlog)]
                expect = (max(r["output_bytes"] for r in results) if results
                          else args.alerts * OUTPUT_PER_ALERT)
                output = outputs.new(f"{name}-{round_ + 1}", expect)
                print(f"consuming the backlog: {name} (round {round_ + 1}) ...", flush=True)
                if src is None:
                    ours = next(r for r in results if r["run"] == "ours")
                    results.append(io_floor(backlog, output, ours))
                else:
                    results.append(consume(name, src, source, output))
    finally:
        if broker is not None:
            broker.__exit__(None, None, None)
        outputs.clear()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{'run':10} {'alerts':>8} {'s':>8} {'alerts/s':>9} {'CPU s':>7} {'ms/alert':>9} "
          f"{'peak RSS MB':>12}")
    for row in results:
        print(f"{row['run']:10} {row['alerts']:8,} {row['seconds']:8.1f} "
              f"{row['alerts_per_s']:9,.0f} {row['cpu_seconds']:7.1f} "
              f"{1000 * row['cpu_seconds'] / row['alerts']:9.2f} {row['peak_rss_mb']:12,}")
    mean = {name: statistics.mean(r["seconds"] for r in results if r["run"] == name)
            for name, _ in runs}
    ratio = floor_ratio = None
    if args.baseline:
        ratio = mean["ours"] / mean["baseline"]
        print(f"\ntime ours/baseline {ratio:.2f} (target <= {TARGET:.2f}: "
              f"{'met' if ratio <= TARGET else 'NOT met'})")
    if FLOOR in mean:
        floor_ratio = {name: round(mean[name] / mean[FLOOR], 2) for name in mean}
        print("time / I/O floor (the same bytes read, written and synced, nothing decoded): "
              + ", ".join(f"{name} {value:.2f}" for name, value in floor_ratio.items()
                          if name != FLOOR))
        if args.baseline:
            best = mean[FLOOR] / mean["baseline"]
            print(f"the I/O floor takes {best:.2f} of the baseline's time: a consumer that "
                  "writes these bytes this way and also decodes them takes longer")
            cpu = {name: statistics.mean(r["cpu_seconds"] for r in results if r["run"] == name)
                   for name in mean}
            budget = (os.cpu_count() or 1) * mean["baseline"] * TARGET
            print(f"CPU: at a third of the baseline's time, {os.cpu_count()} cores give "
                  f"{budget:.0f} s; the I/O floor alone used {cpu[FLOOR]:.0f} s "
                  f"({cpu[FLOOR] / budget:.0%} of it), ours {cpu['ours']:.0f} s, the baseline "
                  f"{cpu['baseline']:.0f} s")
    last = next((r["last_progress"] for r in results if r["run"] == "ours"), "")
    print(f"ours' last progress line: {last}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"alerts": args.alerts, "source": args.source,
                                     "runs": results, "ratio": ratio,
                                     "over_floor": floor_ratio}, indent=2))
    print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
