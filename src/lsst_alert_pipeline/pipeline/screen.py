"""Between decode and write in a broker's run: the user's filter run locally, each alert labelled
with the broker that delivered it (docs/brokers.md).

Runs on the prefetch thread with the decode (no I/O). A broker preset's records carry the
Rubin packet the filter reads (PACKET); raw Rubin alerts (files, a plain topic, with
`--filter`) are judged on their payloads (filter/fast.py). An alert the filter turns away stays in
the batch, marked: `Pipeline.write` counts it ("filtered out") and writes nothing for it, and
its message's offset is committed with the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..decode.batch import Outcome, decode_and_normalize
from ..decode.brokers import PACKET
from ..decode.schemas import SchemaSource
from ..sinks.archive_rows import BROKER
from ..sources.base import Message

if TYPE_CHECKING:
    from ..filter.local import LocalFilter

# Where a record's extra says why the local filter turned it away.
FILTERED_OUT = "filtered_out"


@dataclass(frozen=True)
class BrokerRun:
    """Who delivers this run's alerts: the preset whose decoder reads them (None: the bytes
    say), the archive's `broker` label, and the user's filter when it runs here."""

    preset: str | None
    label: str
    local_filter: LocalFilter | None = None


def decode_batch(messages: list[Message], schemas: SchemaSource, max_inflated_bytes: int,
                 whole: bool, broker: BrokerRun | None) -> list[Outcome]:
    """Every message's outcome, what the filter turned away marked (`kept_alerts` drops it)."""
    results = decode_and_normalize([message.payload for message in messages], schemas,
                                   max_inflated_bytes, whole, broker.preset if broker else None,
                                   [message.key for message in messages])
    if broker is None:
        return results
    if broker.preset is None and broker.local_filter is not None:
        judge_payloads(messages, results, broker.local_filter, schemas)
        screen(results, None, broker.label)
    else:
        screen(results, broker.local_filter, broker.label)
    return results


def judge_payloads(messages: list[Message], results: list[Outcome],
                   local_filter: LocalFilter, schemas: SchemaSource) -> None:
    """Raw Rubin alerts (files, a plain topic): the filter's verdict on each message's
    payload, matched to its records by diaSourceId; what fails is marked FILTERED_OUT."""
    judged = [(message, result) for message, result in zip(messages, results, strict=True)
              if isinstance(result, list) and result]
    verdicts = local_filter.payload_verdicts([message.payload for message, _ in judged],
                                             schemas)
    for (_, records), found in zip(judged, verdicts, strict=True):
        by_id = {verdict.diaSourceId: verdict for verdict in found}
        for position, record in enumerate(records):
            verdict = by_id.get(record.diaSourceId)
            if verdict is None and len(found) == len(records):
                verdict = found[position]  # same payload, same order
            if verdict is None:
                record.extra[FILTERED_OUT] = "errored: the filter gave no verdict on it"
            elif not verdict.passed:
                record.extra[FILTERED_OUT] = local_filter.turned_away(verdict)


def screen(results: list[Outcome], local_filter: LocalFilter | None,
           broker_label: str | None) -> None:
    """Mark what the filter turns away and label every record."""
    records = [record for result in results if isinstance(result, list) for record in result]
    if local_filter is not None:
        judged = [record for record in records if PACKET in record.extra]
        verdicts = local_filter.verdicts([record.extra[PACKET] for record in judged])
        for record, verdict in zip(judged, verdicts, strict=True):
            if not verdict.passed:
                record.extra[FILTERED_OUT] = local_filter.turned_away(verdict)
    for record in records:
        record.extra.pop(PACKET, None)  # the whole packet is not kept past the decision
        record.extra[BROKER] = broker_label


def kept_alerts(results: list[Outcome]) -> list[Outcome]:
    """The results without the alerts the local filter turned away (what the archive
    prepares); the results themselves when it turned none away."""
    if not any(FILTERED_OUT in record.extra for result in results
               if isinstance(result, list) for record in result):
        return results
    return [[record for record in result if FILTERED_OUT not in record.extra]
            if isinstance(result, list) else result for result in results]
