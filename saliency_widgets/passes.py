"""How many copies of a batch one pass of SmoothGrad / integrated gradients takes, chosen by measuring.

The memory budget gives a safe first size. While a model and input shape are
new, each pass doubles the size as long as the time per copy drops by more than
a tenth (bigger passes amortize per-call overhead; past a point they fall out of
the cache and get slower), up to ``MAX_GROWTH`` times the first size; the best
size is then kept per (input signature, query) on the backend, as the Jacobian
strategy is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

#: A pass grows to at most this many times the size the memory budget suggests.
MAX_GROWTH = 16
#: A doubling is kept only when it lowers the time per copy by more than this fraction.
MIN_GAIN = 0.1


@dataclass
class PassSizes:
    """The measured choice for one (input signature, query); lives in ``Backend.pass_sizes``."""

    first: int
    size: int = 0
    best: Optional[tuple[int, float]] = None
    settled: bool = False
    _pending: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self.size = self.size or self.first

    def next(self, remaining: int) -> int:
        """How many copies the next pass takes."""
        self._pending = min(self.size, remaining)
        return self._pending

    def record(self, seconds: float) -> None:
        """The time the pass of :meth:`next`'s size took; a pass cut short by the end is not judged."""
        if self.settled or self._pending < self.size:
            return
        rate = seconds / self._pending
        if self.best is None or rate < self.best[1] * (1 - MIN_GAIN):
            self.best = (self.size, rate)
            if self.size * 2 <= self.first * MAX_GROWTH:
                self.size *= 2
                return
        self.size, self.settled = self.best[0], True
