"""Configuration: defaults < TOML file < environment (LSST_ALERTS_...) < command-line flags.

Validated once at start-up; every error names the key, the value and what would be accepted.
Secrets (passwords, API secrets) come from the environment or a file and are never printed.
"""

from __future__ import annotations

import ast
import os
import re
import urllib.parse
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigurationError
from .masking import (  # noqa: F401 - imported from config by callers too
    MASK,
    SECRET_MARKERS,
    is_secret,
    mask_secrets,
    mask_url,
    masked,
    shown,
)

ENV_PREFIX = "LSST_ALERTS_"
# The optional CSV columns `extra_columns` may name, after the specification's (sinks/csv.py).
EXTRA_COLUMNS = ("ssObjectId", "hasSSSource", "snr", "reliability", "dayObs",
                 "extendednessCount")
ENV_KAFKA_PREFIX = ENV_PREFIX + "KAFKA_"
# The Schema Registry's settings, as Confluent's clients name them (docs/troubleshooting.md).
REGISTRY_URL = "schema.registry.url"
REGISTRY_USER_INFO = "basic.auth.user.info"
REGISTRY_CREDENTIALS_SOURCE = "basic.auth.credentials.source"
CREDENTIAL_SOURCES = ("URL", "USER_INFO", "SASL_INHERIT")
DEFAULT_TOPIC = "lsst-extendedness-filtered"
BROKER_PRESETS = ("fink", "lasair", "babamul")  # brokers' own LSST streams, filtered here
PRESETS = ("antares", *BROKER_PRESETS)
DEFAULT_CONFIG_FILE = "lsst_alerts.toml"
# Read by run_lsst_consumer.sh (and CONFIG by load()), not settings of their own.
WRAPPER_VARIABLES = {"CONFIG", "HOME", "VENV"}
# What a compressed message may inflate to by default; Rubin's largest alerts are a few MB.
DEFAULT_MAX_INFLATED_BYTES = 64 * 1024 * 1024
PLACEHOLDER_BROKER = "your-kafka-broker"
# The group id lsst_alert_consumer.py and the consumer defaults ship with.
SHARED_GROUP_ID = "lsst-alert-consumer"
# The filter file whose OUTPUT_TAG names the ANTARES stream (read as text: config imports nothing
# above it in the flow).
BUNDLED_FILTER = Path(__file__).parent / "filter" / "antares_extendedness_filter.py"


@dataclass
class Settings:
    """Everything `lsst-alerts consume` runs with."""

    output_dir: Path = Path("lsst_alerts")
    topics: list[str] = field(default_factory=lambda: [DEFAULT_TOPIC])
    kafka: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None
    batch_size: int = 500
    # A batch holds what is written in about this long (count adapts to the measured rate), so
    # a batch that waits on a remote API never nears max.poll.interval.ms (300 s).
    batch_seconds: float = 30.0
    idle_timeout: float = 60.0
    broker_timeout: float = 300.0
    max_messages: int | None = None
    duration: float | None = None
    extra_columns: list[str] = field(default_factory=list)
    schema: str | None = None
    from_paths: list[str] = field(default_factory=list)
    reset_offsets: str | None = None
    member: str | None = None
    archive: bool = True  # every alert whole in OUTPUT_DIR/archive/ (Parquet)
    antares_api_url: str = "https://api.antares.noirlab.edu/v2/"
    antares_fetch_cutouts: bool = False
    antares_timeout: float = 30.0
    antares_retries: int = 3
    antares_alert_id_format: str = "{diaSourceId}"
    antares_concurrency: int = 24  # cutout requests in flight at once
    # What one compressed message (an Avro container file) may inflate to; more is refused.
    max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES
    # [notify] (docs/notifications.md): apprise URLs, and what is sent to them.
    notify_urls: list[str] = field(default_factory=list)
    notify_when: str | None = None  # SQL over the archive's columns: a candidate is named once
    notify_on_success: bool = False
    notify_max_per_message: int = 20
    notify_timeout: float = 10.0  # seconds one delivery may hold up a run
    notify_digest_order: str = "extendednessMedian DESC"  # the digest's top candidates
    notify_digest_top: int = 10
    local_filter: bool | None = None  # the user's filter run here: None = on for broker presets
    filter_path: Path | None = None  # [filter] path, --filter: the bundled filter when unset
    broker_api: dict[str, str] = field(default_factory=dict)  # [lasair] api_url ... (presets)

    @property
    def schema_registry_url(self) -> str | None:
        """The registry's URL as SchemaSource takes it: the credentials Confluent's rules choose
        (registry_credentials) in its userinfo, whichever key they came from."""
        if not self.kafka.get(REGISTRY_URL):
            return None
        parts = urllib.parse.urlsplit(str(self.kafka[REGISTRY_URL]).strip())
        netloc = parts.netloc.rpartition("@")[2]
        if credentials := registry_credentials(self.kafka):
            netloc = ":".join(urllib.parse.quote(c, safe="") for c in credentials) + "@" + netloc
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))

    @property
    def source_label(self) -> str:
        """Where alerts are read from, as the start-up log line says it."""
        if self.from_paths:
            return ", ".join(self.from_paths)
        return f"{self.kafka.get('bootstrap.servers')} topics {', '.join(self.topics)}"


SCALARS = {f.name: f for f in fields(Settings)
           if f.name not in ("kafka", "topics", "extra_columns", "from_paths", "notify_urls")}


def registry_credentials(kafka: dict[str, Any]) -> tuple[str, str] | None:
    """(user, password) for the Schema Registry's HTTP Basic auth, or None, by Confluent's rules.

    Without basic.auth.credentials.source, as confluent_kafka's SchemaRegistryClient: the URL's
    userinfo or basic.auth.user.info ('user:password'), not both. With it, as the Java client:
    URL, USER_INFO, or SASL_INHERIT (sasl.username and sasl.password). Errors name keys only,
    never a value, since every value here may be a secret."""
    url = str(kafka.get(REGISTRY_URL) or "").strip()
    parts = urllib.parse.urlsplit(url)
    in_url = None if parts.password is None else (urllib.parse.unquote(parts.username or ""),
                                                  urllib.parse.unquote(parts.password))
    user_info = kafka.get(REGISTRY_USER_INFO)
    from_user_info: tuple[str, str] | None = None
    if user_info not in (None, ""):
        user, colon, password = str(user_info).partition(":")
        if not colon:
            raise ConfigurationError(
                f"{REGISTRY_USER_INFO} must be 'user:password' (the value has no ':')")
        from_user_info = (user, password)
    source = kafka.get(REGISTRY_CREDENTIALS_SOURCE)
    if source in (None, ""):
        if in_url and from_user_info:
            raise ConfigurationError(
                f"{REGISTRY_USER_INFO} is set and {REGISTRY_URL} carries user:password too: "
                f"remove one, or set {REGISTRY_CREDENTIALS_SOURCE} to URL or USER_INFO")
        return in_url or from_user_info
    chosen = str(source).strip().upper()
    if chosen not in CREDENTIAL_SOURCES:
        raise ConfigurationError(
            f"{REGISTRY_CREDENTIALS_SOURCE} = {source!r} is unknown; choose one of: "
            f"{', '.join(CREDENTIAL_SOURCES)}")
    sasl = (kafka.get("sasl.username"), kafka.get("sasl.password"))
    found, missing = {
        "URL": (in_url, f"{REGISTRY_URL} carries no user:password (http://user:password@host)"),
        "USER_INFO": (from_user_info, f"{REGISTRY_USER_INFO} is not set"),
        "SASL_INHERIT": ((str(sasl[0]), str(sasl[1])) if all(sasl) else None,
                         "sasl.username and sasl.password are not both set"),
    }[chosen]
    if found is None:
        raise ConfigurationError(f"{REGISTRY_CREDENTIALS_SOURCE} = {chosen} but {missing}")
    return found


def _read_secret_file(key: str, path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigurationError(f"{key}: cannot read the secret file {path}: {exc}") from exc


def _coerce(name: str, value: Any) -> Any:
    """Turn a TOML/env/flag value into the type of the Settings field, or say what is wrong."""
    if value is None:
        return None
    kind = SCALARS[name].type
    try:
        if "Path" in str(kind):
            return Path(str(value)).expanduser()
        if "bool" in str(kind):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if "int" in str(kind):
            # int() would round 1.5 down to 1 and read True as 1: a count must be written whole.
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("expected a whole number")
            try:
                number = int(value)
            except ValueError:
                raise ValueError("expected a whole number") from None
            if number < 0:
                raise ValueError("must not be negative")
            return number
        if "float" in str(kind):
            real = float(value)
            if real < 0:
                raise ValueError("must not be negative")
            return real
        return str(value)
    except ValueError as exc:
        raise ConfigurationError(f"{name} = {value!r} is not valid: {exc}") from exc


def _apply(settings: Settings, values: dict[str, Any], where: str) -> None:
    for key, value in values.items():
        if key == "kafka":
            if not isinstance(value, dict):
                raise ConfigurationError(f"{where}: [kafka] must be a table of librdkafka keys")
            _apply_kafka(settings, value, where)
        elif key == "antares" and isinstance(value, dict):
            _apply(settings, {f"antares_{k}": v for k, v in value.items()}, where)
        elif key == "notify" and isinstance(value, dict):  # the [notify] table
            _apply(settings, {f"notify_{k}": v for k, v in value.items()}, where)
        elif key in ("notify", "notify_urls"):  # LSST_ALERTS_NOTIFY: space-separated URLs
            urls = value.split() if isinstance(value, str) else list(value)
            settings.notify_urls = [str(url).strip() for url in urls if str(url).strip()]
        elif key == "filter" and isinstance(value, dict):
            _apply(settings, {f"filter_{k}": v for k, v in value.items()}, where)
        elif key.partition("_")[0] in BROKER_PRESETS:  # [fink] username, fink_password ...
            from .broker_presets import broker_setting
            broker_setting(settings, key, value, where)
        elif key in ("topic", "topics"):
            topics = [value] if isinstance(value, str) else list(value)
            settings.topics = [t.strip() for topic in topics for t in str(topic).split(",")
                               if t.strip()]
        elif key == "extra_columns":
            columns = value.split(",") if isinstance(value, str) else list(value)
            settings.extra_columns = [str(c).strip() for c in columns if str(c).strip()]
        elif key == "from_paths":
            settings.from_paths = list(value)
        elif key in SCALARS:
            setattr(settings, key, _coerce(key, value))
        else:
            known = ", ".join(sorted([*SCALARS, "topic", "extra_columns", "kafka", "antares",
                                      "notify", "filter", *BROKER_PRESETS]))
            raise ConfigurationError(f"{where}: unknown setting {key!r}; known settings: {known}")


def _apply_kafka(settings: Settings, values: dict[str, Any], where: str) -> None:
    for key, value in values.items():
        if key.endswith("_file") and is_secret(key[:-5]):
            settings.kafka[key[:-5]] = _read_secret_file(f"{where}: {key}", str(value))
        else:
            settings.kafka[key] = value


def from_environment(environ: dict[str, str]) -> dict[str, Any]:
    """LSST_ALERTS_OUTPUT_DIR=..., LSST_ALERTS_KAFKA_SASL_PASSWORD=... (dots as underscores)."""
    values: dict[str, Any] = {}
    kafka: dict[str, Any] = {}
    for name, value in environ.items():
        if name.startswith(ENV_KAFKA_PREFIX):
            key = name[len(ENV_KAFKA_PREFIX):].lower().replace("_", ".")
            if key.endswith(".file"):
                key = key[:-5] + "_file"
            kafka[key] = value
        elif name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX):] not in WRAPPER_VARIABLES:
            values[name[len(ENV_PREFIX):].lower()] = value
    if kafka:
        values["kafka"] = kafka
    return values


def load(config_file: Path | None = None, environ: dict[str, str] | None = None,
         flags: dict[str, Any] | None = None, base: dict[str, Any] | None = None,
         require_source: bool = True, source: int | None = None) -> Settings:
    """The effective settings, validated; ConfigurationError says what to fix.

    `base` sits under the file (lsst_alert_consumer.py passes its editable kafka_config there).
    Without --config or LSST_ALERTS_CONFIG, ./lsst_alerts.toml is read when it exists."""
    environ = dict(os.environ) if environ is None else environ
    settings = Settings()
    if base:
        _apply(settings, base, "lsst_alert_consumer.py")
    from .config_file import apply_document, read_config  # [[sources]] table `source` too

    if (found := read_config(config_file, environ)) is not None:
        apply_document(settings, *found, source)
    _apply(settings, from_environment(environ), "environment")
    _apply(settings, {k: v for k, v in (flags or {}).items() if v not in (None, (), [])},
           "command line")
    apply_preset(settings)
    validate(settings, require_source)
    return settings


def filter_output_tag(path: Path = BUNDLED_FILTER) -> str:
    """OUTPUT_TAG as the filter file sets it, read without importing the file (and the DevKit)."""
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError) as exc:
        raise ConfigurationError(f"cannot read OUTPUT_TAG from the filter {path}: {exc}") from exc
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(isinstance(target, ast.Name)
                                                 and target.id == "OUTPUT_TAG"
                                                 for target in node.targets)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value
    raise ConfigurationError(f"the filter {path} sets no OUTPUT_TAG = \"...\" at its top level")


def apply_preset(settings: Settings) -> None:
    """The ANTARES preset: what antares-client's KafkaStreamingClient uses (SASL_SSL + PLAIN, its
    CA certificate and bootstrap server, `client.` topics, the host name as group id), reading
    the stream named by the filter's OUTPUT_TAG unless a topic was given."""
    if settings.preset is None:
        return
    if settings.preset not in PRESETS:
        raise ConfigurationError(
            f"preset = {settings.preset!r} is unknown; choose one of: {', '.join(PRESETS)}")
    if settings.preset in BROKER_PRESETS:
        from .broker_presets import apply_broker_preset
        apply_broker_preset(settings)
        return
    from . import antares_adapter as antares

    defaults = {"bootstrap.servers": antares.DEFAULT_BOOTSTRAP_SERVER,
                "ssl.ca.location": str(antares.DEFAULT_SSL_CA_LOCATION),
                **antares.DEFAULT_OPTIONS}
    # The shipped placeholders (lsst_alert_consumer.py's too) are for a broker of one's own.
    if PLACEHOLDER_BROKER in str(settings.kafka.get("bootstrap.servers", "")):
        del settings.kafka["bootstrap.servers"]
    for key, value in defaults.items():
        settings.kafka.setdefault(key, value)
    # On ANTARES a shared group name would split one user's stream with strangers.
    if settings.kafka.get("group.id") in (None, "", SHARED_GROUP_ID):
        settings.kafka["group.id"] = antares.default_group_id()
    if settings.topics in ([], [DEFAULT_TOPIC]):
        settings.topics = [filter_output_tag()]
    prefix = antares.TOPIC_PREFIX
    settings.topics = [t if t.startswith(prefix) else prefix + t for t in settings.topics]


def _validate_output_dir(path: Path) -> None:
    """output_dir must be a folder or a path where one can be made: no file on its way."""
    for place in (path, *path.parents):
        if place.is_dir():
            return
        if place.exists():
            where = "is a file" if place == path else f"lies under {str(place)!r}, a file"
            raise ConfigurationError(
                f"output_dir = {str(path)!r} {where}: name a folder (created if missing)")


def _validate_schema(value: str) -> None:
    """schema must be a version lsst-alert-packet bundles (e.g. 9.0) or an Avro record schema
    file (.avsc); ForcedSchema reads it at the start of the run."""
    accepted = "a bundled version such as 9.0 or 11.1, or an .avsc file of an Avro record"
    if re.fullmatch(r"\d+\.\d+", value):
        from lsst.alert.packet.schema import get_schema_path

        major, minor = value.split(".")
        if not Path(get_schema_path(major, minor), f"lsst.v{major}_{minor}.alert.avsc").is_file():
            raise ConfigurationError(
                f"schema = {value!r}: lsst-alert-packet bundles no schema {value}; use {accepted}")
        return
    path = Path(value).expanduser()
    if path.is_dir():
        raise ConfigurationError(f"schema = {value!r} is a folder; use {accepted}")
    if not path.is_file():
        raise ConfigurationError(f"schema = {value!r}: no such file; use {accepted}")
    import fastavro

    try:
        parsed = fastavro.schema.load_schema(str(path))
    except Exception as exc:  # fastavro raises JSON, parse and unknown-type errors alike
        raise ConfigurationError(
            f"schema = {value!r} is not an Avro schema ({type(exc).__name__}: {exc}); "
            f"use {accepted}") from exc
    if not (isinstance(parsed, dict) and parsed.get("type") == "record"):
        raise ConfigurationError(
            f"schema = {value!r} is an Avro schema but not of a record; use {accepted}")


def _validate_registry(kafka: dict[str, Any]) -> None:
    url = str(kafka.get(REGISTRY_URL) or "").strip()
    parts = urllib.parse.urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0  # urllib checks it only when asked
    except ValueError:
        port_ok = False
    if url and (parts.scheme not in ("http", "https") or not parts.hostname or not port_ok):
        raise ConfigurationError(f"{REGISTRY_URL} = {mask_secrets(url)!r} is not an http(s) "
                                 "URL; use e.g. https://registry.example.org:8081")
    registry_credentials(kafka)


def validate(settings: Settings, require_source: bool = True) -> None:
    _validate_output_dir(settings.output_dir)
    if settings.schema is not None:
        _validate_schema(settings.schema)
    _validate_registry(settings.kafka)
    if settings.reset_offsets is not None:
        from .sources.offsets import parse_reset

        parse_reset(settings.reset_offsets)
    if settings.member is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}",
                                                         settings.member):
        raise ConfigurationError(
            f"member = {settings.member!r}: use 1-64 letters, digits, '-' or '_'")
    if settings.batch_seconds <= 0:
        raise ConfigurationError(f"batch_seconds = {settings.batch_seconds} must be above 0")
    if not 1 <= settings.antares_concurrency <= 256:
        raise ConfigurationError(
            f"antares.concurrency = {settings.antares_concurrency} must be between 1 and 256")
    if settings.batch_size < 1:
        raise ConfigurationError(f"batch_size = {settings.batch_size} must be at least 1")
    if settings.notify_max_per_message < 1:
        raise ConfigurationError(
            f"notify.max_per_message = {settings.notify_max_per_message} must be at least 1")
    unknown = [c for c in settings.extra_columns if c not in EXTRA_COLUMNS]
    if unknown:
        raise ConfigurationError(
            f"extra_columns {unknown} unknown; available: {', '.join(EXTRA_COLUMNS)}")
    if require_source and not settings.from_paths:
        if not settings.kafka.get("bootstrap.servers"):
            raise ConfigurationError(
                "no Kafka broker configured: set bootstrap.servers ([kafka] in the config file, "
                "LSST_ALERTS_KAFKA_BOOTSTRAP_SERVERS, or --bootstrap-servers), or read files "
                "with --from PATH")
        if PLACEHOLDER_BROKER in str(settings.kafka["bootstrap.servers"]):
            raise ConfigurationError(
                f"bootstrap.servers is still the placeholder "
                f"{settings.kafka['bootstrap.servers']!r}: put your broker in kafka_config in "
                "lsst_alert_consumer.py, in lsst_alerts.toml, or in "
                "LSST_ALERTS_KAFKA_BOOTSTRAP_SERVERS")
        if not settings.topics:
            raise ConfigurationError("no topic configured: set topic or --topic")
        mechanism = str(settings.kafka.get("sasl.mechanisms", settings.kafka.get(
            "sasl.mechanism", ""))).upper()
        if mechanism == "PLAIN" and not (settings.kafka.get("sasl.username")
                                         and settings.kafka.get("sasl.password")):
            raise ConfigurationError(
                "SASL PLAIN needs sasl.username and sasl.password (for ANTARES: your API key and "
                "secret); set LSST_ALERTS_KAFKA_SASL_USERNAME and LSST_ALERTS_KAFKA_SASL_PASSWORD "
                "(or LSST_ALERTS_KAFKA_SASL_PASSWORD_FILE)")
