"""Every private antares-client name we use is behind antares_adapter.py, and a move is loud."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lsst_alert_pipeline import antares_adapter
from lsst_alert_pipeline.antares_adapter import PRIVATE_NAMES, AntaresClientChanged, resolve

SRC = Path(antares_adapter.__file__).parent


@pytest.mark.parametrize("name", sorted(PRIVATE_NAMES))
def test_each_private_name_is_where_antares_client_2_0_keeps_it(name: str) -> None:
    module, attribute = PRIVATE_NAMES[name]
    try:
        found = resolve(module, attribute)
    except AntaresClientChanged as exc:
        pytest.fail(f"antares-client moved {module}.{attribute}, which antares_adapter.{name} "
                    f"needs: {exc}")
    assert found is not None
    assert getattr(antares_adapter, name) is found


def test_a_moved_module_is_named_in_the_error() -> None:
    with pytest.raises(AntaresClientChanged, match=r"no module antares_client\._stream\.gone"):
        resolve("antares_client._stream.gone", "LocusMessageToUsers")
    with pytest.raises(AntaresClientChanged,
                       match=r"antares_client\.stream has no KafkaStreamingClient\._GONE"):
        resolve("antares_client.stream", "KafkaStreamingClient._GONE")


def test_a_name_the_adapter_does_not_offer_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        antares_adapter.NoSuchThing  # noqa: B018


def test_nothing_else_in_the_package_touches_antares_client_private_names() -> None:
    private = re.compile(r"antares_client\._|\._DEFAULT_|_TOPIC_PREFIX|_parse_message")
    offenders = [
        f"{path.relative_to(SRC)}:{number}"
        for path in SRC.rglob("*.py") if path.name != "antares_adapter.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if private.search(line)
    ]
    assert offenders == []


def test_the_default_group_is_the_host_name_as_antares_client_has_it() -> None:
    import inspect
    import socket

    from antares_client.stream import KafkaStreamingClient

    assert '"group.id": kwargs.get("group", socket.gethostname())' in inspect.getsource(
        KafkaStreamingClient.__init__)
    assert antares_adapter.default_group_id() == socket.gethostname()
