"""What the Parquet archive costs: throughput with and without it, bytes on disk, query time.

    .venv/bin/python bench/bench_archive.py [--alerts 4000] [--rows 1000000] [--json FILE]

1. Publishes bench_pipeline.py's realistic mix (simulated history mix plus the real wire
   alerts when present) to the Tansu test broker and consumes it end to end with the archive
   off and on, alternately (off, on, on, off, --rounds times; each run in its own process and
   consumer group), so both see the same machine load; prints alerts/s (means and medians) and
   the archive's cost in throughput, and the process CPU time per alert (user + system), which
   a shared machine's load disturbs less than the elapsed time.
2. Bytes per alert: the archive's files against the raw packets consumed, split into the
   `packet` column and all the decoded columns, before and after `compact`.
3. Query time over an archive of --rows alerts, built synthetically and fast, NOT through the
   consumer: the rows the consumer archived in (1), replicated with new diaSourceId,
   diaObjectId and alertId into 30 nights of files sorted by diaObjectId (as `compact`
   leaves them), with `packet` left null and each history list cut to its first 3 entries
   (the full rows of 1,000,000 alerts would take ~100 GB). Times, from a fresh DuckDB each
   time as the CLI does: one object's alerts, its light curve, and a count.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import bench_pipeline  # noqa: E402 - the realistic mix and its publisher live there

NIGHTS = 30


def child(args: argparse.Namespace) -> None:
    """One consumer run in this process: the archive on or off."""
    from lsst_alert_pipeline.pipeline.memory import keep_batch_buffers

    keep_batch_buffers()  # as the command line does, before polars loads
    from lsst_alert_pipeline import config
    from lsst_alert_pipeline.pipeline import consume as consumer
    from lsst_alert_pipeline.pipeline.progress import Progress

    settings = config.load(environ={}, flags={
        "topics": [args.topic], "output_dir": args.workdir, "max_messages": args.count,
        "archive": args.archive == "on",
        "kafka": {"bootstrap.servers": args.bootstrap, "group.id": f"bench-{args.workdir}",
                  "session.timeout.ms": 6000}})
    started = resource.getrusage(resource.RUSAGE_SELF)
    summary = consumer.consume(settings, progress=Progress(interval=3600))
    ended = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ended.ru_utime - started.ru_utime) + (ended.ru_stime - started.ru_stime)
    print(json.dumps({"alerts": summary.alerts_written,
                      "seconds": summary.elapsed - summary.joined_after, "cpu": cpu}))


def consume_run(bootstrap: str, count: int, workdir: Path, archive: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", "--bootstrap", bootstrap, "--topic", "mix",
               "--count", str(count), "--workdir", str(workdir), "--archive", archive]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"consumer run failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def column_bytes(folder: Path) -> tuple[int, int]:
    """(compressed bytes of the packet column, of every other column) over the folder."""
    import pyarrow.parquet as pq

    packet = other = 0
    for path in folder.glob("archive/*/*.parquet"):
        metadata = pq.ParquetFile(path).metadata
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            for index in range(row_group.num_columns):
                chunk = row_group.column(index)
                if chunk.path_in_schema == "packet":
                    packet += chunk.total_compressed_size
                else:
                    other += chunk.total_compressed_size
    return packet, other


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("archive/*/*.parquet"))


def synthetic_archive(source: Path, target: Path, rows: int) -> tuple[int, Any]:
    """`rows` alerts in NIGHTS partitions from the consumer's archived rows; (rows, an id)."""
    import polars as pl

    from lsst_alert_pipeline.ops.compact import COMPACT_ROW_GROUP_ROWS
    from lsst_alert_pipeline.pipeline.ledger import ArchiveFile, BatchRecord, Ledger
    from lsst_alert_pipeline.sinks.archive import columns_fingerprint

    base = pl.concat([pl.read_parquet(p, hive_partitioning=False)
                      for p in sorted(source.glob("archive/*/*.parquet"))],
                     how="diagonal_relaxed")
    lists = [name for name, dtype in base.schema.items() if isinstance(dtype, pl.List)]
    base = base.with_columns(pl.lit(None, dtype=pl.Binary).alias("packet"),
                             *(pl.col(name).list.head(3) for name in lists))
    stride = 10 ** 12  # keeps every copy's ids apart from the originals'
    per_night = -(-rows // NIGHTS)
    copies_per_night = -(-per_night // base.height)
    written = 0
    copy = 0
    listed: list[tuple[str, int, str]] = []
    for night in range(NIGHTS):
        frames = []
        for _ in range(copies_per_night):
            shift = (copy + 1) * stride
            frames.append(base.with_columns(
                pl.col("diaSourceId") + shift, pl.col("alertId") + shift,
                pl.when(pl.col("diaObjectId") != 0).then(pl.col("diaObjectId") + shift)
                .otherwise(0).alias("diaObjectId")))
            copy += 1
        frame = pl.concat(frames).head(min(per_night, rows - written))
        frame = frame.sort("diaObjectId", "mjd", "diaSourceId")
        folder = target / "archive" / f"dayObs=2026-04-{night + 1:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"compacted+synthetic{night:02d}.parquet"
        listed.append((path.relative_to(target).as_posix(), frame.height, ""))
        frame.write_parquet(path, compression="zstd", statistics=True,
                            row_group_size=COMPACT_ROW_GROUP_ROWS)
        written += frame.height
    # Listed in a ledger as compact leaves them, so queries read the list, not the folder.
    ledger = Ledger(target / "state" / "ledger.sqlite")
    ledger.record_batch(BatchRecord(archive_files=[
        ArchiveFile(name, count, columns_fingerprint(target / name))
        for name, count, _ in listed]))
    ledger.close()
    probe = base.filter(pl.col("diaObjectId") != 0).get_column("diaObjectId")[0]
    return written, probe + (copy // 2 + 1) * stride


def timed(work: Any, repeats: int = 5) -> tuple[float, Any]:
    """(median seconds, last result) over repeats."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=4_000, help="size of the realistic mix")
    parser.add_argument("--rows", type=int, default=1_000_000, help="synthetic archive size")
    parser.add_argument("--rounds", type=int, default=2, help="of off, on, on, off runs")
    parser.add_argument("--json", type=Path, default=BENCH / "results" / "archive.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("workdir", "bootstrap", "topic", "archive"):
        parser.add_argument(f"--{hidden}", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0

    from lsst_alert_pipeline.look.lightcurve import light_curve
    from lsst_alert_pipeline.ops.compact import compact
    from lsst_alert_pipeline.ops.query import run_query
    from lsst_alert_pipeline.testing.broker import TansuBroker

    real = [p.read_bytes() for p in sorted(bench_pipeline.REAL.glob(
        "rubin/derived_wire_v*/*.wire"))]
    workdir = Path(tempfile.mkdtemp(prefix="lsst-bench-archive-"))
    figures: dict[str, Any] = {}
    runs: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}  # CPU ms per alert
    with TansuBroker(log_path=workdir / "tansu.log") as broker:
        print(f"publishing {args.alerts:,} alerts of the realistic mix ({len(real)} real) ...",
              flush=True)
        count = bench_pipeline.publish(broker, "mix", args.alerts, None, 1, real)
        for number, archive in enumerate(("off", "on", "on", "off") * args.rounds):
            result = consume_run(broker.bootstrap, count, workdir / f"run{number}", archive)
            rate = result["alerts"] / result["seconds"]
            runs[archive].append(rate)
            cpu[archive].append(1000 * result["cpu"] / result["alerts"])
            print(f"  run {number + 1}: archive {archive:3}  {result['alerts']:,} alerts in "
                  f"{result['seconds']:.1f} s = {rate:,.0f} alerts/s, "
                  f"{cpu[archive][-1]:.2f} CPU ms/alert", flush=True)
    off, on = statistics.mean(runs["off"]), statistics.mean(runs["on"])
    median_off, median_on = statistics.median(runs["off"]), statistics.median(runs["on"])
    cpu_off, cpu_on = statistics.median(cpu["off"]), statistics.median(cpu["on"])
    figures["throughput"] = {"archive_off_per_s": off, "archive_on_per_s": on,
                             "archive_cost": 1 - on / off, "runs": runs,
                             "median_cost": 1 - median_on / median_off,
                             "cpu_ms_per_alert_off": cpu_off, "cpu_ms_per_alert_on": cpu_on,
                             "cpu_cost": 1 - cpu_off / cpu_on}
    archived = workdir / "run1"
    packet, other = column_bytes(archived)
    files_before = len(list(archived.glob("archive/*/*.parquet")))
    on_disk = folder_bytes(archived)
    raw = run_query(archived, "SELECT sum(octet_length(packet)) FROM alerts"
                                   ).rows[0][0]
    alerts = run_query(archived, "SELECT count(*) FROM alerts").rows[0][0]
    compact(archived)
    figures["bytes"] = {"alerts": alerts, "raw_packet_bytes_per_alert": raw / alerts,
                        "archive_bytes_per_alert": on_disk / alerts,
                        "packet_column_per_alert": packet / alerts,
                        "decoded_columns_per_alert": other / alerts,
                        "files": files_before,
                        "after_compact_bytes_per_alert": folder_bytes(archived) / alerts}
    print(f"building a synthetic archive of {args.rows:,} alerts ...", flush=True)
    started = time.perf_counter()
    big = workdir / "synthetic"
    rows, probe = synthetic_archive(archived, big, args.rows)
    built = time.perf_counter() - started
    one_object, found = timed(lambda: run_query(
        big, "SELECT * FROM alerts WHERE diaObjectId = ?", [probe]).rows)
    curve, points = timed(lambda: light_curve(big, probe))
    counting, total = timed(lambda: run_query(big, "SELECT count(*) FROM alerts").rows[0][0], 3)
    figures["query"] = {"rows": rows, "build_seconds": built, "probe_diaObjectId": probe,
                        "one_object_seconds": one_object, "one_object_rows": len(found),
                        "light_curve_seconds": curve, "light_curve_points": len(points),
                        "count_seconds": counting, "count": total,
                        "bytes": folder_bytes(big)}
    subprocess.run(["rm", "-rf", str(workdir)], check=False)

    t, b, q = figures["throughput"], figures["bytes"], figures["query"]
    print(f"\nthroughput, realistic mix ({count:,} alerts, runs off/on/on/off x {args.rounds}, "
          "means):")
    print(f"  archive off {t['archive_off_per_s']:8,.0f} alerts/s")
    print(f"  archive on  {t['archive_on_per_s']:8,.0f} alerts/s  -> the archive costs "
          f"{t['archive_cost']:.0%} of throughput (target <= 20%); "
          f"{t['median_cost']:.0%} by the medians")
    print(f"  CPU per alert (medians): {t['cpu_ms_per_alert_off']:.2f} ms off, "
          f"{t['cpu_ms_per_alert_on']:.2f} ms on: the archive takes {t['cpu_cost']:.0%} of "
          "the CPU")
    print(f"bytes per alert ({b['alerts']:,} alerts, {b['files']} files):")
    print(f"  raw packets        {b['raw_packet_bytes_per_alert']:10,.0f}")
    print(f"  archive on disk    {b['archive_bytes_per_alert']:10,.0f}  "
          f"({b['archive_bytes_per_alert'] / b['raw_packet_bytes_per_alert']:.2f} x raw): "
          f"packet column {b['packet_column_per_alert']:,.0f}, decoded columns "
          f"{b['decoded_columns_per_alert']:,.0f}")
    print(f"  after compact      {b['after_compact_bytes_per_alert']:10,.0f}")
    print(f"query over a synthetic archive of {q['rows']:,} alerts ({q['bytes'] / 1e9:.2f} GB, "
          f"{NIGHTS} nights, built in {q['build_seconds']:.0f} s; medians):")
    print(f"  one diaObjectId's alerts  {q['one_object_seconds']:.3f} s "
          f"({q['one_object_rows']} rows; target < 1 s)")
    print(f"  its light curve           {q['light_curve_seconds']:.3f} s "
          f"({q['light_curve_points']} points)")
    print(f"  count(*)                  {q['count_seconds']:.3f} s ({q['count']:,})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2, default=str))
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
