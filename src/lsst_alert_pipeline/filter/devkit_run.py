"""Run an ANTARES filter file locally, through the real DevKit, on alert files (`filter-test`).

Each Rubin alert becomes the DevKit locus ANTARES would build (devkit_locus.py); the filter runs
through `antares_devkit.utils.filter_report`, which calls `BaseFilter.run` and measures its time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import statistics
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from antares_devkit.models import BaseFilter, DevKitLocus, FilterReturn
from antares_devkit.utils import filter_report

from ..decode.batch import decode_packet_files
from ..decode.formats import DecodedAlert
from ..errors import InvalidMessage
from . import antares_extendedness_filter as bundled
from .devkit_locus import build_locus

BUNDLED_FILTER = Path(bundled.__file__)
Outcome = Literal["passed", "failed", "skipped", "errored"]
# SLACK_CHANNEL values that name nobody: BaseFilter's default and the bundled file's placeholder.
UNSET_SLACK_CHANNELS = ("", bundled.SLACK_CHANNEL)


@dataclass(slots=True)
class FilterResult:
    """What the filter did with one alert (or with a file that could not be decoded)."""

    path: str
    diaSourceId: int | None  # noqa: N815 - the key the JSON output promises
    outcome: Outcome
    reason: str
    seconds: float | None = None
    new_tags: list[str] = field(default_factory=list)
    new_properties: dict[str, Any] = field(default_factory=dict)
    sso: str | None = None  # what decided the solar-system association, when the filter says

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    def as_json(self) -> dict[str, Any]:
        """One `filter-test --json` line."""
        return {**asdict(self), "passed": self.passed}

    def line(self) -> str:
        """One `filter-test` line: outcome, alert, DevKit time and the filter's reason."""
        took = "" if self.seconds is None else f" ({self.seconds * 1000:.2f} ms)"
        sso = "" if self.sso is None else f"; sso: {self.sso}"
        return f"{self.outcome}: {self.diaSourceId or self.path}{took}: {self.reason}{sso}"


@dataclass(slots=True)
class FilterSummary:
    """Counts per outcome and the DevKit's time per locus."""

    counts: dict[str, int]
    median_seconds: float | None
    max_seconds: float | None

    def line(self, filter_name: str, paths: str | None = None) -> str:
        """`filter-test`'s closing line: counts per outcome and the filter's time per locus as
        the DevKit's filter_report measures it; `paths` says which path gave the verdicts when
        the fast path (fast.py) ran."""
        line = ", ".join(f"{self.counts[name]} {name}" for name in self.counts)
        if self.median_seconds is not None and self.max_seconds is not None:
            timing = "DevKit time per locus" if paths is None else "filter time per locus"
            line += (f"; {timing}: median {self.median_seconds * 1000:.2f} ms, "
                     f"max {self.max_seconds * 1000:.2f} ms")
        if paths is not None:
            line += f"; {paths}"
        return f"{filter_name}: {line}"


def load_filter(path: str | Path | None = None) -> type[BaseFilter]:
    """The BaseFilter subclass defined in a filter file (the bundled one by default)."""
    if path is None:
        # The package's own import of the bundled file, so its constants are the ones in use.
        module: ModuleType = bundled
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no filter file at {path}")
        module = _import_file(path)
    found = [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, BaseFilter)
        and value is not BaseFilter
        and value.__module__ == module.__name__
    ]
    if len(found) != 1:
        names = ", ".join(cls.__name__ for cls in found) or "none"
        raise ValueError(
            f"{module.__file__} must define exactly one BaseFilter subclass, found {names}"
        )
    return found[0]


def _import_file(path: Path) -> ModuleType:
    """Import a file as ANTARES does: as a module of its own, not as part of our package."""
    name = f"antares_filter_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _filter_function(filter_instance: BaseFilter, name: str) -> Any:
    """A module-level function of the filter's own file (None when it defines none)."""
    found = getattr(sys.modules.get(type(filter_instance).__module__), name, None)
    return found if callable(found) else None


def reason_for(filter_instance: BaseFilter, locus: Any, tagged: bool) -> str:
    """The filter's own reason when it explains itself (an `evaluate` function), else a tag note."""
    evaluate = _filter_function(filter_instance, "evaluate")
    if evaluate is not None:
        with _quiet():
            return str(evaluate(locus)[1])
    return "tagged" if tagged else "not tagged"


def sso_for(filter_instance: BaseFilter, locus: Any) -> str | None:
    """What decided the solar-system association (`ssObjectId 1234`, `none (ssObjectId 0)`),
    when the filter file says (a `solar_system_association` function)."""
    association = _filter_function(filter_instance, "solar_system_association")
    if association is None:
        return None
    with _quiet():
        return str(association(locus.alert)[1])


def slack_channel_warning(filter_class: type[BaseFilter]) -> str | None:
    """A warning while the filter's SLACK_CHANNEL is unset or still the placeholder."""
    channel = getattr(filter_class, "SLACK_CHANNEL", "")
    if channel not in UNSET_SLACK_CHANNELS:
        return None
    shown = repr(channel) if channel else "unset"
    return (f"warning: {filter_class.__name__}.SLACK_CHANNEL is {shown}: set it to your Slack "
            "channel or member id before submitting, so ANTARES can tell you when the filter "
            "errors")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Swallow what the DevKit prints (timeseries() prints a line per LSST call)."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


class _RecordingRun:
    """Hands filter_report a run() that keeps the FilterReturn, which filter_report drops."""

    def __init__(self, filter_instance: BaseFilter):
        self.filter_instance = filter_instance
        self.returned: FilterReturn | None = None

    def run(self, locus: DevKitLocus) -> FilterReturn:
        self.returned = self.filter_instance.run(locus)
        return self.returned


def run_on_alert(filter_instance: BaseFilter, alert: DecodedAlert, path: str) -> FilterResult:
    """Build the alert's locus and run the filter on it through the DevKit's filter_report."""
    if alert.kind != "rubin":
        return FilterResult(path, None, "skipped", f"not a Rubin alert ({alert.kind})")
    source = alert.record.get("diaSource")
    dia_source_id = source.get("diaSourceId") if isinstance(source, dict) else None
    try:
        locus = build_locus(alert.record, alert.schema_version)
    except (ValueError, KeyError, TypeError) as exc:
        return FilterResult(path, dia_source_id, "errored", f"cannot build a locus: {exc!r}")
    return run_on_locus(filter_instance, locus, path, dia_source_id)


def run_on_locus(filter_instance: BaseFilter, locus: DevKitLocus, path: str,
                 dia_source_id: int | None) -> FilterResult:
    """Run the filter on a DevKit locus through the DevKit's filter_report."""
    recorder = _RecordingRun(filter_instance)
    with _quiet():
        report = filter_report(recorder, locus)  # duck-typed: filter_report only calls run()
    properties = {name: locus.properties[name] for name in report["new_locus_properties"]}
    return locus_result(filter_instance, locus, path, dia_source_id, recorder.returned,
                        report["time"], report["new_tags"], properties)


def locus_result(filter_instance: BaseFilter, locus: Any, path: str, dia_source_id: int | None,
                 returned: FilterReturn | None, seconds: float | None, new_tags: Iterable[str],
                 new_properties: dict[str, Any]) -> FilterResult:
    """The FilterResult of what run() returned and added to a locus (the fast path's too)."""
    if returned is None or returned.status == "Errored":
        error = "no result" if returned is None else (
            f"{returned.exception_name}: {returned.exception_message}")
        return FilterResult(path, dia_source_id, "errored", error, seconds)
    if returned.status == "Skipped":
        reason = "DevKit skipped the locus: not LSST-triggered or a required property is missing"
        return FilterResult(path, dia_source_id, "skipped", reason, seconds)
    tags = sorted(new_tags)
    tagged = bool(tags)
    return FilterResult(
        path,
        dia_source_id,
        "passed" if tagged else "failed",
        reason_for(filter_instance, locus, tagged),
        seconds,
        tags,
        new_properties,
        sso_for(filter_instance, locus),
    )


def run_filter(
    paths: Iterable[str | Path], filter_class: type[BaseFilter] | None = None
) -> Iterator[FilterResult]:
    """Run a filter (the bundled one by default) on every alert of every file named."""
    filter_instance = (filter_class or load_filter())()
    for path, packets in decode_packet_files(paths):
        if isinstance(packets, InvalidMessage):
            yield FilterResult(str(path), None, "errored", f"cannot decode: {packets.reason}")
            continue
        for alert in packets:
            yield run_on_alert(filter_instance, alert, str(path))


def summarize(results: Iterable[FilterResult]) -> FilterSummary:
    """Counts per outcome and the median and largest DevKit time per locus."""
    counts = {"passed": 0, "failed": 0, "skipped": 0, "errored": 0}
    times = []
    for result in results:
        counts[result.outcome] += 1
        if result.seconds is not None:
            times.append(result.seconds)
    return FilterSummary(
        counts=counts,
        median_seconds=statistics.median(times) if times else None,
        max_seconds=max(times) if times else None,
    )
