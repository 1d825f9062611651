"""Progress and cancellation of slow computations: the one hook the pass loops call.

A loop that runs a computation in passes (integrated gradients' and SmoothGrad's batches of
copies, occlusion's batches of windows, the Jacobian's row chunks, deletion / insertion's steps,
the randomization test's layers, a dataset's batches, a generated text's rows) opens a
:func:`stage` of ``total`` units around the loop and calls :func:`step` after each pass. Both cost
nothing when nobody watches; otherwise :func:`step` moves the watching :class:`Run` on — the
fraction done, the time elapsed, an estimate of the time left — and raises :class:`Cancelled`
once the run was cancelled: a computation stops at its next pass.

Who watches:

- a widget computing a map (:mod:`.widgets._guarded`) watches with :func:`watching` and a
  listener that shows the progress in its views; a newer request, or the view's cancel button,
  cancels the run;
- a plain Python call (``sw.attribute(..., steps=1024)``, the checks) is watched by a
  ``tqdm.auto`` bar, created only once the call has run :data:`DELAY` seconds (as tqdm's own
  ``delay=``): fast calls print nothing, and do not import tqdm.

Stages nest: a stage opened inside another spans its parent's next unit (the randomization
test's layers each hold one attribution's passes). Stages opened one after the other at the
top of a run (a Jacobian, then a map) each span the whole run: the fraction starts again, and
:attr:`Run.label` says which one runs.
"""

from __future__ import annotations

import contextvars
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

#: Seconds a computation runs before anyone is shown its progress.
DELAY = 0.3
#: Seconds between two reports to a listener.
INTERVAL = 0.1


class Cancelled(Exception):
    """Raised at the next pass of a computation whose run was cancelled (a newer request superseded
    it, or the user pressed cancel)."""


@dataclass
class Run:
    """One watched computation: how far it is, and whether it should stop.

    ``listener(run)`` is called from the computing thread after a pass once :data:`DELAY` seconds
    have passed, at most every :data:`INTERVAL` seconds, and once more (with :attr:`finished` set)
    when the run ends after it was first reported. :meth:`cancel` may be called from any thread.
    """

    listener: Optional[Callable[["Run"], None]] = None
    #: When the run started (``time.perf_counter``).
    started: float = field(default_factory=time.perf_counter)
    #: Fraction of the current top-level stage done, in [0, 1].
    fraction: float = 0.0
    #: What the current top-level stage computes (``"integrated gradients"``, ``"Jacobian"``).
    label: str = ""
    #: Passes done so far, over every stage.
    passes: int = 0
    #: The run has ended (its last report).
    finished: bool = False
    _stage_started: float = field(default_factory=time.perf_counter, repr=False)
    _reported: float = field(default=-1.0, repr=False)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.started

    @property
    def remaining(self) -> Optional[float]:
        """Estimated seconds left in the current top-level stage (None before its first pass)."""
        if self.fraction <= 0:
            return None
        spent = time.perf_counter() - self._stage_started
        return spent * (1 - self.fraction) / self.fraction

    @property
    def reported(self) -> bool:
        """Whether the listener has heard of this run (it ran longer than :data:`DELAY`)."""
        return self._reported >= 0

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Asks the computation to stop at its next pass (thread-safe)."""
        self._cancel.set()

    def check(self) -> None:
        """Raises :class:`Cancelled` if the run was cancelled."""
        if self._cancel.is_set():
            raise Cancelled("cancelled")

    def finish(self) -> None:
        """Ends the run: a listener that was told of it hears once more, with :attr:`finished` set."""
        self.finished = True
        if self.reported and self.listener is not None:
            self.listener(self)

    def _begin(self, label: str) -> None:
        """A new top-level stage starts: its fraction and estimate start again."""
        self.label, self.fraction, self._stage_started = label, 0.0, time.perf_counter()

    def _move(self, fraction: float) -> None:
        self.passes += 1
        self.fraction = min(1.0, max(0.0, fraction))
        now = time.perf_counter()
        if self.listener is None or now - self.started < DELAY or now - self._reported < INTERVAL:
            return
        self._reported = now
        self.listener(self)


@dataclass
class _Stage:
    """A loop of ``total`` units that spans ``[low, high]`` of its run's fraction."""

    run: Run
    total: float
    low: float = 0.0
    high: float = 1.0
    done: float = 0.0
    #: The root of a watched run (:func:`watching`): stages opened in it each span the whole run.
    top: bool = False

    def next_unit(self) -> tuple[float, float]:
        """The span of the unit this stage runs now (where a stage opened inside it lies)."""
        width = (self.high - self.low) / max(self.total, 1)
        start = self.low + width * min(self.done, max(self.total - 1, 0))
        return start, start + width


_CURRENT: contextvars.ContextVar[Optional[_Stage]] = contextvars.ContextVar("saliency_widgets_stage", default=None)


@contextmanager
def watching(run: Run) -> Iterator[Run]:
    """Computations in this block (this thread or context) report to ``run`` and stop when it is
    cancelled. Ends the run (:meth:`Run.finish`) when the block ends."""
    token = _CURRENT.set(_Stage(run, total=1, top=True))
    try:
        yield run
    finally:
        _CURRENT.reset(token)
        run.finish()


@contextmanager
def stage(total: float, label: str = "") -> Iterator[None]:
    """A loop of ``total`` passes (call :func:`step` after each); a cancelled run stops here already.
    Without a watching run, a run of its own is watched by a ``tqdm.auto`` bar that appears after
    :data:`DELAY` seconds."""
    parent = _CURRENT.get()
    own = parent is None
    if not own:
        parent.run.check()
    if own:
        run = Run(listener=_Bar())
        low, high = 0.0, 1.0
    else:
        run = parent.run
        low, high = parent.next_unit()
    if own or parent.top:
        run._begin(label)
    token = _CURRENT.set(_Stage(run, total, low, high))
    try:
        yield
    finally:
        _CURRENT.reset(token)
        if own:
            run.finish()


@contextmanager
def quiet() -> Iterator[None]:
    """Stages inside report to the run already watching, if any, and open no bar of their own (for a
    caller that shows its own bar: a dataset run)."""
    if _CURRENT.get() is not None:
        yield
        return
    with watching(Run()):
        yield


def step(n: float = 1) -> None:
    """``n`` passes of the innermost stage are done: report, and stop here (:class:`Cancelled`) if
    the run watching it was cancelled. Does nothing outside a stage."""
    current = _CURRENT.get()
    if current is None:
        return
    current.done += n
    current.run._move(current.low + (current.high - current.low) * current.done / max(current.total, 1))
    current.run.check()


def check() -> None:
    """A cancellation point without progress: raises :class:`Cancelled` if the watching run was cancelled."""
    current = _CURRENT.get()
    if current is not None:
        current.run.check()


def current_run() -> Optional[Run]:
    """The run watching this thread's computations, if any."""
    current = _CURRENT.get()
    return None if current is None else current.run


class _Bar:
    """A ``tqdm.auto`` bar in percent, made at the first report (after :data:`DELAY` seconds)."""

    FORMAT = "{desc}{percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]"

    def __init__(self) -> None:
        self.bar: Any = None

    def __call__(self, run: Run) -> None:
        if self.bar is None:
            if run.finished:
                return
            from tqdm.auto import tqdm

            self.bar = tqdm(total=100, desc=f"{run.label}: " if run.label else "", bar_format=self.FORMAT,
                            leave=False, smoothing=0.1)
            if hasattr(self.bar, "start_t"):  # a disabled bar (TQDM_DISABLE=1) keeps no clock
                self.bar.start_t -= run.elapsed  # the call started before its bar
        self.bar.n = round(100 * (1.0 if run.finished else run.fraction), 1)
        self.bar.refresh()
        if run.finished:
            self.bar.close()


def describe(run: Run) -> dict[str, Any]:
    """A run as the widgets' views read it (``{"type": "progress", ...}`` messages)."""
    remaining = run.remaining
    return {
        "fraction": round(run.fraction, 4),
        "elapsed": round(run.elapsed, 2),
        "remaining": None if remaining is None else round(remaining, 2),
        "label": run.label,
        "done": run.finished,
    }
