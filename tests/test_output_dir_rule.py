"""One output-directory rule for every command (issue 28, points 1 and 2).

Each command that reads or tends a collection resolves its settings one way (flags >
LSST_ALERTS_* > the configuration file > defaults) and so reaches the configured collection;
and none but `consume` creates one: on a folder holding no collection it says so and exits 2.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.cli import main

from .conftest import simulated_collection

ALERTS = 40


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real collection: simulated alerts consumed from files (CSV, cutouts, archive, ledger)."""
    return simulated_collection(tmp_path_factory.mktemp("rule"), ALERTS, seed=28, history=(1, 4))


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A working folder of its own, and no LSST_ALERTS_* variable from the caller's shell."""
    for name in list(os.environ):
        if name.startswith(config.ENV_PREFIX):
            monkeypatch.delenv(name)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def rows(out: Path) -> list[dict[str, str]]:
    return [row for path in sorted((out / "data").glob("*.csv"))
            for row in csv.DictReader(path.open())]


def an_object(out: Path) -> str:
    return next(row["diaObjectId"] for row in rows(out) if row["diaObjectId"] != "0")


def a_source(out: Path) -> str:
    return rows(out)[0]["diaSourceId"]


def saw_every_alert(result: Result, out: Path) -> None:
    assert result.stdout.strip().splitlines()[-1] == str(ALERTS)


def drew_the_object(result: Result, out: Path) -> None:
    assert result.stdout.splitlines()[0].split()[:2] == ["mjd", "band"]
    assert len(result.stdout.splitlines()) > 1


def wrote_inside(result: Result, out: Path) -> None:
    assert Path(result.stdout.strip()).resolve().is_relative_to(out.resolve())
    assert Path(result.stdout.strip()).is_file()


def kept_the_recent_files(result: Result, out: Path) -> None:
    kept = int(result.stdout.split("kept ")[1].split(" recent")[0].replace(",", ""))
    assert kept > ALERTS  # CSV, cutouts and archive files of the real collection


def counted_the_ledger(result: Result, out: Path) -> None:
    facts = json.loads(result.stdout)
    assert facts["output_dir"] == str(out.resolve())
    assert facts["alerts_in_ledger"] == ALERTS


def verified_every_alert(result: Result, out: Path) -> None:
    nights = [line.split() for line in result.stdout.splitlines()[1:] if line[:1].isdigit()]
    assert sum(int(night[1].replace(",", "")) for night in nights) == ALERTS
    assert "everything is whole" in result.stdout


def filled_nothing(result: Result, out: Path) -> None:
    assert result.stdout.startswith("filled 0 of 0 cutouts")


def merged_no_member(result: Result, out: Path) -> None:
    assert "merged 0 members" in result.stdout


def compacted_the_archive(result: Result, out: Path) -> None:
    alerts = int(result.stdout.split(", ")[-1].split()[0].replace(",", ""))
    assert alerts == ALERTS


# Each command, its arguments on the collection (without --output-dir), and what shows that it
# read the collection rather than ./lsst_alerts.
COMMANDS: dict[str, tuple[Callable[[Path], list[str]], Callable[[Result, Path], None]]] = {
    "query": (lambda out: ["query", "--format", "csv", "SELECT count(*) FROM alerts"],
              saw_every_alert),
    "lightcurve": (lambda out: ["lightcurve", an_object(out)], drew_the_object),
    "show": (lambda out: ["show", a_source(out)], wrote_inside),
    "report": (lambda out: ["report", "--max-alerts", "2"], wrote_inside),
    "cleanup": (lambda out: ["cleanup", "--dry-run"], kept_the_recent_files),
    "status": (lambda out: ["status", "--no-broker", "--json"], counted_the_ledger),
    "verify": (lambda out: ["verify"], verified_every_alert),
    "fill-cutouts": (lambda out: ["fill-cutouts"], filled_nothing),
    "merge": (lambda out: ["merge"], merged_no_member),
    "compact": (lambda out: ["compact"], compacted_the_archive),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("how", ["config file", "environment"])
def test_every_command_reaches_the_configured_collection(command, how, collection,
                                                         clean_environment, tmp_path):
    arguments, reached = COMMANDS[command]
    collection = Path(shutil.copytree(collection, tmp_path / "collection"))  # one each
    env = {}
    if how == "config file":
        (clean_environment / config.DEFAULT_CONFIG_FILE).write_text(
            f'output_dir = "{collection}"\n')
    else:
        env[config.ENV_PREFIX + "OUTPUT_DIR"] = str(collection)
    result = CliRunner().invoke(main, arguments(collection), env=env)
    assert result.exit_code == 0, result.output
    reached(result, collection)
    assert not (clean_environment / "lsst_alerts").exists()


def test_the_flag_beats_the_environment_which_beats_the_file(collection, clean_environment,
                                                            tmp_path):
    (clean_environment / config.DEFAULT_CONFIG_FILE).write_text(
        f'output_dir = "{tmp_path / "from-file"}"\n')
    env = {config.ENV_PREFIX + "OUTPUT_DIR": str(collection)}
    query = ["query", "--format", "csv", "SELECT count(*) FROM alerts"]
    from_environment = CliRunner().invoke(main, query, env=env)
    assert from_environment.exit_code == 0, from_environment.output
    assert from_environment.stdout.splitlines()[-1] == str(ALERTS)
    from_flag = CliRunner().invoke(main, [*query, "--output-dir", str(tmp_path / "flag")],
                                   env=env)
    assert from_flag.exit_code == exitcodes.CONFIG_ERROR
    assert str(tmp_path / "flag") in from_flag.stderr


def test_config_option_names_the_file_for_every_collection_command(collection,
                                                                   clean_environment):
    named = clean_environment / "elsewhere.toml"
    named.write_text(f'output_dir = "{collection}"\n')
    result = CliRunner().invoke(main, ["status", "--no-broker", "--json", "--config",
                                       str(named)])
    assert result.exit_code == 0, result.output
    counted_the_ledger(result, collection)
    result = CliRunner().invoke(main, ["query", "--config", str(named), "--format", "csv",
                                       "SELECT count(*) FROM alerts"])
    assert result.exit_code == 0, result.output
    saw_every_alert(result, collection)


MISSING: dict[str, list[str]] = {
    "query": ["query", "SELECT 1"],
    "lightcurve": ["lightcurve", "313893023095193658"],
    "show": ["show", "170094456248729605"],
    "report": ["report"],
    "cleanup": ["cleanup"],
    "cleanup --dry-run": ["cleanup", "--dry-run"],
    "status": ["status", "--no-broker"],
    "verify": ["verify"],
    "verify --repair": ["verify", "--repair"],
    "fill-cutouts": ["fill-cutouts"],
    "merge": ["merge"],
    "compact": ["compact"],
}


@pytest.mark.parametrize("command", list(MISSING))
def test_a_mistyped_output_dir_exits_2_and_creates_nothing(command, clean_environment, tmp_path):
    typo = tmp_path / "typo" / "deep" / "x"
    result = CliRunner().invoke(main, [*MISSING[command], "--output-dir", str(typo)])
    assert result.exit_code == exitcodes.CONFIG_ERROR, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(typo) in lines[0] and "holds no collection" in lines[0]
    assert "lsst-alerts consume" in lines[0]
    assert not (tmp_path / "typo").exists()
    assert not (clean_environment / "lsst_alerts").exists()


def test_consume_from_a_missing_folder_exits_2_before_creating_its_output(clean_environment,
                                                                          tmp_path):
    out = tmp_path / "new" / "collection"
    result = CliRunner().invoke(main, ["consume", "--from", str(tmp_path / "nonexistent"),
                                       "--output-dir", str(out)])
    assert result.exit_code == exitcodes.CONFIG_ERROR, result.output
    assert "nonexistent" in result.stderr
    assert not (tmp_path / "new").exists()
