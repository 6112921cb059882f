"""Fixtures of the reliability suite and the one summary line it prints at the end."""

from __future__ import annotations

from typing import Any

import pytest

from .figures import FIGURES, summary_line
from .helpers import SimulatedAlerts, simulated_alerts


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.write_sep("=", "reliability figures")
        terminalreporter.write_line(summary_line())


@pytest.fixture(scope="session")
def simulated() -> SimulatedAlerts:
    """3,000 simulated wire alerts of one night with short histories (fast to write)."""
    return simulated_alerts(3000, seed=7)
