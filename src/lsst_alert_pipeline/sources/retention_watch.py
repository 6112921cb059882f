"""Offsets the broker's retention deleted while a run was reading them, noticed as they happen.

When the fetch position falls below a partition's low watermark, librdkafka gets
OFFSET_OUT_OF_RANGE and applies auto.offset.reset on its own: with `earliest` it only logs a
warning and the next message comes from further on (librdkafka's `rd_kafka_offset_reset` raises
the `_AUTO_OFFSET_RESET` consumer error only for auto.offset.reset=error). So every message is
checked against the offset expected after the previous one of its partition; a jump is a loss for
the offsets below the broker's low watermark only (a compacted topic or a transaction marker
leaves gaps the broker still holds the rest of). The check after an assignment is `_on_assign`'s.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Key = tuple[str, int]
Loss = dict[str, int | str]


def retention_gap(expected: int | None, offset: int, low: int) -> tuple[int, int] | None:
    """The offsets [first, end) that a jump from `expected` to `offset` lost to retention: those
    below the low watermark; None when nothing was lost (no jump, or a gap above `low`)."""
    if expected is None or offset <= expected:
        return None
    end = min(low, offset)
    return (expected, end) if end > expected else None


class RetentionWatch:
    """Per partition, the next offset expected; the losses found; the positions to commit past
    them once every message read before the loss is committed and the loss is in the ledger."""

    def __init__(self, losses: list[Loss]):
        self.losses = losses  # shared with KafkaSource.retention_losses (_on_assign adds too)
        self.expected: dict[Key, int] = {}
        self.recorded = 0  # how many of `losses` were handed to the ledger
        self.pending: dict[Key, tuple[int, int]] = {}  # (first lost, end): not in the ledger yet
        self.ready: dict[Key, tuple[int, int]] = {}  # in the ledger: may be committed past
        # The prefetch thread takes messages while the main thread asks whether it caught up.
        self.lock = threading.RLock()

    def taken(self, key: Key, offset: int, low_watermark: Callable[[Key], int]) -> None:
        """Note a message taken; a jump past the expected offset asks the broker's low mark."""
        with self.lock:
            expected = self.expected.get(key)
            self.expected[key] = offset + 1
        if expected is None or offset <= expected:
            return
        try:
            low = low_watermark(key)
        except Exception as exc:  # the broker did not answer: say so, never guess a loss
            log.warning("%s/%d: offsets %d to %d were skipped and the broker did not say whether "
                        "retention deleted them (%s)", *key, expected, offset - 1, exc)
            return
        gap = retention_gap(expected, offset, low)
        if gap is not None:
            self.lost(key, *gap, going_on=offset)

    def behind(self, key: Key, low: int) -> None:
        """No message is waiting (the last poll was empty) and the low watermark stands past
        the offset expected next: the offsets in between were deleted unread."""
        with self.lock:
            expected = self.expected.get(key)
            if expected is not None and low > expected:
                self.expected[key] = low
                self.lost(key, expected, low, going_on=low)

    def out_of_range(self, key: Key, at: int, low: int, high: int) -> int:
        """librdkafka's out-of-range error at offset `at` (auto.offset.reset=error): note what
        retention deleted and return where reading goes on: the low watermark (past the end
        means the partition was truncated or recreated, so it is read again from its start and
        the ledger skips what is on disk)."""
        with self.lock:  # the main thread reads `expected` too (behind, via caught_up)
            first = self.expected.get(key, at)
            self.expected[key] = low
            if first < low:
                self.lost(key, first, low, going_on=low)
                return low
        log.error("%s/%d: offset %d is outside what the broker holds (%d to %d): the "
                  "partition was truncated or recreated; reading it again from offset %d "
                  "(the ledger skips what is already on disk)", *key, at, low, high - 1, low)
        return low

    def lost(self, key: Key, first: int, end: int, going_on: int) -> None:
        """Record and say a loss of offsets [first, end)."""
        with self.lock:
            self.losses.append({"topic": key[0], "partition": key[1], "from": first, "to": end,
                                "lost": end - first})
            self.pending[key] = (first, end)
        log.error("%s/%d: %d alerts (offsets %d to %d) were deleted by the broker's retention "
                  "while this run was reading the partition; going on from offset %d. The "
                  "consumer fell behind the topic's retention: run it more often or for longer, "
                  "or ask the broker's operator for a longer retention", *key, end - first,
                  first, end - 1, going_on)

    def forget(self, keys: set[Key]) -> None:
        """Partitions revoked: their next owner starts from the committed offset and checks."""
        with self.lock:
            for key in keys:
                self.expected.pop(key, None)
                self.pending.pop(key, None)
                self.ready.pop(key, None)

    def unrecorded(self) -> list[Loss]:
        """The losses not yet handed to the ledger; from now on they may be committed past."""
        with self.lock:
            fresh = self.losses[self.recorded:]
            # Counted from the slice: _on_assign appends to `losses` without this lock.
            self.recorded += len(fresh)
            self.ready.update(self.pending)
            self.pending.clear()
        return fresh

    def past_losses(self, next_offsets: dict[Key, int], committed: dict[Key, int],
                    owned: set[Key]) -> dict[Key, int]:
        """The offsets to commit: `next_offsets` moved past each recorded loss whose partition
        is committed up to the loss (nothing read before it is left uncommitted)."""
        moved = dict(next_offsets)
        with self.lock:
            for key, (first, end) in list(self.ready.items()):
                position = moved.get(key, committed.get(key))
                if key not in owned:
                    del self.ready[key]
                elif position is not None and position >= first:
                    moved[key] = max(position, end)
        return moved

    def committed(self, offsets: dict[Key, int]) -> None:
        """These positions are committed: the losses they passed need no more commits."""
        with self.lock:
            for key, position in offsets.items():
                loss = self.ready.get(key)
                if loss is not None and position >= loss[1]:
                    del self.ready[key]

    def lost_on(self, key: Key) -> int:
        """Offsets of this partition lost to retention in this run."""
        return sum(int(loss["lost"]) for loss in self.losses
                   if (loss["topic"], loss["partition"]) == key)
