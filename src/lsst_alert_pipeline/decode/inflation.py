"""Refuse decompression bombs in Avro container files before fastavro inflates them.

fastavro inflates every block of a container file whole (a 306 KB deflate file can become
300 MB). This walks the container's blocks first and measures what each would inflate to,
without ever holding more than a small buffer: deflate, bzip2 and xz are inflated in 1 MB steps
and counted (stopping past the limit); snappy and lz4 blocks state their size in a header; a
zstandard frame is bounded by its blocks' headers (a raw or RLE block states its size, any
other block holds at most 128 KB). Past the limit, per block or for the whole message, the
message is refused with a reason saying by how much and which setting raises the limit.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Iterator

from ..config import DEFAULT_MAX_INFLATED_BYTES
from ..errors import InvalidMessage

SETTING = "max_inflated_bytes"
STEP = 1024 * 1024
ZSTD_MAGIC = 0xFD2FB528
ZSTD_MAX_BLOCK = 128 * 1024


def read_long(data: bytes, position: int) -> tuple[int, int]:
    """An Avro long (zigzag varint) at position: (value, next position)."""
    shift = result = 0
    while True:
        if position >= len(data):
            raise ValueError("container ends inside a number")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7
        if shift > 63:
            raise ValueError("number longer than 64 bits")


def read_bytes(data: bytes, position: int) -> tuple[bytes, int]:
    size, position = read_long(data, position)
    if size < 0 or position + size > len(data):
        raise ValueError("container ends inside a field")
    return data[position:position + size], position + size


def container_codec(data: bytes) -> tuple[str, int]:
    """(codec name, position of the first block) from an Avro container file's header."""
    position, codec = 4, b"null"
    while True:
        count, position = read_long(data, position)
        if count == 0:
            break
        if count < 0:  # a negative count is followed by the block's size in bytes
            count = -count
            _, position = read_long(data, position)
        for _ in range(count):
            key, position = read_bytes(data, position)
            value, position = read_bytes(data, position)
            if key == b"avro.codec":
                codec = value
    return codec.decode(errors="replace"), position + 16


def blocks(data: bytes, start: int) -> Iterator[bytes]:
    """The compressed data of each block of a container file."""
    position = start
    while position < len(data):
        _, position = read_long(data, position)
        block, position = read_bytes(data, position)
        position += 16
        yield block


def _stepping(decompress: Callable[[bytes, int], bytes], done: Callable[[], bool],
              data: bytes, limit: int) -> int:
    """Bytes a bz2/lzma decompressor yields from data, counted up to just past limit."""
    total = len(decompress(data, STEP))
    while not done() and total <= limit:
        total += len(decompress(b"", STEP))
    return total


def deflate_size(data: bytes, limit: int) -> int:
    inflater = zlib.decompressobj(-15)
    total = len(inflater.decompress(data, STEP))
    while inflater.unconsumed_tail and not inflater.eof and total <= limit:
        total += len(inflater.decompress(inflater.unconsumed_tail, STEP))
    return total + (len(inflater.flush()) if total <= limit else 0)


def bzip2_size(data: bytes, limit: int) -> int:
    inflater = bz2.BZ2Decompressor()
    return _stepping(inflater.decompress, lambda: inflater.eof or inflater.needs_input, data,
                     limit)


def xz_size(data: bytes, limit: int) -> int:
    inflater = lzma.LZMADecompressor()
    return _stepping(inflater.decompress, lambda: inflater.eof or inflater.needs_input, data,
                     limit)


def snappy_size(data: bytes, limit: int) -> int:
    """The length a raw snappy stream states first (an unsigned varint)."""
    shift = result = 0
    for byte in data[:5]:
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result
        shift += 7
    raise ValueError("snappy block without a length")


def lz4_size(data: bytes, limit: int) -> int:
    """The length an lz4 block (lz4.block, store_size) states in its first 4 bytes."""
    return int.from_bytes(data[:4], "little")


def zstandard_size(data: bytes, limit: int) -> int:
    """An upper bound of what zstandard frames inflate to, from their block headers."""
    position, total = 0, 0
    while position < len(data) and total <= limit:
        magic = int.from_bytes(data[position:position + 4], "little")
        if magic & 0xFFFFFFF0 == 0x184D2A50:  # a skippable frame: nothing inflates from it
            position += 8 + int.from_bytes(data[position + 4:position + 8], "little")
            continue
        if magic != ZSTD_MAGIC:
            raise ValueError("not a zstandard frame")
        descriptor = data[position + 4]
        single_segment = descriptor >> 5 & 1
        position += 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3]
        position += ((1 if single_segment else 0), 2, 4, 8)[descriptor >> 6]
        while True:
            header = int.from_bytes(data[position:position + 3], "little")
            last, kind, size = header & 1, header >> 1 & 3, header >> 3
            position += 3 + (1 if kind == 1 else size)
            total += size if kind in (0, 1) else ZSTD_MAX_BLOCK
            if last or position >= len(data) or total > limit:
                break
        position += 4 if descriptor >> 2 & 1 else 0  # content checksum
    return total


INFLATED_SIZE: dict[str, Callable[[bytes, int], int]] = {
    "null": lambda data, limit: len(data), "deflate": deflate_size, "bzip2": bzip2_size,
    "xz": xz_size, "snappy": snappy_size, "lz4": lz4_size, "zstandard": zstandard_size}


def check_container(payload: bytes, limit: int = DEFAULT_MAX_INFLATED_BYTES) -> None:
    """InvalidMessage when a block, or the whole container file, inflates past `limit` bytes."""
    try:
        codec, start = container_codec(payload)
    except (ValueError, IndexError):
        return  # not a well-formed header: fastavro names the problem
    measure = INFLATED_SIZE.get(codec)
    if measure is None:
        return  # fastavro refuses an unknown codec, naming it
    total = 0
    try:
        for index, block in enumerate(blocks(payload, start)):
            size = measure(block, limit - total)
            total += size
            if total > limit:
                what = (f"block {index} ({codec} codec, {len(block):,} bytes) inflates"
                        if total == size else f"blocks 0-{index} ({codec} codec) inflate")
                raise InvalidMessage(
                    f"Avro container file refused as a decompression bomb: its {what} past "
                    f"{limit:,} bytes (the setting {SETTING})", payload)
    except (ValueError, IndexError, EOFError, OSError, lzma.LZMAError, zlib.error) as exc:
        raise InvalidMessage(
            f"Avro container file has a corrupt {codec} block: {type(exc).__name__}: {exc}",
            payload) from exc
