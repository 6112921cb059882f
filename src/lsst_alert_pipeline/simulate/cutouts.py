"""FITS cutouts laid out like Rubin's: PRIMARY float32 image in nJy, UNCERT variance, PSFIMAGE.

Headers are built once per image size with astropy; per alert only the WCS and position cards are
rewritten in place and the big-endian data blocks appended, because calling astropy's writer three
times per alert would cost more than everything else the simulator does. alert_cutouts draws the
science, template and difference cutouts of one simulated alert.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from astropy.io import fits

from .population import Epochs, SimulatedObject

FITS_BLOCK = 2880
PIXEL_SCALE_DEG = 0.2 / 3600  # LSSTCam: 0.2 arcsec per pixel
# The cards that change per alert; the rest of the header is fixed per image size.
_VARIABLE_CARDS = (
    "CUTMINX", "CUTMINY", "ROTPA", "CRPIX1", "CRPIX2",
    "PC1_1", "PC1_2", "PC2_1", "PC2_2", "CRVAL1", "CRVAL2",
)


@dataclass(frozen=True)
class CutoutWcs:
    """Where a cutout sits: sky position of the reference pixel, its pixel position, rotation."""

    ra: float
    dec: float
    crpix1: float
    crpix2: float
    rotation_deg: float
    corner_x: int
    corner_y: int


@dataclass(frozen=True)
class _Headers:
    primary: bytes
    card_slots: dict[str, tuple[int, str]]  # key -> (byte offset, comment)
    uncert: bytes
    psf: bytes


@functools.cache
def _headers(size: int, psf_size: int) -> _Headers:
    image = np.zeros((size, size), np.float32)
    header = fits.PrimaryHDU(image).header
    header["CUTMINX"] = 0
    header["CUTMINY"] = 0
    header["ROTPA"] = (0.0, "Pos angle in deg of focal plane +Y wrt North")
    header["BUNIT"] = "nJy"
    header["WCSAXES"] = (2, "Number of coordinate axes")
    for key in ("CRPIX1", "CRPIX2"):
        header[key] = (1.0, "Pixel coordinate of reference point")
    for key in ("PC1_1", "PC1_2", "PC2_1", "PC2_2"):
        header[key] = (0.0, "Coordinate transformation matrix element")
    for key in ("CDELT1", "CDELT2"):
        header[key] = (1.0, "Coordinate increment at reference point")
    for key in ("CRVAL1", "CRVAL2"):
        header[key] = (0.0, "Coordinate value at reference point")
    header["LATPOLE"] = (90.0, "[deg] Native latitude of celestial pole")
    header["MJDREF"] = (0.0, "[d] MJD of fiducial time")
    keys = list(header.keys())
    slots = {key: (keys.index(key) * 80, header.comments[key]) for key in _VARIABLE_CARDS}
    uncert = fits.ImageHDU(image, name="UNCERT").header
    uncert.insert("EXTNAME", ("UTYPE", "VarianceUncertainty"))
    psf = fits.ImageHDU(np.zeros((psf_size, psf_size), np.float64), name="PSFIMAGE").header
    return _Headers(
        header.tostring().encode("ascii"),
        slots,
        uncert.tostring().encode("ascii"),
        psf.tostring().encode("ascii"),
    )


def _fits_value(value: int | float) -> str:
    if isinstance(value, int):
        return str(value)
    text = f"{value:.14G}"
    return text if ("." in text or "E" in text) else text + ".0"


def _card(key: str, value: int | float, comment: str) -> bytes:
    text = f"{key:<8}= {_fits_value(value):>20}"
    if comment:
        text += f" / {comment}"
    return text[:80].ljust(80).encode("ascii")


def _data_block(array: npt.NDArray[np.floating], dtype: str) -> bytes:
    raw = np.ascontiguousarray(array, dtype=dtype).tobytes()
    return raw + b"\x00" * (-len(raw) % FITS_BLOCK)


def primary_header(size: int, psf_size: int, wcs: CutoutWcs) -> bytes:
    """The PRIMARY header of a cutout: the cached one with this cutout's WCS cards written in."""
    headers = _headers(size, psf_size)
    out = bytearray(headers.primary)
    angle = math.radians(wcs.rotation_deg)
    cos, sin = math.cos(angle) * PIXEL_SCALE_DEG, math.sin(angle) * PIXEL_SCALE_DEG
    values: dict[str, int | float] = {
        "CUTMINX": wcs.corner_x, "CUTMINY": wcs.corner_y, "ROTPA": wcs.rotation_deg,
        "CRPIX1": wcs.crpix1, "CRPIX2": wcs.crpix2,
        # East to the left, as on the sky: the sign of PC1_1 flips x.
        "PC1_1": -cos, "PC1_2": sin, "PC2_1": sin, "PC2_2": cos,
        "CRVAL1": wcs.ra, "CRVAL2": wcs.dec,
    }
    for key, value in values.items():
        offset, comment = headers.card_slots[key]
        out[offset : offset + 80] = _card(key, value, comment)
    return bytes(out)


def assemble_cutout(
    header: bytes,
    image: npt.NDArray[np.floating],
    variance: npt.NDArray[np.floating],
    psf: npt.NDArray[np.floating],
) -> bytes:
    """FITS bytes from a ready PRIMARY header and the three arrays (float32, float32, float64)."""
    headers = _headers(image.shape[0], psf.shape[0])
    return b"".join(
        (
            header,
            _data_block(image, ">f4"),
            headers.uncert,
            _data_block(variance, ">f4"),
            headers.psf,
            _data_block(psf, ">f8"),
        )
    )


@functools.lru_cache(maxsize=4096)
def source_profile(
    size: int, psf_sigma: float, extended: bool, centre_x: float, centre_y: float
) -> npt.NDArray[np.float64]:
    """A unit-flux source at (centre_x, centre_y): the PSF (Gaussian) or a wider exponential."""
    y, x = np.indices((size, size), dtype=np.float64)
    r2 = (x - centre_x) ** 2 + (y - centre_y) ** 2
    if extended:
        # A coma or a galaxy: exponential profile, a few PSF widths across, softened at the core.
        profile = np.exp(-np.sqrt(r2 + psf_sigma**2) / (1.6 * psf_sigma))
    else:
        profile = np.exp(-r2 / (2 * psf_sigma**2))
    profile /= profile.sum()
    profile.setflags(write=False)
    return profile


@functools.lru_cache(maxsize=256)
def psf_image(psf_size: int, psf_sigma: float) -> npt.NDArray[np.float64]:
    """The PSF model image: a centred Gaussian summing to 1."""
    centre = (psf_size - 1) / 2
    return source_profile(psf_size, psf_sigma, False, centre, centre)


def make_cutout(
    rng: np.random.Generator,
    *,
    flux: float,
    noise_sigma: float,
    extended: bool,
    size: int = 30,
    wcs: CutoutWcs | None = None,
    host_flux: float = 0.0,
    host_extended: bool = False,
    psf_sigma: float = 1.5,
    psf_size: int = 41,
) -> bytes:
    """One cutout as FITS bytes: a source of `flux` nJy (plus a host) at the centre, on noise."""
    if wcs is None:
        wcs = CutoutWcs(0.0, 0.0, size / 2 + 0.5, size / 2 + 0.5, 0.0, 0, 0)
    return assemble_cutout(
        primary_header(size, psf_size, wcs),
        *cutout_arrays(rng, flux, noise_sigma, extended, size, wcs, host_flux, host_extended,
                       psf_sigma, psf_size),
    )


def cutout_arrays(
    rng: np.random.Generator,
    flux: float,
    noise_sigma: float,
    extended: bool,
    size: int,
    wcs: CutoutWcs,
    host_flux: float,
    host_extended: bool,
    psf_sigma: float,
    psf_size: int,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    """(image, variance, psf) of one cutout; the source sits at the reference pixel CRPIX."""
    # Quantized so the profile cache stays small; a quarter pixel is below what anyone sees.
    sigma = round(psf_sigma, 1)
    centre_x = round((wcs.crpix1 - 1) * 4) / 4
    centre_y = round((wcs.crpix2 - 1) * 4) / 4
    image = rng.standard_normal((size, size), dtype=np.float32)
    image *= np.float32(noise_sigma)
    if flux:
        source = source_profile(size, sigma, extended, centre_x, centre_y)
        image += (flux * source).astype(np.float32)
    if host_flux:
        host = source_profile(size, sigma, host_extended, centre_x, centre_y)
        image += (host_flux * host).astype(np.float32)
    variance = np.full((size, size), noise_sigma**2, np.float32)
    return image, variance, psf_image(psf_size, sigma)


def alert_cutouts(rng: np.random.Generator, obj: SimulatedObject, now: Epochs) -> dict[str, bytes]:
    """Science, template and difference cutouts of the triggering DIASource (FITS bytes)."""
    size = 30
    template_size = 40 if rng.random() < 0.2 else 30
    template_psf_size = 55 if rng.random() < 0.5 else 41
    psf_sigma = float(rng.uniform(1.2, 2.2))  # seeing 0.57-1.04 arcsec FWHM
    wcs = CutoutWcs(
        ra=float(now.ra[-1]),
        dec=float(now.dec[-1]),
        crpix1=size / 2 + float(rng.random()),
        crpix2=size / 2 + float(rng.random()),
        rotation_deg=float(rng.uniform(-180.0, 180.0)),
        corner_x=int(rng.integers(0, 4000)),
        corner_y=int(rng.integers(0, 4000)),
    )
    offset = (template_size - size) / 2
    template_wcs = CutoutWcs(wcs.ra, wcs.dec, wcs.crpix1 + offset, wcs.crpix2 + offset,
                             wcs.rotation_deg, wcs.corner_x - int(offset),
                             wcs.corner_y - int(offset))
    # Pixel noise whose PSF-weighted sum gives psfFluxErr (a Gaussian PSF's noise-equivalent area).
    pixel_sigma = float(now.psf_flux_err[-1]) / (math.sqrt(4 * math.pi) * psf_sigma)
    flux = float(now.psf_flux[-1])
    header = primary_header(size, 41, wcs)
    science = cutout_arrays(rng, flux, pixel_sigma, obj.extended, size, wcs, obj.template_flux,
                            obj.host_extended, psf_sigma, 41)
    difference = cutout_arrays(rng, flux, pixel_sigma * 1.1, obj.extended, size, wcs, 0.0, False,
                               psf_sigma, 41)
    template = cutout_arrays(rng, 0.0, pixel_sigma * 0.5, False, template_size, template_wcs,
                             obj.template_flux, obj.host_extended, psf_sigma, template_psf_size)
    return {
        "science": assemble_cutout(header, *science),
        "difference": assemble_cutout(header, *difference),
        "template": assemble_cutout(
            primary_header(template_size, template_psf_size, template_wcs), *template
        ),
    }
