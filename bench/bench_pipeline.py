"""End-to-end benchmark: the consumer against a bare loop and the disk's own ceiling, one run.

    .venv/bin/python bench/bench_pipeline.py [--alerts 20000] [--light 10000] [--json FILE]
        [--baseline OLD_CHECKOUT/src] [--rounds N]

Starts the Tansu test broker, publishes a realistic mix (simulated alerts with the simulator's
history mix, plus the real wire alerts from ../shared/real-alerts when present) and a
history-light set, then measures, each mode in its own process (so peak memory is its own):
  ceiling   3 cutout files per alert (temp + rename) with one sync per 500: the disk's limit
  fetch     a bare confluent-kafka loop that only fetches: the broker's limit
  bare      confluent-kafka + full fastavro decode + raw cutout/CSV writes, no fsync (a)
  ours      `lsst-alerts consume` end to end with its durability guarantees (b)
  decode    our decode+normalize vs bare full fastavro on real light/heavy alerts (c)
and prints alerts/s, MB/s, peak memory, the cores the consumer kept busy (process CPU seconds
per wall second) and the ratios; --json writes them.

The target of issue 25: `consume` on the mix (defaults: durable, archive on) at >= 0.25x the
machine's limit measured in the same run, min(bare fetch, disk ceiling). `--baseline` runs the
consumer from another checkout's src/ too (e.g. a `git worktree` of main), alternating with
this one `--rounds` times, so old and new are compared under the same machine load.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from outputs import RunFolders

BENCH = Path(__file__).resolve().parent
CEILING = "disk ceiling (3 files/alert, sync per 500)"
FETCH = "bare fetch, mix (confluent-kafka, no decode)"
OURS_MIX = "(b) ours end to end, mix"
TARGET = 0.25  # issue 25: consume at >= 0.25x min(bare fetch, disk ceiling)
OUTPUT_PER_ALERT = 200_000  # bytes an alert of the mix takes in an output, at most
# Every mode reads an exact count of messages, so Tansu's one-record-per-batch watermark limit
# does not matter here and publishing may batch.
BATCHED = {"linger.ms": 20, "batch.num.messages": 1000}
REAL = Path(os.environ.get("LSST_REAL_ALERTS", BENCH.parents[1] / "shared" / "real-alerts"))


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would count the parent's too)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mode_ceiling(count: int, workdir: Path) -> dict[str, Any]:
    """The disk: 3 x 34,560-byte files per alert, temp + rename, one syncfs per 500 alerts."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    folder = workdir / "ceiling"
    folder.mkdir()
    blob = os.urandom(34_560)
    fd = os.open(folder, os.O_RDONLY)
    started = time.perf_counter()
    for index in range(count):
        for kind in ("science", "template", "difference"):
            temp = folder / f".tmp-{index}_{kind}.fits"
            with open(temp, "wb") as handle:
                handle.write(blob)
            os.replace(temp, folder / f"{index}_{kind}.fits")
        if index % 500 == 499:
            libc.syncfs(fd)
    libc.syncfs(fd)
    seconds = time.perf_counter() - started
    os.close(fd)
    return {"alerts": count, "seconds": seconds, "bytes": count * 3 * 34_560}


def mode_fetch(bootstrap: str, topic: str, count: int) -> dict[str, Any]:
    """The broker's limit: a bare confluent-kafka loop that fetches and does nothing else."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-fetch",
                         "enable.auto.commit": False, "fetch.message.max.bytes": 10_000_000})
    consumer.assign([TopicPartition(topic, 0, 0)])
    done = size = 0
    started = time.perf_counter()
    while done < count:
        for message in consumer.consume(500, 1.0):
            if message.error():
                continue
            size += len(message.value())
            done += 1
    seconds = time.perf_counter() - started
    consumer.close()
    return {"alerts": done, "seconds": seconds, "bytes": size}


def mode_bare(bootstrap: str, topic: str, count: int, workdir: Path) -> dict[str, Any]:
    """(a) What a naive consumer does: poll, full fastavro decode, write files, no fsync."""
    import fastavro
    from confluent_kafka import Consumer, TopicPartition

    from lsst_alert_pipeline.decode.schemas import parsed_bundled_schema, version_for

    out = workdir / "bare"
    (out / "cutouts").mkdir(parents=True)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-bare",
                         "enable.auto.commit": False, "fetch.message.max.bytes": 10_000_000})
    consumer.assign([TopicPartition(topic, 0, 0)])
    done = size = 0
    started = time.perf_counter()
    with open(out / "alerts.csv", "w", newline="") as table:
        writer = csv.writer(table)
        while done < count:
            for message in consumer.consume(500, 1.0):
                if message.error():
                    continue
                payload = message.value()
                size += len(payload)
                schema = parsed_bundled_schema(version_for(int.from_bytes(payload[1:5], "big")))
                alert = fastavro.schemaless_reader(io.BytesIO(payload[5:]), schema, None)
                source = alert["diaSource"]
                paths = []
                for kind in ("Science", "Template", "Difference"):
                    path = out / "cutouts" / f"{source['diaSourceId']}_{kind}.fits"
                    with open(path, "wb") as handle:
                        handle.write(alert[f"cutout{kind}"] or b"")
                    paths.append(str(path))
                writer.writerow([source["diaSourceId"], source["ra"], source["dec"],
                                 source["midpointMjdTai"], source["band"], source["psfFlux"],
                                 source["extendedness"], *paths])
                done += 1
    seconds = time.perf_counter() - started
    consumer.close()
    return {"alerts": done, "seconds": seconds, "bytes": size}


def family_cpu() -> float:
    """CPU seconds of this process and of its live children."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = time.process_time()
    for listing in Path("/proc/self/task").glob("*/children"):
        for pid in listing.read_text().split():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue  # ended meanwhile
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def mode_ours(bootstrap: str, topic: str, count: int, workdir: Path) -> dict[str, Any]:
    """(b) The consumer end to end: batched writes, one sync per batch, ledger, commits."""
    try:
        from lsst_alert_pipeline.pipeline.memory import keep_batch_buffers
    except ImportError:  # a --baseline from before the setting moved to the command line
        pass
    else:
        keep_batch_buffers()  # as the command line does, before polars loads
    from lsst_alert_pipeline import config
    from lsst_alert_pipeline.pipeline import consume as consumer
    from lsst_alert_pipeline.pipeline.progress import Progress

    class CpuClock(Progress):
        """Notes (wall, CPU of the process and its children) after each batch: the cores
        busy once the group is joined and the first batch is in, i.e. while it runs steadily."""

        def __init__(self) -> None:
            super().__init__(interval=3600)
            self.marks: list[tuple[float, float]] = []

        def update(self, written: int, skipped: int, dead: int, messages: int = 0,
                   backlog: Any = None) -> None:
            self.marks.append((time.perf_counter(), family_cpu()))

    settings = config.load(environ={}, flags={
        "topics": [topic], "output_dir": str(workdir / "ours"), "max_messages": count,
        "kafka": {"bootstrap.servers": bootstrap,
                  "group.id": f"bench-ours-{topic}-{os.getpid()}",
                  "session.timeout.ms": 6000}})
    clock = CpuClock()
    cpu_started = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = consumer.consume(settings, progress=clock)
    ended = resource.getrusage(resource.RUSAGE_CHILDREN)  # children ended and waited for
    cpu = (time.process_time() - cpu_started + ended.ru_utime - children.ru_utime
           + ended.ru_stime - children.ru_stime)
    size = sum(p.stat().st_size for p in (workdir / "ours" / "cutouts").iterdir())
    (first_wall, first_cpu), (last_wall, last_cpu) = clock.marks[0], clock.marks[-1]
    steady = last_wall - first_wall
    return {"alerts": summary.alerts_written, "seconds": summary.elapsed - summary.joined_after,
            "joined_after": summary.joined_after, "bytes": size, "exit_code": summary.exit_code,
            "cpu_seconds": cpu, "batches": len(clock.marks),
            "stages": getattr(summary, "stages", {}),  # a --baseline older than the clock
            "cores": (last_cpu - first_cpu) / steady if steady > 0 else None}


def mode_decode(seconds: float) -> dict[str, Any]:
    """(c) decode+normalize vs bare fastavro on the real light and heavy wire alerts."""
    sys.path.insert(0, str(BENCH))
    import bench_decode

    results = {}
    for group, pattern in bench_decode.GROUPS.items():
        payloads = [p.read_bytes() for p in sorted(REAL.glob(pattern))]
        if not payloads:
            continue
        bare = bench_decode.rate(bench_decode.bare_fastavro, payloads, seconds)
        ours = bench_decode.rate(bench_decode.ours_batch, payloads, seconds)
        results[group] = {"bare_fastavro_per_s": bare, "ours_per_s": ours, "ratio": ours / bare}
    return results


def child(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    # Start from a clean page cache: dirty data left by the previous mode would be written
    # back during this one and charged to it.
    os.sync()
    if args.mode == "ceiling":
        result = mode_ceiling(args.count, workdir)
    elif args.mode == "fetch":
        result = mode_fetch(args.bootstrap, args.topic, args.count)
    elif args.mode == "bare":
        result = mode_bare(args.bootstrap, args.topic, args.count, workdir)
    elif args.mode == "ours":
        result = mode_ours(args.bootstrap, args.topic, args.count, workdir)
    else:
        result = mode_decode(args.seconds)
    result["peak_mb"] = peak_mb()
    print(json.dumps(result))


def run_child(mode: str, workdir: Path, src: Path | None = None,
              **options: Any) -> dict[str, Any]:
    """One mode in its own process; `src` puts another checkout's package first on its path."""
    command = [sys.executable, __file__, "--child", mode, "--workdir", str(workdir)]
    for key, value in options.items():
        command += [f"--{key}", str(value)]
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def publish(broker: Any, topic: str, count: int, history: Any, seed: int,
            real: list[bytes]) -> int:
    from lsst_alert_pipeline.decode.schemas import latest_version
    from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts

    version = latest_version()
    broker.create_topic(topic, 1)
    chunk: list[bytes] = list(real)
    sent = 0
    for alert in simulate_alerts(count - len(real), schema_version=version, seed=seed,
                                 history=history):
        chunk.append(encode_wire(alert, version))
        if len(chunk) == 1000:
            broker.produce(topic, chunk, **BATCHED)
            sent += len(chunk)
            chunk = []
    broker.produce(topic, chunk, **BATCHED)
    return sent + len(chunk)


def rate_row(name: str, result: dict[str, Any]) -> dict[str, Any]:
    seconds = result["seconds"]
    row = {"mode": name, "alerts": result["alerts"], "seconds": round(seconds, 2),
           "alerts_per_s": round(result["alerts"] / seconds, 1),
           "mb_per_s": round(result["bytes"] / seconds / 1e6, 1),
           "peak_mb": round(result["peak_mb"], 1)}
    if "cpu_seconds" in result:
        row["cpu_ms_per_alert"] = round(1000 * result["cpu_seconds"] / max(result["alerts"], 1),
                                        2)
        row["cores"] = None if result["cores"] is None else round(result["cores"], 2)
        row["stages"] = result.get("stages", {})
    return row


def stage_lines(row: dict[str, Any]) -> list[str]:
    """Issue 25 point 5: per thread and stage of a consumer run, the seconds it worked or
    waited and the share of the run's wall time, so the next bottleneck shows."""
    lines = [f"{row['mode']}: {row['seconds']:.1f} s"]
    for thread, stages in row.get("stages", {}).items():
        for name, stage in sorted(stages.items(), key=lambda item: -item[1]["seconds"]):
            share = stage["seconds"] / row["seconds"] if row["seconds"] else 0.0
            lines.append(f"  {thread:9} {stage['kind']:5} {name:28} {stage['seconds']:7.2f} s"
                         f" {share:6.0%}  CPU {stage.get('cpu', 0.0):6.2f} s")
    return lines


def target_lines(rows: list[dict[str, Any]]) -> tuple[list[str], dict[str, float]]:
    """Issue 25's check per consumer row of the mix: its rate / min(bare fetch, disk ceiling)."""
    limits = [row["alerts_per_s"] for row in rows if row["mode"] in (FETCH, CEILING)]
    limit = min(limits)
    lines = [f"machine limit this run: min(bare fetch, disk ceiling) = {limit:,.0f} alerts/s"]
    checks = {}
    for row in rows:
        if not row["mode"].startswith(OURS_MIX):
            continue
        ratio = row["alerts_per_s"] / limit
        checks[row["mode"]] = ratio
        lines.append(f"target {row['mode']:44} {ratio:5.2f}x the limit "
                     f"({'met' if ratio >= TARGET else 'NOT met'}: >= {TARGET}x), "
                     f"{row['cores']} cores busy, {row['cpu_ms_per_alert']} ms CPU/alert")
    return lines, checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=20_000, help="size of the realistic mix")
    parser.add_argument("--light", type=int, default=10_000, help="size of the light set")
    parser.add_argument("--json", type=Path, default=BENCH / "results" / "pipeline.json")
    parser.add_argument("--seconds", type=float, default=3.0, help="per decode measurement")
    parser.add_argument("--baseline", type=Path,
                        help="another checkout's src/ to run the consumer from as well")
    parser.add_argument("--rounds", type=int, default=1,
                        help="consumer runs on the mix (each way, alternating with --baseline)")
    parser.add_argument("--child", dest="mode", help=argparse.SUPPRESS)
    for hidden in ("workdir", "bootstrap", "topic"):
        parser.add_argument(f"--{hidden}", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        child(args)
        return 0

    from lsst_alert_pipeline.testing.broker import TansuBroker

    real = [p.read_bytes() for p in sorted(REAL.glob("rubin/derived_wire_v*/*.wire"))]
    workdir = Path(tempfile.mkdtemp(prefix="lsst-bench-"))
    rows = []
    with TansuBroker(log_path=workdir / "tansu.log") as broker:
        print(f"publishing {args.alerts:,} mixed + {args.light:,} light alerts "
              f"({len(real)} real) to Tansu at {broker.bootstrap} ...", flush=True)
        started = time.perf_counter()
        mix = publish(broker, "mix", args.alerts, None, 1, real)
        light = publish(broker, "light", args.light, (0, 3), 2, [])
        print(f"published in {time.perf_counter() - started:.0f} s", flush=True)
        common = {"bootstrap": broker.bootstrap}
        plan: list[tuple[str, str, dict[str, Any], Path | None]] = [
            ("(b) ours end to end, light", "ours", {"topic": "light", "count": light}, None),
            ("(a) bare loop, light", "bare", {"topic": "light", "count": light}, None),
            (CEILING, "ceiling", {"count": mix}, None),
            (FETCH, "fetch", {"topic": "mix", "count": mix}, None)]
        for round_ in range(args.rounds):
            mine = (f"{OURS_MIX}" + (f" #{round_ + 1}" if args.rounds > 1 else ""), None)
            old = (f"{OURS_MIX}, baseline" + (f" #{round_ + 1}" if args.rounds > 1 else ""),
                   args.baseline)
            # Alternate which goes first, so neither always meets the same neighbours' load.
            for name, src in ([mine, old] if round_ % 2 == 0 else [old, mine]):
                if name.startswith(f"{OURS_MIX}, baseline") and args.baseline is None:
                    continue
                plan.append((name, "ours", {"topic": "mix", "count": mix}, src))
        plan.append(("(a) bare loop, mix", "bare", {"topic": "mix", "count": mix}, None))
        # Each run writes a folder of its own, kept until the end: a deletion between runs
        # would slow the run after it (bench/outputs.py).
        outputs = RunFolders(workdir)
        try:
            for name, mode, options, src in plan:
                print(f"measuring {name} ...", flush=True)
                writes = mode in ("ours", "bare", "ceiling")
                folder = outputs.new(mode, OUTPUT_PER_ALERT * int(options["count"]) * writes)
                folder.mkdir()
                rows.append(rate_row(name, run_child(mode, folder, src, **common, **options)))
            decode = run_child("decode", workdir, seconds=args.seconds)
        finally:
            outputs.clear()
    shutil.rmtree(workdir, ignore_errors=True)
    by_name = {row["mode"]: row for row in rows}
    first_mix = next(row for row in rows if row["mode"].startswith(OURS_MIX))
    ratios = {
        "ours/bare, mix": first_mix["alerts_per_s"]
        / by_name["(a) bare loop, mix"]["alerts_per_s"],
        "ours/bare, light": by_name["(b) ours end to end, light"]["alerts_per_s"]
        / by_name["(a) bare loop, light"]["alerts_per_s"],
        "ours light/disk ceiling": by_name["(b) ours end to end, light"]["alerts_per_s"]
        / by_name[CEILING]["alerts_per_s"],
    }
    print(f"\n{'mode':52} {'alerts':>7} {'s':>7} {'alerts/s':>9} {'MB/s':>7} {'peak MB':>8}"
          f" {'cores':>6} {'CPU ms/alert':>12}")
    for row in rows:
        cores = "" if row.get("cores") is None else f"{row['cores']:.2f}"
        cpu = "" if "cpu_ms_per_alert" not in row else f"{row['cpu_ms_per_alert']:.2f}"
        print(f"{row['mode']:52} {row['alerts']:7,} {row['seconds']:7.1f} "
              f"{row['alerts_per_s']:9,.0f} {row['mb_per_s']:7.1f} {row['peak_mb']:8.0f}"
              f" {cores:>6} {cpu:>12}")
    print()
    for group, result in decode.items():
        if isinstance(result, dict):
            print(f"(c) decode+normalize {group:20} bare fastavro "
                  f"{result['bare_fastavro_per_s']:8,.0f}/s  ours {result['ours_per_s']:8,.0f}/s"
                  f"  ratio {result['ratio']:.2f}")
    for name, value in ratios.items():
        print(f"ratio {name:30} {value:.2f}")
    print("\nwhere the consumer's time went (work and waits per thread, share of wall time):")
    for row in rows:
        if row.get("stages"):
            print("\n".join(stage_lines(row)))
    print()
    lines, targets = target_lines(rows)
    print("\n".join(lines))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rows": rows, "decode": decode, "ratios": ratios,
                                     "targets": targets}, indent=2))
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
