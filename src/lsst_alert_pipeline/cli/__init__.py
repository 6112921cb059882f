"""The `lsst-alerts` command line: parses, calls the library, prints. No logic lives here.

This file holds the click group `main` and names the commands, which live by what the user
does: alerts.py (inspect, simulate, filter-test, relay), consume.py (consume, config check,
offsets, topics, status, cleanup, merge), look.py (show, report, demo), archive.py (query,
lightcurve, compact), notify.py (notify, digest); options.py holds the
flags and helpers several commands share. Imports: anything below (pipeline, ops, look, filter,
decode, sources, simulate); nothing imports cli.

A command's module is imported when that command runs (or --help lists it): the decoders behind
`inspect` and `query` take a third of a second to import, and `consume` must have its SIGTERM
handler in place before then (docs/operations.md, "Exit statuses": 4).
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from .. import __version__
from ..errors import PipelineError
from ..pipeline.memory import keep_batch_buffers

keep_batch_buffers()  # a command-line process: before any command's import loads polars

# command name -> (module, attribute), in the order the original single-file CLI defined them,
# so `lsst-alerts --help` lists them as it always did.
COMMANDS = {
    "inspect": ("alerts", "inspect"),
    "consume": ("consume", "consume"),
    "config": ("consume", "config_group"),
    "filter-test": ("alerts", "filter_test"),
    "show": ("look", "show"),
    "report": ("look", "report"),
    "relay": ("alerts", "relay"),
    "offsets": ("consume", "offsets"),
    "topics": ("consume", "topics"),
    "cleanup": ("consume", "cleanup"),
    "status": ("consume", "status"),
    "simulate": ("alerts", "simulate"),
    "demo": ("look", "demo"),
    "merge": ("consume", "merge"),
    "fill-cutouts": ("consume", "fill_cutouts"),
    "query": ("archive", "query"),
    "lightcurve": ("archive", "lightcurve"),
    "compact": ("archive", "compact"),
    "verify": ("verify", "verify"),
    "notify": ("notify", "notify"),
    "digest": ("notify", "digest"),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use, and report a failure they can name
    one way: one line on stderr, the error's documented exit status (errors.py)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PipelineError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)

    def list_commands(self, ctx: click.Context) -> list[str]:
        eager = super().list_commands(ctx)
        return [*eager, *(name for name in COMMANDS if name not in eager)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, attribute = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(f".{module}", __name__), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lsst-alerts")
def main() -> None:
    """Filter LSST alerts on ANTARES and collect what passes into daily CSV files and cutouts."""


__all__ = ["main"]
