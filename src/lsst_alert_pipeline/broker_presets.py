"""The broker presets (docs/brokers.md): each broker's LSST stream as its own client builds its
consumer. config.apply_preset calls in here for the presets in config.BROKER_PRESETS.

- fink (fink-client `_get_kafka_config`): plain Kafka, or SASL_PLAINTEXT + SCRAM-SHA-512 when a
  username and a password are set; `auto.offset.reset` earliest; topics `fink_<tag>_lsst`.
- lasair (lasair 0.1 `lasair_consumer`): plain Kafka, no credentials, `auto.offset.reset`
  smallest (= earliest); topics `lasair_<user id><filter name>`.
- babamul (babamul 0.2 `AlertConsumer._create_consumer`, `BabamulConfig.from_env`):
  SASL_PLAINTEXT + SCRAM-SHA-512 always, a username `babamul-...`, group ids prefixed by it,
  `auto.offset.reset` latest; topics `babamul.lsst.*`.
"""

from __future__ import annotations

import re
from typing import Any

from .config import (
    BROKER_PRESETS,
    DEFAULT_TOPIC,
    PLACEHOLDER_BROKER,
    SHARED_GROUP_ID,
    Settings,
    _read_secret_file,
)
from .errors import ConfigurationError

FINK_TOPIC = re.compile(r"fink_.+_lsst")
# What each broker's table ([fink], [lasair], [babamul]) or LSST_ALERTS_<BROKER>_<KEY> may set.
# They are kept per broker in settings.broker_api, so one file can hold every broker's account;
# the run's preset takes its own username/password as sasl.username/sasl.password (masked).
BROKER_KEYS: dict[str, tuple[str, ...]] = {
    "fink": ("username", "password"),
    "lasair": ("api_url",),
    "babamul": ("username", "password", "api_url", "api_token"),
}
SECRET_FILE_KEYS = ("password", "api_token")  # each may be given as <key>_file instead
# The web servers the cutouts come from (docs/brokers.md): Lasair's /fits/ pages, and the API
# base the babamul client uses in production (babamul/config.py API_URLS).
API_URLS = {"lasair": "https://lasair.lsst.ac.uk",
            "babamul": "https://babamul.caltech.edu/api/babamul"}
BABAMUL_SERVER = "kaboom.caltech.edu:9093"  # babamul/config.py KAFKA_SERVERS["production"]
OFFSET_RESET = {"fink": "earliest", "lasair": "earliest", "babamul": "latest"}
BABAMUL_LSST_TOPIC = "babamul.lsst."


def broker_setting(settings: Settings, key: str, value: Any, where: str) -> None:
    """Apply a [fink]/[lasair]/[babamul] table or a key such as fink_username, lasair_api_url."""
    if key in BROKER_PRESETS and isinstance(value, dict):
        for name, item in value.items():
            broker_setting(settings, f"{key}_{name}", item, f"{where}: [{key}]")
        return
    broker, _, name = key.partition("_")
    known = BROKER_KEYS[broker]
    if name.endswith("_file") and name[:-5] in SECRET_FILE_KEYS and name[:-5] in known:
        settings.broker_api[f"{broker}_{name[:-5]}"] = _read_secret_file(f"{where}: {key}",
                                                                          str(value))
    elif name in known:
        settings.broker_api[key] = str(value)
    else:
        accepted = ", ".join(f"{broker}_{k}" for k in known)
        raise ConfigurationError(f"{where}: {key} is unknown; {broker}'s settings are {accepted}"
                                 + (" (its Kafka stream takes no credentials)"
                                    if broker == "lasair" else ""))


def api_setting(settings: Settings, name: str) -> str | None:
    """The preset's own [<broker>] api_url / api_token (api_url has a default)."""
    preset = str(settings.preset)
    value = settings.broker_api.get(f"{preset}_{name}")
    return value or (API_URLS.get(preset) if name == "api_url" else None)


def runs_local_filter(settings: Settings) -> bool:
    """Whether the consumer runs the filter itself: on for the brokers' streams (they did not
    run it), off for ANTARES's (ANTARES did); --local-filter / --no-local-filter decide."""
    if settings.local_filter is not None:
        return settings.local_filter
    return settings.preset in BROKER_PRESETS


def default_broker_group_id() -> str:
    """A group id of this machine's own: a shared name on a broker would split one user's
    stream with whoever else runs this tool with the default."""
    import socket

    return f"lsst-alerts-{socket.gethostname()}"


def apply_broker_preset(settings: Settings) -> None:
    """The preset's Kafka settings and topic names (module docstring). Settings given
    explicitly (flags, file, environment) win over the preset's."""
    if PLACEHOLDER_BROKER in str(settings.kafka.get("bootstrap.servers", "")):
        del settings.kafka["bootstrap.servers"]
    preset = str(settings.preset)
    for name, key in (("username", "sasl.username"), ("password", "sasl.password")):
        if f"{preset}_{name}" in settings.broker_api:
            settings.kafka.setdefault(key, settings.broker_api[f"{preset}_{name}"])
    username, password = settings.kafka.get("sasl.username"), settings.kafka.get("sasl.password")
    if bool(username) != bool(password):
        raise ConfigurationError(
            f"{preset}: a username needs a password and a password a username (set both, "
            f"[{preset}] username and password or LSST_ALERTS_{preset.upper()}_USERNAME and "
            "_PASSWORD, or neither)")
    if preset == "babamul":
        _babamul(settings, str(username or ""), str(password or ""))
    elif username and password:
        settings.kafka.setdefault("security.protocol", "SASL_PLAINTEXT")
        settings.kafka.setdefault("sasl.mechanisms", "SCRAM-SHA-512")
    settings.kafka.setdefault("auto.offset.reset", OFFSET_RESET[preset])
    if settings.kafka.get("group.id") in (None, "", SHARED_GROUP_ID):
        settings.kafka["group.id"] = default_broker_group_id()
    if preset == "babamul" and not str(settings.kafka["group.id"]).startswith(f"{username}-"):
        # Babamul's ACLs admit the groups named after the user (AlertConsumer prefixes them).
        settings.kafka["group.id"] = f"{username}-{settings.kafka['group.id']}"
    if settings.topics == [DEFAULT_TOPIC]:
        settings.topics = []  # the generic default names no broker topic: validate() asks
    settings.topics = [topic_name(preset, topic) for topic in settings.topics]


def topic_name(preset: str, topic: str) -> str:
    """A topic as the broker names it: a short name gets the broker's prefix."""
    if preset == "fink":
        return topic if FINK_TOPIC.fullmatch(topic) else f"fink_{topic}_lsst"
    if preset == "lasair":
        return topic if topic.startswith("lasair_") else f"lasair_{topic}"
    full = topic if topic.startswith("babamul.") else BABAMUL_LSST_TOPIC + topic
    if not full.startswith(BABAMUL_LSST_TOPIC):
        raise ConfigurationError(
            f"babamul topic {topic!r} is not one of Babamul's LSST topics (babamul.lsst."
            "{ztf-match,no-ztf-match}.{stellar,hosted,hostless,unknown}); its babamul.ztf.* "
            "topics carry ZTF alerts")
    return full


def _babamul(settings: Settings, username: str, password: str) -> None:
    """Babamul's Kafka takes SCRAM-SHA-512 over SASL_PLAINTEXT with the Kafka credentials made
    on the Babamul website's profile page; the checks are BabamulConfig.from_env's."""
    if not (username and password):
        raise ConfigurationError(
            "babamul needs its Kafka username and password: [babamul] username and password "
            "(or password_file), or LSST_ALERTS_BABAMUL_USERNAME and _PASSWORD")
    if "@" in username or not username.startswith("babamul-"):
        raise ConfigurationError(
            "babamul username must be the Kafka username made on the Babamul website's profile "
            "page, starting with 'babamul-' (not the account's e-mail address)")
    if password.startswith("bbml_"):
        raise ConfigurationError(
            "babamul password is an API token (bbml_...): give the Kafka password from the "
            "profile page; the token goes to [babamul] api_token (cutouts)")
    settings.kafka.setdefault("bootstrap.servers", BABAMUL_SERVER)
    settings.kafka.setdefault("security.protocol", "SASL_PLAINTEXT")
    if "sasl.mechanism" not in settings.kafka:
        settings.kafka.setdefault("sasl.mechanisms", "SCRAM-SHA-512")
