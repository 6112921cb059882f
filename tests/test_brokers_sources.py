"""One cron line for all brokers: a configuration file's `[[sources]]` tables are read in turn
by one `consume`, each with its own group and offsets, into one output directory; the run's
status is the worst of the sources'; a bad table stops nothing but the start (exit 2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from lsst_alert_pipeline import exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.ops.query import run_query
from lsst_alert_pipeline.pipeline.sources_run import worst
from lsst_alert_pipeline.sources.offsets import describe_group

from .alerts import csv_rows
from .fink_standin import fink_stream
from .lasair_standin import LasairPages, lasair_stream
from .test_brokers_deliveries import KINDS, devkit_passed, no_sso_filter, overlapping_night

FINK_TOPIC, LASAIR_TOPIC = "fink_sources_lsst", "lasair_sources"


@pytest.fixture(scope="module")
def streams(broker) -> None:
    """Fink's and Lasair's streams of the same night: Lasair's alerts are also in Fink's."""
    fink = fink_stream()
    broker.create_topic(FINK_TOPIC, 1)
    broker.produce(FINK_TOPIC, fink.values(), keys=fink.keys)
    broker.create_topic(LASAIR_TOPIC, 1)
    broker.produce(LASAIR_TOPIC, lasair_stream().values("full"))


def two_sources(output: Path, filter_file: Path, fink_servers: str, lasair_servers: str,
                lasair_api: str, fink_group: str, lasair_group: str,
                broker_timeout: float = 300) -> str:
    return f"""
output_dir = "{output}"
idle_timeout = 20

[filter]
path = "{filter_file}"

[kafka]
"session.timeout.ms" = 6000

[[sources]]
preset = "fink"
topic = ["sources"]
broker_timeout = {broker_timeout}
[sources.kafka]
"bootstrap.servers" = "{fink_servers}"
"group.id" = "{fink_group}"

[[sources]]
preset = "lasair"
topic = "{LASAIR_TOPIC}"
[sources.kafka]
"bootstrap.servers" = "{lasair_servers}"
"group.id" = "{lasair_group}"
[sources.lasair]
api_url = "{lasair_api}"
"""


def run_cli(tmp_path: Path, toml: str, *args: str) -> tuple[int, str]:
    """`lsst-alerts <command> --config FILE ...`: (exit status, what it printed and logged)."""
    path = tmp_path / "brokers.toml"
    path.write_text(toml)
    result = CliRunner().invoke(main, [*args[:1], "--config", str(path), *args[1:]])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def stored_pages(pages: LasairPages) -> None:
    for packet in lasair_stream().packets:
        pages.store(packet["diaSource"]["diaSourceId"],
                    {kind: packet[f"cutout{kind.title()}"] for kind in KINDS})


def committed(broker, group: str, topic: str) -> list[tuple[Any, Any]]:
    rows = describe_group({"bootstrap.servers": broker.bootstrap, "group.id": group}, [topic])
    return [(row["committed"], row["high"]) for row in rows]


@pytest.mark.kafka
def test_one_consume_reads_every_source_writing_each_passing_alert_once(
        broker, streams: None, tmp_path: Path) -> None:
    fink_ids, lasair_ids, own, passed = overlapping_night(tmp_path)
    output = tmp_path / "night"
    with LasairPages() as pages:
        stored_pages(pages)
        code, said = run_cli(tmp_path, two_sources(
            output, own, broker.bootstrap, broker.bootstrap, pages.base_url,
            "me-fink", "me-lasair"), "consume")
    assert code == exitcodes.OK, said
    assert "source 1 (fink) starting" in said and "source 2 (lasair) finished (exit 0" in said
    written = [int(row["diaSourceId"]) for row in csv_rows(output)]
    assert sorted(written) == sorted(passed & fink_ids)  # each passing alert, once
    brokers = dict(run_query(output, "SELECT broker, count(DISTINCT diaSourceId) FROM "
                                     "deliveries GROUP BY broker").rows)
    assert brokers == {"fink": len(fink_ids), "lasair": len(lasair_ids)}
    # Each group's offsets committed on its own topic, to the end.
    assert committed(broker, "me-fink", FINK_TOPIC) == [(len(fink_ids), len(fink_ids))]
    assert committed(broker, "me-lasair", LASAIR_TOPIC) == [(len(lasair_ids), len(lasair_ids))]


@pytest.mark.kafka
def test_an_unreachable_broker_gives_exit_3_and_the_next_source_is_still_written(
        broker, streams: None, tmp_path: Path) -> None:
    lasair_ids = set(lasair_stream().trigger_ids())
    own = no_sso_filter(tmp_path)
    output = tmp_path / "night"
    with LasairPages() as pages:
        stored_pages(pages)
        code, said = run_cli(tmp_path, two_sources(
            output, own, "127.0.0.1:1", broker.bootstrap, pages.base_url,
            "down-fink", "up-lasair", broker_timeout=2), "consume")
    assert code == exitcodes.BROKER_UNREACHABLE, said
    assert "source 1 (fink) finished (exit 3" in said
    assert "source 2 (lasair) finished (exit 0" in said
    assert {int(row["diaSourceId"]) for row in csv_rows(output)} == devkit_passed(own) & lasair_ids
    assert committed(broker, "up-lasair", LASAIR_TOPIC) == [(len(lasair_ids), len(lasair_ids))]


@pytest.mark.kafka
def test_sigterm_stops_the_whole_run_with_exit_4_and_starts_no_further_source(
        broker, streams: None, tmp_path: Path) -> None:
    output = tmp_path / "night"
    path = tmp_path / "brokers.toml"
    # The first source's broker never answers, so the signal lands while it waits for it.
    path.write_text(two_sources(output, no_sso_filter(tmp_path), "127.0.0.1:1",
                                broker.bootstrap, "http://127.0.0.1:1", "never", "not-started"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen([sys.executable, "-m", "lsst_alert_pipeline.cli", "consume",
                                "--config", str(path)], stderr=subprocess.PIPE, text=True,
                               env=env)
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line)
        if "source 1 (fink) starting" in line:
            process.send_signal(signal.SIGTERM)
            break
    lines += process.stderr.readlines()
    assert process.wait(timeout=120) == exitcodes.INTERRUPTED, "".join(lines)
    said = "".join(lines)
    assert "source 2 (lasair) not started" in said
    assert "source 2 (lasair) starting" not in said
    assert not csv_rows(output)


def test_a_bad_key_in_the_second_table_is_exit_2_naming_it_and_the_file(
        tmp_path: Path) -> None:
    toml = two_sources(tmp_path / "out", tmp_path / "f.py", "a:9092", "b:9092",
                       "http://127.0.0.1:1", "g1", "g2").replace(
        "preset = \"lasair\"", "preset = \"lasair\"\nbatch_sise = 10")
    code, said = run_cli(tmp_path, toml, "consume")
    assert code == exitcodes.CONFIG_ERROR
    assert f"{tmp_path / 'brokers.toml'}: sources[2].batch_sise: unknown setting" in said
    assert not (tmp_path / "out").exists()  # nothing created


def test_a_bad_value_in_a_table_is_exit_2_naming_sources_n_and_the_key(tmp_path: Path) -> None:
    toml = two_sources(tmp_path / "out", tmp_path / "f.py", "a:9092", "b:9092",
                       "http://127.0.0.1:1", "g1", "g2").replace(
        "broker_timeout = 300", "broker_timeout = \"soon\"")
    code, said = run_cli(tmp_path, toml, "consume")
    assert code == exitcodes.CONFIG_ERROR
    assert "sources[1].broker_timeout: broker_timeout = 'soon' is not valid" in said


def test_a_preset_check_failing_for_one_table_names_that_table(tmp_path: Path) -> None:
    toml = two_sources(tmp_path / "out", tmp_path / "f.py", "a:9092", "b:9092",
                       "http://127.0.0.1:1", "g1", "g2") + (
        "\n[[sources]]\npreset = \"babamul\"\ntopic = \"ztf-match.hosted\"\n")
    code, said = run_cli(tmp_path, toml, "consume")
    assert code == exitcodes.CONFIG_ERROR
    assert "sources[3] (preset babamul): babamul needs its Kafka username and password" in said


def test_a_source_on_the_command_line_with_sources_in_the_file_is_exit_2_naming_both(
        tmp_path: Path) -> None:
    toml = two_sources(tmp_path / "out", tmp_path / "f.py", "a:9092", "b:9092",
                       "http://127.0.0.1:1", "g1", "g2")
    code, said = run_cli(tmp_path, toml, "consume", "--preset", "fink", "--topic", "x")
    assert code == exitcodes.CONFIG_ERROR
    assert (f"--preset, --topic names a source, and {tmp_path / 'brokers.toml'} has "
            "[[sources]] tables") in said


def test_a_table_may_not_move_the_runs_output_directory(tmp_path: Path) -> None:
    toml = two_sources(tmp_path / "out", tmp_path / "f.py", "a:9092", "b:9092",
                       "http://127.0.0.1:1", "g1", "g2").replace(
        "preset = \"lasair\"", f"preset = \"lasair\"\noutput_dir = \"{tmp_path / 'other'}\"")
    code, said = run_cli(tmp_path, toml, "consume")
    assert code == exitcodes.CONFIG_ERROR
    assert "sources[2].output_dir: one consume run writes one output directory" in said


def test_config_check_shows_each_source_with_its_preset_applied(tmp_path: Path) -> None:
    own = tmp_path / "f.py"
    toml = two_sources(tmp_path / "out", own, "a:9092", "b:9092", "http://127.0.0.1:1",
                       "g1", "g2")
    path = tmp_path / "brokers.toml"
    path.write_text(toml)
    result = CliRunner().invoke(main, ["config", "check", "--config", str(path)])
    assert result.exit_code == 0, result.output
    sources = json.loads(result.stdout)["sources"]
    assert [(s["preset"], s["topics"], s["kafka"]["bootstrap.servers"], s["kafka"]["group.id"])
            for s in sources] == [("fink", [FINK_TOPIC], "a:9092", "g1"),
                                  ("lasair", [LASAIR_TOPIC], "b:9092", "g2")]
    # The top level under every table; the table over it.
    assert {s["output_dir"] for s in sources} == {str(tmp_path / "out")}
    assert [s["broker_timeout"] for s in sources] == [300.0, 300.0]
    assert all(s["kafka"]["session.timeout.ms"] == 6000 for s in sources)
    assert sources[1]["broker_api"] == {"lasair_api_url": "http://127.0.0.1:1"}


def test_the_worst_status_is_a_failure_over_a_loss_over_success() -> None:
    assert worst([exitcodes.OK, exitcodes.BROKER_UNREACHABLE, exitcodes.RETENTION_LOSS]) == \
        exitcodes.BROKER_UNREACHABLE
    assert worst([exitcodes.RETENTION_LOSS, exitcodes.OK]) == exitcodes.RETENTION_LOSS
    assert worst([exitcodes.ALL_DEADLETTERED, exitcodes.RETENTION_LOSS]) == \
        exitcodes.ALL_DEADLETTERED
    assert worst([exitcodes.BROKER_UNREACHABLE, exitcodes.INTERRUPTED]) == exitcodes.INTERRUPTED
    assert worst([exitcodes.OK, exitcodes.OK]) == exitcodes.OK
