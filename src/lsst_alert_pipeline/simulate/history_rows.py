"""History rows (prvDiaSources, prvDiaForcedSources) kept as columns and Avro-encoded in one pass.

Why: a variable star's alert carries 300-400 previous DIASources of ~100 fields each, and fastavro
spends tens of ms writing one such alert (bench/bench_decode.py measures the encoders). The Avro
binary encoding of a record is the concatenation of its fields' encodings, so a table of rows is
one byte matrix whose columns are the fields: fixed-width fields (float, double, boolean) are numpy
views, variable-width ones (zigzag varints, strings) carry a mask of used bytes. The tests check
byte equality with fastavro, which stays the reference encoder for everything else.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt

Column = Any  # a numpy array with one value per row, or one Python value shared by every row

_NUMPY_TYPES = {
    "float": np.float32,
    "double": np.float64,
    "int": np.int64,
    "long": np.int64,
    "boolean": np.bool_,
}
_SHIFTS = np.arange(10, dtype=np.uint64) * np.uint64(7)


@dataclass(frozen=True)
class FieldLayout:
    """One field of a flat record: its name, primitive kind and union branch indices."""

    name: str
    kind: str  # float, double, int, long, boolean, string, bytes or null
    value_index: int | None  # branch of the value in a ["null", T] union; None if not a union
    null_index: int | None  # branch of null; None if the field is not nullable


def field_layout(name: str, avro_type: Any) -> FieldLayout:
    """The layout of a field whose type is a primitive or a union of null and a primitive."""
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    kinds = [_primitive_kind(branch) for branch in branches]
    null_index = kinds.index("null") if "null" in kinds else None
    values = [i for i, kind in enumerate(kinds) if kind != "null"]
    if len(values) > 1:
        raise NotImplementedError(f"field {name}: unions of several value types are not supported")
    value_index = values[0] if values else None
    kind = kinds[value_index] if value_index is not None else "null"
    return FieldLayout(name, kind, value_index if isinstance(avro_type, list) else None, null_index)


def _primitive_kind(avro_type: Any) -> str:
    kind = avro_type.get("type") if isinstance(avro_type, dict) else avro_type
    if kind not in ("null", "float", "double", "int", "long", "boolean", "string", "bytes"):
        raise NotImplementedError(f"history rows hold primitive fields only, not {avro_type!r}")
    return str(kind)


def as_column(layout: FieldLayout, value: Any, length: int) -> Column:
    """A generator's value as a column of the field's type (arrays cast, scalars kept)."""
    if not isinstance(value, np.ndarray):
        return _python_value(layout, value)
    if value.shape != (length,):
        raise ValueError(f"column {layout.name} has shape {value.shape}, expected ({length},)")
    if layout.kind in _NUMPY_TYPES:
        return value.astype(_NUMPY_TYPES[layout.kind], copy=False)
    return value.astype(object, copy=False)


def _python_value(layout: FieldLayout, value: Any) -> Any:
    if value is None or layout.kind == "null":
        return None
    if layout.kind in ("float", "double"):
        return float(np.float32(value)) if layout.kind == "float" else float(value)
    if layout.kind in ("int", "long"):
        return int(value)
    if layout.kind == "boolean":
        return bool(value)
    if layout.kind == "string":
        return str(value)
    return bytes(value)


class Rows(Sequence[dict[str, Any]]):
    """Rows of one flat record type held as columns; reads as a list of dicts."""

    def __init__(self, layouts: tuple[FieldLayout, ...], columns: dict[str, Column], length: int):
        self.layouts = layouts
        self.columns = columns
        self.length = length

    def __len__(self) -> int:
        return self.length

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> Rows: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | Rows:
        if isinstance(index, slice):
            start, stop, step = index.indices(self.length)
            columns = {
                name: column[index] if isinstance(column, np.ndarray) else column
                for name, column in self.columns.items()
            }
            return Rows(self.layouts, columns, len(range(start, stop, step)))
        if not -self.length <= index < self.length:
            raise IndexError(index)
        return {
            name: column[index].item() if isinstance(column, np.ndarray) and column.dtype != object
            else (column[index] if isinstance(column, np.ndarray) else column)
            for name, column in self.columns.items()
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for index in range(self.length):
            yield self[index]

    def encode(self) -> bytes:
        """The concatenated Avro encodings of every row (the items of an Avro array block)."""
        if self.length == 0:
            return b""
        pieces: list[tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_] | None]] = []
        constant = bytearray()
        for layout in self.layouts:
            column = self.columns[layout.name]
            if not isinstance(column, np.ndarray):
                constant += constant_encoding(layout, column)
                continue
            if column.dtype != object and layout.value_index is not None:
                # The union branch index is the same on every row: it joins the constant run.
                constant += encode_long(layout.value_index)
            if constant:
                pieces.append((_repeat(bytes(constant), self.length), None))
                constant = bytearray()
            pieces.append(_encode_column(layout, column))
        if constant:
            pieces.append((_repeat(bytes(constant), self.length), None))
        width = sum(block.shape[1] for block, _ in pieces)
        matrix = np.empty((self.length, width), np.uint8)
        used = None if all(m is None for _, m in pieces) else np.ones(matrix.shape, np.bool_)
        offset = 0
        for block, mask in pieces:
            matrix[:, offset : offset + block.shape[1]] = block
            if mask is not None and used is not None:
                used[:, offset : offset + block.shape[1]] = mask
            offset += block.shape[1]
        return matrix.tobytes() if used is None else matrix[used].tobytes()


_constant_encodings: dict[tuple[FieldLayout, type, str], bytes] = {}


def constant_encoding(layout: FieldLayout, value: Any) -> bytes:
    """encode_value for a value shared by every row, cached (history tables repeat them)."""
    key = (layout, type(value), repr(value))
    encoded = _constant_encodings.get(key)
    if encoded is None:
        encoded = _constant_encodings[key] = encode_value(layout, value)
    return encoded


def encode_array(rows: Rows) -> bytes:
    """An Avro array of the rows: one block (count, items) and the end marker, as fastavro does."""
    if rows.length == 0:
        return b"\x00"
    return encode_long(rows.length) + rows.encode() + b"\x00"


def encode_long(value: int) -> bytes:
    """Avro's zigzag varint encoding of an int or long."""
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while zigzag & ~0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


def encode_value(layout: FieldLayout, value: Any) -> bytes:
    """The Avro encoding of one value of a field, union branch index included."""
    if value is None:
        if layout.null_index is None:
            raise ValueError(f"field {layout.name} is not nullable")
        return encode_long(layout.null_index) if layout.value_index is not None else b""
    prefix = encode_long(layout.value_index) if layout.value_index is not None else b""
    kind = layout.kind
    if kind == "float":
        return prefix + struct.pack("<f", value)
    if kind == "double":
        return prefix + struct.pack("<d", value)
    if kind in ("int", "long"):
        return prefix + encode_long(int(value))
    if kind == "boolean":
        return prefix + (b"\x01" if value else b"\x00")
    raw = value.encode() if isinstance(value, str) else bytes(value)
    return prefix + encode_long(len(raw)) + raw


def _repeat(encoded: bytes, length: int) -> npt.NDArray[np.uint8]:
    row = np.frombuffer(encoded, dtype=np.uint8)
    return np.broadcast_to(row, (length, row.size))


def _encode_column(
    layout: FieldLayout, column: npt.NDArray[Any]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_] | None]:
    """A column's bytes, one row each; without the union index unless the column is objects."""
    length = column.shape[0]
    kind = layout.kind
    if column.dtype == object or kind not in ("float", "double", "boolean", "int", "long"):
        return _encode_each(layout, column)
    if kind in ("float", "double"):
        width = 4 if kind == "float" else 8
        body = column.astype("<f4" if kind == "float" else "<f8").view(np.uint8)
        return body.reshape(length, width), None
    if kind == "boolean":
        return column.astype(np.uint8).reshape(length, 1), None
    return _varints(column.astype(np.int64))


def _varints(values: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    zigzag = ((values << 1) ^ (values >> 63)).view(np.uint64)
    shifted = zigzag[:, None] >> _SHIFTS
    used = shifted != 0
    used[:, 0] = True
    last = used.sum(axis=1) - 1
    more = np.arange(10)[None, :] < last[:, None]
    continuation = more.astype(np.uint64) << np.uint64(7)
    return ((shifted & np.uint64(0x7F)) | continuation).astype(np.uint8), used


def _encode_each(
    layout: FieldLayout, column: npt.NDArray[Any]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    # Strings and columns with nulls hold few distinct values (bands): encode each one once and
    # pick rows from that small table.
    codes: dict[Any, int] = {}
    distinct: list[Any] = []
    rows = []
    for value in column:
        key = "nan" if isinstance(value, float) and math.isnan(value) else (type(value), value)
        code = codes.get(key)
        if code is None:
            code = codes[key] = len(distinct)
            distinct.append(value)
        rows.append(code)
    encoded = [
        encode_value(layout, None if value is None else _python_value(layout, value))
        for value in distinct
    ]
    width = max(len(item) for item in encoded)
    table = np.zeros((len(encoded), width), np.uint8)
    used = np.zeros((len(encoded), width), np.bool_)
    for code, item in enumerate(encoded):
        table[code, : len(item)] = np.frombuffer(item, np.uint8)
        used[code, : len(item)] = True
    index = np.asarray(rows, dtype=np.intp)
    return table[index], used[index]
