"""Cutout images for display: pixels, a usable WCS, which way north and east point, pixel scale."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.visualization import ZScaleInterval
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

WCS_KEYS = ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2")
ARCSEC_PER_DEG = 3600.0


@dataclass(frozen=True)
class Cutout:
    """One cutout's pixels (nJy) and, when its header allows, a celestial WCS."""

    image: np.ndarray
    wcs: WCS | None


def cutout_wcs(header: fits.Header) -> WCS | None:
    """A TAN WCS in degrees from Rubin's CRVAL/CRPIX/PC/CDELT header, which lacks CTYPE/CUNIT.

    Rubin writes the linear part only (docs/formats.md, Cutouts); the cutouts are tiny, so a
    gnomonic projection about CRVAL is what the camera's WCS amounts to at this scale."""
    if not all(key in header for key in WCS_KEYS):
        return None
    header = header.copy()
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CUNIT1"], header["CUNIT2"] = "deg", "deg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        wcs = WCS(header, naxis=2)
    return wcs if wcs.has_celestial else None


def load_cutout(path: Path) -> Cutout | None:
    """The PRIMARY image and WCS, or None when the file is missing or not a readable image."""
    if not path.is_file():
        return None
    try:
        with fits.open(path, memmap=False) as hdus:
            image = np.asarray(hdus[0].data, dtype=np.float64)
            header = hdus[0].header
    except (OSError, ValueError):
        return None
    if image.ndim != 2 or image.size == 0:
        return None
    return Cutout(image=image, wcs=cutout_wcs(header))


def display_limits(image: np.ndarray) -> tuple[float, float]:
    """zscale limits over finite pixels, widened when the image is flat so a norm never divides
    by zero."""
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = ZScaleInterval().get_limits(finite)
    if not high > low:
        low, high = float(finite.min()), float(finite.max())
    if not high > low:
        low, high = low - 1.0, high + 1.0
    return float(low), float(high)


def scaled_for_display(image: np.ndarray) -> np.ndarray:
    """Pixels mapped to [0, 1] with zscale limits and an asinh stretch; NaN stays NaN."""
    from astropy.visualization import AsinhStretch

    low, high = display_limits(image)
    clipped = np.clip((image - low) / (high - low), 0.0, 1.0)
    return np.asarray(AsinhStretch()(clipped))


def pixel_scale_arcsec(wcs: WCS) -> float:
    """Mean pixel size on the sky in arcseconds (Rubin: about 0.2)."""
    return float(np.mean(proj_plane_pixel_scales(wcs.celestial)) * ARCSEC_PER_DEG)


def north_east(wcs: WCS, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """Unit vectors in pixel space (x, y) toward north and east, at the image centre."""
    y0, x0 = (shape[0] - 1) / 2.0, (shape[1] - 1) / 2.0
    try:
        ra, dec = (float(v) for v in wcs.celestial.wcs_pix2world([[x0, y0]], 0)[0])
        step = pixel_scale_arcsec(wcs) / ARCSEC_PER_DEG
        cos_dec = max(np.cos(np.radians(dec)), 1e-6)
        north_px = wcs.celestial.wcs_world2pix([[ra, dec + step]], 0)[0]
        east_px = wcs.celestial.wcs_world2pix([[ra + step / cos_dec, dec]], 0)[0]
    except (ValueError, FloatingPointError):
        return None
    vectors = []
    for point in (north_px, east_px):
        vector = np.asarray(point, dtype=float) - np.array([x0, y0])
        length = float(np.hypot(*vector))
        if not np.isfinite(length) or length == 0:
            return None
        vectors.append(vector / length)
    return vectors[0], vectors[1]


def scale_bar_arcsec(image_width_arcsec: float) -> float:
    """A round bar length near a quarter of the image width."""
    for length in (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0):
        if length >= image_width_arcsec / 4:
            return length
    return 60.0
