"""The fast batch decoder gives exactly what the full decode gives, on every packet we have."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsst_alert_pipeline.decode import batch as decode_batch
from lsst_alert_pipeline.decode.batch import decode_and_normalize
from lsst_alert_pipeline.decode.formats import decode_message
from lsst_alert_pipeline.decode.normalize import AlertRecord, normalize
from lsst_alert_pipeline.decode.schemas import SchemaSource
from lsst_alert_pipeline.errors import InvalidMessage
from lsst_alert_pipeline.simulate import encode_wire, simulate_alerts

from .conftest import real_files


def same_record(a: AlertRecord, b: AlertRecord) -> bool:
    for item in dataclasses.fields(AlertRecord):
        x, y = getattr(a, item.name), getattr(b, item.name)
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x):
            if not math.isnan(y):
                return False
        elif x != y:
            return False
    return True


def full_decode(payload: bytes) -> list[AlertRecord]:
    return [normalize(alert) for alert in decode_message(payload)]


def test_every_real_packet_decodes_as_the_full_decode_does(alert_packets) -> None:
    payloads = [p.read_bytes() for p in real_files(
        "rubin/*/*.wire", "rubin/*/*.avro", "ztf/*.avro")]
    outcomes = decode_and_normalize(payloads, SchemaSource())
    heavy = 0
    for payload, outcome in zip(payloads, outcomes, strict=True):
        assert not isinstance(outcome, InvalidMessage), outcome
        expected = full_decode(payload)
        assert len(outcome) == len(expected)
        assert all(same_record(a, b) for a, b in zip(outcome, expected, strict=True))
        heavy += sum(r.extendednessCount >= decode_batch.HEAVY_HISTORY for r in outcome)
    assert heavy >= 5, "the v10 variable stars must take the columnar path"


@pytest.mark.parametrize("version", ["7.0", "9.0", "10.0", "11.1"])
def test_simulated_alerts_of_every_history_length_match(version: str) -> None:
    alerts = list(simulate_alerts(24, schema_version=version, seed=5, sso_fraction=0.2))
    payloads = [encode_wire(alert, version) for alert in alerts]
    outcomes = decode_and_normalize(payloads, SchemaSource())
    for payload, outcome in zip(payloads, outcomes, strict=True):
        assert not isinstance(outcome, InvalidMessage)
        assert same_record(outcome[0], full_decode(payload)[0])


def test_a_bad_payload_among_heavy_ones_is_dead_on_its_own(alert_packets) -> None:
    heavy = [p.read_bytes() for p in real_files("rubin/derived_wire_v10_0/*.wire")]
    assert heavy
    truncated = heavy[0][: len(heavy[0]) - 40_000]
    outcomes = decode_and_normalize([*heavy[1:3], truncated, heavy[3]], SchemaSource())
    assert isinstance(outcomes[2], InvalidMessage)
    assert outcomes[2].payload == truncated
    for good, outcome in zip([*heavy[1:3], None, heavy[3]], outcomes, strict=True):
        if good is not None:
            assert not isinstance(outcome, InvalidMessage)
            assert same_record(outcome[0], full_decode(good)[0])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=6))
def test_garbage_in_a_batch_gives_invalid_messages_only(payloads: list[bytes]) -> None:
    # 64 bytes cannot hold an alert (a diaSource alone takes over 100), so each is refused,
    # carrying its own bytes and a reason
    outcomes = decode_and_normalize(payloads, SchemaSource())
    assert len(outcomes) == len(payloads)
    for payload, outcome in zip(payloads, outcomes, strict=True):
        assert isinstance(outcome, InvalidMessage), outcome
        assert outcome.reason and outcome.payload in (payload, b"")


def test_a_heavy_alert_with_bytes_after_its_body_is_refused_as_the_full_decode_refuses_it() -> None:
    alerts = simulate_alerts(4, schema_version="10.0", seed=3, sso_fraction=0.0, history=60)
    payloads = [encode_wire(alert, "10.0") for alert in alerts]
    padded = payloads[1] + b"\x00\x01"
    with pytest.raises(InvalidMessage) as full:
        decode_message(padded)
    outcomes = decode_and_normalize([payloads[0], padded, *payloads[2:]], SchemaSource())
    assert isinstance(outcomes[1], InvalidMessage)
    assert outcomes[1].reason == full.value.reason
    for good, outcome in zip(payloads, outcomes, strict=True):
        if good is not payloads[1]:
            assert not isinstance(outcome, InvalidMessage)
            assert same_record(outcome[0], full_decode(good)[0])


def test_the_scratch_file_is_one_per_thread_overwritten_by_each_read_and_emptied_when_idle(
        ) -> None:
    """The columnar reads go through one scratch file per thread (a new file per read cost the
    kernel a fresh allocation of its pages): a smaller read after a larger one gives only its
    own rows; the file is emptied on request and closed when its thread ends."""
    import os
    import threading
    import weakref

    from lsst_alert_pipeline.decode import columnar

    version = "11.1"
    alerts = list(simulate_alerts(30, schema_version=version, seed=31, history=(1, 3)))
    bodies = [encode_wire(alert, version)[5:] for alert in alerts]
    names = ["diaSource"]

    def read(first: int, count: int) -> Any:
        return columnar.read_avro_container(
            columnar.one_block_container(version, bodies[first:first + count]), names)

    def ids(frame: Any) -> list[int]:
        return list(frame.get_column("diaSource").struct.field("diaSourceId").to_list())

    expected = [alert["diaSource"]["diaSourceId"] for alert in alerts]
    seen: dict[str, object] = {}

    def in_a_thread() -> None:
        whole = read(0, 30)
        assert ids(whole) == expected
        handle = columnar._scratch.handle
        assert handle is not None
        fd = handle.fileno()
        assert ids(read(20, 7)) == expected[20:27]  # the file was cut to the smaller container
        assert ids(whole) == expected  # the frame read before owns its values: not the file's
        assert columnar._scratch.handle is handle  # the same file, not a new one per read
        assert os.fstat(fd).st_size > 0
        columnar.release_scratch()
        seen.update(size=os.fstat(fd).st_size, handle=weakref.ref(handle))

    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join()
    assert seen["size"] == 0
    # Gone with its thread: a file object is closed when it is freed.
    assert seen["handle"]() is None  # type: ignore[operator]
