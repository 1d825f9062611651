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

The search times one pass per size, in the backend's first memory layout. Both
are rough: one timing on a busy machine can be off by half, and another layout
can move the best size (the zoo's small CNN runs channels-last twice as fast at 8
copies per pass as at 16, where contiguous barely differs). So every size the search runs
outside its sizing (the settled size, the sizes the climb tries, a whole call too
small for the size being tried) measures each layout the backend offers (torch:
channels-last, then contiguous, for 2-D convolution models): the first pass of a layout at a size warms its kernels up
and is not judged, the fastest of the next two counts. Then the search climbs:
from the settled size it measures the sizes beside it (half, double; no bigger
than the largest call) and moves while one is faster per copy, by a margin that
timing noise does not reach; a layout clearly slower at the settled size (by
``LAYOUT_DROP_MARGIN``) is not measured at the sizes the climb tries. A call's last, shorter pass runs in the layout
fastest so far and is not measured: every new shape and layout costs a warm-up
(the CPU's kernels are built per shape), which a remainder would pay for nothing.
With a single layout the search's choice stands: on
small models, passes of a few milliseconds time too noisily for a climb to beat
it. Every pass, tried or not, contributes to the result; only the speed differs.
The choice lives per (input signature, query) on the backend, as the Jacobian
strategy does, and once settled it is kept for the process by the model's
architecture (its class and its weights' shapes): a second model of the same
class and shapes starts where the first one's search stood (:func:`starting_sizes`).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

#: A pass grows to at most this many times the size the memory budget suggests.
MAX_GROWTH = 32
#: Sizes always tried before judging (1×, 2×, 4× the first): one noisy timing decides nothing.
MIN_TRIALS = 3
#: Growth goes on while the newest size is within this much of the fastest per copy: the search's
#: single timings include each new shape's warm-up, which ties sizes that are not tied.
GROWTH_TIE = 0.05
#: Passes in a layout before one is judged: the first builds and warms up its kernels.
LAYOUT_WARMUP = 1
#: Passes judged per layout (the fastest counts), after its warm-up.
LAYOUT_TRIALS = 2
#: A layout this much slower per copy than the fastest at the settled size is not measured at the
#: sizes the climb tries: each measurement costs three passes in the slow layout.
LAYOUT_DROP_MARGIN = 0.25
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
        """The layout a pass of ``copies`` runs in: the default while it is judged for the size; for
        a call's last, shorter pass the layout fastest so far (it is not measured)."""
        if len(self.layouts) == 1 or self._sizing(copies):
            return self.layouts[0]
        if copies != self.size:
            return self._fastest_layout()
        return self._trials(copies).layout

    def record(self, seconds: float) -> None:
        """The time the pass of :meth:`next`'s size took (in :meth:`layout_for` that size)."""
        copies = self._pending
        if self._sizing(copies):
            self.rates[self.size] = seconds / copies
            best = min(self.rates.values())
            growing = len(self.rates) < MIN_TRIALS or self.rates[self.size] <= best * (1 + GROWTH_TIE)
            cap = self.first * MAX_GROWTH
            bigger = min(self.size * 2, cap, self.largest)
            if growing and bigger > self.size:
                self.size = bigger
            else:
                self._stopped_by_calls = growing and self.size < cap
                self._settle()
            return
        if len(self.layouts) == 1 or copies != self.size:
            return
        trials = self._trials(copies)
        trials.record(seconds / copies)
        if self.settled and copies == self.size and trials.done:
            self.size = self._climb()

    def _fastest_layout(self) -> Any:
        """The layout of the lowest time per copy judged at any size (the default before any)."""
        judged = [(rate, self.layouts.index(layout)) for t in self.by_size.values() for layout, rate in t.rates.items()]
        return self.layouts[min(judged)[1]] if judged else self.layouts[0]

    def _sizing(self, copies: int) -> bool:
        """Whether a pass of ``copies`` is judged by the size search."""
        return not self.settled and copies == self.size

    def _trials(self, copies: int) -> LayoutTrials:
        if copies not in self.by_size:  # a size the search ran has its default layout warmed up
            layouts = self.layouts if copies == self.settled_size else self._contending_layouts()
            warmed = copies in self.rates and layouts[0] == self.layouts[0]
            self.by_size[copies] = (LayoutTrials.warmed if warmed else LayoutTrials)(layouts)
        return self.by_size[copies]

    def _contending_layouts(self) -> tuple:
        """The layouts worth measuring at a size the climb tries: all of them until they are judged
        at the settled size, then those within ``LAYOUT_DROP_MARGIN`` of the fastest there."""
        at_settled = self.by_size.get(self.settled_size)
        if at_settled is None or not at_settled.done:
            return self.layouts
        fastest = min(at_settled.rates.values())
        return tuple(layout for layout in self.layouts
                     if at_settled.rates[layout] <= fastest * (1 + LAYOUT_DROP_MARGIN))

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


#: Settled searches by (architecture, input signature and query), for the process.
_SETTLED: dict[tuple, PassSizes] = {}
_SETTLED_LOCK = threading.Lock()


def starting_sizes(architecture: Optional[tuple], key: tuple, new: Callable[[], PassSizes]) -> PassSizes:
    """The pass sizes a model starts with for ``key``: a copy of where the search of an earlier
    model of the same ``architecture`` settled (see ``Backend.architecture``), else ``new()``."""
    with _SETTLED_LOCK:
        known = None if architecture is None else _SETTLED.get((architecture, key))
        return new() if known is None else copy.deepcopy(known)


def remember_settled(architecture: Optional[tuple], key: tuple, sizes: PassSizes) -> None:
    """Keeps a copy of ``sizes`` for later models of ``architecture`` (once its search has settled)."""
    if architecture is None or not sizes.settled:
        return
    with _SETTLED_LOCK:
        _SETTLED[(architecture, key)] = copy.deepcopy(sizes)


def forget_settled() -> None:
    """Forgets every settled search: later models start as the first of their architecture does."""
    with _SETTLED_LOCK:
        _SETTLED.clear()
