"""Decode+normalize the real v9/v10 wire alerts next to bare fastavro, in the same run.

    .venv/bin/python bench/bench_decode.py [--seconds 3] [--json out.json]

Prints alerts/s for bare `fastavro.schemaless_reader` (parsed official schema), for our
per-message `decode_message` + `normalize`, and for the consumer's batch decoder
`decode_and_normalize`, per group (history-light v9, history-heavy v10), with the ratios.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import fastavro

from lsst_alert_pipeline.decode.batch import decode_and_normalize
from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.normalize import normalize
from lsst_alert_pipeline.decode.schemas import SchemaSource, parsed_bundled_schema, version_for

SCHEMAS = SchemaSource()

REAL = Path(os.environ.get("LSST_REAL_ALERTS",
                           Path(__file__).resolve().parents[2] / "shared" / "real-alerts"))
GROUPS = {
    "history-light v9.0": "rubin/derived_wire_v9_0/*.wire",
    "history-heavy v10.0": "rubin/derived_wire_v10_0/*.wire",
}


def rate(work: Callable[[list[bytes]], object], payloads: list[bytes], seconds: float) -> float:
    """Alerts per second over repeated batches of 500, best of three rounds."""
    batch = (payloads * (500 // len(payloads) + 1))[:500]
    best = 0.0
    for _ in range(3):
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            work(batch)
            done += len(batch)
        best = max(best, done / (time.perf_counter() - start))
    return best


def bare_fastavro(batch: list[bytes]) -> object:
    """What a naive consumer does: the full record of every alert, one by one."""
    out = []
    for payload in batch:
        schema = parsed_bundled_schema(version_for(int.from_bytes(payload[1:5], "big")))
        out.append(fastavro.schemaless_reader(io.BytesIO(payload[5:]), schema, None))
    return out


def ours_per_message(batch: list[bytes]) -> object:
    return [[normalize(alert) for alert in decode_message(payload)] for payload in batch]


def ours_batch(batch: list[bytes]) -> object:
    """What the consumer runs: decode_and_normalize over the batch (hybrid fastavro/polars)."""
    return decode_and_normalize(batch, SCHEMAS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not (REAL / "rubin").is_dir():
        print(f"real alerts not found at {REAL}; set LSST_REAL_ALERTS", file=sys.stderr)
        return 2
    results = {}
    print(f"{'group':22} {'bare fastavro/s':>16} {'per-message/s':>14} {'ratio':>6} "
          f"{'batch/s':>9} {'ratio':>6}")
    for group, pattern in GROUPS.items():
        payloads = [p.read_bytes() for p in sorted(REAL.glob(pattern))]
        bare = rate(bare_fastavro, payloads, args.seconds)
        single = rate(ours_per_message, payloads, args.seconds)
        batch = rate(ours_batch, payloads, args.seconds)
        results[group] = {"alerts": len(payloads), "bare_fastavro_per_s": round(bare, 1),
                          "ours_per_message_per_s": round(single, 1),
                          "ours_batch_per_s": round(batch, 1),
                          "ratio_per_message": round(single / bare, 3),
                          "ratio_batch": round(batch / bare, 3)}
        print(f"{group:22} {bare:16.0f} {single:14.0f} {single / bare:6.2f} {batch:9.0f} "
              f"{batch / bare:6.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
