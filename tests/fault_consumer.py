"""The `lsst-alerts` command line with the crash tests' fault hook installed.

Run as a script in place of `python -m lsst_alert_pipeline.cli`. With
`LSST_ALERT_PIPELINE_FAULT=<step>:<n>` set (a step of lsst_alert_pipeline.pipeline.hooks.STEPS),
the process SIGKILLs itself the n-th time a run reaches that step, so tests/reliability can prove
a restart recovers from a crash at every point of the durability order. Unset, it is the plain
command line. The library never reads this variable: the hook is injected here.
"""

from __future__ import annotations

import os
import signal

from lsst_alert_pipeline.cli import main
from lsst_alert_pipeline.pipeline.hooks import STEPS, set_fault_hook

FAULT_VARIABLE = "LSST_ALERT_PIPELINE_FAULT"


def kill_at(step: str, nth: int) -> None:
    """Install a hook that SIGKILLs this process the nth time a run reaches `step`."""
    if step not in STEPS:
        raise SystemExit(f"{FAULT_VARIABLE}: unknown step {step!r}; steps: {', '.join(STEPS)}")
    reached = 0

    def hook(at: str) -> None:
        nonlocal reached
        if at == step:
            reached += 1
            if reached == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    set_fault_hook(hook)


if __name__ == "__main__":
    step, _, nth = os.environ.get(FAULT_VARIABLE, "").partition(":")
    if step:
        kill_at(step, int(nth or 1))
    main()
