"""Cutouts of ANTARES locus messages, from a local stand-in for the ANTARES REST API that speaks
the shapes antares-client parses (tests/antares_standin.py): the recorded alert id, gzipped
thumbnails written as plain FITS, 404s never retried, missing cutouts never dead letters, and
transient failures filled later by `lsst-alerts fill-cutouts`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from antares_client._api.v2.utils import ANTARESAPIClient
from antares_client.exceptions import AntaresException
from astropy.io import fits
from click.testing import CliRunner

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.pipeline import consume as consumer
from lsst_alert_pipeline.pipeline.run import RunSummary

from .alerts import csv_rows
from .antares_standin import (
    KINDS,
    AntaresStandin,
    StreamedAlert,
    serve,
    streamed_alerts,
    wire_payloads,
)


@pytest.fixture(scope="module")
def alerts() -> list[StreamedAlert]:
    """Locus messages of passing alerts, real (when present) and simulated, with cutouts."""
    found = list(streamed_alerts(wire_payloads(simulated=12)))
    assert len(found) >= 8
    return found


def locus_files(alerts: list[StreamedAlert], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, alert in enumerate(alerts):
        (folder / f"{index:04d}.zlib").write_bytes(alert.locus_message)
    return folder


def consume_files(folder: Path, output: Path, standin: AntaresStandin, **extra) -> RunSummary:
    flags = {"from_paths": [str(folder)], "output_dir": str(output), "batch_size": 50,
             "antares_fetch_cutouts": True, "antares_api_url": standin.base_url,
             "antares_retries": 1, **extra}
    return consumer.consume(config.load(environ={}, flags=flags))


def rows_by_id(output: Path) -> dict[int, dict[str, str]]:
    return {int(row["diaSourceId"]): row for row in csv_rows(output)}


def missing_rows(output: Path) -> list[tuple[str, str, str]]:
    db = sqlite3.connect(output / "state" / "ledger.sqlite")
    try:
        return db.execute("SELECT dia_source_id, kind, state FROM missing_cutouts "
                          "ORDER BY dia_source_id, kind").fetchall()
    finally:
        db.close()


def test_standin_listing_is_what_antares_clients_own_api_client_parses(alerts,
                                                                       antares_api) -> None:
    serve(antares_api, alerts[:3])
    client = ANTARESAPIClient(base_url=antares_api.base_url, timeout=10)
    for alert in alerts[:3]:
        listed = list(client.get_alert_thumbnails(alert.antares_alert_id))
        assert sorted(t.thumbnail_type for t in listed) == sorted(KINDS)
        assert all(t.src.startswith(antares_api.base_url) for t in listed)
    with pytest.raises(AntaresException) as refused:
        list(client.get_alert_thumbnails(str(alerts[0].dia_source_id)))
    assert refused.value.args[0]["errors"][0]["status"] == "404"


def test_cutouts_are_asked_for_under_the_recorded_alert_id_not_the_bare_dia_source_id(
        alerts, antares_api, tmp_path: Path) -> None:
    serve(antares_api, alerts)
    summary = consume_files(locus_files(alerts, tmp_path / "in"), tmp_path / "out", antares_api)
    assert summary.exit_code == exitcodes.OK, summary.line()
    assert summary.missing_cutouts == 0
    for alert in alerts:
        assert antares_api.requests_for(alert.antares_alert_id) == 4  # listing + 3 files
        assert antares_api.requests_for(str(alert.dia_source_id)) == 0
    assert all(alert.antares_alert_id != str(alert.dia_source_id) for alert in alerts)


def test_gzipped_and_plain_thumbnails_are_written_as_plain_fits_identical_to_the_packets(
        alerts, antares_api, tmp_path: Path) -> None:
    serve(antares_api, alerts)  # gzipped, gzipped under a FITS filemime, and plain
    served = {t.body[:2] == b"\x1f\x8b" for kinds in antares_api.state.alerts.values()
              for t in kinds.values()}
    assert served == {True, False}
    summary = consume_files(locus_files(alerts, tmp_path / "in"), tmp_path / "out", antares_api)
    assert summary.exit_code == exitcodes.OK, summary.line()
    rows = rows_by_id(tmp_path / "out")
    for alert in alerts:
        for kind in KINDS:
            path = tmp_path / "out" / rows[alert.dia_source_id][f"{kind}_cutout_path"]
            assert path.read_bytes() == alert.cutouts[kind]
            with fits.open(path) as hdus:
                assert hdus[0].data is not None or len(hdus) > 1


def test_a_404_is_an_answer_never_retried_and_never_a_dead_letter(alerts, antares_api,
                                                                  tmp_path: Path) -> None:
    unknown = alerts[0]
    serve(antares_api, alerts[1:])
    summary = consume_files(locus_files(alerts, tmp_path / "in"), tmp_path / "out", antares_api,
                            antares_retries=3)
    assert summary.exit_code == exitcodes.OK, summary.line()
    assert antares_api.requests_for(unknown.antares_alert_id) == 1
    assert summary.deadlettered == 0 and summary.missing_cutouts == 3
    row = rows_by_id(tmp_path / "out")[unknown.dia_source_id]
    assert [row[f"{kind}_cutout_path"] for kind in KINDS] == ["", "", ""]
    assert missing_rows(tmp_path / "out") == [
        (str(unknown.dia_source_id), kind, "gone") for kind in sorted(KINDS)]


def test_a_broken_or_unlisted_thumbnail_makes_that_cutout_missing_not_a_dead_letter(
        alerts, antares_api, tmp_path: Path) -> None:
    serve(antares_api, alerts)
    broken, unlisted = alerts[0], alerts[1]
    truncated = antares_api.state.alerts[broken.antares_alert_id]["science"]
    truncated.body = truncated.body[: len(truncated.body) // 2]
    del antares_api.state.alerts[unlisted.antares_alert_id]["template"]
    summary = consume_files(locus_files(alerts, tmp_path / "in"), tmp_path / "out", antares_api)
    assert summary.exit_code == exitcodes.OK, summary.line()
    assert summary.deadlettered == 0 and summary.missing_cutouts == 2
    rows = rows_by_id(tmp_path / "out")
    assert set(rows) == {alert.dia_source_id for alert in alerts}
    assert rows[broken.dia_source_id]["science_cutout_path"] == ""
    assert rows[broken.dia_source_id]["template_cutout_path"] != ""
    assert rows[unlisted.dia_source_id]["template_cutout_path"] == ""
    assert missing_rows(tmp_path / "out") == sorted([
        (str(broken.dia_source_id), "science", "gone"),
        (str(unlisted.dia_source_id), "template", "gone")])


@pytest.mark.parametrize("how", ["503", "reset"])
def test_a_transient_failure_is_missing_for_now_and_fill_cutouts_fills_it(
        alerts, antares_api, tmp_path: Path, how: str) -> None:
    serve(antares_api, alerts)
    sick = alerts[2]
    antares_api.fail_first(sick.antares_alert_id, 2, how)  # the run's 2 attempts both fail
    output = tmp_path / "out"
    summary = consume_files(locus_files(alerts, tmp_path / "in"), output, antares_api)
    assert summary.exit_code == exitcodes.OK, summary.line()
    assert summary.deadlettered == 0 and summary.missing_cutouts == 3
    row = rows_by_id(output)[sick.dia_source_id]
    paths = [output / row[f"{kind}_cutout_path"] for kind in KINDS]
    assert all(row[f"{kind}_cutout_path"] for kind in KINDS)  # where fill-cutouts puts them
    assert not any(path.exists() for path in paths)
    assert {state for _, _, state in missing_rows(output)} == {"later"}

    config_file = tmp_path / "lsst_alerts.toml"
    config_file.write_text(f'[antares]\napi_url = "{antares_api.base_url}"\nretries = 1\n')
    result = CliRunner().invoke(main, ["fill-cutouts", "--config", str(config_file),
                                       "--output-dir", str(output)])
    assert result.exit_code == 0, result.output
    assert "filled 3 of 3" in result.output
    for kind, path in zip(KINDS, paths, strict=True):
        assert path.read_bytes() == sick.cutouts[kind]
    assert missing_rows(output) == []
    again = CliRunner().invoke(main, ["fill-cutouts", "--config", str(config_file),
                                      "--output-dir", str(output)])
    assert "filled 0 of 0" in again.output


def test_status_lists_the_missing_cutouts(alerts, antares_api, tmp_path: Path) -> None:
    serve(antares_api, alerts[1:])
    antares_api.fail_first(alerts[1].antares_alert_id, 2)
    output = tmp_path / "out"
    consume_files(locus_files(alerts, tmp_path / "in"), output, antares_api)
    result = CliRunner().invoke(main, ["status", "--no-broker", "--output-dir", str(output)])
    assert result.exit_code == 0, result.output
    assert "missing cutouts: 6 (3 missing for now" in result.output
    assert f"{alerts[0].dia_source_id} science: gone" in result.output
    assert f"{alerts[1].dia_source_id} science: later" in result.output


def test_past_the_batch_deadline_no_request_is_made_and_the_cutouts_are_missing_for_now(
        alerts, antares_api) -> None:
    import time

    from lsst_alert_pipeline.sources.antares_thumbnails import LATER, AntaresThumbnails

    serve(antares_api, alerts[:4])
    fetcher = AntaresThumbnails(antares_api.base_url, concurrency=4)
    try:
        results = fetcher.fetch_alerts([(a.antares_alert_id, KINDS) for a in alerts[:4]],
                                       deadline=time.monotonic() - 1)
    finally:
        fetcher.close()
    assert all(r.missing == {kind: (LATER, r.missing[kind][1]) for kind in KINDS}
               for r in results)
    assert sum(antares_api.request_counts().values()) == 0


@pytest.mark.parametrize("broker", ["lasair", "babamul"])
def test_past_the_batch_deadline_lasair_and_babamul_ask_nothing_and_miss_the_cutouts_for_now(
        broker: str) -> None:
    import time

    from lsst_alert_pipeline.sources.antares_thumbnails import LATER
    from lsst_alert_pipeline.sources.broker_cutouts import BabamulCutouts, LasairCutouts

    from .babamul_standin import TOKEN, BabamulApi
    from .lasair_standin import LasairPages

    with LasairPages() if broker == "lasair" else BabamulApi() as api:
        fetcher = (LasairCutouts(api.base_url) if broker == "lasair"
                   else BabamulCutouts(api.base_url, TOKEN))
        try:
            result = fetcher.fetch(f"{broker}:170032915988086", KINDS,
                                   deadline=time.monotonic() - 1)
        finally:
            fetcher.close()
        assert api.state.requests == []
    assert result.cutouts == dict.fromkeys(KINDS)
    assert {kind: state for kind, (state, _) in result.missing.items()} == dict.fromkeys(
        KINDS, LATER)
    assert all(why.startswith("not asked") for _, why in result.missing.values())


def test_the_next_consumer_run_fills_the_cutouts_missing_for_now(alerts, antares_api,
                                                                 tmp_path: Path) -> None:
    serve(antares_api, alerts)
    sick = alerts[3]
    antares_api.fail_first(sick.antares_alert_id, 2, "reset")
    folder, output = locus_files(alerts, tmp_path / "in"), tmp_path / "out"
    first = consume_files(folder, output, antares_api)
    assert first.missing_cutouts == 3
    row = rows_by_id(output)[sick.dia_source_id]
    assert not (output / row["science_cutout_path"]).exists()
    second = consume_files(folder, output, antares_api)
    assert second.exit_code == exitcodes.OK and second.alerts_written == 0
    for kind in KINDS:
        assert (output / row[f"{kind}_cutout_path"]).read_bytes() == sick.cutouts[kind]
    assert missing_rows(output) == []


def test_without_a_recorded_alert_id_the_configured_format_is_used_and_said_once(
        alerts, caplog) -> None:
    import zlib

    import bson

    from lsst_alert_pipeline.decode.normalize import normalize_locus
    from lsst_alert_pipeline.pipeline.cutout_fetch import AntaresAlertIds

    loads = getattr(bson, "loads", None) or bson.decode
    records = []
    for alert in alerts[:3]:
        locus = loads(zlib.decompress(alert.locus_message))
        del locus["properties"]["extfilter_alert_id"]
        records.append(normalize_locus(locus))
    ids = AntaresAlertIds("ztf{diaSourceId}")
    assert ids(normalize_locus(loads(zlib.decompress(alerts[0].locus_message)))) == (
        alerts[0].antares_alert_id)
    assert caplog.text == ""
    assert [ids(record) for record in records] == [
        f"ztf{alert.dia_source_id}" for alert in alerts[:3]]
    assert caplog.text.count("carries no extfilter_alert_id") == 1
