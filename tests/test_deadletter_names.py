"""Dead-letter files are named so that two messages never overwrite each other."""

from __future__ import annotations

from pathlib import Path

from lsst_alert_pipeline.sinks.deadletter import write_deadletter


def test_dead_letters_whose_origins_read_alike_keep_both_messages(tmp_path: Path) -> None:
    names = {write_deadletter(tmp_path, "incoming/a b.avro", b"first", "bad"),
             write_deadletter(tmp_path, "incoming/a_b.avro", b"second", "bad"),
             write_deadletter(tmp_path, "incoming/a_b.avro", b"third", "bad")}
    assert len(names) == 3
    assert sorted(p.read_bytes() for p in tmp_path.glob("*.bin")) == [b"first", b"second",
                                                                      b"third"]
    assert write_deadletter(tmp_path, "incoming/a_b.avro", b"third", "bad") in names
