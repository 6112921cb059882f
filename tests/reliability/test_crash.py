"""SIGKILL at any step of the durability order, then restart: each alert exactly once.

Kills are of two kinds: at an injected fault point (tests/fault_consumer.py: after-write,
after-sync, after-ledger, after-commit, the n-th time reached) and at a random instant once the
consumer is writing. The plan is drawn from a seed printed by the test (LSST_RELIABILITY_SEED
replays it).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from lsst_alert_pipeline import exitcodes
from lsst_alert_pipeline.pipeline.hooks import DURABILITY_STEPS

from .figures import FIGURES
from .helpers import (
    SimulatedAlerts,
    consume_command,
    count_files,
    run_to_completion,
    subprocess_env,
    verify_exactly_once,
    wait_for,
)

pytestmark = pytest.mark.kafka

KILLS_PER_STEP = 2
RANDOM_KILLS = 4
BATCH_SIZE = 25


def kill_plan(rng: random.Random) -> list[tuple[str, int]]:
    """(step, n) for injected kills, ("random", 0) for kills at a random instant; shuffled."""
    plan = [(step, rng.randint(1, 3)) for step in DURABILITY_STEPS for _ in range(KILLS_PER_STEP)]
    plan += [("random", 0)] * RANDOM_KILLS
    rng.shuffle(plan)
    return plan


def kill_at_random_instant(command: list[str], cutouts: Path, rng: random.Random,
                           log: Path) -> float:
    """Start the consumer, let it write, SIGKILL it after a random delay; the delay used."""
    before = count_files(cutouts)
    with open(log, "a") as stderr:
        process = subprocess.Popen(command, stderr=stderr, stdout=subprocess.DEVNULL,
                                   env=subprocess_env())
    try:
        wait_for(lambda: count_files(cutouts) > before or process.poll() is not None, 60,
                 "the consumer to start writing")
        delay = rng.uniform(0.0, 0.8)
        time.sleep(delay)  # the randomness of the instant is the point of this kill
        assert process.poll() is None, "the consumer ended before the kill; raise the volume"
        process.send_signal(signal.SIGKILL)
        assert process.wait(30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return delay


def test_sigkill_at_any_step_then_restart_writes_each_alert_once(
        broker, topic, simulated: SimulatedAlerts, tmp_path: Path) -> None:
    seed = int(os.environ.get("LSST_RELIABILITY_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    plan = kill_plan(rng)
    print(f"\ncrash: seed {seed} (LSST_RELIABILITY_SEED={seed} replays it), "
          f"{len(simulated.ids):,} alerts, batches of {BATCH_SIZE}, plan {plan}")
    started = time.monotonic()
    broker.produce(topic, simulated.payloads)
    output, log = tmp_path / "out", tmp_path / "consumer.log"
    command = consume_command(broker.bootstrap, topic, output, "--batch-size", str(BATCH_SIZE))
    kills = 0
    for step, nth in plan:
        if step == "random":
            delay = kill_at_random_instant(command, output / "cutouts", rng, log)
            what = f"random instant ({delay:.2f} s after writing began)"
        else:
            finished = run_to_completion(command, log, timeout=120,
                                         LSST_ALERT_PIPELINE_FAULT=f"{step}:{nth}")
            assert finished.returncode == -signal.SIGKILL, (
                f"no kill at {step}:{nth} (exit {finished.returncode}); see {log}")
            what = f"{step} of batch {nth}"
        kills += 1
        print(f"crash: kill {kills:2d} at {what}; {count_files(output / 'cutouts'):,} "
              "cutout files on disk")
    finished = run_to_completion(command, log, timeout=180)
    assert finished.returncode == exitcodes.OK, f"final run exit {finished.returncode}; {log}"
    FIGURES["kills"] += kills
    checked = len(verify_exactly_once(output, simulated, set(simulated.ids)))
    assert checked == len(simulated.ids)
    assert not list((output / "deadletter").iterdir())
    print(f"crash: {kills} kills survived, {checked:,} alerts verified exactly once with "
          f"identical cutouts, in {time.monotonic() - started:.0f} s")
