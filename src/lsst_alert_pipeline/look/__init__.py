"""Let people look at what came in: cutout previews and a nightly HTML report.

Reads what the consumer wrote (CSV files and cutouts), never the broker. May import sinks,
filter, decode, sources, config, errors and exitcodes. A new view of the output goes here as one
module, re-exported below when it is part of the library's API.
"""

from .nights import AlertNotFound, NightNotFound
from .preview import render_preview
from .report import write_report

__all__ = ["AlertNotFound", "NightNotFound", "render_preview", "write_report"]
