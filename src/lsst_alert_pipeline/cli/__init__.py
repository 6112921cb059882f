"""The `lsst-alerts` command line: parses, calls the library, prints. No logic lives here.

This file holds the click group `main` and registers the commands, which live by what the user
does: alerts.py (inspect, simulate, filter-test, relay), consume.py (consume, config check,
offsets, topics, status, cleanup, merge), look.py (show, report, demo), archive.py (query,
lightcurve, compact); options.py holds the
flags and helpers several commands share. Imports: anything below (pipeline, ops, look, filter,
decode, sources, simulate); nothing imports cli.
"""

from __future__ import annotations

import click

from ..pipeline.memory import keep_batch_buffers

keep_batch_buffers()  # a command-line process: before any command's import loads polars

from .. import __version__  # noqa: E402
from .alerts import filter_test, inspect, relay, simulate  # noqa: E402
from .archive import compact, lightcurve, query  # noqa: E402
from .consume import (  # noqa: E402
    cleanup,
    config_group,
    consume,
    fill_cutouts,
    merge,
    offsets,
    status,
    topics,
)
from .look import demo, report, show  # noqa: E402
from .verify import verify  # noqa: E402


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lsst-alerts")
def main() -> None:
    """Filter LSST alerts on ANTARES and collect what passes into daily CSV files and cutouts."""


# In the order the original single-file CLI defined them, so `lsst-alerts --help` is unchanged.
for command in (inspect, consume, config_group, filter_test, show, report, relay, offsets, topics,
                cleanup, status, simulate, demo, merge, fill_cutouts, query, lightcurve, compact,
                verify):
    main.add_command(command)

__all__ = ["main"]
