"""The archive's rows: one per alert, every field of the packet as a column, plus its exact bytes.

A Rubin wire packet of a bundled schema is read whole by polars' Avro reader, a schema's
packets of a batch in one columnar read (decode/columnar.py): the triggering `diaSource` fields
become top-level columns under their schema names, the other records (`diaObject`, `ssSource`,
`ssObject`, `MPCORB`, `mpc_orbits`) become flat columns prefixed with the record's name
(`diaObject_nDiaSources`): flat columns read the same in DuckDB, polars, pandas and Spark, carry
Parquet statistics for pruning, and never collide with the diaSource's own `ra`/`dec`. The
histories (`prvDiaSources`, `prvDiaForcedSources`, ...) stay lists of structs.

Every row also has the CSV's spec columns under the spec's names (from the normalized record,
so NaN is null as in the CSV), Kafka topic/partition/offset, and `packet`. Anything else (ANTARES
locus messages, ZTF, Avro container files) gets the spec columns and the packet only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from ..decode.batch import WHOLE_PACKET
from ..decode.brokers import BROKER_COLUMNS
from ..decode.columnar import read_whole
from ..decode.formats import detect_format, wire_schema_id
from ..decode.normalize import AlertRecord
from ..decode.schemas import bundled_versions, schema_id_for
from ..sources.base import Message

SPEC_TYPES: dict[str, Any] = {
    "alertId": pl.Int64, "diaSourceId": pl.Int64, "diaObjectId": pl.Int64,
    "ra": pl.Float64, "dec": pl.Float64, "mjd": pl.Float64, "filterName": pl.String,
    "psFlux": pl.Float64, "psFluxErr": pl.Float64, "extendednessMedian": pl.Float64,
    "extendednessMin": pl.Float64, "extendednessMax": pl.Float64,
    "extendednessCount": pl.Int32, "hasSSSource": pl.Boolean, "schemaVersion": pl.String,
    "survey": pl.String,
}
SOURCE_TYPES: dict[str, Any] = {
    "broker": pl.String, "topic": pl.String, "partition": pl.Int32, "offset": pl.Int64,
    "origin": pl.String, "packet": pl.Binary,
}
IDS = ("alertId", "diaSourceId", "diaObjectId")
# Records of the packet flattened under a prefix; lists (histories) are kept as they are.
CUTOUT_FIELDS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")
# The key under which a record's extra holds its row of the batch's whole-packet read.
PREPARED = "archive_columns"
# The key under which a record's extra names the broker that delivered it (the run's preset;
# `kafka` or `files` without one): the archive keeps the first, as it keeps each alert once.
BROKER = "broker"


@dataclass(frozen=True, slots=True)
class ArchivedAlert:
    """One alert to archive: the message it came in, its place in it, its normalized record."""

    message: Message
    index: int  # a container file may hold several alerts; a Kafka message holds one
    record: AlertRecord


def whole_packet_version(alert: ArchivedAlert) -> str | None:
    """The bundled schema version to read the packet whole with, or None (spec columns only)."""
    version = alert.record.schemaVersion
    payload = alert.message.payload
    # A broker's payload is no Rubin wire packet, whatever its first bytes look like (a Fink
    # value often starts with 0x00): its fields are archived from the record.
    if BROKER_COLUMNS in alert.record.extra:
        return None
    if alert.index != 0 or version not in bundled_versions() or detect_format(payload) != "wire":
        return None
    # A forced or registry schema may name a version the wire id does not: read only when the
    # id says the body is that bundled version.
    return version if wire_schema_id(payload) == schema_id_for(version) else None


@dataclass(frozen=True, slots=True)
class Unusable:
    """A field of one alert that the archive keeps as null: which alert, which field, why."""

    origin: str  # where the alert came from, as dead letters and log lines name it
    dia_source_id: Any
    field: str
    reason: str


def unusable(alert: ArchivedAlert, field: str, reason: str) -> Unusable:
    origin = alert.message.origin if alert.index == 0 else f"{alert.message.origin}#{alert.index}"
    return Unusable(origin, alert.record.diaSourceId, field, reason)


def shown(value: Any) -> str:
    """The value as a log line can show it: short, one line."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text)} characters)"


def typed_column(name: str, values: list[Any], dtype: Any, alerts: Sequence[ArchivedAlert],
                 found: list[Unusable]) -> pl.Series:
    """The values as a column of `dtype`; a value that cannot be one (an id beyond int64, a
    count of 1e300, a string where a number belongs) is null, and noted in `found`."""
    try:
        return pl.Series(name, values, dtype=dtype)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - TypeError, OverflowError, or a polars panic
        pass
    kept: list[Any] = []
    for alert, value in zip(alerts, values, strict=True):
        try:
            pl.Series(name, [value], dtype=dtype)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: BLE001 - as above, for this one value
            found.append(unusable(alert, name, f"{name} = {shown(value)} does not fit its "
                                  f"column's type, {dtype}"))
            value = None
        kept.append(value)
    return pl.Series(name, kept, dtype=dtype)


def spec_frame(alerts: Sequence[ArchivedAlert], found: list[Unusable]) -> pl.DataFrame:
    """The spec columns and the source columns of each alert (the packet on its first alert).

    Built a column at a time: a value that cannot take its column's type is null in that
    alert's row (noted in `found`), and never stops the others."""
    records = [alert.record for alert in alerts]
    columns: dict[str, list[Any]] = {name: [getattr(r, name) for r in records]
                                     for name in SPEC_TYPES}
    types = dict(SPEC_TYPES)
    if any(not isinstance(v, int | None) for v in columns["diaObjectId"]):
        types["diaObjectId"] = pl.String  # ZTF object ids are names ("ZTF18abc...")
        columns["diaObjectId"] = [None if v is None else str(v) for v in columns["diaObjectId"]]
    messages = [alert.message for alert in alerts]
    columns["broker"] = [r.extra.get(BROKER) for r in records]
    columns["topic"] = [m.topic for m in messages]
    columns["partition"] = [m.partition for m in messages]
    columns["offset"] = [m.offset for m in messages]
    columns["origin"] = [m.origin if m.topic is None else None for m in messages]
    # A container file's bytes go with its first alert only: repeating them per alert would
    # multiply the archive by the file's alert count.
    columns["packet"] = [a.message.payload if a.index == 0 else None for a in alerts]
    frame = pl.DataFrame([typed_column(name, columns[name], dtype, alerts, found)
                          for name, dtype in {**types, **SOURCE_TYPES}.items()])
    return frame.hstack(broker_fields(alerts, found))


def flat_broker_values(values: dict[str, Any]) -> dict[str, Any]:
    """A broker's fields as archive cells: a record's fields as `<name>_<field>` columns, other
    nested values (Fink's per-band `lc_features` map, lists) as JSON text."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, dict) and all(not isinstance(v, dict | list) for v in value.values()):
            out.update((f"{name}_{field}", item) for field, item in value.items())
        elif isinstance(value, dict | list):
            out[name] = json.dumps(value, default=str, allow_nan=False) if value else None
        else:
            out[name] = value
    return out


def _json_safe(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def broker_fields(alerts: Sequence[ArchivedAlert], found: list[Unusable]) -> list[pl.Series]:
    """The broker's own fields (`fink_clf_cats_class`, ...), a column each, for these alerts;
    a column whose values no one type holds is kept as text."""
    rows = [flat_broker_values(_finite(a.record.extra.get(BROKER_COLUMNS) or {}))
            for a in alerts]
    names = list(dict.fromkeys(name for row in rows for name in row))
    columns = []
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            columns.append(pl.Series(name, values, strict=True))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: BLE001 - mixed types: text keeps every value
            columns.append(typed_column(name, [None if v is None else str(v) for v in values],
                                        pl.String, alerts, found))
    return columns


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    """NaN as null in nested values too (JSON text cannot hold NaN; the CSV never shows it)."""
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return _json_safe(value)
    return {name: clean(value) for name, value in values.items()}


def flatten_packets(packets: pl.DataFrame, taken: set[str]) -> pl.DataFrame:
    """The whole-packet columns: diaSource fields bare, other records prefixed, lists kept."""
    out: list[pl.Series] = []
    for name, dtype in packets.schema.items():
        column = packets.get_column(name)
        if name == "diaSource" and isinstance(dtype, pl.Struct):
            fields = column.struct.unnest()
            out.extend(fields.get_column(f) for f in fields.columns if f not in taken)
        elif isinstance(dtype, pl.Struct):
            fields = column.struct.unnest()
            out.extend(fields.get_column(f).alias(f"{name}_{f}") for f in fields.columns)
        elif name not in taken and name not in CUTOUT_FIELDS:
            out.append(column)
    return pl.DataFrame(out)


def packet_columns(version: str, alerts: Sequence[ArchivedAlert]) -> pl.DataFrame:
    """The flattened whole-packet columns of alerts of one bundled version, a row each."""
    packets = read_whole(version, [memoryview(alert.message.payload)[5:] for alert in alerts],
                         [alert.record.diaSourceId for alert in alerts])
    return flatten_packets(packets, set(SPEC_TYPES) | set(SOURCE_TYPES))


def batch_alerts(messages: Sequence[Message], results: Sequence[Any]) -> list[ArchivedAlert]:
    """Every alert of a decoded batch (`results`: per message a list of records, or the
    InvalidMessage that says why it has none)."""
    return [ArchivedAlert(message, index, record)
            for message, result in zip(messages, results, strict=True)
            if isinstance(result, list) for index, record in enumerate(result)]


def prepare_columns(alerts: Sequence[ArchivedAlert]) -> None:
    """Read the alerts' packets whole, per schema version; each record keeps (columns, its
    row) in `extra`. Packets the batch decoder already read whole (decode_and_normalize with
    whole=True) are flattened from that read. What fails here is read again at the write."""
    by_version: dict[str, list[ArchivedAlert]] = {}
    flattened: dict[int, pl.DataFrame] = {}
    for alert in alerts:
        version = whole_packet_version(alert)
        read = alert.record.extra.pop(WHOLE_PACKET, None)
        if version is not None and read is not None:
            frame, row = read
            if id(frame) not in flattened:
                flattened[id(frame)] = flatten_packets(frame, set(SPEC_TYPES) | set(SOURCE_TYPES))
            alert.record.extra[PREPARED] = (flattened[id(frame)], row)
        elif version is not None:
            by_version.setdefault(version, []).append(alert)
    for version, group in by_version.items():
        try:
            columns = packet_columns(version, group)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # polars panics on some corrupt bodies; the write reads again
            continue
        for row, alert in enumerate(group):
            alert.record.extra[PREPARED] = (columns, row)


def prepared_columns(version: str, alerts: Sequence[ArchivedAlert]) -> pl.DataFrame:
    """The alerts' packet columns: their rows of the batch's prepared read, else read now."""
    found = [alert.record.extra.get(PREPARED) for alert in alerts]
    first = found[0]
    if first is not None and all(item is not None and item[0] is first[0] for item in found):
        return first[0][[item[1] for item in found if item is not None]]
    return packet_columns(version, alerts)


def whole_frame(version: str, alerts: Sequence[ArchivedAlert],
                found: list[Unusable]) -> pl.DataFrame:
    """Spec columns, then every packet field, for packets of one bundled schema version."""
    spec = spec_frame(alerts, found)
    body = prepared_columns(version, alerts)
    spec_part, source_part = spec.drop(*SOURCE_TYPES), spec.select(*SOURCE_TYPES)
    return pl.concat([spec_part, body, source_part], how="horizontal")


def archive_frames(alerts: Sequence[ArchivedAlert],
                   found: list[Unusable]) -> list[tuple[str | None, pl.DataFrame]]:
    """(schema version or None, rows) for a group of alerts, in the order given.

    Whole-packet reads are grouped per schema version. What cannot be built for the group is
    built alert by alert, each row as whole as it can be, so archiving never fails a batch the
    CSV accepted: a packet polars cannot read whole (a corrupt body fastavro accepted) keeps
    its spec columns and packet; a value no column can hold is null. Each is noted in `found`."""
    by_version: dict[str | None, list[ArchivedAlert]] = {}
    for alert in alerts:
        by_version.setdefault(whole_packet_version(alert), []).append(alert)
    return [frame for version, group in by_version.items()
            for frame in group_frames(version, group, found)]


def group_frames(version: str | None, alerts: Sequence[ArchivedAlert],
                 found: list[Unusable]) -> list[tuple[str | None, pl.DataFrame]]:
    """The rows of alerts of one version: in one frame, else one frame per alert."""
    noted: list[Unusable] = []  # kept only if the frame is: a retry notes them again
    try:
        frame = (spec_frame(alerts, noted) if version is None
                 else whole_frame(version, alerts, noted))
        found.extend(noted)
        return [(version, frame)]
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - polars panics (pyo3 PanicException) on some
        failure = exc  # bodies; an unforeseen value must not stop the batch either
    if len(alerts) > 1:
        return [frame for alert in alerts for frame in group_frames(version, [alert], found)]
    alert = alerts[0]
    if version is not None:
        found.append(unusable(alert, "its packet's fields", "the packet could not be read "
                              f"whole ({type(failure).__name__}: {failure}); it is kept in "
                              "`packet` with the spec columns"))
        return group_frames(None, alerts, found)
    found.append(unusable(alert, "its spec columns", f"{type(failure).__name__}: {failure}; "
                          "only its ids, `packet` and where it came from are kept"))
    return [(None, source_frame(alert, found))]


def source_frame(alert: ArchivedAlert, found: list[Unusable]) -> pl.DataFrame:
    """The last resort row: the alert's ids, its packet and where it came from."""
    message = alert.message
    columns: dict[str, list[Any]] = {
        **{name: [getattr(alert.record, name, None)] for name in IDS},
               "broker": [alert.record.extra.get(BROKER)],
               "topic": [message.topic], "partition": [message.partition],
               "offset": [message.offset],
               "origin": [message.origin if message.topic is None else None],
               "packet": [message.payload if alert.index == 0 else None]}
    types = {**{name: SPEC_TYPES[name] for name in IDS}, **SOURCE_TYPES}
    return pl.DataFrame([typed_column(name, columns[name], types[name], [alert], found)
                         for name in columns])


def unified(frames: Sequence[tuple[str | None, pl.DataFrame]]) -> list[tuple[str, pl.DataFrame]]:
    """One frame for the group when the versions' columns agree, else one per version.

    Returns (file name suffix, frame): '' for the unified frame, '.v10_0' per version."""
    if len(frames) == 1:
        return [("", frames[0][1])]
    try:
        return [("", pl.concat([frame for _, frame in frames], how="diagonal_relaxed"))]
    except (pl.exceptions.PolarsError, TypeError, ValueError):
        return [(f".v{(version or 'spec').replace('.', '_')}" + (f"_{n}" if n else ""), frame)
                for n, (version, frame) in enumerate(frames)]
