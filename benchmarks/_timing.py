"""Timing helpers shared by the benchmark scripts: medians of repeated runs, ratio reports."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def median_seconds(fn: Callable[[], object], repeat: int = 7, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs, after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class Report:
    """Collects goal checks and prints them as one table."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, str, bool]] = []

    def at_least(self, name: str, ratio: float, goal: float) -> None:
        self.rows.append((name, ratio, f">= {goal:g}x", ratio >= goal))

    def at_most(self, name: str, ratio: float, goal: float) -> None:
        self.rows.append((name, ratio, f"<= {goal:g}x", ratio <= goal))

    def print(self) -> bool:
        width = max(len(r[0]) for r in self.rows)
        for name, ratio, goal, ok in self.rows:
            print(f"{name:<{width}}  {ratio:8.2f}x  goal {goal:<8} {'ok' if ok else 'MISSED'}")
        return all(r[3] for r in self.rows)
