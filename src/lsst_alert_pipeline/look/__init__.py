"""Let people look at what came in: cutout previews and a nightly HTML report."""

from .nights import AlertNotFound, NightNotFound
from .preview import render_preview
from .report import write_report

__all__ = ["AlertNotFound", "NightNotFound", "render_preview", "write_report"]
