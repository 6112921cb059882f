"""Where a run's time went: per thread and stage, how long it worked and how long it waited.

The consumer has three threads (prefetch: poll, decode, filter; encoding: the archive's files,
with the archive on; writing: files, sync, ledger, commit). When one waits for another, or all
for the broker or the disk, the run is slower than its CPU would allow; the end-of-run line
says which stage to look at without a profiler, and `bench/bench_pipeline.py` prints it per
mode.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

WORK, WAIT = "work", "wait"


@dataclass
class Stage:
    thread: str
    name: str
    kind: str  # WORK: the thread computes or writes; WAIT: it waits for another thread or I/O
    seconds: float = 0.0
    cpu: float = 0.0  # of the thread itself (user + system) during the stage
    times: int = 0


class StageClock:
    """Seconds per (thread, stage), added to by both threads (under one lock: a few calls per
    batch, never per alert)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stages: dict[tuple[str, str], Stage] = {}

    def add(self, thread: str, name: str, kind: str, seconds: float, cpu: float) -> None:
        with self._lock:
            stage = self._stages.setdefault((thread, name), Stage(thread, name, kind))
            stage.seconds += seconds
            stage.cpu += cpu
            stage.times += 1

    @contextmanager
    def timing(self, thread: str, name: str, kind: str = WORK) -> Iterator[None]:
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.add(thread, name, kind, time.perf_counter() - started,
                     time.thread_time() - cpu)

    def stages(self) -> list[Stage]:
        with self._lock:
            return [Stage(s.thread, s.name, s.kind, s.seconds, s.cpu, s.times)
                    for s in self._stages.values()]

    def as_dict(self) -> dict[str, dict[str, dict[str, float | int | str]]]:
        """{thread: {stage: {kind, seconds, cpu, times}}}, in the order the stages first ran."""
        found: dict[str, dict[str, dict[str, float | int | str]]] = {}
        for stage in self.stages():
            found.setdefault(stage.thread, {})[stage.name] = {
                "kind": stage.kind, "seconds": round(stage.seconds, 3),
                "cpu": round(stage.cpu, 3), "times": stage.times}
        return found

    def line(self) -> str:
        """One line per run: each thread's stages, work and waits, largest first (those under
        0.05 s left out of the line, not out of the totals)."""
        parts = []
        for thread, stages in self.as_dict().items():
            ordered = sorted(((name, stage) for name, stage in stages.items()
                              if float(stage["seconds"]) >= 0.05),
                             key=lambda item: -float(item[1]["seconds"]))
            worked = sum(float(s["seconds"]) for s in stages.values() if s["kind"] == WORK)
            waited = sum(float(s["seconds"]) for s in stages.values() if s["kind"] == WAIT)
            text = ", ".join(f"{name} {float(s['seconds']):.1f} s"
                             + (" (waiting)" if s["kind"] == WAIT else "")
                             for name, s in ordered) or "no stage took 0.05 s"
            parts.append(f"{thread} thread worked {worked:.1f} s and waited {waited:.1f} s: "
                         f"{text}")
        return "; ".join(parts)
