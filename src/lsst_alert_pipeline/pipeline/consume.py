"""`lsst-alerts consume` as a library call: settings in, a run summary (with exit code) out."""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
import time
import traceback
from typing import TYPE_CHECKING, Protocol

from .. import exitcodes
from ..broker_presets import runs_local_filter
from ..config import Settings
from ..decode.normalize import locus_gaps_line
from ..decode.schemas import ForcedSchema, SchemaSource
from ..errors import ConfigurationError, Interrupted
from ..sources.files import FileSource
from ..sources.kafka import BrokerUnreachable, KafkaSource, ResumePoint
from .ledger import covered_through
from .mounts import refuse_network_filesystem
from .outputdir import AlreadyRunning, OutputDir, OutputError
from .progress import Progress
from .run import BatchObserver, Pipeline, RunOptions, RunSummary, Source, run
from .screen import BrokerRun

if TYPE_CHECKING:
    from ..filter.local import LocalFilter
    from ..sources.antares_thumbnails import AntaresThumbnails

log = logging.getLogger("lsst_alert_pipeline")


def open_source(settings: Settings, resume: ResumePoint | None = None,
                stop: threading.Event | None = None) -> Source:
    """The files or the Kafka topics to read; `resume` tells a Kafka source where the output's
    ledger says a group's recorded batches reach; `stop` ends the wait for a silent broker."""
    if settings.from_paths:
        try:
            return FileSource(settings.from_paths)
        except FileNotFoundError as exc:
            raise ConfigurationError(str(exc)) from exc
    source = KafkaSource(settings.kafka, settings.topics, settings.reset_offsets,
                         commit_timeout=settings.broker_timeout, resume=resume)
    source.connect(stop=stop)
    return source


def local_filter_for(settings: Settings) -> LocalFilter | None:
    """The user's filter, loaded once, when this run filters locally (said once in the log):
    a broker preset's stream unless --no-local-filter; files or a plain topic only when a
    filter file is named (--filter, [filter] path) or --local-filter; never ANTARES's."""
    if settings.preset == "antares":
        if settings.local_filter:
            raise ConfigurationError("the antares preset's stream is what ANTARES's run of "
                                     "the filter passed; drop --local-filter")
        return None
    if settings.preset is None:
        wanted = (settings.local_filter if settings.local_filter is not None
                  else settings.filter_path is not None)
    else:
        wanted = runs_local_filter(settings)
    if not wanted:
        return None
    from ..filter.local import LocalFilter

    try:
        local = LocalFilter(settings.filter_path)
    except (OSError, ValueError, SyntaxError, ImportError) as exc:
        raise ConfigurationError(f"filter {settings.filter_path}: {exc}") from exc
    delivered = settings.preset or ("file" if settings.from_paths else "Kafka")
    log.info("local filter on: %s runs on each %s alert before it is written%s; "
             "--no-local-filter writes every alert", local.path, delivered,
             " (the broker did not run it)" if settings.preset else "")
    return local


def broker_fetcher(settings: Settings) -> AntaresThumbnails:
    """Lasair's or Babamul's cutout API, with the run's ANTARES timeouts and concurrency."""
    from ..broker_presets import api_setting
    from ..sources.broker_cutouts import broker_cutouts

    fetcher = broker_cutouts(settings.preset, api_setting(settings, "api_url"),
                             api_setting(settings, "api_token"), settings.antares_timeout,
                             settings.antares_retries, settings.antares_concurrency)
    assert fetcher is not None
    log.info("cutouts of each new %s alert come from %s", settings.preset,
             api_setting(settings, "api_url"))
    return fetcher


def fill_before_run(output: OutputDir, fetcher: AntaresThumbnails, seconds: float) -> None:
    """Fetch the cutouts earlier runs recorded missing for now (before joining the group),
    for at most about `seconds`: an API still down must not hold back new alerts."""
    from .fill_cutouts import fill_missing

    filled = fill_missing(output, fetcher, time.monotonic() + seconds)
    if filled.tried:
        log.info("cutouts missing for now from earlier runs: %s", filled.line())


class RunObserver(BatchObserver, Protocol):
    """Told of each durable batch and of the run's end (notify/: what the user learns)."""

    def run_ended(self, summary: RunSummary) -> None: ...


def consume(settings: Settings, stop: threading.Event | None = None,
            progress: Progress | None = None,
            observer: RunObserver | None = None) -> RunSummary:
    """One bounded run into settings.output_dir; never raises for a failure it can name."""
    summary = _consume(settings, stop, progress, observer)
    if observer is not None:  # after everything, whichever way the run ended
        observer.run_ended(summary)
    return summary


def _consume(settings: Settings, stop: threading.Event | None,
             progress: Progress | None, observer: BatchObserver | None) -> RunSummary:
    started = time.monotonic()
    # Before the output directory is created: a mistyped --from must not leave a collection.
    missing = [path for path in settings.from_paths if not os.path.exists(path)]
    if missing:
        log.error("configuration error: no such file or folder: %s (--from); nothing was "
                  "created in %s", ", ".join(missing), settings.output_dir)
        return RunSummary(outcome="configuration error", exit_code=exitcodes.CONFIG_ERROR,
                          reason=f"no such file or folder: {', '.join(missing)} (--from)")
    if settings.member:
        try:
            refuse_network_filesystem(settings.output_dir)
        except ConfigurationError as exc:
            log.error("configuration error: %s", exc)
            return RunSummary(outcome="configuration error", exit_code=exitcodes.CONFIG_ERROR,
                              reason=str(exc))
    output = OutputDir(settings.output_dir, settings.member)
    try:
        output.open()
    except AlreadyRunning as exc:
        log.error("%s; this run exits without writing", exc)
        return RunSummary(outcome="already running", exit_code=exitcodes.ALREADY_RUNNING,
                          reason=str(exc))
    except OutputError as exc:
        log.error("%s", exc)
        return RunSummary(outcome="output not writable", exit_code=exitcodes.OUTPUT_ERROR,
                          reason=str(exc))
    assert output.ledger is not None
    run_id = output.ledger.start_run()
    locus_gaps_line()  # this run's count of loci lacking extfilter_* properties starts at 0
    summary = RunSummary()
    source: Source | None = None
    fetcher: AntaresThumbnails | None = None
    try:
        schemas = (ForcedSchema(settings.schema) if settings.schema
                   else SchemaSource(settings.schema_registry_url))
        if settings.antares_fetch_cutouts:
            from ..sources.antares_thumbnails import AntaresThumbnails

            fetcher = AntaresThumbnails(settings.antares_api_url, settings.antares_timeout,
                                        settings.antares_retries, settings.antares_concurrency)
            fill_before_run(output, fetcher, 2 * settings.batch_seconds)
        elif settings.preset in ("lasair", "babamul"):  # their messages carry no cutouts
            fetcher = broker_fetcher(settings)
            fill_before_run(output, fetcher, 2 * settings.batch_seconds)
        source = open_source(settings, functools.partial(covered_through, output.ledger.path),
                             stop)
        # Retries of a sick API stop after a fraction of a batch's time; what still fails is
        # recorded missing for now and `fill-cutouts` fetches it later.
        pipeline = Pipeline(output, schemas, tuple(settings.extra_columns), fetcher,
                            fetch_budget=2 * settings.batch_seconds,
                            alert_id_format=settings.antares_alert_id_format,
                            max_inflated_bytes=settings.max_inflated_bytes,
                            archive=settings.archive, observer=observer,
                            broker=BrokerRun(settings.preset, settings.preset or (
                                "files" if settings.from_paths else "kafka"),
                                local_filter_for(settings)))
        run(source, pipeline, RunOptions.from_settings(settings), stop, progress, summary)
        local = pipeline.broker and pipeline.broker.local_filter
        if local and (reasons := local.summary()):
            log.info("local filter: %d alerts filtered out: %s", summary.filtered_out, reasons)
        for why, count in summary.incomplete.items():
            log.warning("%d alerts written without what their broker did not carry: %s",
                        count, why)
    except ConfigurationError as exc:
        log.error("configuration error: %s", exc)
        summary.outcome, summary.exit_code = "configuration error", exitcodes.CONFIG_ERROR
        summary.reason = str(exc)
    except Interrupted as exc:
        log.warning("%s", exc)
        summary.outcome, summary.exit_code = "interrupted", exitcodes.INTERRUPTED
    except BrokerUnreachable as exc:
        log.error("%s", exc)
        summary.outcome, summary.exit_code = "broker unreachable", exitcodes.BROKER_UNREACHABLE
        summary.reason = str(exc)
    except (OutputError, sqlite3.OperationalError) as exc:
        # SQLite reports a full or read-only disk under the ledger as OperationalError.
        log.error("%s; nothing of this batch was committed, a later run with space redoes it",
                  exc)
        summary.outcome, summary.exit_code = "output not writable", exitcodes.OUTPUT_ERROR
        summary.reason = str(exc)
    except Exception:
        log.error("internal error; nothing uncommitted was acknowledged:\n%s",
                  traceback.format_exc())
        summary.outcome, summary.exit_code = "internal error", exitcodes.INTERNAL_ERROR
    finally:
        if not summary.elapsed:  # the run never started its batches (a broker never reached)
            summary.elapsed = time.monotonic() - started
        if gaps := locus_gaps_line():
            log.warning("%s", gaps)
        if source is not None:
            if losses := source.new_retention_losses():
                output.ledger.record_retention_losses(losses)  # those a failure left unrecorded
            source.close()
        try:
            output.ledger.end_run(run_id, summary.outcome, summary.exit_code, summary.as_dict())
        except Exception:  # a full disk may refuse even this; the run's outcome stands
            log.warning("could not record the run's outcome in the ledger")
        if fetcher is not None:
            fetcher.close()
        output.close()
    return summary
