"""FITS cutouts: validated, then written to a temporary name and renamed into place.

The bytes are written as received (they are already FITS; docs/formats.md, Cutouts). Durability
is the batch's single sync (OutputDir.make_durable), not an fsync per file.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..decode.times import utc_of_mjd
from ..errors import InvalidMessage
from .atomic import TEMP_PREFIX

FITS_BLOCK = 2880
MAX_CUTOUT_BYTES = 16 * 1024 * 1024


def check_fits(kind: str, blob: bytes) -> None:
    """InvalidMessage unless the bytes look like a whole FITS file of sane size."""
    if not blob.startswith(b"SIMPLE  ="):
        raise InvalidMessage(f"{kind} cutout is not FITS (starts {blob[:8]!r})")
    if len(blob) % FITS_BLOCK:
        raise InvalidMessage(
            f"{kind} cutout is a truncated FITS file ({len(blob)} bytes, not a multiple of 2880)")
    if len(blob) > MAX_CUTOUT_BYTES:
        raise InvalidMessage(f"{kind} cutout is {len(blob)} bytes, over {MAX_CUTOUT_BYTES}")


def observation_stamp(mjd: float | None) -> str:
    """YYYYMMDD_HHMMSS of the observation (not of processing), so a replay names files alike."""
    if mjd is None:
        return "00000000_000000"
    moment = utc_of_mjd(mjd)
    return moment.strftime("%Y%m%d_%H%M%S")


def cutout_name(dia_source_id: int, kind: str, stamp: str) -> str:
    return f"{int(dia_source_id)}_{kind}_{stamp}.fits"


def write_cutout(folder: Path, name: str, blob: bytes) -> None:
    """Write to a temporary name, then rename: a reader never sees half a file."""
    temp = folder / f"{TEMP_PREFIX}{name}"
    with open(temp, "wb") as handle:
        handle.write(blob)
    os.replace(temp, folder / name)
