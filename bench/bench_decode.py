"""Decode+normalize the real v9/v10 wire alerts next to bare fastavro, in the same run.

    .venv/bin/python bench/bench_decode.py [--seconds 3] [--json out.json]

Prints alerts/s for bare `fastavro.schemaless_reader` (parsed official schema) and for our
`decode_message` + `normalize`, per group (history-light v9, history-heavy v10), and the ratio.
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

from lsst_alert_pipeline.decode import decode_message
from lsst_alert_pipeline.normalize import normalize
from lsst_alert_pipeline.schemas import parsed_bundled_schema, version_for

REAL = Path(os.environ.get("LSST_REAL_ALERTS",
                           Path(__file__).resolve().parents[2] / "shared" / "real-alerts"))
GROUPS = {
    "history-light v9.0": "rubin/derived_wire_v9_0/*.wire",
    "history-heavy v10.0": "rubin/derived_wire_v10_0/*.wire",
}


def rate(work: Callable[[bytes], object], payloads: list[bytes], seconds: float) -> float:
    """Alerts per second over repeated passes, best of three rounds."""
    best = 0.0
    for _ in range(3):
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            for payload in payloads:
                work(payload)
            done += len(payloads)
        best = max(best, done / (time.perf_counter() - start))
    return best


def bare_fastavro(payload: bytes) -> object:
    schema = parsed_bundled_schema(version_for(int.from_bytes(payload[1:5], "big")))
    return fastavro.schemaless_reader(io.BytesIO(payload[5:]), schema, None)


def ours(payload: bytes) -> object:
    return [normalize(alert) for alert in decode_message(payload)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not (REAL / "rubin").is_dir():
        print(f"real alerts not found at {REAL}; set LSST_REAL_ALERTS", file=sys.stderr)
        return 2
    results = {}
    print(f"{'group':22} {'bare fastavro/s':>16} {'ours/s':>10} {'ratio':>7}")
    for group, pattern in GROUPS.items():
        payloads = [p.read_bytes() for p in sorted(REAL.glob(pattern))]
        bare, our = rate(bare_fastavro, payloads, args.seconds), rate(ours, payloads, args.seconds)
        results[group] = {"alerts": len(payloads), "bare_fastavro_per_s": round(bare, 1),
                          "ours_per_s": round(our, 1), "ratio": round(our / bare, 3)}
        print(f"{group:22} {bare:16.0f} {our:10.0f} {our / bare:7.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
