"""The user's filter on raw Rubin alerts: `consume --from FILES --filter FILE` and a plain topic
with `--filter` write exactly the alerts the DevKit passes; without `--filter` they write every
alert, as before (filter/local.py, pipeline/screen.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.errors import ConfigurationError
from lsst_alert_pipeline.filter.devkit_run import BUNDLED_FILTER, load_filter, run_filter
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.simulate import simulate_alerts, write_wire_files

from .alerts import csv_rows
from .conftest import real_files


def devkit_verdicts(paths: list[Path], filter_file: Path | None = None
                    ) -> tuple[set[str], set[str]]:
    """(passed, not passed) diaSourceIds of `filter-test` (the DevKit) on these files."""
    filter_class = load_filter(filter_file) if filter_file else None
    results = list(run_filter(paths, filter_class))
    return ({str(r.diaSourceId) for r in results if r.passed},
            {str(r.diaSourceId) for r in results if not r.passed})


@pytest.fixture(scope="module")
def raw_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw Rubin wire files: the real sample and simulated alerts with histories (some
    extended, some not, some with a solar-system association)."""
    folder = tmp_path_factory.mktemp("raw")
    write_wire_files(simulate_alerts(120, schema_version="10.0", seed=24, history=(0, 6),
                                     sso_fraction=0.4), folder, "10.0")
    for path in real_files("rubin/derived_wire_v10_0/*.wire", "rubin/derived_wire_v9_0/*.wire"):
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def files_settings(folder: Path, output: Path, **extra):
    return config.load(environ={}, flags={"from_paths": [str(folder)],
                                          "output_dir": str(output), **extra})


def test_files_with_filter_write_exactly_the_alerts_the_devkit_passes(
        raw_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    passed, turned_away = devkit_verdicts(sorted(raw_folder.iterdir()))
    assert passed and turned_away  # the folder tells the two apart
    with caplog.at_level(logging.INFO, logger="lsst_alert_pipeline"):
        summary = consumer.consume(files_settings(raw_folder, tmp_path,
                                                  filter_path=str(BUNDLED_FILTER)))
    assert summary.exit_code == exitcodes.OK
    ids = [row["diaSourceId"] for row in csv_rows(tmp_path)]
    assert len(ids) == len(set(ids)) and set(ids) == passed
    assert summary.alerts_written == len(passed)
    assert summary.filtered_out == len(turned_away)
    said = [r.getMessage() for r in caplog.records if "local filter on" in r.getMessage()]
    assert len(said) == 1 and "file alert" in said[0]
    assert any("filtered out:" in r.getMessage() for r in caplog.records)
    # The shipped filter on wire payloads: fast.py decided, never the slow DevKit path.
    assert not any("through the ANTARES DevKit" in r.getMessage() for r in caplog.records)


def test_a_second_run_over_the_same_folder_adds_no_row(raw_folder: Path,
                                                        tmp_path: Path) -> None:
    first = consumer.consume(files_settings(raw_folder, tmp_path,
                                            filter_path=str(BUNDLED_FILTER)))
    rows = len(csv_rows(tmp_path))
    second = consumer.consume(files_settings(raw_folder, tmp_path,
                                             filter_path=str(BUNDLED_FILTER)))
    assert first.exit_code == second.exit_code == exitcodes.OK
    assert second.alerts_written == 0 and len(csv_rows(tmp_path)) == rows
    assert second.filtered_out == first.filtered_out > 0


def test_files_without_filter_write_every_alert_as_before(raw_folder: Path,
                                                          tmp_path: Path) -> None:
    summary = consumer.consume(files_settings(raw_folder, tmp_path))
    everything = {str(p.stem) for p in raw_folder.iterdir()}
    assert summary.exit_code == exitcodes.OK and summary.filtered_out == 0
    assert len(csv_rows(tmp_path)) == summary.alerts_written == len(everything)


def test_no_local_filter_overrides_a_named_filter_file(raw_folder: Path, tmp_path: Path) -> None:
    summary = consumer.consume(files_settings(raw_folder, tmp_path,
                                              filter_path=str(BUNDLED_FILTER),
                                              local_filter=False))
    assert summary.filtered_out == 0
    assert summary.alerts_written == len(list(raw_folder.iterdir()))


def test_a_filter_file_the_fast_path_does_not_know_decides_through_the_devkit(
        raw_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    own = tmp_path / "own_filter.py"
    # One statement more than the shipped file: fast.py hands every alert to the DevKit.
    own.write_text(BUNDLED_FILTER.read_text().replace(
        "REQUIRE_SSSOURCE = True", "REQUIRE_SSSOURCE = False\nOWN_NOTE = 'mine'"))
    passed, _ = devkit_verdicts(sorted(raw_folder.iterdir()), own)
    bundled, _ = devkit_verdicts(sorted(raw_folder.iterdir()))
    assert passed != bundled
    output = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="lsst_alert_pipeline"):
        summary = consumer.consume(files_settings(raw_folder, output, filter_path=str(own)))
    assert summary.exit_code == exitcodes.OK
    assert {row["diaSourceId"] for row in csv_rows(output)} == passed
    assert any("through the ANTARES DevKit" in r.getMessage() for r in caplog.records)


def test_the_command_line_filters_a_folder(raw_folder: Path, tmp_path: Path) -> None:
    passed, _ = devkit_verdicts(sorted(raw_folder.iterdir()))
    result = CliRunner().invoke(main, ["consume", "--from", str(raw_folder), "--output-dir",
                                       str(tmp_path), "--filter", str(BUNDLED_FILTER)])
    assert result.exit_code == exitcodes.OK, result.output
    assert {row["diaSourceId"] for row in csv_rows(tmp_path)} == passed


def test_antares_stream_refuses_the_local_filter() -> None:
    settings = config.load(environ={}, flags={
        "preset": "antares", "topics": ["s"], "local_filter": True,
        "kafka": {"sasl.username": "key", "sasl.password": "secret"}})
    with pytest.raises(ConfigurationError, match="ANTARES"):
        consumer.local_filter_for(settings)


@pytest.mark.kafka
def test_a_plain_topic_with_filter_writes_what_the_devkit_passes(
        raw_folder: Path, broker, topic: str, tmp_path: Path) -> None:
    paths = sorted(raw_folder.iterdir())
    passed, turned_away = devkit_verdicts(paths)
    broker.produce(topic, [path.read_bytes() for path in paths])
    summary = consumer.consume(config.load(environ={}, flags={
        "topics": [topic], "output_dir": str(tmp_path), "idle_timeout": 20,
        "filter_path": str(BUNDLED_FILTER),
        "kafka": {"bootstrap.servers": broker.bootstrap, "group.id": f"g-{topic}",
                  "session.timeout.ms": 6000}}))
    assert summary.exit_code == exitcodes.OK
    assert {row["diaSourceId"] for row in csv_rows(tmp_path)} == passed
    assert summary.filtered_out == len(turned_away)
