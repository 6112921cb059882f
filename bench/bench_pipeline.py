"""End-to-end benchmark: the consumer against a bare loop and the disk's own ceiling, one run.

    .venv/bin/python bench/bench_pipeline.py [--alerts 20000] [--light 10000] [--json FILE]

Starts the Tansu test broker, publishes a realistic mix (simulated alerts with the simulator's
history mix, plus the real wire alerts from ../shared/real-alerts when present) and a
history-light set, then measures, each mode in its own process (so peak memory is its own):
  ceiling   3 cutout files per alert (temp + rename) with one sync per 500: the disk's limit
  bare      confluent-kafka + full fastavro decode + raw cutout/CSV writes, no fsync (a)
  ours      `lsst-alerts consume` end to end with its durability guarantees (b)
  decode    our decode+normalize vs bare full fastavro on real light/heavy alerts (c)
and prints alerts/s, MB/s, peak memory and the ratios; --json writes them.
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

BENCH = Path(__file__).resolve().parent
CEILING = "disk ceiling (3 files/alert, sync per 500)"
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


def mode_ours(bootstrap: str, topic: str, count: int, workdir: Path) -> dict[str, Any]:
    """(b) The consumer end to end: batched writes, one sync per batch, ledger, commits."""
    from lsst_alert_pipeline.pipeline.memory import keep_batch_buffers

    keep_batch_buffers()  # as the command line does, before polars loads
    from lsst_alert_pipeline import config
    from lsst_alert_pipeline.pipeline import consume as consumer
    from lsst_alert_pipeline.pipeline.progress import Progress

    settings = config.load(environ={}, flags={
        "topics": [topic], "output_dir": str(workdir / "ours"), "max_messages": count,
        "kafka": {"bootstrap.servers": bootstrap, "group.id": f"bench-ours-{topic}",
                  "session.timeout.ms": 6000}})
    summary = consumer.consume(settings, progress=Progress(interval=3600))
    size = sum(p.stat().st_size for p in (workdir / "ours" / "cutouts").iterdir())
    return {"alerts": summary.alerts_written, "seconds": summary.elapsed - summary.joined_after,
            "joined_after": summary.joined_after, "bytes": size, "exit_code": summary.exit_code}


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
    elif args.mode == "bare":
        result = mode_bare(args.bootstrap, args.topic, args.count, workdir)
    elif args.mode == "ours":
        result = mode_ours(args.bootstrap, args.topic, args.count, workdir)
    else:
        result = mode_decode(args.seconds)
    result["peak_mb"] = peak_mb()
    print(json.dumps(result))


def run_child(mode: str, workdir: Path, **options: Any) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", mode, "--workdir", str(workdir)]
    for key, value in options.items():
        command += [f"--{key}", str(value)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    shutil.rmtree(workdir / {"ceiling": "ceiling", "bare": "bare", "ours": "ours"}.get(
        mode, "none"), ignore_errors=True)
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
    return {"mode": name, "alerts": result["alerts"], "seconds": round(seconds, 2),
            "alerts_per_s": round(result["alerts"] / seconds, 1),
            "mb_per_s": round(result["bytes"] / seconds / 1e6, 1),
            "peak_mb": round(result["peak_mb"], 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=20_000, help="size of the realistic mix")
    parser.add_argument("--light", type=int, default=10_000, help="size of the light set")
    parser.add_argument("--json", type=Path, default=BENCH / "results" / "pipeline.json")
    parser.add_argument("--seconds", type=float, default=3.0, help="per decode measurement")
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
        for name, mode, options in (
                ("(b) ours end to end, light", "ours", {"topic": "light", "count": light}),
                (CEILING, "ceiling", {"count": args.light}),
                ("(a) bare loop, light", "bare", {"topic": "light", "count": light}),
                ("(b) ours end to end, mix", "ours", {"topic": "mix", "count": mix}),
                ("(a) bare loop, mix", "bare", {"topic": "mix", "count": mix})):
            print(f"measuring {name} ...", flush=True)
            rows.append(rate_row(name, run_child(mode, workdir, **common, **options)))
        decode = run_child("decode", workdir, seconds=args.seconds)
    shutil.rmtree(workdir, ignore_errors=True)
    by_name = {row["mode"]: row for row in rows}
    ratios = {
        "ours/bare, mix": by_name["(b) ours end to end, mix"]["alerts_per_s"]
        / by_name["(a) bare loop, mix"]["alerts_per_s"],
        "ours/bare, light": by_name["(b) ours end to end, light"]["alerts_per_s"]
        / by_name["(a) bare loop, light"]["alerts_per_s"],
        "ours light/disk ceiling": by_name["(b) ours end to end, light"]["alerts_per_s"]
        / by_name[CEILING]["alerts_per_s"],
    }
    print(f"\n{'mode':46} {'alerts':>7} {'s':>7} {'alerts/s':>9} {'MB/s':>7} {'peak MB':>8}")
    for row in rows:
        print(f"{row['mode']:46} {row['alerts']:7,} {row['seconds']:7.1f} "
              f"{row['alerts_per_s']:9,.0f} {row['mb_per_s']:7.1f} {row['peak_mb']:8.0f}")
    print()
    for group, result in decode.items():
        if isinstance(result, dict):
            print(f"(c) decode+normalize {group:20} bare fastavro "
                  f"{result['bare_fastavro_per_s']:8,.0f}/s  ours {result['ours_per_s']:8,.0f}/s"
                  f"  ratio {result['ratio']:.2f}")
    for name, value in ratios.items():
        print(f"ratio {name:30} {value:.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rows": rows, "decode": decode, "ratios": ratios},
                                    indent=2))
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
