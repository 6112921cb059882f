"""Configuration: defaults < TOML file < environment (LSST_ALERTS_...) < command-line flags.

Validated once at start-up; every error names the key, the value and what would be accepted.
Secrets (passwords, API secrets) come from the environment or a file and are never printed.
"""

from __future__ import annotations

import ast
import os
import re
import tomllib
import urllib.parse
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

ENV_PREFIX = "LSST_ALERTS_"
# The optional CSV columns `extra_columns` may name, after the specification's (sinks/csv.py).
EXTRA_COLUMNS = ("ssObjectId", "hasSSSource", "snr", "reliability", "dayObs",
                 "extendednessCount")
ENV_KAFKA_PREFIX = ENV_PREFIX + "KAFKA_"
SECRET_MARKERS = ("password", "secret", "sasl.oauthbearer.config", "ssl.key.pem")
DEFAULT_TOPIC = "lsst-extendedness-filtered"
PRESETS = ("antares",)
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

    @property
    def schema_registry_url(self) -> str | None:
        value = self.kafka.get("schema.registry.url")
        return str(value) if value else None

    @property
    def source_label(self) -> str:
        """Where alerts are read from, as the start-up log line says it."""
        if self.from_paths:
            return ", ".join(self.from_paths)
        return f"{self.kafka.get('bootstrap.servers')} topics {', '.join(self.topics)}"


SCALARS = {f.name: f for f in fields(Settings)
           if f.name not in ("kafka", "topics", "extra_columns", "from_paths", "notify_urls")}


def is_secret(key: str) -> bool:
    return any(marker in key.lower() for marker in SECRET_MARKERS)


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
            number = int(value)
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
                                      "notify"]))
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
         require_source: bool = True) -> Settings:
    """The effective settings, validated; ConfigurationError says what to fix.

    `base` sits under the file (lsst_alert_consumer.py passes its editable kafka_config there).
    Without --config or LSST_ALERTS_CONFIG, ./lsst_alerts.toml is read when it exists."""
    environ = dict(os.environ) if environ is None else environ
    settings = Settings()
    if base:
        _apply(settings, base, "lsst_alert_consumer.py")
    path = config_file or (Path(environ[ENV_PREFIX + "CONFIG"])
                           if environ.get(ENV_PREFIX + "CONFIG") else None)
    if path is None and Path(DEFAULT_CONFIG_FILE).exists():
        path = Path(DEFAULT_CONFIG_FILE)
    if path is not None:
        try:
            document = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigurationError(f"cannot read the configuration file {path}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
        _apply(settings, document, str(path))
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


def validate(settings: Settings, require_source: bool = True) -> None:
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


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data with every secret replaced by '***'."""
    out: dict[str, Any] = {}
    for item in fields(Settings):
        value = getattr(settings, item.name)
        if item.name == "kafka":
            value = {k: ("***" if is_secret(k) else v) for k, v in sorted(value.items())}
        elif item.name == "notify_urls":
            value = [mask_url(url) for url in value]
        elif isinstance(value, Path):
            value = str(value)
        out[item.name] = value
    return out


def mask_url(url: str) -> str:
    """A notification URL as logs and `config check` show it: apprise knows, per service, which
    parts are secrets (a password, a Slack or Telegram token in the path) and masks them."""
    import apprise

    try:
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    except Exception:  # a URL apprise cannot read shows nothing past its scheme
        plugin = None
    if not plugin:
        return url.partition("://")[0] + "://***"
    shown = urllib.parse.urlsplit(str(plugin.url(privacy=True)))
    # apprise spells out every default option; show only those the user wrote
    given = {key for key, _ in urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)}
    query = [(k, v) for k, v in urllib.parse.parse_qsl(shown.query) if k in given]
    return urllib.parse.urlunsplit(shown._replace(query=urllib.parse.urlencode(query, safe="*")))
