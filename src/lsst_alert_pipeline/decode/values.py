"""Which values of a normalized alert can be written: the rules that isolate one absurd alert.

A schema lets through values no instrument produces (an MJD of -1e9, a 5,000-character band, a
band like `../../etc`, a locus property of the wrong type). One such value must never stop the
run, so each is either blanked (the row is still useful; the log says which value and why) or,
when the alert cannot be placed at all, the alert is dead-lettered with a reason naming the field:

- mjd outside MJD_RANGE, or not a number: dead-letter (the night, hence the file, and the
  cutouts' time stamp cannot be named). A missing mjd keeps today's file, as before.
- ra outside [0, 360], dec outside [-90, 90]: blank. NaN/inf are Rubin's "no value": blank,
  silently (normalize does that).
- filterName that is not a short band name ([A-Za-z0-9_], at most 16 characters): blank. Band
  names never reach a file name, but a CSV is read by other tools.
- any other CSV value of the wrong type (a list, a dict, bytes, a string where a number belongs):
  blank.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..errors import InvalidMessage

# 1968-05-24 to 2077-11-20: every survey whose alerts this tool reads, with decades to spare.
MJD_RANGE = (40000.0, 80000.0)
BAND = re.compile(r"[A-Za-z0-9_]{1,16}")
RANGES = {"ra": (0.0, 360.0), "dec": (-90.0, 90.0)}
NUMBERS = ("ra", "dec", "psFlux", "psFluxErr", "extendednessMedian", "extendednessMin",
           "extendednessMax", "snr", "reliability")
IDS = ("alertId", "diaObjectId", "ssObjectId")


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def shown(value: Any) -> str:
    """The value as a log line can show it: short, one line."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text)} characters)"


def check_mjd(mjd: Any) -> None:
    """InvalidMessage naming the field when the observation time cannot name a night."""
    if mjd is None:
        return
    low, high = MJD_RANGE
    if not is_number(mjd) or not low <= mjd <= high:
        raise InvalidMessage(
            f"observation time midpointMjdTai = {shown(mjd)} is not an MJD in "
            f"[{low:.0f}, {high:.0f}] (1968-2077): the night and file it belongs to cannot be "
            "named")


def problem(name: str, value: Any) -> str | None:
    """Why the value of field `name` cannot be written, or None when it can."""
    if value is None:
        return None
    if name in NUMBERS:
        if not is_number(value):
            return f"{name} = {shown(value)} is not a number"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{name} = {shown(value)} is not finite"
        if name in RANGES and not RANGES[name][0] <= value <= RANGES[name][1]:
            return f"{name} = {shown(value)} is outside {list(RANGES[name])}"
        return None
    if name == "filterName":
        if not isinstance(value, str) or not BAND.fullmatch(value):
            return f"filterName = {shown(value)} is not a band name"
        return None
    if name in IDS and (not isinstance(value, int | str) or isinstance(value, bool)):
        return f"{name} = {shown(value)} is not an id"
    if isinstance(value, str) and ("\n" in value or "\r" in value or len(value) > 100):
        return f"{name} = {shown(value)} is not a one-line id"
    return None


def blank_unusable(record: Any) -> list[str]:
    """Set to None each value of the record that cannot be written; return why, one per value.

    Raises InvalidMessage when the alert cannot be placed at all (check_mjd)."""
    check_mjd(record.mjd)
    blanked = []
    for name in (*NUMBERS, "filterName", *IDS):
        why = problem(name, getattr(record, name))
        if why is not None:
            setattr(record, name, None)
            blanked.append(why)
    if not isinstance(record.extendednessCount, int) or isinstance(record.extendednessCount,
                                                                   bool):
        blanked.append(f"extendednessCount = {shown(record.extendednessCount)} is not a count")
        record.extendednessCount = 0
    return blanked
