"""The examples of the README, of every page in docs/ and of every command's --help, run as
written (issue 28).

Every `lsst-alerts` line of those bash blocks and of the `--help` examples is either run
here, in a folder whose ./lsst_alerts holds the real alert packets (or the simulator's stand-ins
with the same ids), or named in NOT_RUN with the reason; a new example that is neither fails.
Where the docs say what an example gives, the test checks it.
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pandas as pd
import pytest
from click.testing import CliRunner
from mktestdocs import grab_code_blocks

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.ops.status import current_day_obs
from lsst_alert_pipeline.pipeline import consume as consumer

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
# The README and the documentation site's pages: every example in them is run or listed.
DOCUMENTS = [README, *sorted((REPO / "docs").glob("*.md"))]
DOCS_TEXT = "\n".join(path.read_text() for path in DOCUMENTS)
BIN = Path(sys.executable).parent
# Commands that need a broker, write outside the collection for minutes, or are run by their
# own tests; each example of them is listed, not run.
NOT_RUN = {
    "consume": "needs a broker or alert files (tests/test_consume_*.py)",
    "relay": "needs a broker (tests/test_relay_antares.py)",
    "topics": "needs a broker", "offsets": "needs a broker",
    "config": "needs the Kafka settings (tests/test_config.py)",
    "fill-cutouts": "needs the ANTARES API (tests/test_antares_thumbnails.py)",
    "merge": "needs members (tests/test_merge.py)",
    "filter-test": "runs the DevKit (tests/test_filter.py)",
    "simulate": "writes thousands of files (tests/test_simulate.py)",
    "demo": "a whole night (scripts/demo.sh)", "inspect": "tests/test_decode_real.py",
    "notify": "sends to the URLs given (tests/test_notify.py, to a real SMTP server)",
    "digest": "sends to the URLs given (tests/test_notify.py)",
}
NEEDS_BROKER = ("--config", "--repair", "--bootstrap-servers", "--preset", "kafka://")
# Lines that illustrate a form rather than name a real folder or command line, each with where
# the form is tested.
ILLUSTRATIONS = {
    "LSST_ALERTS_OUTPUT_DIR=/elsewhere": "the precedence (tests/test_output_dir_rule.py)",
    "[--output-dir DIR]": "the command's synopsis, not a command line",
}
SHELL_LINES = ("wc -l lsst_alerts", "tail -q", "du -sh lsst_alerts", "ls -lh lsst_alerts")


def bash_lines(text: str) -> list[str]:
    """The command lines of the text's ```bash blocks (continuations joined)."""
    lines: list[str] = []
    for block in grab_code_blocks(text, lang="bash"):  # mktestdocs reads the Markdown
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


COMMAND_NAMES = main.list_commands(click.Context(main))


def help_examples() -> list[str]:
    """The example lines of every command's --help."""
    lines = []
    context = click.Context(main)
    commands = [(name, main.get_command(context, name)) for name in COMMAND_NAMES]
    for name, command in commands:
        text = CliRunner().invoke(main, [*name.split(), "--help"]).stdout
        if hasattr(command, "commands"):
            for sub in command.commands:  # type: ignore[attr-defined]
                text += CliRunner().invoke(main, [name, sub, "--help"]).stdout
        lines += [line.strip().split("  #")[0].strip() for line in text.splitlines()
                  if line.strip().startswith(("lsst-alerts ", "LSST_ALERTS_"))
                  and "lsst-alerts " in line]
    return lines


def runnable(line: str) -> bool:
    if line.startswith(SHELL_LINES):
        return True
    words = line.split()
    if "lsst-alerts" not in words:
        return False
    command = words[words.index("lsst-alerts") + 1]
    return command not in NOT_RUN and not any(flag in line for flag in NEEDS_BROKER) \
        and not any(form in line for form in ILLUSTRATIONS)


def listed(line: str) -> bool:
    """An example not run: its command is in NOT_RUN or it needs the Kafka settings."""
    words = line.split()
    command = words[words.index("lsst-alerts") + 1] if "lsst-alerts" in words else ""
    return command in NOT_RUN or any(flag in line for flag in NEEDS_BROKER) \
        or any(form in line for form in ILLUSTRATIONS)


README_LINES = [line for line in bash_lines(DOCS_TEXT)
                if "lsst-alerts" in line.split() or line.startswith(SHELL_LINES)]
HELP_LINES = help_examples()


@pytest.fixture(scope="module")
def workdir(alert_packets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose ./lsst_alerts holds the real v9 and v10 packets (ssObjectId column too)."""
    work = tmp_path_factory.mktemp("readme")
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(alert_packets / "rubin/derived_wire_v10_0"),
                       str(alert_packets / "rubin/derived_wire_v9_0")],
        "output_dir": str(work / "lsst_alerts"), "extra_columns": ["ssObjectId"]}))
    assert summary.exit_code == exitcodes.OK, summary.line()
    # The examples count "today's" alerts: a night under today's UTC date (what the
    # specification's `date +%Y%m%d` names) and under tonight's dayObs (status's "tonight").
    data = work / "lsst_alerts" / "data"
    night = max(data.glob("lsst_alerts_*.csv"))
    for name in (dt.datetime.now(dt.UTC).strftime("%Y%m%d"), current_day_obs()):
        if not (data / f"lsst_alerts_{name}.csv").exists():
            shutil.copy(night, data / f"lsst_alerts_{name}.csv")
    return work


def shell(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(config.ENV_PREFIX)}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO / "src")
    line = line.replace("/tmp/", f"{cwd}/tmp/")  # examples that write to /tmp stay in the test
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)


def test_every_example_is_run_or_listed_with_a_reason():
    unaccounted = [line for line in README_LINES + HELP_LINES
                   if not runnable(line) and not listed(line)]
    assert not unaccounted
    assert sum(map(runnable, README_LINES)) >= 15
    assert sum(map(runnable, HELP_LINES)) >= 6


@pytest.mark.parametrize("line", [line for line in README_LINES if runnable(line)])
def test_readme_example_runs(line, workdir, tmp_path):
    work = Path(shutil.copytree(workdir, tmp_path / "work"))  # cleanup/compact change it
    (work / "tmp").mkdir()
    result = shell(line, work)
    assert result.returncode == 0, (line, result.stdout, result.stderr)


@pytest.mark.parametrize("line", [line for line in HELP_LINES if runnable(line)])
def test_help_example_runs(line, workdir, tmp_path):
    work = Path(shutil.copytree(workdir, tmp_path / "work"))
    (work / "tmp").mkdir()
    result = shell(line, work)
    assert result.returncode == 0, (line, result.stdout, result.stderr)


def readme_line(*words: str) -> str:
    return next(line for line in README_LINES if all(word in line for word in words))


def test_the_readme_object_is_an_object_with_a_light_curve(workdir, tmp_path):
    work = Path(shutil.copytree(workdir, tmp_path / "work"))
    detections = shell(readme_line("query", "diaObjectId =", "psFluxErr"), work)
    assert detections.returncode == 0, detections.stderr
    assert len(detections.stdout.splitlines()) >= 2  # a header and the object's alerts
    drawn = shell(readme_line("lightcurve", "--plot"), work)
    assert drawn.returncode == 0, drawn.stderr
    assert (work / "lc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    points = [line for line in drawn.stdout.splitlines()[1:] if line.strip()]
    assert len(points) > 1


def test_the_tonight_commands_count_tonights_rows_without_the_header(workdir, tmp_path):
    work = Path(shutil.copytree(workdir, tmp_path / "work"))
    tonight = work / "lsst_alerts" / "data" / f"lsst_alerts_{current_day_obs()}.csv"
    rows = sum(1 for _ in csv.DictReader(tonight.open()))
    counted = shell(readme_line("tail -q", "TZ=Etc/GMT+12"), work)
    assert counted.returncode == 0, counted.stderr
    assert int(counted.stdout) == rows
    status = shell(readme_line("lsst-alerts status", "--no-broker"), work)
    assert status.returncode == 0, status.stderr
    assert f"tonight (dayObs {current_day_obs()}): {rows:,} alerts" in status.stdout


def test_the_pandas_advice_keeps_every_id_exact(workdir):
    ids = ("alertId", "diaSourceId", "diaObjectId", "ssObjectId")
    for document in (README, REPO / "docs" / "output.md"):  # the advice, where each gives it
        text = " ".join(document.read_text().split())
        advice = ast.literal_eval(re.search(r'dtype=(\{"alertId".*?\})', text).group(1))
        assert set(advice) == set(ids), document.name
        for path in sorted((workdir / "lsst_alerts" / "data").glob("*.csv")):
            exact = list(csv.DictReader(path.open()))
            for frame in (pd.read_csv(path, dtype=advice), pd.read_csv(path, dtype=str)):
                for column in ids:
                    read = ["" if pd.isna(value) else str(value) for value in frame[column]]
                    assert read == [row[column] for row in exact], (path.name, column)
    # The advice it replaces changed ids: the check above can fail.
    naive = pd.concat(pd.read_csv(path, dtype={"diaSourceId": "Int64"})
                      for path in (workdir / "lsst_alerts" / "data").glob("*.csv"))
    assert naive["ssObjectId"].dtype == "float64"
    exact_ids = {row["ssObjectId"] for path in (workdir / "lsst_alerts" / "data").glob("*.csv")
                 for row in csv.DictReader(path.open()) if row["ssObjectId"]}
    assert {str(int(v)) for v in naive["ssObjectId"].dropna()} != exact_ids


def test_the_docs_name_only_commands_that_exist():
    text = DOCS_TEXT
    named = set(re.findall(r"`lsst-alerts ([a-z][a-z-]*)", text))
    # The README's table of commands.
    named |= set(re.findall(r"^\| `([a-z-]+)[` ]", README.read_text(), re.M))
    parts = re.search(r"\.csv` stays the night's\s+first file; (.*?) read every part", text, re.S)
    named |= set(re.findall(r"`([a-z-]+)`", parts.group(1)))
    assert "report" in named and named - set(COMMAND_NAMES) == set()


def test_the_folder_diagram_names_every_folder_the_commands_write(workdir, tmp_path):
    work = Path(shutil.copytree(workdir, tmp_path / "work"))
    assert shell("lsst-alerts report --output-dir lsst_alerts --max-alerts 1", work).returncode == 0
    source = next(csv.DictReader(next((work / "lsst_alerts" / "data").glob("*.csv")).open()))
    assert shell(f"lsst-alerts show {source['diaSourceId']}", work).returncode == 0
    written = {path.name for path in (work / "lsst_alerts").iterdir() if path.is_dir()}
    assert written >= {"previews", "reports"}
    for document, heading in ((README, "## Where the output goes"),
                              (REPO / "docs" / "output.md", "## Output Structure")):
        diagram = re.search(heading + r"\n\n```\n(.*?)```", document.read_text(), re.S)
        assert all(f"{name}/" in diagram.group(1) for name in written), document.name
