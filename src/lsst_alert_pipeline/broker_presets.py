"""The broker presets (docs/brokers.md): each broker's LSST stream as its own client builds its
consumer. config.apply_preset calls in here for the presets in config.BROKER_PRESETS.
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

# Credentials given as [fink] username/password (fink-client's own keys) or the environment's
# LSST_ALERTS_FINK_USERNAME / _PASSWORD(_FILE) go to the kafka SASL keys, so they are masked.
BROKER_CREDENTIALS = {"username": "sasl.username", "password": "sasl.password"}
FINK_TOPIC = re.compile(r"fink_.+_lsst")


def broker_setting(settings: Settings, key: str, value: Any, where: str) -> None:
    """Apply a [fink] table or a fink_username-style key (a broker's credentials)."""
    if key in BROKER_PRESETS and isinstance(value, dict):
        for name, item in value.items():
            broker_setting(settings, f"{key}_{name}", item, f"{where}: [{key}]")
        return
    broker, _, name = key.partition("_")
    if name == "password_file":
        settings.kafka["sasl.password"] = _read_secret_file(f"{where}: {key}", str(value))
    elif name in BROKER_CREDENTIALS:
        settings.kafka[BROKER_CREDENTIALS[name]] = str(value)
    else:
        raise ConfigurationError(f"{where}: {key} is unknown; a broker's settings are "
                                 f"{broker}_username, {broker}_password, {broker}_password_file")


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
    """Fink (fink-client's _get_kafka_config): plain Kafka, or SASL_PLAINTEXT with SCRAM-SHA-512
    when a username and a password are set; auto.offset.reset earliest; topics fink_<tag>_lsst.
    Settings given explicitly (flags, file, environment) win over the preset's."""
    if PLACEHOLDER_BROKER in str(settings.kafka.get("bootstrap.servers", "")):
        del settings.kafka["bootstrap.servers"]
    preset = str(settings.preset)
    username, password = settings.kafka.get("sasl.username"), settings.kafka.get("sasl.password")
    if bool(username) != bool(password):
        raise ConfigurationError(
            f"{preset}: a username needs a password and a password a username (set both, "
            f"[{preset}] username and password or LSST_ALERTS_{preset.upper()}_USERNAME and "
            "_PASSWORD, or neither)")
    if username and password:
        settings.kafka.setdefault("security.protocol", "SASL_PLAINTEXT")
        settings.kafka.setdefault("sasl.mechanisms", "SCRAM-SHA-512")
    settings.kafka.setdefault("auto.offset.reset", "earliest")
    if settings.kafka.get("group.id") in (None, "", SHARED_GROUP_ID):
        settings.kafka["group.id"] = default_broker_group_id()
    if settings.topics == [DEFAULT_TOPIC]:
        settings.topics = []  # the generic default names no Fink topic: validate() asks for one
    settings.topics = [t if FINK_TOPIC.fullmatch(t) else f"fink_{t}_lsst"
                       for t in settings.topics]
