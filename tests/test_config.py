"""Configuration: file < environment < flags, validated at start-up, secrets never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lsst_alert_pipeline import config
from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.errors import ConfigurationError

TOML = """
output_dir = "/data/from-file"
topic = "from-file"
batch_size = 100
[kafka]
"bootstrap.servers" = "file-broker:9092"
"group.id" = "file-group"
"sasl.username" = "key"
"""


def test_flags_beat_environment_beat_the_file(tmp_path: Path) -> None:
    path = tmp_path / "lsst_alerts.toml"
    path.write_text(TOML)
    environ = {"LSST_ALERTS_TOPIC": "from-env", "LSST_ALERTS_BATCH_SIZE": "200",
               "LSST_ALERTS_KAFKA_GROUP_ID": "env-group"}
    settings = config.load(path, environ=environ, flags={"batch_size": 300})
    assert settings.output_dir == Path("/data/from-file")
    assert settings.topics == ["from-env"]
    assert settings.batch_size == 300
    assert settings.kafka["group.id"] == "env-group"
    assert settings.kafka["bootstrap.servers"] == "file-broker:9092"


def test_secrets_come_from_a_file_and_are_masked(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    settings = config.load(environ={
        "LSST_ALERTS_KAFKA_BOOTSTRAP_SERVERS": "b:9092",
        "LSST_ALERTS_KAFKA_SASL_PASSWORD_FILE": str(secret)})
    assert settings.kafka["sasl.password"] == "s3cr3t"
    assert config.masked(settings)["kafka"]["sasl.password"] == "***"


def test_config_check_prints_the_effective_settings_without_secrets(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(TOML)
    result = CliRunner().invoke(
        main, ["config", "check", "--config", str(path), "-X", "sasl.password=hunter2",
               "--preset", "antares", "--topic", "my_stream"])
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    shown = json.loads(result.output)
    assert shown["kafka"]["sasl.password"] == "***"
    assert shown["kafka"]["security.protocol"] == "SASL_SSL"
    assert shown["kafka"]["ssl.ca.location"].endswith("kafka-ca.pem")
    assert Path(shown["kafka"]["ssl.ca.location"]).exists()
    assert shown["topics"] == ["client.my_stream"]


@pytest.mark.parametrize("flags, message", [
    ({"batch_size": 0}, "batch_size = 0 must be at least 1"),
    ({"extra_columns": ["colour"]}, "extra_columns ['colour'] unknown"),
    ({"kafka": {}}, "no Kafka broker configured"),
    ({"kafka": {"bootstrap.servers": "your-kafka-broker:9092"}}, "still the placeholder"),
    ({"reset_offsets": "yesterday"}, "expected earliest, latest or an ISO-8601 time"),
    ({"member": "../x"}, "member = '../x'"),
])
def test_bad_settings_are_named(flags: dict[str, object], message: str) -> None:
    base = {"kafka": {"bootstrap.servers": "b:9092"}}
    with pytest.raises(ConfigurationError, match=message.replace("[", r"\[").replace(
            "]", r"\]").replace("(", r"\(")):
        config.load(environ={}, flags={**base, **flags})


def test_unknown_keys_in_the_file_are_named(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('outptu_dir = "x"\n')
    with pytest.raises(ConfigurationError, match="unknown setting 'outptu_dir'"):
        config.load(path, environ={})


def test_antares_preset_needs_the_api_key_and_secret() -> None:
    with pytest.raises(ConfigurationError, match="SASL PLAIN needs sasl.username"):
        config.load(environ={}, flags={"preset": "antares", "topics": ["s"]})


def test_the_specifications_manual_run_reads_its_kafka_config(tmp_path: Path) -> None:
    import runpy
    import sys

    argv = sys.argv
    sys.argv = ["lsst_alert_consumer.py", "--output-dir", str(tmp_path)]
    try:
        with pytest.raises(SystemExit) as stopped:
            runpy.run_path(str(Path(__file__).resolve().parents[1] / "lsst_alert_consumer.py"),
                           run_name="__main__")
    finally:
        sys.argv = argv
    # kafka_config still holds the specification's placeholder broker: a clear config error.
    assert stopped.value.code == 2


# --- the ANTARES preset: the filter's stream, a group of this host's own -------------------

ANTARES_CREDENTIALS = {"LSST_ALERTS_KAFKA_SASL_USERNAME": "key",
                       "LSST_ALERTS_KAFKA_SASL_PASSWORD": "secret"}


def test_antares_preset_reads_the_stream_the_filters_output_tag_names() -> None:
    from lsst_alert_pipeline.filter import antares_extendedness_filter as extfilter

    settings = config.load(environ=ANTARES_CREDENTIALS, flags={"preset": "antares"})
    assert settings.topics == [f"client.{extfilter.OUTPUT_TAG}"]
    assert config.filter_output_tag() == extfilter.OUTPUT_TAG == "lsst_extendedness_sssource"


def test_antares_preset_keeps_a_topic_that_was_given() -> None:
    settings = config.load(environ=ANTARES_CREDENTIALS,
                           flags={"preset": "antares", "topics": ["my_stream"]})
    assert settings.topics == ["client.my_stream"]


def test_antares_preset_joins_a_group_named_after_this_host_as_antares_client_does() -> None:
    import socket

    settings = config.load(environ=ANTARES_CREDENTIALS, flags={"preset": "antares"})
    assert settings.kafka["group.id"] == socket.gethostname() != "lsst-alert-consumer"
    chosen = config.load(environ={**ANTARES_CREDENTIALS, "LSST_ALERTS_KAFKA_GROUP_ID": "mine"},
                         flags={"preset": "antares"})
    assert chosen.kafka["group.id"] == "mine"


def test_antares_preset_replaces_the_shipped_defaults_of_lsst_alert_consumer_py() -> None:
    import socket

    base = {"kafka": {"bootstrap.servers": "your-kafka-broker:9092",
                      "group.id": "lsst-alert-consumer"},
            "topic": "lsst-extendedness-filtered"}
    settings = config.load(environ=ANTARES_CREDENTIALS, base=base, flags={"preset": "antares"})
    assert settings.topics == ["client.lsst_extendedness_sssource"]
    assert settings.kafka["group.id"] == socket.gethostname()
    assert settings.kafka["bootstrap.servers"] == "kafka.antares.noirlab.edu:9092"


def test_output_tag_is_read_from_an_edited_filter_file(tmp_path: Path) -> None:
    edited = tmp_path / "f.py"
    edited.write_text('OUTPUT_TAG = "my_tag"\n')
    assert config.filter_output_tag(edited) == "my_tag"
    (tmp_path / "g.py").write_text("x = 1\n")
    with pytest.raises(ConfigurationError, match="sets no OUTPUT_TAG"):
        config.filter_output_tag(tmp_path / "g.py")
