"""How many copies of a batch one pass of SmoothGrad / integrated gradients takes, chosen by measuring.

The memory budget gives a safe first size. While a model and input shape are
new, each pass doubles the size: the first three sizes (1×, 2×, 4×) are always
tried, and growth goes on while the newest size has the lowest time per copy
(bigger passes amortize per-call overhead and use the cores better; past a
point they fall out of the cache and get slower), up to ``MAX_GROWTH`` times the
first size. The size with the lowest time per copy is then kept per (input
signature, query) on the backend, as the Jacobian strategy is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: A pass grows to at most this many times the size the memory budget suggests.
MAX_GROWTH = 32
#: Sizes always tried before judging (1×, 2×, 4× the first): one noisy timing decides nothing.
MIN_TRIALS = 3


@dataclass
class PassSizes:
    """The measured choice for one (input signature, query); lives in ``Backend.pass_sizes``."""

    first: int
    size: int = 0
    #: Seconds per copy measured for each size tried.
    rates: dict[int, float] = field(default_factory=dict)
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
        self.rates[self.size] = seconds / self._pending
        best = min(self.rates, key=self.rates.__getitem__)
        growing = len(self.rates) < MIN_TRIALS or best == self.size
        if growing and self.size * 2 <= self.first * MAX_GROWTH:
            self.size *= 2
        else:
            self.size, self.settled = best, True
