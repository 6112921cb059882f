"""`lsst-alerts consume` as a library call: settings in, a run summary (with exit code) out."""

from __future__ import annotations

import logging
import sqlite3
import threading
import traceback

from .. import exitcodes
from ..config import Settings
from ..decode.normalize import locus_gaps_line
from ..decode.schemas import ForcedSchema, SchemaSource
from ..errors import ConfigurationError
from ..sources.files import FileSource
from ..sources.kafka import BrokerUnreachable, KafkaSource
from .outputdir import AlreadyRunning, OutputDir, OutputError
from .progress import Progress
from .run import CutoutFetcher, Pipeline, RunOptions, RunSummary, Source, run

log = logging.getLogger("lsst_alert_pipeline")


def open_source(settings: Settings) -> Source:
    if settings.from_paths:
        try:
            return FileSource(settings.from_paths)
        except FileNotFoundError as exc:
            raise ConfigurationError(str(exc)) from exc
    source = KafkaSource(settings.kafka, settings.topics, settings.reset_offsets,
                         commit_timeout=settings.broker_timeout)
    source.connect()
    return source


def consume(settings: Settings, stop: threading.Event | None = None,
            progress: Progress | None = None) -> RunSummary:
    """One bounded run into settings.output_dir; never raises for a failure it can name."""
    output = OutputDir(settings.output_dir, settings.member)
    try:
        output.open()
    except AlreadyRunning as exc:
        log.error("%s; this run exits without writing", exc)
        return RunSummary(outcome="already running", exit_code=exitcodes.ALREADY_RUNNING)
    except OutputError as exc:
        log.error("%s", exc)
        return RunSummary(outcome="output not writable", exit_code=exitcodes.OUTPUT_ERROR)
    assert output.ledger is not None
    run_id = output.ledger.start_run()
    locus_gaps_line()  # this run's count of loci lacking extfilter_* properties starts at 0
    summary = RunSummary()
    source: Source | None = None
    try:
        schemas = (ForcedSchema(settings.schema) if settings.schema
                   else SchemaSource(settings.schema_registry_url))
        fetcher: CutoutFetcher | None = None
        if settings.antares_fetch_cutouts:
            from ..sources.antares_thumbnails import AntaresThumbnails

            fetcher = AntaresThumbnails(settings.antares_api_url, settings.antares_timeout,
                                        settings.antares_retries, settings.antares_alert_id_format)
        source = open_source(settings)
        pipeline = Pipeline(output, schemas, tuple(settings.extra_columns), fetcher,
                            archive=settings.archive)
        options = RunOptions(batch_size=settings.batch_size, max_messages=settings.max_messages,
                             duration=settings.duration, idle_timeout=settings.idle_timeout,
                             broker_timeout=settings.broker_timeout)
        run(source, pipeline, options, stop, progress, summary)
    except ConfigurationError as exc:
        log.error("configuration error: %s", exc)
        summary.outcome, summary.exit_code = "configuration error", exitcodes.CONFIG_ERROR
    except BrokerUnreachable as exc:
        log.error("%s", exc)
        summary.outcome, summary.exit_code = "broker unreachable", exitcodes.BROKER_UNREACHABLE
    except (OutputError, sqlite3.OperationalError) as exc:
        # SQLite reports a full or read-only disk under the ledger as OperationalError.
        log.error("%s; nothing of this batch was committed, a later run with space redoes it",
                  exc)
        summary.outcome, summary.exit_code = "output not writable", exitcodes.OUTPUT_ERROR
    except Exception:
        log.error("internal error; nothing uncommitted was acknowledged:\n%s",
                  traceback.format_exc())
        summary.outcome, summary.exit_code = "internal error", exitcodes.INTERNAL_ERROR
    finally:
        if gaps := locus_gaps_line():
            log.warning("%s", gaps)
        if isinstance(source, KafkaSource) and source.retention_losses:
            output.ledger.record_retention_losses(source.retention_losses)
        if source is not None and hasattr(source, "close"):
            source.close()
        try:
            output.ledger.end_run(run_id, summary.outcome, summary.exit_code, summary.as_dict())
        except Exception:  # a full disk may refuse even this; the run's outcome stands
            log.warning("could not record the run's outcome in the ledger")
        output.close()
    return summary
