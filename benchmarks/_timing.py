"""Timing helpers shared by the benchmark scripts: interleaved best-of timings, ratio reports."""

from __future__ import annotations

import time
from typing import Callable


def best_seconds(repeat: int = 9, warmup: int = 2, number: int = 1,
                 **candidates: Callable[[], object]) -> dict[str, float]:
    """Shortest wall time per call of each candidate over ``repeat`` rounds, after ``warmup``
    untimed rounds; each timing covers ``number`` calls in a row (as ``timeit`` does).

    The candidates run interleaved, round after round, so a slow spell of this
    shared 2-core machine hits all of them alike; the minimum (as ``timeit``
    recommends) is the run the neighbours disturbed least. Calls of a few
    milliseconds are timed in blocks: one such call alone swings by ±15 % with
    the state of the caches the previous candidate left.
    """
    for _ in range(warmup):
        for fn in candidates.values():
            fn()
    best = {name: float("inf") for name in candidates}
    for _ in range(repeat):
        for name, fn in candidates.items():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / number)
    return best


def calls_per_block(fn: Callable[[], object], block_seconds: float = 0.02) -> int:
    """How many calls of ``fn`` (timed once, after one warm-up call) fill about ``block_seconds``."""
    fn()
    start = time.perf_counter()
    fn()
    return max(1, round(block_seconds / max(time.perf_counter() - start, 1e-9)))


class Report:
    """Collects goal checks and prints them as one table."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, str, bool]] = []

    def at_least(self, name: str, ratio: float, goal: float) -> None:
        self.rows.append((name, ratio, f"goal >= {goal:g}x", ratio >= goal))

    def at_most(self, name: str, ratio: float, goal: float) -> None:
        self.rows.append((name, ratio, f"goal <= {goal:g}x", ratio <= goal))

    def note(self, name: str, ratio: float) -> None:
        """A ratio printed for context, with no goal."""
        self.rows.append((name, ratio, "(context)", True))

    def print(self) -> bool:
        """Prints the table; True when every goal was met."""
        width = max(len(r[0]) for r in self.rows)
        for name, ratio, goal, ok in self.rows:
            verdict = "" if goal == "(context)" else ("ok" if ok else "MISSED")
            print(f"{name:<{width}}  {ratio:8.2f}x  {goal:<14} {verdict}")
        return all(r[3] for r in self.rows)

    def print_markdown(self) -> bool:
        """The table as Markdown (for the README's Speed section); True when every goal was met."""
        print("| measure | ratio | goal | |")
        print("|---|---|---|---|")
        for name, ratio, goal, ok in self.rows:
            verdict = "" if goal == "(context)" else ("ok" if ok else "**missed**")
            print(f"| {name} | {ratio:.2f}× | {goal.replace('goal ', '').replace('>=', '≥').replace('<=', '≤')} | {verdict} |")
        return all(r[3] for r in self.rows)
