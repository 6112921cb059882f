"""Each delivery a batch read, with its verdict, for the ledger's `deliveries` table.

One row per alert a message held (one per message no alert could be read from): which broker's
message brought it and what became of it. Derived after `Pipeline.write` from the batch's
outcome, so the batch loop only marks the alerts it dead-lettered (DEAD_LETTERED).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import InvalidMessage
from ..sources.base import Message
from .ledger import Delivery
from .outcome import BatchOutcome
from .screen import FILTERED_OUT, BrokerRun

# Where a record's extra says `Pipeline.write` dead-lettered it (its message is still read).
DEAD_LETTERED = "dead_lettered"
WRITTEN, ALREADY, FILTERED, DEAD = "written", "already on disk", "filtered out", "dead-lettered"
VERDICTS = (WRITTEN, ALREADY, FILTERED, DEAD)


def broker_label(broker: BrokerRun | None, messages: Sequence[Message]) -> str:
    """The run's broker label; a pipeline made without one says where its bytes came from."""
    if broker is not None:
        return broker.label
    return "files" if messages and messages[0].topic is None else "kafka"


def batch_deliveries(messages: Sequence[Message], results: Sequence[object],
                     outcome: BatchOutcome, broker: BrokerRun | None) -> list[Delivery]:
    """Every delivery of the batch with its verdict; the first of two deliveries of one alert
    in a batch is the one written, the second is already on disk."""
    label = broker_label(broker, messages)
    written = {alert.dia_source_id for alert in outcome.written}
    found: list[Delivery] = []
    for message, result in zip(messages, results, strict=True):
        where = (label, message.topic, message.partition, message.offset)
        if isinstance(result, InvalidMessage) or not isinstance(result, list):
            found.append(Delivery(None, *where, DEAD))
            continue
        for record in result:
            key = str(record.diaSourceId)
            if FILTERED_OUT in record.extra:
                verdict = FILTERED
            elif DEAD_LETTERED in record.extra:
                verdict = DEAD
            elif key in written:
                written.discard(key)
                verdict = WRITTEN
            else:
                verdict = ALREADY
            usable = record.diaSourceId is not None and key != ""
            found.append(Delivery(key if usable else None, *where, verdict))
    return found
