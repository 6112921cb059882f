"""Errors one way: one hierarchy, each error's exit status documented once and shown everywhere."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from lsst_alert_pipeline import errors, exitcodes
from lsst_alert_pipeline.cli import main

REPO = Path(__file__).resolve().parents[1]


def subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *subclasses(sub)]
    return found


def test_every_error_ends_with_a_documented_exit_status() -> None:
    import lsst_alert_pipeline.look.nights  # noqa: F401 - its errors join the hierarchy

    named = subclasses(errors.PipelineError)
    assert {"InvalidMessage", "ConfigurationError", "BrokerUnreachable", "OutputError",
            "AlreadyRunning", "QueryError", "MergeError", "AlertNotFound"} <= {
        cls.__name__ for cls in named}
    assert all(cls.exit_code in exitcodes.MEANING for cls in named)


def test_the_exit_statuses_are_listed_from_their_one_home() -> None:
    shown = CliRunner().invoke(main, ["consume", "--help"], terminal_width=400).output
    for code, meaning in exitcodes.MEANING.items():
        if code not in (exitcodes.RETENTION_FAILED,  # the cron wrapper's own
                        exitcodes.ARCHIVE_DAMAGED):  # compact's own
            assert f"{code} {meaning}" in " ".join(shown.split()), code
    documented = (REPO / "docs" / "operations.md").read_text()
    table = {int(row) for row in re.findall(r"^\| (\d+) \|", documented, re.M)}
    assert table == set(exitcodes.MEANING)


def test_a_command_reports_a_failure_it_can_name_in_one_line_with_its_status(
        tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here"
    missing.mkdir()
    result = CliRunner().invoke(main, ["report", "--date", "20250101", "--output-dir",
                                       str(missing)])
    assert result.exit_code == exitcodes.CONFIG_ERROR
    assert result.output.startswith("error: ") and "Traceback" not in result.output
