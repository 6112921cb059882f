"""Answers that were wrong rather than errors (issue 28, points 4 and 5): 64-bit ids in JSON,
diaObjectId 0, empty SQL, dates in either form, a plot named for another format."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.pipeline import consume as consumer

BIG = 2**53  # past this a double (jq, JavaScript) no longer holds every integer


@pytest.fixture(scope="module")
def collection(alert_packets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("answers") / "lsst_alerts"
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(alert_packets / "rubin/derived_wire_v10_0"),
                       str(alert_packets / "rubin/derived_wire_v9_0")],
        "output_dir": str(out), "extra_columns": ["ssObjectId"], "batch_size": 5}))
    assert summary.exit_code == exitcodes.OK, summary.line()
    return out


def csv_rows(out: Path) -> list[dict[str, str]]:
    return [row for path in sorted((out / "data").glob("*.csv"))
            for row in csv.DictReader(path.open())]


def invoke(*arguments: str) -> object:
    return CliRunner().invoke(main, list(arguments))


def test_query_json_writes_every_id_as_an_exact_string(collection):
    result = invoke("query", "--output-dir", str(collection), "--format", "json",
                    "SELECT alertId, diaSourceId, diaObjectId, ssObjectId, visit FROM alerts")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    exact = {row["diaSourceId"]: row for row in csv_rows(collection)}
    assert len(rows) == len(exact)
    assert any(int(row["diaSourceId"]) > BIG for row in rows)
    for row in rows:
        assert all(isinstance(row[name], str) for name in ("alertId", "diaSourceId",
                                                           "diaObjectId"))
        assert row["diaObjectId"] == exact[row["diaSourceId"]]["diaObjectId"]
        assert isinstance(row["visit"], int)  # not an id: a number still


def test_lightcurve_and_inspect_json_write_ids_as_strings(collection, alert_packets):
    result = invoke("lightcurve", "313893023095193658", "--output-dir", str(collection),
                    "--format", "json")
    assert result.exit_code == 0, result.output
    points = [json.loads(line) for line in result.stdout.splitlines()]
    assert any(point["diaSourceId"] == "170094456248729605" for point in points)
    result = invoke("inspect", "--json", str(alert_packets / "rubin/derived_wire_v10_0"))
    records = [json.loads(line) for line in result.stdout.splitlines()]
    named = next(r for r in records if r["diaSourceId"] == "170094456248729605")
    assert named["diaObjectId"] == "313893023095193658" and named["alertId"] == "170094456248729605"


def test_lightcurve_0_is_refused_and_points_to_the_ss_object_id(collection):
    result = invoke("lightcurve", "0", "--output-dir", str(collection))
    assert result.exit_code == exitcodes.CONFIG_ERROR
    assert "no object" in result.stderr and "ssObjectId" in result.stderr
    assert "diaObject 0" not in result.stdout


@pytest.mark.parametrize("sql", ["", ";", "  ;  ", "/* only a comment */"])
def test_query_without_a_statement_exits_2_with_one_line(collection, sql):
    result = invoke("query", "--output-dir", str(collection), sql)
    assert result.exit_code == exitcodes.CONFIG_ERROR
    assert result.stderr.strip() == ('query error: no SQL statement given: e.g. "SELECT '
                                     'count(*) FROM alerts"')
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("command", [["compact"], ["report", "--max-alerts", "0"]])
def test_a_date_that_is_no_date_exits_2(collection, command):
    result = invoke(*command, "--output-dir", str(collection), "--date", "garbage")
    assert result.exit_code == exitcodes.CONFIG_ERROR
    assert "YYYYMMDD or YYYY-MM-DD" in result.stderr


@pytest.mark.parametrize("form", ["20260305", "2026-03-05"])
def test_report_and_compact_take_both_date_forms(collection, form, tmp_path):
    copy = Path(shutil.copytree(collection, tmp_path / "copy"))  # compact changes it
    report = invoke("report", "--output-dir", str(copy), "--date", form,
                    "--out", str(tmp_path / "night"), "--max-alerts", "1")
    assert report.exit_code == 0, report.output
    assert "20260305" in (tmp_path / "night" / "index.html").read_text()
    compacted = invoke("compact", "--output-dir", str(copy), "--date", form)
    assert compacted.exit_code == 0, compacted.output
    assert compacted.stdout.startswith("compacted 1 nights")
    assert len(list((copy / "archive" / "dayObs=2026-03-05").glob("*.parquet"))) == 1


def test_a_plot_named_for_another_format_is_refused_before_anything_is_written(collection,
                                                                               tmp_path):
    result = invoke("lightcurve", "313893023095193658", "--output-dir", str(collection),
                    "--plot", str(tmp_path / "lc.pdf"))
    assert result.exit_code == exitcodes.CONFIG_ERROR
    assert "PNG" in result.stderr
    assert not (tmp_path / "lc.pdf").exists()
