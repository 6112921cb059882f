"""Cutouts fetched from the ANTARES REST API: which are usable, and how a missing one is recorded.

A missing cutout is recorded in the ledger (table `missing_cutouts`) in the same transaction as
its alert, so the record is exactly as durable as the CSV row that refers to it: `later` (the
request failed on the way; `lsst-alerts fill-cutouts` fetches it) or `gone` (the API answered it
has none, or served a broken file; asking again would not help).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from ..decode.normalize import AlertRecord
from ..errors import InvalidMessage
from ..sinks.cutouts import check_fits
from .ledger import MissingCutoutRow
from .outputdir import OutputDir

if TYPE_CHECKING:
    from ..sources.antares_thumbnails import FetchedCutouts, MissingState

log = logging.getLogger(__name__)


class AntaresAlertIds:
    """The ANTARES alert id of a locus record: the one the filter recorded (its
    `extfilter_alert_id`), or, only without it, `alert_id_format` filled in (warned once)."""

    def __init__(self, alert_id_format: str = "{diaSourceId}"):
        self.alert_id_format = alert_id_format
        self._warned = threading.Event()

    def __call__(self, record: AlertRecord) -> str:
        recorded = record.extra.get("antaresAlertId")
        if recorded:
            return str(recorded)
        if not self._warned.is_set():
            self._warned.set()
            log.warning("a locus message carries no extfilter_alert_id (was the filter that "
                        "passed it ours?): its cutouts are asked for under the alert id %r made "
                        "from antares.alert_id_format, which ANTARES may not know (404)",
                        self.alert_id_format)
        return self.alert_id_format.format(diaSourceId=record.diaSourceId)


def say_missing(results: list[FetchedCutouts]) -> None:
    """One log line for a batch's cutouts the API did not give, with the first reason."""
    reasons = [why for result in results for why in result.missing.values()]
    if not reasons:
        return
    later = sum(1 for state, _ in reasons if state == "later")
    log.warning("%d cutouts of %d alerts not fetched: %d missing for now (the next run or "
                "`lsst-alerts fill-cutouts` fetches them), %d gone (the API has none); first: %s",
                len(reasons), len(results), later, len(reasons) - later, reasons[0][1])


def usable_cutouts(fetched: FetchedCutouts) -> tuple[dict[str, bytes | None],
                                                     dict[str, tuple[MissingState, str]]]:
    """The fetched cutouts that are whole FITS files; a broken one is missing for good."""
    cutouts = dict(fetched.cutouts)
    missing = dict(fetched.missing)
    for kind, blob in cutouts.items():
        if blob is None:
            continue
        try:
            check_fits(kind, blob)
        except InvalidMessage as exc:
            cutouts[kind] = None
            missing[kind] = ("gone", f"ANTARES served a broken {kind} file: {exc.reason}")
    return cutouts, missing


def missing_cutout(output: OutputDir, record: AlertRecord, kind: str, name: str,
                   why: tuple[MissingState, str] | None,
                   fetched: FetchedCutouts | None) -> MissingCutoutRow | None:
    """The ledger's note of a cutout the API did not give (None for a packet that had none)."""
    if why is None or fetched is None:
        return None
    path = (output.cutouts / name).relative_to(output.ledger_root).as_posix()
    return MissingCutoutRow(str(record.diaSourceId), kind, fetched.alert_id, path, *why)
