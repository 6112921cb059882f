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


# --- mistakes named as such at start-up (issue 29.7): exit 2, the key, the value, what works -

def consume_with(tmp_path: Path, *args: str, toml: str | None = None,
                 env: dict[str, str] | None = None) -> tuple[int, str]:
    """`lsst-alerts consume` on an empty folder of alert files: (exit status, stderr)."""
    incoming = tmp_path / "incoming"
    incoming.mkdir(exist_ok=True)
    extra: list[str] = []
    if toml is not None:
        (tmp_path / "settings.toml").write_text(toml)
        extra = ["--config", str(tmp_path / "settings.toml")]
    result = CliRunner(env=env).invoke(main, ["consume", "--from", str(incoming), *extra, *args])
    return result.exit_code, result.stderr


def test_an_output_dir_naming_a_file_is_a_configuration_error_naming_the_key(
        tmp_path: Path) -> None:
    afile = tmp_path / "not-a-folder"
    afile.write_text("x")
    code, stderr = consume_with(tmp_path, "--output-dir", str(afile))
    assert code == 2, stderr
    assert f"output_dir = '{afile}' is a file: name a folder" in stderr
    code, stderr = consume_with(tmp_path, toml=f'output_dir = "{afile}/nightly"\n')
    assert code == 2, stderr
    assert f"output_dir = '{afile}/nightly' lies under '{afile}', a file" in stderr


@pytest.mark.parametrize("what, message", [
    ("folder", "is a folder; use a bundled version such as 9.0 or 11.1, or an .avsc file"),
    ("text", "is not an Avro schema (SchemaRepositoryError: Failed to parse"),
    ("json", "is not an Avro schema (SchemaParseException"),
    ("string", "is an Avro schema but not of a record"),
    ("missing", "no such file"),
    ("version", "lsst-alert-packet bundles no schema 42.7"),
])
def test_a_schema_that_is_no_alert_schema_is_a_configuration_error_naming_the_key(
        what: str, message: str, tmp_path: Path) -> None:
    value = {"folder": tmp_path, "text": tmp_path / "notes.avsc", "json": tmp_path / "x.avsc",
             "string": tmp_path / "s.avsc", "missing": tmp_path / "none.avsc",
             "version": "42.7"}[what]
    (tmp_path / "notes.avsc").write_text("these are notes, not a schema\n")
    (tmp_path / "x.avsc").write_text('{"type": "record", "name": "x", "fields": "none"}')
    (tmp_path / "s.avsc").write_text('"string"')
    code, stderr = consume_with(tmp_path, "--output-dir", str(tmp_path / "out"),
                                "--schema", str(value))
    assert code == 2, stderr
    assert f"schema = '{value}'" in stderr and message in stderr
    assert "Traceback" not in stderr


def test_a_bundled_version_and_an_alert_schema_file_are_accepted_as_schema(
        tmp_path: Path) -> None:
    from lsst_alert_pipeline.decode.schemas import bundled_schema

    avsc = tmp_path / "alert.avsc"
    avsc.write_text(json.dumps(bundled_schema("9.0")))
    for value in ("9.0", str(avsc)):
        assert config.load(environ={}, flags={"schema": value, "from_paths": ["x"]}).schema \
            == value


@pytest.mark.parametrize("where", ["toml", "environment"])
def test_a_batch_size_that_is_not_a_whole_number_is_refused_not_rounded(
        where: str, tmp_path: Path) -> None:
    code, stderr = consume_with(
        tmp_path, "--output-dir", str(tmp_path / "out"),
        toml="batch_size = 1.5\n" if where == "toml" else None,
        env={"LSST_ALERTS_BATCH_SIZE": "1.5"} if where == "environment" else None)
    assert code == 2, stderr
    assert "batch_size = " in stderr and "1.5" in stderr
    assert "expected a whole number" in stderr
    assert not (tmp_path / "out").exists()


def test_whole_numbers_are_still_read_from_every_layer() -> None:
    assert config.load(environ={"LSST_ALERTS_BATCH_SIZE": "250"},
                       flags={"from_paths": ["x"]}).batch_size == 250
    assert config.load(environ={}, flags={"from_paths": ["x"], "batch_size": 2.0}
                       ).batch_size == 2
    with pytest.raises(ConfigurationError, match="expected a whole number"):
        config.load(environ={}, flags={"from_paths": ["x"], "max_messages": True})


# --- the Schema Registry's credentials, by the rules of Confluent's clients (issue 29.5) ----

REGISTRY = "http://registry:8081"


@pytest.mark.parametrize("kafka, credentials", [
    ({"schema.registry.url": "http://u:p%40ss@registry:8081"}, ("u", "p@ss")),
    ({"schema.registry.url": REGISTRY, "basic.auth.user.info": "u:p:ss"}, ("u", "p:ss")),
    ({"schema.registry.url": "http://a:b@registry:8081", "basic.auth.user.info": "u:p",
      "basic.auth.credentials.source": "USER_INFO"}, ("u", "p")),
    ({"schema.registry.url": "http://a:b@registry:8081", "basic.auth.user.info": "u:p",
      "basic.auth.credentials.source": "url"}, ("a", "b")),
    ({"schema.registry.url": REGISTRY, "sasl.username": "k", "sasl.password": "s",
      "basic.auth.credentials.source": "SASL_INHERIT"}, ("k", "s")),
    ({"schema.registry.url": "http://user-only@registry:8081"}, None),
    ({"schema.registry.url": REGISTRY}, None),
])
def test_registry_credentials_follow_confluents_rules(kafka: dict[str, str],
                                                      credentials: tuple[str, str] | None
                                                      ) -> None:
    settings = config.load(environ={}, flags={"from_paths": ["x"], "kafka": kafka})
    assert config.registry_credentials(settings.kafka) == credentials
    from lsst_alert_pipeline.decode.schemas import split_credentials

    bare, header = split_credentials(settings.schema_registry_url or "")
    assert bare == REGISTRY
    assert (header is None) == (credentials is None)


@pytest.mark.parametrize("kafka, message", [
    ({"schema.registry.url": "http://a:b@registry:8081", "basic.auth.user.info": "u:p"},
     "basic.auth.user.info is set and schema.registry.url carries user:password too"),
    ({"schema.registry.url": REGISTRY, "basic.auth.user.info": "no-colon-secret"},
     "basic.auth.user.info must be 'user:password'"),
    ({"schema.registry.url": REGISTRY, "basic.auth.credentials.source": "USER_INFO"},
     "basic.auth.credentials.source = USER_INFO but basic.auth.user.info is not set"),
    ({"schema.registry.url": REGISTRY, "basic.auth.credentials.source": "URL"},
     "basic.auth.credentials.source = URL but schema.registry.url carries no user:password"),
    ({"schema.registry.url": REGISTRY, "basic.auth.credentials.source": "KERBEROS"},
     "basic.auth.credentials.source = 'KERBEROS' is unknown; choose one of: URL, USER_INFO"),
    ({"schema.registry.url": "registry:8081"}, "schema.registry.url = 'registry:8081' is not"),
])
def test_registry_credential_mistakes_are_named_without_their_values(
        kafka: dict[str, str], message: str, tmp_path: Path) -> None:
    args = [arg for key, value in kafka.items() for arg in ("-X", f"{key}={value}")]
    code, stderr = consume_with(tmp_path, "--output-dir", str(tmp_path / "out"), *args)
    assert code == 2, stderr
    assert message in stderr
    assert "no-colon-secret" not in stderr and ":b@" not in stderr
