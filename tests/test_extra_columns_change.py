"""Changing `extra_columns` in the middle of a night never writes a ragged CSV.

A night whose columns change goes on in `lsst_alerts_YYYYMMDD.2.csv` with its own header; the
specification's name stays the first file's, and status and the look commands read every part.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from pathlib import Path

import pandas as pd

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.decode.schemas import latest_version
from lsst_alert_pipeline.decode.times import day_obs
from lsst_alert_pipeline.look.nights import night_csv, night_files, read_night
from lsst_alert_pipeline.ops.status import collect
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts
from lsst_alert_pipeline.sinks.csv import SPEC_COLUMNS, csv_name, night_parts

from .alerts import csv_rows

COLUMN_SETS = ([], ["ssObjectId", "snr"], [], ["dayObs", "hasSSSource", "extendednessCount"])


def consume_part(folder: Path, output: Path, wires: list[bytes], extra: list[str]) -> None:
    folder.mkdir()
    for index, payload in enumerate(wires):
        (folder / f"{index:03d}.bin").write_bytes(payload)
    summary = consumer.consume(config.load(environ={}, flags={
        "from_paths": [str(folder)], "output_dir": str(output), "extra_columns": extra}))
    assert summary.exit_code == exitcodes.OK, summary.line()
    assert summary.alerts_written == len(wires), summary.line()


def test_changed_extra_columns_start_a_new_file_and_every_file_stays_rectangular(
        tmp_path: Path) -> None:
    records = list(simulate_alerts(40, seed=31, history=0))
    wires = [encode_wire(record, latest_version()) for record in records]
    night = day_obs(records[0]["diaSource"]["midpointMjdTai"])
    assert night is not None and {day_obs(r["diaSource"]["midpointMjdTai"])
                                  for r in records} == {night}
    output = tmp_path / "out"
    for index, extra in enumerate(COLUMN_SETS):
        consume_part(tmp_path / f"in{index}", output, wires[index * 10:(index + 1) * 10], extra)
    files = night_parts(output / "data", night)
    # the third run had the first run's columns again: it went on in the first file
    assert sorted(p.name for p in (output / "data").glob("*")) == sorted(p.name for p in files)
    assert [p.name for p in files] == [csv_name(night), csv_name(night, 2), csv_name(night, 3)]
    for path in files:
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows[0][:len(SPEC_COLUMNS)] == list(SPEC_COLUMNS)
        assert {len(row) for row in rows} == {len(rows[0])}, f"{path.name} is ragged"
        frame = pd.read_csv(path)
        assert list(frame.columns) == rows[0] and len(frame) == len(rows) - 1
        assert not frame["diaSourceId"].isna().any()
    headers = {tuple(pd.read_csv(p, nrows=0).columns[len(SPEC_COLUMNS):]) for p in files}
    assert headers == {(), ("ssObjectId", "snr"), ("dayObs", "hasSSSource", "extendednessCount")}
    expected = Counter(int(r["diaSource"]["diaSourceId"]) for r in records)
    assert Counter(int(row["diaSourceId"]) for row in csv_rows(output)) == expected
    # status, the look commands (report, show, history) read every part of the night
    evening = dt.datetime.strptime(night, "%Y%m%d").replace(hour=23, tzinfo=dt.UTC)
    assert collect(output, now=evening)["alerts_per_day"][night] == 40
    assert list(night_files(output)) == [night]
    assert night_csv(output, night).name == csv_name(night)
    assert Counter(a.dia_source_id for a in read_night(night_csv(output, night))) == expected
