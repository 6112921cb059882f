"""The packet builder: walks an official alert schema and fills each field from the tables in
fields.py, so the records are valid for any bundled schema from v7.0 up.

Any field not in a table gets a value by its Avro type (NaN for floats, as real wire packets carry
them; null or 0 for the rest). Everything is drawn from one numpy Generator, so a seed gives
byte-identical alerts.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import math
from collections.abc import Iterator
from typing import Any

import fastavro
import numpy as np

from ..decode.schemas import (
    bundled_schema,
    bundled_versions,
    inline_named_types,
    latest_version,
    named_types,
    schema_id_for,
)
from .cutouts import alert_cutouts
from .fields import (
    ALERT_FIELDS,
    MISSING,
    SOURCE_COLUMNS,
    AlertContext,
    ContextValue,
    SourceColumn,
    table_value,
)
from .history_rows import FieldLayout, Rows, as_column, field_layout
from .population import (
    NIGHT_END_MJD,
    NIGHT_START_MJD,
    Epochs,
    draw_object,
    history_length,
    measure,
    previous_times,
    source_ids_at,
)

MIN_SIMULATED_MAJOR = 7


def simulated_versions() -> tuple[str, ...]:
    """The bundled schema versions the simulator writes (7.0 and later)."""
    return tuple(v for v in bundled_versions() if int(v.split(".")[0]) >= MIN_SIMULATED_MAJOR)


# ---------------------------------------------------------------------------------------------
# Walking a schema.


def branches_of(avro_type: Any) -> list[Any]:
    """The branches of a union, or the one type that is not a union."""
    return avro_type if isinstance(avro_type, list) else [avro_type]


def avro_kind(avro_type: Any) -> str:
    """The type name of an Avro type: 'record', 'array', 'double', a named type's name ..."""
    return str(avro_type.get("type") if isinstance(avro_type, dict) else avro_type)


def fallback_value(avro_type: Any, schema: AlertSchema) -> Any:
    """A value for a field no table names: NaN for floats (as in real wire packets), else 0/null."""
    branches = [schema.resolve(b) for b in branches_of(avro_type)]
    nullable = any(avro_kind(b) == "null" for b in branches)
    value_type: Any = next((b for b in branches if avro_kind(b) != "null"), "null")
    kind = avro_kind(value_type)
    if kind in ("float", "double"):
        return math.nan
    if kind == "boolean":
        return False
    if nullable or kind == "null":
        return None
    if kind in ("int", "long"):
        return 0
    if kind == "string":
        return ""
    if kind == "bytes":
        return b""
    if kind == "array":
        return []
    if kind == "map":
        return {}
    if kind == "enum":
        return value_type["symbols"][0]
    if kind == "record":
        return {f["name"]: fallback_value(f["type"], schema) for f in value_type["fields"]}
    raise NotImplementedError(f"no fallback for Avro type {avro_type!r}")


def value_kind(avro_type: Any, schema: AlertSchema) -> str:
    """The Avro type name of a field's values (its non-null union branch)."""
    branches = [schema.resolve(b) for b in branches_of(avro_type)]
    return avro_kind(next((b for b in branches if avro_kind(b) != "null"), "null"))


def coerce(kind: str, value: Any) -> Any:
    """A generated value as the Python type fastavro expects for a field of that kind."""
    if value is None or isinstance(value, dt.datetime | Rows | list | dict | bytes):
        return value
    if kind == "float":
        return float(np.float32(value))
    if kind == "double":
        return float(value)
    if kind in ("int", "long"):
        return int(value)
    if kind == "boolean":
        return bool(value)
    if kind == "string":
        return str(value)
    return value


class AlertSchema:
    """One bundled alert schema, with its named types, row layouts and per-field encoders."""

    def __init__(self, version: str):
        self.version = version
        # Inlined, so that any run of the alert's fields is a schema of its own (segments()).
        self.definition = inline_named_types(bundled_schema(version))
        self.named = named_types(self.definition)
        self.by_short_name = {name.rsplit(".", 1)[-1]: d for name, d in self.named.items()}
        self.fields = [(f["name"], f["type"]) for f in self.definition["fields"]]
        self.schema_id = schema_id_for(version)
        self._layouts: dict[str, tuple[FieldLayout, ...]] = {}
        self._record_plans: dict[str, list[tuple[str, str, Any]]] = {}
        self._row_plans: dict[str, list[tuple[FieldLayout, SourceColumn | None, Any]]] = {}
        self._segments: list[tuple[tuple[str, ...], Any, Any]] | None = None

    def resolve(self, avro_type: Any) -> Any:
        return self.named.get(avro_type, avro_type) if isinstance(avro_type, str) else avro_type

    def record(self, short_name: str) -> dict[str, Any]:
        return self.by_short_name[short_name]

    def has_record(self, short_name: str) -> bool:
        return short_name in self.by_short_name

    def layouts(self, short_name: str) -> tuple[FieldLayout, ...]:
        if short_name not in self._layouts:
            self._layouts[short_name] = tuple(
                field_layout(f["name"], f["type"]) for f in self.record(short_name)["fields"]
            )
        return self._layouts[short_name]

    def rows(self, short_name: str, epochs: Epochs) -> Rows:
        """History rows of a record type, one per epoch, filled from SOURCE_COLUMNS."""
        if short_name not in self._row_plans:
            fields = self.record(short_name)["fields"]
            self._row_plans[short_name] = [
                (layout, SOURCE_COLUMNS.get(layout.name),
                 as_column(layout, fallback_value(schema_field["type"], self), 0))
                for layout, schema_field in zip(self.layouts(short_name), fields, strict=True)
            ]
        columns = {}
        for layout, column, constant in self._row_plans[short_name]:
            value = constant if column is None else as_column(layout, column(epochs), epochs.count)
            columns[layout.name] = value
        return Rows(self.layouts(short_name), columns, epochs.count)

    def record_plan(self, short_name: str) -> list[tuple[str, str, Any]]:
        """(name, value kind, fallback value) of each field of a record type."""
        if short_name not in self._record_plans:
            self._record_plans[short_name] = [
                (f["name"], value_kind(f["type"], self),
                 coerce(value_kind(f["type"], self), fallback_value(f["type"], self)))
                for f in self.record(short_name)["fields"]
            ]
        return self._record_plans[short_name]

    def fill_record(
        self, short_name: str, table: dict[str, ContextValue], context: AlertContext
    ) -> dict[str, Any] | None:
        """A record of the named type, each field from the table, else from its Avro type."""
        if not self.has_record(short_name):
            return None
        out: dict[str, Any] = {}
        for name, kind, fallback in self.record_plan(short_name):
            value = table_value(name, table, context)
            if value is MISSING:
                mutable = isinstance(fallback, list | dict)
                out[name] = copy.deepcopy(fallback) if mutable else fallback
            else:
                out[name] = coerce(kind, value)
        return out

    def segments(self) -> list[tuple[tuple[str, ...], Any, Any]]:
        """The alert's fields in runs fastavro writes in one call, history arrays on their own.

        Each run is (field names, parsed schema of a record holding just those fields, the array
        type if the run is one history array). Avro records have no framing, so a record of some
        of the alert's fields encodes exactly as those fields do inside the alert.
        """
        if self._segments is None:
            runs: list[list[tuple[str, Any]]] = []
            for name, avro_type in self.fields:
                is_array = value_kind(avro_type, self) == "array"
                if is_array or not runs or value_kind(runs[-1][-1][1], self) == "array":
                    runs.append([])
                runs[-1].append((name, avro_type))
            self._segments = []
            for number, run in enumerate(runs):
                wrapper = {"type": "record", "name": f"simulated_fields_{number}",
                           "fields": [{"name": n, "type": t} for n, t in run]}
                array_type = run[0][1] if value_kind(run[0][1], self) == "array" else None
                self._segments.append((tuple(n for n, _ in run),
                                       fastavro.parse_schema(wrapper, named_schemas={}),
                                       array_type))
        return self._segments


@functools.cache
def alert_schema(version: str) -> AlertSchema:
    """The simulator's view of a bundled schema version (cached)."""
    if version not in simulated_versions():
        choices = ", ".join(simulated_versions())
        raise ValueError(f"schema {version!r} cannot be simulated; choose one of {choices}")
    return AlertSchema(version)


# ---------------------------------------------------------------------------------------------
# The alerts.


def simulate_alert(
    rng: np.random.Generator,
    schema: AlertSchema,
    mjd: float,
    solar_system: bool,
    history: Any = None,
    previous_id: int = 0,
) -> dict[str, Any]:
    """One alert record for the schema, triggered at `mjd`."""
    obj = draw_object(rng, solar_system, mjd)
    previous = history_length(rng, obj.kind, history)
    times = np.append(previous_times(rng, obj.kind, previous, mjd), mjd)
    ids = source_ids_at(rng, times)
    ids[-1] = max(int(ids[-1]), previous_id + 1)
    detections = measure(rng, obj, times, ids, detected=True)
    forced = None
    if not solar_system:
        extra = int(rng.integers(0, max(2, previous // 3 + 1)))
        forced_times = previous_times(rng, obj.kind, min(previous + extra, 450), mjd)
        forced = measure(rng, obj, forced_times, source_ids_at(rng, forced_times) + 7,
                         detected=False)
    context = AlertContext(
        rng=rng,
        schema=schema,
        obj=obj,
        detections=detections,
        source_rows=schema.rows("diaSource", detections),
        forced=forced,
        cutouts=alert_cutouts(rng, obj, detections),
    )
    alert: dict[str, Any] = {}
    for name, avro_type in schema.fields:
        value = ALERT_FIELDS[name](context) if name in ALERT_FIELDS else MISSING
        if value is MISSING:
            value = fallback_value(avro_type, schema)
        alert[name] = coerce(value_kind(avro_type, schema), value)
    return alert


def simulate_alerts(
    count: int,
    *,
    schema_version: str | None = None,
    sso_fraction: float = 0.1,
    seed: int = 0,
    history: int | tuple[int, int] | None = None,
) -> Iterator[dict[str, Any]]:
    """`count` alerts of one night, in time order, valid for the schema (default: the latest).

    `history` fixes the number of prvDiaSources of non-solar-system alerts (an int, or an
    inclusive (low, high) range); None draws it from the realistic mix.
    """
    if not 0.0 <= sso_fraction <= 1.0:
        raise ValueError(f"sso_fraction must be between 0 and 1, not {sso_fraction}")
    schema = alert_schema(schema_version or latest_version())
    rng = np.random.default_rng(seed)
    span = NIGHT_END_MJD - NIGHT_START_MJD
    previous_id = 0
    for index in range(count):
        mjd = NIGHT_START_MJD + span * (index + float(rng.random())) / count
        alert = simulate_alert(rng, schema, mjd, bool(rng.random() < sso_fraction), history,
                               previous_id)
        previous_id = dia_source_id_of(alert)
        yield alert


def dia_source_id_of(alert: dict[str, Any]) -> int:
    """The alert's key: its triggering diaSourceId."""
    return int(alert["diaSource"]["diaSourceId"])
