"""Secrets: the Schema Registry's credentials work in every form Confluent's clients accept, and
no secret appears in any output (stdout, stderr, dead letters, the ledger, `config check`)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from lsst_alert_pipeline import config, exitcodes
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts

from .alerts import csv_rows
from .schema_registry import SchemaRegistry

USER = "alice"
# A ':' and an '@' in it: user.info splits at the first ':', a URL must percent-encode both.
PASSWORD = "S3cr3t:pw@29x"
ENCODED = urllib.parse.quote(PASSWORD, safe="")
UNKNOWN_ID = 777


def traces_of_the_password() -> list[bytes]:
    """Every way the password could be written out: as is, percent-encoded, in the header."""
    header = base64.b64encode(f"{USER}:{PASSWORD}".encode())
    return [PASSWORD.encode(), ENCODED.encode(), header, PASSWORD.split("@")[0].encode()]


def forms(url: str, tmp_path: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Each credential form: (command-line arguments, environment)."""
    with_user = url.replace("//", f"//{USER}:{ENCODED}@")
    user_info_file = tmp_path / "registry-user-info"
    user_info_file.write_text(f"{USER}:{PASSWORD}\n")
    toml = tmp_path / "settings.toml"  # not ./lsst_alerts.toml, which every run would read
    toml.write_text(f'[kafka]\n"schema.registry.url" = "{url}"\n'
                    f'"basic.auth.user.info_file" = "{user_info_file}"\n')
    return {
        "url-userinfo-flag": (["-X", f"schema.registry.url={with_user}"], {}),
        "user-info-flag": (["-X", f"schema.registry.url={url}",
                            "-X", f"basic.auth.user.info={USER}:{PASSWORD}"], {}),
        "user-info-env-source-user-info": ([], {
            "LSST_ALERTS_KAFKA_SCHEMA_REGISTRY_URL": url,
            "LSST_ALERTS_KAFKA_BASIC_AUTH_USER_INFO": f"{USER}:{PASSWORD}",
            "LSST_ALERTS_KAFKA_BASIC_AUTH_CREDENTIALS_SOURCE": "USER_INFO"}),
        "url-userinfo-env-source-url": ([], {
            "LSST_ALERTS_KAFKA_SCHEMA_REGISTRY_URL": with_user,
            "LSST_ALERTS_KAFKA_BASIC_AUTH_CREDENTIALS_SOURCE": "URL"}),
        "user-info-file-in-toml": (["--config", str(toml)], {}),
        "sasl-inherit": (["-X", f"schema.registry.url={url}", "-X", f"sasl.username={USER}",
                          "-X", f"sasl.password={PASSWORD}",
                          "-X", "basic.auth.credentials.source=SASL_INHERIT"], {}),
    }


FORMS = ("url-userinfo-flag", "user-info-flag", "user-info-env-source-user-info",
         "url-userinfo-env-source-url", "user-info-file-in-toml", "sasl-inherit")


def lsst_alerts(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lsst_alert_pipeline.cli", *args],
                          capture_output=True, timeout=120, cwd=cwd,
                          env={**os.environ, **env})


@pytest.mark.kafka
@pytest.mark.parametrize("form", FORMS)
def test_a_registry_demanding_basic_auth_works_with_each_form_and_no_output_shows_the_password(
        form: str, broker, topic, tmp_path: Path) -> None:
    good = [encode_wire(alert, "10.0") for alert in
            simulate_alerts(3, schema_version="10.0", seed=5, history=(0, 2))]
    # An id the registry does not hold: its dead letter's reason quotes the registry's URL.
    unknown = b"\x00" + UNKNOWN_ID.to_bytes(4, "big") + good[0][5:]
    broker.produce(topic, [*good, unknown])
    output = tmp_path / "lsst_alerts"
    with SchemaRegistry(credentials=(USER, PASSWORD)) as registry:
        args, env = forms(registry.url, tmp_path)[form]
        common = ["--bootstrap-servers", broker.bootstrap, "--topic", topic, "--group-id",
                  f"g-{topic}", "--output-dir", str(output), "-X", "session.timeout.ms=6000",
                  *args]
        run = lsst_alerts(["consume", "--idle-timeout", "20", *common], env, tmp_path)
        check = lsst_alerts(["config", "check", *common], env, tmp_path)
    assert run.returncode == exitcodes.OK, run.stderr.decode()
    assert len(csv_rows(output)) == len(good)
    letters = list((output / "deadletter").glob("*.json"))
    assert len(letters) == 1
    assert f"is not in the Schema Registry at {registry.url}" in letters[0].read_text()
    assert registry.requests and all(auth for _, auth in registry.requests)
    assert check.returncode == 0, check.stderr.decode()
    shown = json.loads(check.stdout)
    assert config.MASK in json.dumps(shown["kafka"])

    outputs = {"consume stdout": run.stdout, "consume stderr": run.stderr,
               "config check stdout": check.stdout, "config check stderr": check.stderr}
    outputs.update({str(path.relative_to(output)): path.read_bytes()
                    for path in output.rglob("*") if path.is_file()})
    assert any(name.startswith("state") or name.endswith(".sqlite") or "ledger" in name
               for name in outputs), sorted(outputs)
    leaks = [(name, trace) for name, content in outputs.items()
             for trace in traces_of_the_password() if trace in content]
    assert leaks == []


@pytest.mark.kafka
def test_without_credentials_a_registry_demanding_them_stops_the_run_with_exit_3(
        broker, topic, tmp_path: Path) -> None:
    broker.produce(topic, [encode_wire(alert, "10.0") for alert in
                           simulate_alerts(2, schema_version="10.0", seed=6, history=(0, 1))])
    with SchemaRegistry(credentials=(USER, PASSWORD)) as registry:
        run = lsst_alerts(["consume", "--bootstrap-servers", broker.bootstrap, "--topic", topic,
                           "--group-id", f"g-{topic}", "--output-dir", str(tmp_path / "out"),
                           "-X", "session.timeout.ms=6000",
                           "-X", f"schema.registry.url={registry.url}"], {}, tmp_path)
    assert run.returncode == exitcodes.BROKER_UNREACHABLE
    assert (f"the Schema Registry at {registry.url} refused our credentials (HTTP 401"
            in run.stderr.decode())


@pytest.mark.parametrize("text, shown", [
    ("http://alice:pw@host:8081/x", "http://alice:***@host:8081/x"),
    (f"see https://{USER}:{PASSWORD}@reg.example.org/ids", "see https://alice:***@reg.example.org/ids"),
    ("https://token@host", "https://***@host"),
    ("http://host:8081 and bob@example.org", "http://host:8081 and bob@example.org"),
])
def test_mask_secrets_masks_the_userinfo_of_every_url(text: str, shown: str) -> None:
    assert config.mask_secrets(text) == shown


def test_every_secret_key_is_masked_in_config_check_whatever_it_came_from() -> None:
    from click.testing import CliRunner

    from lsst_alert_pipeline.cli import main

    flagged = {"sasl.password": PASSWORD, "ssl.key.password": PASSWORD,
               "sasl.oauthbearer.client.secret": PASSWORD, "sasl.oauthbearer.token": PASSWORD,
               "basic.auth.user.info": f"{USER}:{PASSWORD}",
               # Both credential forms at once are allowed when the source is named.
               "basic.auth.credentials.source": "URL",
               "schema.registry.url": f"http://{USER}:{ENCODED}@registry:8081"}
    args = ["config", "check", "--bootstrap-servers", "b:9092"]
    for key, value in flagged.items():
        args += ["-X", f"{key}={value}"]
    result = CliRunner(env={"LSST_ALERTS_KAFKA_SSL_KEY_PEM": PASSWORD}).invoke(main, args)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)["kafka"]
    for key in ("sasl.password", "ssl.key.password", "sasl.oauthbearer.client.secret",
                "sasl.oauthbearer.token", "basic.auth.user.info", "ssl.key.pem"):
        assert shown[key] == config.MASK, key
    assert shown["schema.registry.url"] == f"http://{USER}:***@registry:8081"
    assert [trace for trace in traces_of_the_password() if trace.decode() in result.output] == []
