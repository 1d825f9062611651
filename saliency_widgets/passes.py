"""How many copies of a batch one pass of SmoothGrad / integrated gradients takes, and in which
memory layout, chosen by measuring.

The memory budget gives a safe first size. While a model and input shape are
new, each pass doubles the size: the first three sizes (1×, 2×, 4×) are always
tried, and growth goes on while the newest size has the lowest time per copy
(bigger passes amortize per-call overhead and use the cores better; past a
point they fall out of the cache and get slower), up to ``MAX_GROWTH`` times the
first size. The size with the lowest time per copy settles the search. No size
is bigger than the largest call so far (a search waiting for a size no call
reaches would never settle): where doubling would pass it, the whole call is
tried next, and a search stopped there by the calls, not by its timings, goes on
when a bigger call comes.

The search times one pass per size, in the backend's default memory layout. Both
are rough: one timing on a busy machine can be off by half, and another layout
can move the best size (the zoo's small CNN runs channels-last twice as fast at 8
copies per pass as at 16, where contiguous barely differs). So every size that runs outside the
search (the settled size, a call's last pass, calls too small for the size being
tried) measures each layout the backend offers (torch: channels-last for 2-D
convolution models): the first pass of a layout at a size warms its kernels up
and is not judged, the fastest of the next two counts. Then the search climbs:
from the settled size it measures the sizes beside it (half, double; no bigger
than the largest call) and moves while one is faster per copy, by a margin that
timing noise does not reach. With a single layout the search's choice stands: on
small models, passes of a few milliseconds time too noisily for a climb to beat
it. Every pass, tried or not, contributes to the result; only the speed differs.
The choice lives per (input signature, query) on the backend, as the Jacobian
strategy does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: A pass grows to at most this many times the size the memory budget suggests.
MAX_GROWTH = 32
#: Sizes always tried before judging (1×, 2×, 4× the first): one noisy timing decides nothing.
MIN_TRIALS = 3
#: Passes in a layout before one is judged: the first builds and warms up its kernels.
LAYOUT_WARMUP = 1
#: Passes judged per layout (the fastest counts), after its warm-up.
LAYOUT_TRIALS = 2
#: The climb moves to a size beside the current one only when it is this much faster per copy:
#: two judged passes of a few milliseconds differ by more than that on a busy machine.
CLIMB_MARGIN = 0.1


@dataclass
class LayoutTrials:
    """The layouts measured for passes of one size, one after the other, the faster kept."""

    layouts: tuple
    #: Seconds per copy of each layout judged so far.
    rates: dict[Any, float] = field(default_factory=dict)
    #: The layout the next pass of this size runs in.
    layout: Any = None
    _trial: int = field(default=0, repr=False)
    _trial_rates: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._next_layout()

    @classmethod
    def warmed(cls, layouts: tuple) -> "LayoutTrials":
        """Trials whose first layout (the default) already ran at this size: it is judged at once."""
        return cls(layouts, _trial=LAYOUT_WARMUP)

    @property
    def done(self) -> bool:
        return len(self.rates) == len(self.layouts)

    def record(self, seconds_per_copy: float) -> None:
        """The time per copy of a pass that ran in :attr:`layout`."""
        if self.done:
            return
        self._trial += 1
        if self._trial > LAYOUT_WARMUP:
            self._trial_rates.append(seconds_per_copy)
        if len(self._trial_rates) == LAYOUT_TRIALS:
            self.rates[self.layout] = min(self._trial_rates)
            self._trial, self._trial_rates = 0, []
            self._next_layout()

    def _next_layout(self) -> None:
        untried = [layout for layout in self.layouts if layout not in self.rates]
        self.layout = untried[0] if untried else min(self.rates, key=self.rates.__getitem__)


@dataclass
class PassSizes:
    """The measured choice for one (input signature, query); lives in ``Backend.pass_sizes``."""

    first: int
    #: Memory layouts the backend offers for these inputs; the first is its default.
    layouts: tuple = (None,)
    size: int = 0
    #: Seconds per copy measured for each size tried, in the default layout.
    rates: dict[int, float] = field(default_factory=dict)
    #: Where the size search settled (0 while it runs): the climb starts there.
    settled_size: int = 0
    #: The layouts measured for each pass size that ran outside the size search.
    by_size: dict[int, LayoutTrials] = field(default_factory=dict)
    #: The most copies one call has asked for: no size beyond it is tried.
    largest: int = 0
    _pending: int = field(default=0, repr=False)
    #: The search settled because no call was bigger, while bigger passes were still faster.
    _stopped_by_calls: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self.size = self.size or self.first

    @property
    def settled(self) -> bool:
        """Whether the size search has ended."""
        return self.settled_size > 0

    @property
    def layout(self) -> Any:
        """The layout of the next pass of :attr:`size` copies."""
        return self.layout_for(self.size)

    @property
    def layout_rates(self) -> dict[Any, float]:
        """Seconds per copy of each layout judged at :attr:`size`."""
        trials = self.by_size.get(self.size)
        return {} if trials is None else trials.rates

    @property
    def done(self) -> bool:
        """Whether the size, and the layout at that size, are both chosen: the climb has ended."""
        if len(self.layouts) == 1:
            return self.settled
        return self.settled and self._trials(self.size).done and self._climb() == self.size

    def next(self, remaining: int) -> int:
        """How many copies the next pass takes (in :meth:`layout_for` that many)."""
        if self._stopped_by_calls and remaining > self.largest:  # the search goes on
            self._stopped_by_calls, self.settled_size = False, 0
            self.size = min(max(self.rates) * 2, self.first * MAX_GROWTH, remaining)
        self.largest = max(self.largest, remaining)
        if not self.settled:
            self.size = min(self.size, self.largest)
        self._pending = min(self.size, remaining)
        return self._pending

    def layout_for(self, copies: int) -> Any:
        """The layout a pass of ``copies`` runs in: the default while it is judged for the size."""
        if len(self.layouts) == 1 or self._sizing(copies):
            return self.layouts[0]
        return self._trials(copies).layout

    def record(self, seconds: float) -> None:
        """The time the pass of :meth:`next`'s size took (in :meth:`layout_for` that size)."""
        copies = self._pending
        if self._sizing(copies):
            self.rates[self.size] = seconds / copies
            best = min(self.rates, key=self.rates.__getitem__)
            growing = len(self.rates) < MIN_TRIALS or best == self.size
            cap = self.first * MAX_GROWTH
            bigger = min(self.size * 2, cap, self.largest)
            if growing and bigger > self.size:
                self.size = bigger
            else:
                self._stopped_by_calls = growing and self.size < cap
                self._settle()
            return
        if len(self.layouts) == 1:
            return
        trials = self._trials(copies)
        trials.record(seconds / copies)
        if self.settled and copies == self.size and trials.done:
            self.size = self._climb()

    def _sizing(self, copies: int) -> bool:
        """Whether a pass of ``copies`` is judged by the size search."""
        return not self.settled and copies == self.size

    def _trials(self, copies: int) -> LayoutTrials:
        if copies not in self.by_size:  # a size the search ran has its default layout warmed up
            self.by_size[copies] = (LayoutTrials.warmed if copies in self.rates else LayoutTrials)(self.layouts)
        return self.by_size[copies]

    def _settle(self) -> None:
        self.size = self.settled_size = min(self.rates, key=self.rates.__getitem__)

    def _climb(self) -> int:
        """The size to run next: from the settled size, step to a size beside it
        (:meth:`_beside`) while that one is faster per copy by ``CLIMB_MARGIN``; then the
        first size beside the one reached not measured yet, else the one reached."""
        measured = {n: min(t.rates.values()) for n, t in self.by_size.items() if t.done}
        best = self.settled_size
        while True:
            faster = [n for n in self._beside(best)
                      if n in measured and measured[n] < measured[best] * (1 - CLIMB_MARGIN)]
            if not faster:
                break
            best = min(faster, key=measured.__getitem__)
        for size in self._beside(best):
            if size not in measured:
                return size
        return best

    def _beside(self, size: int) -> list[int]:
        """The sizes the climb measures beside ``size``: half, and double up to the growth cap
        and the largest call (the whole call, when doubling would pass it)."""
        cap = min(self.first * MAX_GROWTH, self.largest)
        return [n for n in (size // 2, min(size * 2, cap)) if 1 <= n != size]
