"""How many copies of a batch one pass of SmoothGrad / integrated gradients takes, and in which
memory layout, chosen by measuring.

The memory budget gives a safe first size. While a model and input shape are
new, each pass doubles the size: the first three sizes (1×, 2×, 4×) are always
tried, and growth goes on while the newest size has the lowest time per copy
(bigger passes amortize per-call overhead and use the cores better; past a
point they fall out of the cache and get slower), up to ``MAX_GROWTH`` times the
first size. The size with the lowest time per copy is kept. Calls smaller than
the size being tried run as one pass each (not judged) until a bigger call comes.

When the backend offers other memory layouts for the input (torch: channels-last
for 2-D convolution models), each is then tried at the settled size: its first
pass warms the kernels up and is not judged, the fastest of the next two counts,
and the layout with the lowest time per copy is kept. Every pass, tried or not, contributes to the
result; only the speed differs. The choice lives per (input signature, query) on
the backend, as the Jacobian strategy does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: A pass grows to at most this many times the size the memory budget suggests.
MAX_GROWTH = 32
#: Sizes always tried before judging (1×, 2×, 4× the first): one noisy timing decides nothing.
MIN_TRIALS = 3
#: Passes in a new layout before one is judged: the first builds and warms up its kernels.
LAYOUT_WARMUP = 1
#: Passes judged per layout (the fastest counts), after its warm-up.
LAYOUT_TRIALS = 2


@dataclass
class PassSizes:
    """The measured choice for one (input signature, query); lives in ``Backend.pass_sizes``."""

    first: int
    #: Memory layouts the backend offers for these inputs; the first is its default.
    layouts: tuple = (None,)
    size: int = 0
    layout: Any = None
    #: Seconds per copy measured for each size tried, in the default layout.
    rates: dict[int, float] = field(default_factory=dict)
    #: Seconds per copy at the settled size, for each layout tried.
    layout_rates: dict[Any, float] = field(default_factory=dict)
    settled: bool = False
    _pending: int = field(default=0, repr=False)
    _trial: int = field(default=0, repr=False)
    _trial_rates: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.size = self.size or self.first
        self.layout = self.layouts[0]

    @property
    def done(self) -> bool:
        """Whether size and layout are both chosen."""
        return self.settled and len(self.layout_rates) == len(self.layouts)

    def next(self, remaining: int) -> int:
        """How many copies the next pass takes (in :attr:`layout`)."""
        self._pending = min(self.size, remaining)
        return self._pending

    def record(self, seconds: float) -> None:
        """The time the pass of :meth:`next`'s size took; a pass cut short by the end is not judged."""
        if self._pending < self.size or self.done:
            return
        if not self.settled:
            self.rates[self.size] = seconds / self._pending
            best = min(self.rates, key=self.rates.__getitem__)
            growing = len(self.rates) < MIN_TRIALS or best == self.size
            if growing and self.size * 2 <= self.first * MAX_GROWTH:
                self.size *= 2
            else:
                self._settle()
            return
        self._trial += 1
        if self._trial > LAYOUT_WARMUP:
            self._trial_rates.append(seconds / self._pending)
        if len(self._trial_rates) == LAYOUT_TRIALS:
            self._judge_layout(min(self._trial_rates))

    def _settle(self) -> None:
        self.size = min(self.rates, key=self.rates.__getitem__)
        self.settled = True
        self.layout_rates[self.layouts[0]] = self.rates[self.size]
        self._try_next_layout()

    def _judge_layout(self, rate: float) -> None:
        self.layout_rates[self.layout] = rate
        self._trial, self._trial_rates = 0, []
        self._try_next_layout()

    def _try_next_layout(self) -> None:
        untried = [layout for layout in self.layouts if layout not in self.layout_rates]
        if untried:
            self.layout = untried[0]
        else:
            self.layout = min(self.layout_rates, key=self.layout_rates.__getitem__)
