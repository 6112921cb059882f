"""The filter file's own decision at the speed of the batch decoder (`filter-test`, `passes`).

The DevKit path (devkit_run.py) decodes every field of every history row and validates a whole
DevKitLocus per alert; the shipped filter reads only each alert's extendedness and the triggering
alert's properties. Here each wire payload's triggering diaSource is read by fastavro and its
history's (diaSourceId, midpointMjdTai, extendedness) by polars in columnar groups (fastavro for
short histories), and the filter class's own `run()` is called on a light locus holding exactly
what the shipped code reads, built by devkit_locus.py's rules (history deduplicated against the
triggering diaSource, rows without a finite MJD dropped, oldest first). The constants, `decide`,
`evaluate` and every other line that runs are the filter file's own, read at call time.

That holds only for a filter file that is the shipped one up to its tunable constants
(`TUNABLE`): anything else is run through the DevKit, said once (docs/filter.md). An alert the
light locus cannot stand for (no finite position, MJD or diaSourceId on its triggering diaSource)
and any payload that is not a wire payload of a bundled schema go through the DevKit one by one;
tests/test_fast_filter.py runs both paths over every real alert and many simulated ones.
"""

from __future__ import annotations

import copy
import functools
import io
import itertools
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from math import isfinite
from operator import itemgetter
from pathlib import Path
from typing import Any

import fastavro
from antares_devkit.models import BaseFilter, DevkitAlert, DevKitLocus

from ..decode.batch import (
    HEAVY_HISTORY,
    encoded_tail,
    file_batches,
    history_length,
    split_schema,
    tail_schema,
)
from ..decode.columnar import CUTOUT_FIELDS, one_block_container, read_avro_container
from ..decode.formats import DecodedAlert, decode_message, detect_format, wire_schema_id
from ..decode.schemas import (
    SchemaSource,
    bundled_schema,
    bundled_versions,
    field_names_for,
    inline_named_types,
)
from ..errors import InvalidMessage, PipelineError
from .devkit_locus import DIA_SOURCE_PREFIX, alert_properties
from .devkit_run import FilterResult, load_filter, locus_result, run_on_alert
from .fast_check import fallback_reason

log = logging.getLogger(__name__)

EXTENDEDNESS = DIA_SOURCE_PREFIX + "extendedness"
# Bodies per polars read of history-heavy alerts: big enough to amortize the read, small enough
# that every field of every history row, which polars materializes, stays a few hundred MB.
HEAVY_GROUP_BYTES = 8 * 1024 * 1024
FILE_BATCH = 256


# --- the light locus ---------------------------------------------------------------------------


class _HistoryAlert:
    """A history alert as the shipped filter reads it: its extendedness property, if stored."""

    __slots__ = ("properties",)

    def __init__(self, properties: dict[str, Any]):
        self.properties = properties


NO_EXTENDEDNESS = _HistoryAlert({})


class LightLocus:
    """What the shipped filter reads of a DevKitLocus and nothing more: every alert's
    extendedness, the triggering alert itself, and the DevKit's own tag() and set_property()."""

    __slots__ = ("alerts", "user_tags", "user_properties")
    tag = DevKitLocus.tag
    set_property = DevKitLocus.set_property

    def __init__(self, alerts: list[Any]):
        self.alerts = alerts
        self.user_tags: set[str] = set()
        self.user_properties: dict[str, Any] = {}

    @property
    def alert(self) -> Any:
        return self.alerts[-1]


def light_locus(trigger: dict[str, Any], version: str, history: Iterable[tuple[Any, Any, Any]]
                ) -> LightLocus | None:
    """The light locus of a triggering diaSource and its history's (diaSourceId, mjd,
    extendedness) rows, by devkit_locus.locus_dia_sources' rules; None when the DevKit must
    build this one (locus_dict would use another alert's position, or fail)."""
    names = field_names_for(version, trigger)
    properties = alert_properties(trigger, names)
    dia_source_id = trigger.get("diaSourceId")
    if not ({"ant_ra", "ant_dec", "ant_mjd"} <= properties.keys()) or dia_source_id is None:
        return None
    seen = {dia_source_id}
    kept = []
    for row_id, mjd, extendedness in history:
        # stored(mjd), inlined: this loop runs once per history row.
        if row_id in seen or mjd is None or (isinstance(mjd, float) and not isfinite(mjd)):
            continue
        seen.add(row_id)
        kept.append((mjd, extendedness))
    kept.sort(key=itemgetter(0))
    alerts: list[Any] = [
        NO_EXTENDEDNESS if value is None or (isinstance(value, float) and not isfinite(value))
        else _HistoryAlert({EXTENDEDNESS: value}) for _, value in kept]
    alerts.append(DevkitAlert(id=f"lsst_diaSource:{dia_source_id}", mjd=properties["ant_mjd"],
                              properties=properties))
    return LightLocus(alerts)


# --- reading what the light locus needs --------------------------------------------------------


@dataclass(slots=True)
class _Read:
    """One wire alert read for the light locus: its triggering diaSource and history rows."""

    version: str
    trigger: dict[str, Any]
    history: list[tuple[Any, Any, Any]] = field(default_factory=list)


@functools.cache
def history_reader(version: str) -> Any:
    """The alert's fields after the triggering diaSource, projected to the history's
    diaSourceId, MJD and extendedness (fastavro skips the rest)."""
    split = split_schema(version)
    assert split is not None
    schema = inline_named_types(bundled_schema(version))
    names = [item["name"] for item in schema["fields"]]
    reader = copy.deepcopy(dict(schema, name=schema["name"] + "_suffix",
                                fields=schema["fields"][names.index("diaSource") + 1:]))
    reader["fields"] = reader["fields"][:1]
    rows = reader["fields"][0]["type"][split.array_branch]["items"]
    wanted = ("diaSourceId", field_names_for(version).mjd, "extendedness")
    rows["fields"] = [item for item in rows["fields"] if item["name"] in wanted]
    return fastavro.parse_schema(reader, named_schemas={})


@functools.cache
def _fast_version(version: str) -> bool:
    """Whether a bundled version's history rows carry what the light locus needs."""
    if split_schema(version) is None:
        return False
    schema = inline_named_types(bundled_schema(version))
    history = next(item for item in schema["fields"] if item["name"] == "prvDiaSources")
    rows = next(branch for branch in history["type"] if isinstance(branch, dict))["items"]
    have = {item["name"] for item in rows["fields"]}
    return {"diaSourceId", field_names_for(version).mjd, "extendedness"} <= have


def _wire_version(payload: bytes, schemas: SchemaSource) -> str | None:
    """The bundled schema version of a wire payload the fast path reads; None otherwise."""
    if type(schemas) is not SchemaSource or schemas.registry_url:
        return None
    try:
        if detect_format(payload) != "wire":
            return None
        version, _ = schemas.lookup(wire_schema_id(payload))
    except InvalidMessage:
        return None  # the DevKit path says what is wrong with it
    except PipelineError:
        raise  # a failure of the system, not of this message (decode/batch.py does the same)
    except Exception:
        return None
    if version is None or version not in bundled_versions() or not _fast_version(version):
        return None
    return version


HeavyRead = Future[list[tuple[int, _Read]]]


def read_batch(payloads: Sequence[bytes], schemas: SchemaSource, pool: Executor | None = None
               ) -> tuple[list[_Read | None], list[HeavyRead]]:
    """Per payload, what its light locus needs, or None for the DevKit path (not a wire payload
    of a bundled schema, or anything unexpected while reading it). Long histories are read by
    polars in the pool (it lets the caller's thread run meanwhile), each group's reads arriving
    by its future; without a pool, here, their futures already done."""
    out: list[_Read | None] = [None] * len(payloads)
    heavy: dict[str, list[tuple[int, _Read, int]]] = {}
    sizes: dict[str, int] = {}
    pending: list[HeavyRead] = []

    def start(version: str) -> None:
        group = heavy.pop(version)
        del sizes[version]
        if pool is not None:
            pending.append(pool.submit(_read_heavy, version, group, payloads))
            return
        done: HeavyRead = Future()
        done.set_result(_read_heavy(version, group, payloads))
        pending.append(done)

    for index, payload in enumerate(payloads):
        version = _wire_version(payload, schemas)
        if version is None:
            continue
        split = split_schema(version)
        assert split is not None
        try:
            body = io.BytesIO(payload)
            body.seek(5)
            head = fastavro.schemaless_reader(body, split.prefix, None)
            assert isinstance(head, dict) and isinstance(head.get("diaSource"), dict)
            read = _Read(version, head["diaSource"])
            count = history_length(payload, body.tell(), split.array_branch)
            if count >= HEAVY_HISTORY and count * split.row_fields <= len(payload):
                heavy.setdefault(version, []).append((index, read, count))
                sizes[version] = sizes.get(version, 0) + len(payload)
                if sizes[version] >= HEAVY_GROUP_BYTES:
                    start(version)
                continue
            tail = fastavro.schemaless_reader(body, split.suffix, history_reader(version))
            if body.tell() != len(payload) or not isinstance(tail, dict):
                continue
            mjd = field_names_for(version).mjd
            read.history = [(row["diaSourceId"], row[mjd], row["extendedness"])
                            for row in tail.get("prvDiaSources") or ()]
            out[index] = read
        except Exception:  # noqa: S112 - the DevKit path decodes it again and says what is wrong
            continue
    for version in list(heavy):
        start(version)
    return out, pending


def _read_heavy(version: str, group: list[tuple[int, _Read, int]], payloads: Sequence[bytes]
                ) -> list[tuple[int, _Read]]:
    """The history rows of long-history alerts by one polars read of their bodies in one Avro
    block, checked as batch.py checks its reads: the triggering diaSourceIds come back in order,
    each history is at least its first block's count, and each body ends with the fields read
    last. On any mismatch none: the group is left to the DevKit path."""
    import polars as pl

    tail_names, _ = tail_schema(version)
    columns = ["diaSource", "prvDiaSources", *(n for n in tail_names if n in CUTOUT_FIELDS)]
    mjd = field_names_for(version).mjd
    bodies = [memoryview(payloads[index])[5:] for index, _, _ in group]
    try:
        frame = read_avro_container(one_block_container(version, bodies), columns)
        ids = frame.get_column("diaSource").struct.field("diaSourceId").to_list()
        if ids != [read.trigger.get("diaSourceId") for _, read, _ in group]:
            return []
        rows = pl.col("prvDiaSources").list
        history = frame.select(
            rows.eval(pl.element().struct.field("diaSourceId")).alias("ids"),
            rows.eval(pl.element().struct.field(mjd)).alias("mjd"),
            rows.eval(pl.element().struct.field("extendedness")).alias("extendedness"),
        )
        tails = frame.select(list(tail_names)).to_dicts()
        columns_read = zip(history.get_column("ids").to_list(),
                           history.get_column("mjd").to_list(),
                           history.get_column("extendedness").to_list(), strict=True)
        checked = []
        for (index, read, count), (row_ids, mjds, values), tail in zip(
                group, columns_read, tails, strict=True):
            if len(row_ids or ()) < count or not payloads[index].endswith(
                    encoded_tail(version, tail)):
                return []
            read.history = list(zip(row_ids or (), mjds or (), values or (), strict=True))
            checked.append((index, read))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # polars panics (pyo3 PanicException) on some corrupt bodies
        log.debug("columnar read of %d v%s alerts for the filter failed (%s)", len(group),
                  version, exc)
        return []
    return checked


# --- running the filter ------------------------------------------------------------------------


class FastFilter:
    """A filter class run on light loci where that gives the DevKit's answer, else the DevKit."""

    def __init__(self, filter_class: type[BaseFilter] | None = None,
                 schemas: SchemaSource | None = None):
        self.filter_class = filter_class or load_filter()
        self.filter_instance = self.filter_class()
        self.schemas = schemas or SchemaSource()
        # Why every alert goes through the DevKit; None while the fast path serves.
        self.fallback = fallback_reason(self.filter_class)
        # Alerts each path evaluated (tests and the benchmark check the fast path served).
        self.fast_alerts = 0
        self.devkit_alerts = 0
        self._pool: ThreadPoolExecutor | None = None

    def results(self, payloads: Sequence[bytes], paths: Sequence[str] | None = None
                ) -> list[list[FilterResult]]:
        """Per payload, the filter's result on each alert it holds (an undecodable payload gives
        one errored result), exactly as devkit_run.run_filter reports them."""
        names = list(paths) if paths is not None else [""] * len(payloads)
        out: list[list[FilterResult] | None] = [None] * len(payloads)
        if not self.fallback:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="filter-columnar")
            reads, pending = read_batch(payloads, self.schemas, self._pool)
            # The short histories are judged while polars reads the long ones.
            light = [(index, read) for index, read in enumerate(reads) if read is not None]
            for group in itertools.chain([light], (future.result() for future in pending)):
                for index, read in group:
                    result = self._fast(read, names[index])
                    if result is not None:
                        self.fast_alerts += 1
                        out[index] = [result]
        return [self._devkit(payload, path) if results is None else results
                for payload, path, results in zip(payloads, names, out, strict=True)]

    def paths_line(self) -> str:
        """How many alerts each path judged so far (filter-test's closing line)."""
        return (f"{self.fast_alerts:,} by the fast path, {self.devkit_alerts:,} through the "
                "DevKit")

    def passes(self, payloads: Sequence[bytes]) -> list[bool]:
        """Per payload, whether the filter tags (one of) its alert(s)."""
        return [any(result.passed for result in results) for results in self.results(payloads)]

    def _fast(self, read: _Read, path: str) -> FilterResult | None:
        locus = light_locus(read.trigger, read.version, read.history)
        if locus is None:
            return None
        # Timed as the DevKit's filter_report times it: run() alone.
        started = time.perf_counter()
        returned = self.filter_instance.run(locus)
        seconds = time.perf_counter() - started
        return locus_result(self.filter_instance, locus, path, read.trigger.get("diaSourceId"),
                            returned, seconds, locus.user_tags, dict(locus.user_properties))

    def _devkit(self, payload: bytes, path: str) -> list[FilterResult]:
        try:
            alerts: list[DecodedAlert] = decode_message(payload, self.schemas)
        except InvalidMessage as exc:
            return [FilterResult(path, None, "errored", f"cannot decode: {exc.reason}")]
        self.devkit_alerts += len(alerts)
        return [run_on_alert(self.filter_instance, alert, path) for alert in alerts]


def run_filter(paths: Iterable[str | Path], fast_filter: FastFilter) -> Iterator[FilterResult]:
    """devkit_run.run_filter's results, from the fast path wherever it gives the same."""
    for files, payloads in file_batches(paths, FILE_BATCH):
        for results in fast_filter.results(payloads, [str(path) for path in files]):
            yield from results


_FILTERS: dict[type[BaseFilter] | None, FastFilter] = {}


def passes(batch: Sequence[bytes], filter_class: type[BaseFilter] | None = None) -> list[bool]:
    """Per message of a batch (Rubin wire payloads, or anything decode_message reads), whether
    the filter (the bundled one by default) tags its alert, as the DevKit would decide.

    The consumer's local filter calls this. A filter file the fast path does not understand runs
    through the DevKit, logged once per filter class."""
    fast_filter = _FILTERS.get(filter_class)
    if fast_filter is None:
        fast_filter = _FILTERS.setdefault(filter_class, FastFilter(filter_class))
        if fast_filter.fallback:
            log.warning("local filter %s runs through the ANTARES DevKit, ~10x slower: %s",
                        fast_filter.filter_class.__name__, fast_filter.fallback)
    return fast_filter.passes(batch)

