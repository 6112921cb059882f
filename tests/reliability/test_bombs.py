"""Decompression bombs in Avro container files are refused before they are inflated.

The bombs are real container files of the official alert schema: fastavro's writer makes the
deflate, bzip2 and xz ones; the snappy and zstandard ones are assembled here block by block from
valid snappy and zstandard streams, because their libraries are not installed (fastavro then
cannot inflate them at all, and a file of those codecs is dead-lettered saying so).
"""

from __future__ import annotations

import io
import json
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.decode.columnar import zigzag
from lsst_alert_pipeline.decode.inflation import DEFAULT_MAX_INFLATED_BYTES, check_container
from lsst_alert_pipeline.decode.schemas import bundled_schema, latest_version, parsed_bundled_schema
from lsst_alert_pipeline.errors import InvalidMessage
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts

from ..alerts import csv_rows
from .figures import FIGURES

LIMIT = 2 * 1024 * 1024  # the tests' max_inflated_bytes: bombs of a few MB are enough
SYNC = b"bombbombbombbomb"


def alerts(count: int, padding: int = 0) -> list[dict[str, Any]]:
    """Simulated alerts; `padding` zero bytes in the science cutout make them inflate big."""
    records = list(simulate_alerts(count, seed=5, history=0))
    for record in records:
        if padding:
            record["cutoutScience"] = b"\0" * padding
    return records


def written_container(codec: str, records: list[dict[str, Any]], sync_interval: int = 16000
                      ) -> bytes:
    out = io.BytesIO()
    fastavro.writer(out, parsed_bundled_schema(latest_version()), records, codec=codec,
                    sync_interval=sync_interval)
    return out.getvalue()


def avro_bytes(data: bytes) -> bytes:
    return zigzag(len(data)) + data


def assembled_container(codec: str, blocks: list[bytes]) -> bytes:
    """An Avro container file of the alert schema whose blocks are the given codec data."""
    schema = json.dumps(bundled_schema(latest_version())).encode()
    header = (b"Obj\x01" + zigzag(2) + avro_bytes(b"avro.schema") + avro_bytes(schema)
              + avro_bytes(b"avro.codec") + avro_bytes(codec.encode()) + zigzag(0) + SYNC)
    return header + b"".join(zigzag(1) + avro_bytes(block) + SYNC for block in blocks)


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append(value & 0x7F | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def snappy_block(size: int) -> bytes:
    """A valid raw snappy stream of `size` zero bytes (one literal, then 64-byte copies), and
    the 4-byte CRC Avro appends (not checked before inflating)."""
    copies, rest = divmod(size - 1, 64)
    body = b"\x00\x00" + b"\xfe\x01\x00" * copies
    if rest:
        body += bytes([(rest - 1) << 2 | 2]) + b"\x01\x00"
    return varint(size) + body + b"\0\0\0\0"


def zstandard_block(size: int) -> bytes:
    """A valid zstandard frame of `size` zero bytes made of RLE blocks of at most 128 KB."""
    frame = (0xFD2FB528).to_bytes(4, "little") + b"\xe0" + size.to_bytes(8, "little")
    left = size
    while left:
        part = min(left, 128 * 1024)
        left -= part
        frame += ((part << 3) | (1 << 1) | (0 if left else 1)).to_bytes(3, "little") + b"\0"
    return frame


def bombs() -> Iterator[tuple[str, bytes]]:
    """(what, payload): each inflates past LIMIT."""
    for codec in ("deflate", "bzip2", "xz"):
        yield f"{codec} bomb", written_container(codec, alerts(1, padding=LIMIT + 1))
    # Many blocks, each under the limit, together over it: the limit holds per message too.
    yield "deflate bomb of many blocks", written_container(
        "deflate", alerts(8, padding=LIMIT // 4), sync_interval=1)
    yield "snappy bomb", assembled_container("snappy", [snappy_block(2 * LIMIT)])
    yield "zstandard bomb", assembled_container("zstandard", [zstandard_block(2 * LIMIT)])


def test_bombs_of_every_codec_are_dead_lettered_and_the_good_alerts_written(
        tmp_path: Path) -> None:
    good = alerts(6)
    made = list(bombs())
    small_snappy = assembled_container("snappy", [snappy_block(1000)])
    (tmp_path / "in").mkdir()
    payloads = [encode_wire(record, latest_version()) for record in good[:3]]
    payloads += [payload for _, payload in made] + [small_snappy]
    payloads += [encode_wire(record, latest_version()) for record in good[3:]]
    for index, payload in enumerate(payloads):
        (tmp_path / "in" / f"{index:03d}.avro").write_bytes(payload)
    output = tmp_path / "out"
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(tmp_path / "in")], "output_dir": str(output),
        "max_inflated_bytes": LIMIT}))
    assert summary.exit_code == exitcodes.OK, summary.line()
    ids = sorted(int(row["diaSourceId"]) for row in csv_rows(output))
    assert ids == sorted(int(r["diaSource"]["diaSourceId"]) for r in good)
    reasons = {(output / "deadletter" / p.with_suffix(".bin").name).read_bytes():
               json.loads(p.read_text())["reason"]
               for p in (output / "deadletter").glob("*.json")}
    for what, payload in made:
        assert "decompression bomb" in reasons.get(payload, ""), (what, reasons.get(payload))
        assert "max_inflated_bytes" in reasons[payload]
    # snappy cannot be inflated here at all (no cramjam): dead-lettered, naming the library
    assert "cramjam" in reasons.get(small_snappy, ""), reasons.get(small_snappy)
    print(f"\nbombs refused: {', '.join(what for what, _ in made)}")
    FIGURES["bombs"] += len(made)


def test_a_300_mb_deflate_bomb_is_refused_without_being_inflated() -> None:
    inflated = 300 * 1024 * 1024
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b"\0" * (1024 * 1024)
    block = b"".join(packer.compress(chunk) for _ in range(inflated // len(chunk)))
    bomb = assembled_container("deflate", [block + packer.flush()])
    assert len(bomb) < 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(InvalidMessage, match="decompression bomb"):
            check_container(bomb, DEFAULT_MAX_INFLATED_BYTES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"checking the bomb took {peak:,} bytes"
    FIGURES["bombs"] += 1


def test_real_sized_alerts_pass_under_the_default_limit() -> None:
    payload = written_container("deflate", alerts(20, padding=1024 * 1024))
    check_container(payload, DEFAULT_MAX_INFLATED_BYTES)  # 20 MB of alerts: no refusal
    with pytest.raises(InvalidMessage, match="blocks 0-"):
        check_container(payload, 10 * 1024 * 1024)
