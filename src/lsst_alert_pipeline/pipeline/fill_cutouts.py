"""`lsst-alerts fill-cutouts`: fetch again every cutout recorded as missing for now.

A cutout is missing for now when the ANTARES REST API failed on the way (timeout, reset, 5xx)
while its alert was written; the CSV row already names the file. This writes each file that the
API now gives (temporary name, rename, one sync), then updates the ledger: filled ones are
forgotten, a 404 or a broken file becomes missing for good, the rest stay for the next try.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .cutout_fetch import usable_cutouts
from .outputdir import OutputDir

if TYPE_CHECKING:
    from ..sources.antares_thumbnails import AntaresThumbnails

log = logging.getLogger(__name__)


@dataclass
class FillSummary:
    tried: int = 0
    filled: int = 0
    gone: int = 0
    still_missing: int = 0

    def line(self) -> str:
        return (f"filled {self.filled:,} of {self.tried:,} cutouts missing for now; "
                f"{self.gone:,} are gone for good (the API has none), {self.still_missing:,} "
                "still failing (run fill-cutouts again later)")


def broker_prefix(alert_id: str) -> str:
    """`lasair:` or `babamul:` for those brokers' alert ids, "" for ANTARES's."""
    broker, colon, _ = alert_id.partition(":")
    return broker + colon if broker in ("lasair", "babamul") else ""


def fill_cutouts(output_dir: Path, fetcher: AntaresThumbnails,
                 member: str | None = None) -> FillSummary:
    """Re-fetch this output's cutouts recorded `later`; takes the output directory's lock."""
    with OutputDir(output_dir, member) as output:
        return fill_missing(output, fetcher)


def fill_missing(output: OutputDir, fetcher: AntaresThumbnails,
                 deadline: float | None = None) -> FillSummary:
    """Re-fetch the cutouts of an open (locked) output recorded `later`, write them in place
    (one sync), then settle the ledger's records. Past `deadline` (time.monotonic()) no more
    are asked for; they stay missing for now."""
    from ..sinks.cutouts import write_cutout

    assert output.ledger is not None
    summary = FillSummary()
    mine = output.cutouts.relative_to(output.ledger_root).as_posix() + "/"
    # Each fetcher takes the rows of its own broker: Lasair's and Babamul's ids carry their
    # name (sources/broker_cutouts.py), ANTARES's do not.
    prefix = getattr(fetcher, "id_prefix", "")
    rows = [row for row in output.ledger.missing_cutouts("later")
            if row["path"].startswith(mine) and broker_prefix(row["antares_alert_id"]) == prefix]
    if not rows:
        return summary
    by_alert: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_alert[(row["antares_alert_id"], row["dia_source_id"])].append(row)
    wanted = [(alert_id, [row["kind"] for row in group])
              for (alert_id, _), group in by_alert.items()]
    results = fetcher.fetch_alerts(wanted, deadline)
    filled: list[tuple[str, str]] = []
    still: list[tuple[str, str, str, str]] = []
    for group, fetched in zip(by_alert.values(), results, strict=True):
        cutouts, missing = usable_cutouts(fetched)
        for row in group:
            summary.tried += 1
            blob = cutouts.get(row["kind"])
            if blob is not None:
                path = output.ledger_root / row["path"]
                write_cutout(path.parent, path.name, blob)
                filled.append((row["dia_source_id"], row["kind"]))
                continue
            state, reason = missing[row["kind"]]
            summary.gone += state == "gone"
            summary.still_missing += state == "later"
            still.append((row["dia_source_id"], row["kind"], state, reason))
            log.warning("%s cutout of diaSourceId %s: %s", row["kind"], row["dia_source_id"],
                        reason)
    output.make_durable()  # the files are on disk before the ledger forgets them
    output.ledger.settle_missing_cutouts(filled, still)
    summary.filled = len(filled)
    return summary
