"""A batch's offset commit runs on its own thread while the next batch is written.

An offset commit is a round trip to the broker, during which the writing thread used to wait
(~20% of a run of the realistic mix on the test broker; docs/performance.md). `CommitBehind`
takes the last step of `Pipeline.deliver` (commit, the after-commit fault point, the observer)
off the writing thread; the writing thread goes on with the next batch's files.

The order of each batch is unchanged: its files -> the sync -> the ledger -> its commit, which is
handed over only once the ledger holds the batch. What overlaps is batch N's commit and batch
N+1's files: `Pipeline.deliver` waits for N's commit (`settle`) before it syncs N+1, so commits
stay in order, one at a time, and no other call reaches the source while one runs (the source
sees one writing thread at a time, sources/base.py). A commit that fails raises there, before
N+1 is synced or recorded, and N+1's CSV rows, archive files and cutouts are undone first: the
run ends with only what the ledger vouches for on disk, as before. A crash while N is
committed and N+1 written is one recovery knows: N is in the ledger (its redelivery is
skipped), N+1's files are not yet vouched for and are undone.

Only for a source with a broker group: a brokerless source's commit is a counter, with nothing
to overlap (and its runs keep the strictly sequential order tests/reliability/
test_durability_order.py records).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ..sources.base import Source


class CommitBehind:
    """Runs each batch's commit step on one thread, in order; the writing thread's only."""

    def __init__(self, before_commit: Callable[[], None]):
        self.before_commit = before_commit  # on the writing thread, before each hand-over
        self.pending: Future[None] | None = None
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="commit-behind")

    def submit(self, commit: Callable[[], None]) -> None:
        """Hand over a batch the ledger holds: the one before is committed first."""
        self.settle()
        self.before_commit()
        self.pending = self.thread.submit(commit)

    def settle(self, undo: Callable[[], None] | None = None) -> None:
        """Wait for the commit handed over last; raise what it raised, after `undo` (the files
        of the batch written meanwhile, which will not be recorded: the output then holds
        what the ledger vouches for, as it did before commits overlapped)."""
        pending, self.pending = self.pending, None
        if pending is not None and pending.exception() is not None:
            if undo is not None:
                undo()
            pending.result()

    def close(self) -> None:
        """Let the last commit finish (its failure is the run's only if `settle` saw it)."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.exception()  # waits; the run already ends for another reason
        self.thread.shutdown(wait=True)


def commit_behind_for(source: Source, before_commit: Callable[[], None]) -> CommitBehind | None:
    """A CommitBehind when the source commits to a broker group, else None (commit inline)."""
    return CommitBehind(before_commit) if source.group_id else None
