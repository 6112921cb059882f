"""The I/O floor of a catch-up: what any consumer must do to the disk for a backlog of alert
files, and nothing else (no decoding, no filter, no encoding), timed.

    .venv/bin/python bench/io_floor.py BACKLOG OUTPUT --cutout-bytes N --other-bytes M
        [--batch 500]

Per alert: read its file whole; write three cutout files of N bytes each, under a temporary name
then renamed (as sinks/cutouts.py does); and M bytes of everything else the consumer writes per
alert (archive, CSV, ledger), as one file per batch. One sync of the file system per batch, the
consumer's own (`OutputDir.make_durable`). Two threads, as the consumer's work is split: one
reads the next batch's files and writes its other bytes under a temporary name (the consumer's
archive files are written by its encoding thread), while the other writes the current batch's
cutouts, renames its other file into place and syncs (at most three batches in hand, as in the
consumer with its archive on: one written, one waiting, one being read). With everything on one
thread, nothing overlapped and the floor took longer than the consumers; with two threads each
writing whole batches, they contended for the cutouts folder's lock (`perf record`: the kernel
spinning on it took 24% of the CPU). N and M come from a consumer's output of the same backlog
(bench_catchup.py measures them); the bytes written are the file's own, repeated, so nothing is
generated per alert. Prints one line: alerts, seconds, CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from pathlib import Path

from lsst_alert_pipeline.pipeline.outputdir import OutputDir

KINDS = ("science", "template", "difference")
Batch = tuple[list[tuple[int, bytes]], Path] | BaseException | None  # None: no more


def sized(data: bytes, size: int) -> bytes:
    """`size` bytes of `data`, repeated as often as needed."""
    return (data * (1 + size // max(1, len(data))))[:size]


def read_batches(batches: list[list[tuple[int, Path]]], others: Path, other_bytes: int,
                 to: queue.Queue[Batch]) -> None:
    try:
        for batch in batches:
            read = [(index, path.read_bytes()) for index, path in batch]
            temp = others / f".tmp-{batch[0][0]:08d}.bin"
            temp.write_bytes(b"".join(sized(data, other_bytes) for _, data in read))
            to.put((read, temp))
        to.put(None)
    except BaseException as exc:  # noqa: BLE001 - the writer raises it: the floor is not valid
        to.put(exc)


def write_batch(batch: list[tuple[int, bytes]], other: Path, output: OutputDir,
                cutout_bytes: int) -> None:
    for index, data in batch:
        blob = sized(data, cutout_bytes)
        for kind in KINDS:
            name = f"{index}_{kind}.fits"
            temp = output.cutouts / f".tmp-{name}"
            with open(temp, "wb") as handle:
                handle.write(blob)
            os.replace(temp, output.cutouts / name)
    os.replace(other, other.with_name(other.name.removeprefix(".tmp-")))
    output.make_durable()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backlog", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--cutout-bytes", type=int, required=True, help="bytes per cutout file")
    parser.add_argument("--other-bytes", type=int, required=True,
                        help="bytes per alert written besides the cutouts")
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    output = OutputDir(args.output)
    others = args.output / "others"
    output.cutouts.mkdir(parents=True)
    others.mkdir()
    files = list(enumerate(sorted(args.backlog.iterdir())))
    batches = [files[start:start + args.batch] for start in range(0, len(files), args.batch)]
    started, cpu = time.perf_counter(), os.times()
    ready: queue.Queue[Batch] = queue.Queue(maxsize=1)
    reader = threading.Thread(target=read_batches, args=(batches, others, args.other_bytes, ready),
                              daemon=True)
    reader.start()
    while (batch := ready.get()) is not None:
        if isinstance(batch, BaseException):
            raise batch
        write_batch(*batch, output, args.cutout_bytes)
    seconds, used = time.perf_counter() - started, os.times()
    print(json.dumps({"alerts": len(files), "seconds": round(seconds, 2),
                      "cpu_seconds": round(used.user + used.system - cpu.user - cpu.system, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
