"""What a `consume` run tells the user: new candidates after each durable batch, and how the
run ended (always when it failed, on success only with `[notify] on_success = true`).

`Notifier` is the observer `pipeline/consume.py` and `Pipeline.deliver` call; nothing it does
changes a run's outcome: every failure is a warning (docs/notifications.md).
"""

from __future__ import annotations

import logging
import socket
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from .. import exitcodes
from ..config import Settings, mask_secrets
from ..errors import ConfigurationError
from ..pipeline.ledger import Ledger
from ..pipeline.run import RunSummary
from ..sinks.archive_read import LEDGER, archive_files
from .candidates import (
    KEY,
    CandidateBook,
    candidate_message,
    check_expression,
    evaluate,
    known_columns,
    referenced,
)
from .send import send

if TYPE_CHECKING:
    from ..pipeline.outputdir import OutputDir
    from ..pipeline.run import BatchOutcome

log = logging.getLogger("lsst_alert_pipeline.notify")

# What the user can do about each exit status (exitcodes.MEANING says what it is).
ADVICE = {
    exitcodes.OK: "nothing to do",
    exitcodes.INTERNAL_ERROR: "a bug: the log holds the traceback, please report it; nothing "
    "uncommitted was acknowledged, so the next run goes on where this one stopped",
    exitcodes.CONFIG_ERROR: "fix the setting the log names (`lsst-alerts config check` "
    "prints the effective configuration)",
    exitcodes.BROKER_UNREACHABLE: "check that the broker is up and the credentials are valid "
    "(`lsst-alerts offsets`); the next run resumes at the last commit",
    exitcodes.INTERRUPTED: "the run was stopped by a signal after committing its batch; the "
    "next run goes on",
    exitcodes.OUTPUT_ERROR: "free space or fix the permissions of the output directory; the "
    "next run redoes the uncommitted batch",
    exitcodes.ALREADY_RUNNING: "another consumer holds the output directory's lock: check "
    "whether an earlier run hangs (`lsst-alerts status`)",
    exitcodes.STALLED: "the broker sent nothing while lag remained: check it "
    "(`lsst-alerts offsets`) and run again",
    exitcodes.RETENTION_LOSS: "the broker deleted alerts before they were read: run more "
    "often (`lsst-alerts status` lists the losses)",
    exitcodes.ALL_DEADLETTERED: "nothing could be read: deadletter/*.json in the output "
    "directory says why (a schema or format the consumer does not know? docs/troubleshooting.md);"
    " fix it, then replay while the broker holds them (--reset-offsets)",
}


def run_message(summary: RunSummary, output_dir: Path,
                host: str | None = None) -> tuple[str, str]:
    """(title, body) for the end of a run: exit status, meaning, summary, advice, host, dir."""
    host = host or socket.gethostname()
    meaning = exitcodes.MEANING.get(summary.exit_code, "unknown exit status")
    title = (f"lsst-alerts consume on {host}: exit status {summary.exit_code} ({meaning})")
    body = "\n".join([
        summary.line(),
        *([f"Why: {mask_secrets(summary.reason)}"] if summary.reason else []),
        f"What to do: {ADVICE.get(summary.exit_code, 'read the log')}",
        f"Host: {host}",
        f"Output directory: {output_dir.resolve()}",
    ])
    return title, body


class Notifier:
    """Sends to `[notify] urls`; names each `[notify] when` match once (ledger-recorded)."""

    def __init__(self, settings: Settings):
        self.urls = list(settings.notify_urls)
        self.output_dir = settings.output_dir
        self.expression = settings.notify_when
        self.on_success = settings.notify_on_success
        self.cap = settings.notify_max_per_message
        self.timeout = settings.notify_timeout
        self.values: list[str] = []
        self.down = False  # an endpoint failed this run: the rest waits for the next run

    @classmethod
    def start(cls, settings: Settings) -> Notifier | None:
        """The run's notifier (None when nothing is configured), its expression checked; a bad
        expression is told to the URLs as the run's failure, then raised (ConfigurationError
        names notify.when)."""
        try:
            notifier = cls.checked(settings)
        except ConfigurationError as exc:
            if settings.notify_urls:
                failed = cls(settings)
                failed.expression = None
                failed.run_ended(RunSummary(outcome=f"configuration error: {exc}",
                                            exit_code=exitcodes.CONFIG_ERROR))
            raise
        if notifier is not None and notifier.expression:
            notifier.begin_checks()
        return notifier

    @classmethod
    def checked(cls, settings: Settings) -> Notifier | None:
        """The notifier of these settings, its expression checked (nothing written)."""
        if not settings.notify_urls and not settings.notify_when:
            return None
        notifier = cls(settings)
        if notifier.expression:
            if not settings.archive:
                raise ConfigurationError(f"{KEY} is evaluated on the archive: it needs "
                                         "archive = true (the default), not --no-archive")
            columns = known_columns(settings.output_dir)
            check_expression(notifier.expression, columns)
            notifier.values = referenced(notifier.expression, list(columns))
        return notifier

    def begin_checks(self) -> None:
        """On an expression's first run, note that the alerts already written are not new
        (else the first batch would count them as a crash's leftovers)."""
        assert self.expression is not None
        try:
            ledger = Ledger(self.output_dir / LEDGER)
        except (OSError, sqlite3.Error) as exc:  # consume reports an unusable output itself
            log.warning("%s: cannot open the ledger to begin: %s", KEY, exc)
            return
        try:
            book = CandidateBook(ledger, self.expression)
            if book.checked_through() is None:
                book.record({}, book.newest_alert())
        finally:
            ledger.close()

    def send(self, title: str, body: str) -> bool:
        """True when at least one URL took the message (the user has it)."""
        if not self.urls:
            return False
        return any(d.delivered for d in send(self.urls, title, body, timeout=self.timeout))

    def batch_durable(self, output: OutputDir, outcome: BatchOutcome) -> None:
        """After the batch's ledger commit: record its matches, send what is not yet named."""
        if not self.expression or output.ledger is None:
            return
        try:
            batch_files = [output.ledger_root / f.name for f in outcome.archive_files]
            batch_ids = {alert.dia_source_id for alert in outcome.written}
            self.check_and_send(CandidateBook(output.ledger, self.expression), batch_files,
                                batch_ids)
        except Exception as exc:  # never at the data's expense: the next batch or run retries
            log.warning("%s: could not check or name this batch's candidates: %s", KEY, exc)

    def check_and_send(self, book: CandidateBook, batch_files: list[Path],
                       batch_ids: set[str]) -> None:
        assert self.expression is not None
        ids = book.unchecked()
        if ids:
            # Alerts of earlier batches no check saw (a crash after their commit) are read
            # from the whole archive; a batch's own alerts from its files.
            files = batch_files if set(ids) <= batch_ids else archive_files(self.output_dir)
            book.record(evaluate(files, ids, self.expression, self.values, self.output_dir),
                        book.through_of(ids))
        pending = book.pending()
        if pending and self.urls and not self.down:
            title, body = candidate_message(pending, self.cap)
            if self.send(title, body):
                book.notified([key for key, _ in pending])
            else:
                self.down = True
                log.warning("%d candidates stay to be named by the next run", len(pending))

    def run_ended(self, summary: RunSummary) -> None:
        """Name what is left to name, then tell how the run ended when it failed."""
        try:
            ledger_path = self.output_dir / LEDGER
            if self.expression and not self.down and ledger_path.is_file():
                ledger = Ledger(ledger_path)
                try:
                    self.check_and_send(CandidateBook(ledger, self.expression), [], set())
                finally:
                    ledger.close()
        except Exception as exc:
            log.warning("%s: could not name the candidates left from this run: %s", KEY, exc)
        if summary.exit_code != exitcodes.OK or self.on_success:
            try:
                self.send(*run_message(summary, self.output_dir))
            except Exception as exc:
                log.warning("could not send the run's outcome: %s", exc)
