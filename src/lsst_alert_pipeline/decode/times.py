"""Rubin's time conventions, their one home: MJD (TAI, days) to and from UTC, and dayObs.

dayObs is the observing night (docs/formats.md, dayObs).

TAI-UTC (37 s) is ignored throughout: it never moves an alert to another night or file name
that a user would notice, and Rubin's own dayObs ignores it too.
"""

from __future__ import annotations

import datetime as dt
import math

# MJD of 1970-01-01T00:00 (the Unix epoch).
MJD_UNIX_EPOCH = 40587.0
# The calendar date of MJD 0.
MJD_EPOCH = dt.date(1858, 11, 17)


def utc_of_mjd(mjd: float) -> dt.datetime:
    """The naive UTC datetime of an MJD."""
    return dt.datetime(1970, 1, 1) + dt.timedelta(days=mjd - MJD_UNIX_EPOCH)


def mjd_of_utc(moment: dt.datetime) -> float:
    """The MJD of an aware datetime."""
    return moment.timestamp() / 86400 + MJD_UNIX_EPOCH


def day_obs(mjd: float | None) -> str | None:
    """The observing night a Rubin MJD belongs to: its date in UTC-12h, which holds a Chilean
    night in one day (docs/formats.md, dayObs). TAI-UTC (37 s) is ignored."""
    if mjd is None:
        return None
    return (MJD_EPOCH + dt.timedelta(days=math.floor(mjd - 0.5))).strftime("%Y%m%d")
