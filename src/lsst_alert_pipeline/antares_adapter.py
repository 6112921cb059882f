"""Every name we take from antares-client's private modules, in one place.

antares-client 2.0 keeps its stream message models, its API client and its Kafka defaults in
private modules (`antares_client._stream`, `antares_client._api`, underscored class attributes),
which may move in any release. Nothing else in this package imports them: it imports the names
below from here (`from lsst_alert_pipeline.antares_adapter import ANTARESAPIClient`), so a move
fails here, at first use, with an error naming the module, and tests/test_antares_adapter.py
fails loudly. pyproject.toml pins antares-client to the 2.0 series these names were read from.
"""

from __future__ import annotations

import importlib
import socket
from typing import Any

# Our name -> (antares-client module, attribute path within it).
PRIVATE_NAMES: dict[str, tuple[str, str]] = {
    "LocusMessageToUsers": ("antares_client._stream.schema.locus", "LocusMessageToUsers"),
    "OldMarshmallowLocusFromKafka": ("antares_client._stream.schema.locus",
                                     "OldMarshmallowLocusFromKafka"),
    "ANTARESAPIClient": ("antares_client._api.v2.utils", "ANTARESAPIClient"),
    "parse_stream_message": ("antares_client.stream", "_parse_message"),
    "DEFAULT_BOOTSTRAP_SERVER": ("antares_client.stream",
                                 "KafkaStreamingClient._DEFAULT_BOOTSTRAP_SERVER"),
    "DEFAULT_SSL_CA_LOCATION": ("antares_client.stream",
                                "KafkaStreamingClient._DEFAULT_SSL_CA_LOCATION"),
    "DEFAULT_OPTIONS": ("antares_client.stream", "KafkaStreamingClient._DEFAULT_OPTIONS"),
    "TOPIC_PREFIX": ("antares_client.stream", "KafkaStreamingClient._TOPIC_PREFIX"),
}


class AntaresClientChanged(ImportError):
    """antares-client no longer has a private name this package relies on."""


def resolve(module_name: str, attribute_path: str) -> Any:
    """The attribute of an antares-client module, or AntaresClientChanged naming what moved."""
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise AntaresClientChanged(
            f"antares-client has no module {module_name} any more ({exc}); this package was "
            "written against antares-client 2.0 (pyproject.toml pins it): install antares-client "
            "2.0.x or update src/lsst_alert_pipeline/antares_adapter.py") from exc
    for part in attribute_path.split("."):
        if not hasattr(found, part):
            raise AntaresClientChanged(
                f"antares-client's {module_name} has no {attribute_path} any more; this package "
                "was written against antares-client 2.0 (pyproject.toml pins it): install "
                "antares-client 2.0.x or update src/lsst_alert_pipeline/antares_adapter.py")
        found = getattr(found, part)
    return found


def __getattr__(name: str) -> Any:
    """Each private name, imported when first used (antares-client pulls in astropy and pandas)."""
    if name not in PRIVATE_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = resolve(*PRIVATE_NAMES[name])
    globals()[name] = value
    return value


def default_group_id() -> str:
    """The consumer group antares-client joins when none is given: the host's name (one stream
    per machine, never shared with strangers as a fixed default name would be)."""
    return socket.gethostname()
