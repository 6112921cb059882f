"""Two members wrote the same alerts: the one the ledger refused gives way (scale-out).

A rebalance can move a partition while a member holds a batch of it: its new owner reads from
the last committed offset and writes the same alerts. The ledger records a batch only when none
of its alerts was recorded since the batch began (`Ledger.record_batch`, one exclusive
transaction), so exactly one member's copy is vouched for. The other undoes what this batch
wrote in its own output (never another member's) and writes the batch again without them:
the same recipe as crash recovery, applied to one batch that is still in hand.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..decode.normalize import AlertRecord
from ..errors import InvalidMessage
from ..sources.base import Message
from .outputdir import OutputDir

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # writes of one batch; each lost race leaves fewer of its alerts to write


def partitions_of(messages: list[Message], decoded: Iterable[list[AlertRecord] | InvalidMessage],
                  ids: set[str]) -> list[str]:
    """The topic/partition names of the messages that carried these alert ids."""
    found: set[str] = set()
    for message, result in zip(messages, decoded, strict=True):
        if isinstance(result, InvalidMessage):
            continue
        if any(str(record.diaSourceId) in ids for record in result):
            found.add(f"{message.topic}/{message.partition}" if message.topic is not None
                      else message.origin)
    return sorted(found)


def give_way(output: OutputDir, archive_files: Iterable[str], cutout_files: dict[str, list[str]],
             taken: set[str]) -> None:
    """Undo a batch's outputs the ledger does not vouch for, in this member's own output: its
    CSV files back to their durable lengths, the archive files it wrote (not yet listed), and
    the cutouts it wrote for the alerts another member recorded (the rewrite skips those)."""
    output.cut_csv_files()
    for key in archive_files:
        (output.ledger_root / key).unlink(missing_ok=True)
    for dia_source_id in taken:
        for name in cutout_files.get(dia_source_id, ()):
            (output.cutouts / name).unlink(missing_ok=True)


def say_given_way(output: OutputDir, partitions: list[str], taken: set[str],
                  attempt: int) -> None:
    where = f"{output.output_name or 'the root output'}"
    log.warning("%s moved to another member while this batch was written to %s; %d alerts it "
                "had already written are left to it, and the batch is written again without "
                "them (attempt %d of %d)", ", ".join(partitions) or "a partition", where,
                len(taken), attempt + 1, MAX_ATTEMPTS)
