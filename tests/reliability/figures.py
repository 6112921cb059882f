"""Counters the reliability tests fill in; conftest prints them as one line at the end."""

from __future__ import annotations

from collections import Counter

FIGURES: Counter[str] = Counter()


def summary_line() -> str:
    return (f"reliability: kills survived: {FIGURES['kills']}, "
            f"alerts verified: {FIGURES['verified']:,}, "
            f"hostile messages: {FIGURES['hostile']:,} tried, "
            f"{FIGURES['deadlettered']:,} dead-lettered, "
            f"absurd values: {FIGURES['values']:,} tried, "
            f"{FIGURES['values_deadlettered']:,} dead-lettered, the rest written with blanks, "
            f"bombs refused: {FIGURES['bombs']}, "
            f"outages survived: {FIGURES['outages']}, "
            f"relay outages survived: {FIGURES['relay_outages']}, "
            f"output failures survived: {FIGURES['output_failures']}, "
            f"overlapping runs refused: {FIGURES['overlaps']}, "
            f"retention losses caught while reading: {FIGURES['retention_while_reading']}, "
            f"alerts and cutouts refilled by verify --repair: {FIGURES['verify_refilled']}, "
            f"rebalances survived: {FIGURES['rebalances']}, "
            f"{FIGURES['lost']} lost, {FIGURES['duplicated']} duplicated")
