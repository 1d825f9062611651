"""The base of every widget: trait changes that fail leave the previous view in place, and slow
ones show their progress, can be cancelled, and keep the kernel free for the next click."""

from __future__ import annotations

import asyncio
import itertools
import pathlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import anywidget
import traitlets as t

from .. import progress
from ..backends.base import beside_the_user
from ..errors import SaliencyError, describe
from ._export import ExportMixin

#: A step of a computation the browser asked for: run on a worker thread, reading no trait, it returns
#: the function that keeps its result (run on the main thread).
Step = Callable[[], Callable[[], None]]


STATIC = pathlib.Path(__file__).resolve().parent.parent / "static"


class InvalidValue(SaliencyError, t.TraitError):
    """A value a widget refuses. A ``TraitError`` too, so that a refusal inside held notifications
    (``set_state``, as the browser sets traits) rolls the trait back to its old value."""


def bundle(name: str) -> str:
    """The built front-end module ``name`` from ``static/``, as text. A widget class's ``_esm``
    is this text, not the path: anywidget connects every instance to a path's change signal,
    which keeps each widget (and its model) alive for good."""
    return (STATIC / name).read_text(encoding="utf-8")


def kept(compute: Callable[[], Any], keep: Callable[[Any], Any]) -> Step:
    """A :data:`Step` that runs ``compute`` (in the worker) and hands its result to ``keep`` (on the main thread)."""
    def step() -> Callable[[], None]:
        result = compute()
        return lambda: keep(result)

    return step


def _main_loop() -> Optional[asyncio.AbstractEventLoop]:
    """The event loop of this (the kernel's main) thread, when it runs in an IPython kernel: results
    computed in a worker are applied there. None elsewhere (a script, marimo): compute here."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    from IPython import get_ipython

    return loop if getattr(get_ipython(), "kernel", None) is not None else None


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., Any], *args: Any) -> None:
    """``callback(*args)`` on ``loop``'s thread; nothing once the loop is closed (the kernel shut down)."""
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        pass


@dataclass
class _Job:
    """The computation a worker thread runs for the browser's latest request."""

    number: int
    run: progress.Run
    #: The changes it answers, oldest first (those of superseded jobs too): undone on cancel or failure.
    changes: list[dict[str, Any]]
    #: What those changes send once computed, in order (each finds its results computed).
    updates: list[Callable[[], None]]
    thread: Optional[threading.Thread] = field(default=None, repr=False)


class GuardedWidget(ExportMixin, anywidget.AnyWidget):
    """An anywidget whose updates either succeed or are undone.

    A failed update shows its message inside the widget (drawn with ``data-sw-role="error"``;
    a model's own exception by its type and message, :func:`..errors.describe`), puts the changed
    trait back to its old value and re-raises, so Python sees a clear exception and the view stays
    usable; the next successful update clears the message. The message travels as a custom message
    (``{"type": "error", "message"}``, ``""`` to clear), not as a synced trait: it is never saved
    with the notebook's widget state, restored on a page reload or written into a ``to_html`` page.

    **Slow updates** (:mod:`..progress`). A computation that runs longer than ``progress.DELAY``
    reports ``{"type": "progress", "id", "fraction", "elapsed", "remaining", "label", "done",
    "cancellable"}`` messages, which the views show (``data-sw-role="progress"``). A change the
    browser makes whose results are not computed yet (:meth:`_background_work`) is computed in a
    worker thread when the backend allows it (``Backend.computes_unseen``: nothing of the model's
    changes where the user could see it) and the widget runs in an IPython kernel: the browser's
    message returns at once, so the kernel takes the next click; a newer request cancels the older
    one at its next pass (only the latest one's result is applied, on the main thread); the cancel
    button (``{"type": "cancel", "id"}``) undoes the changes that asked for it. Elsewhere — a change
    made in Python (``w.target = 3`` computes before it returns), a model in training mode, a Keras
    model whose layers need thread-local calls — the update computes on the caller's thread, still
    reporting its progress.
    """

    #: The message the widget shows ("" when none), see :meth:`_show_error`.
    _error_text = ""

    #: False until the subclass' ``__init__`` has built its first view.
    _ready = False
    #: True while a failed change is being undone (its observer must not run again).
    _reverting = False
    #: True while the browser's changes are applied (:meth:`set_state`).
    _from_browser = False
    #: The worker's computation for the browser's latest request, if one runs.
    _job: Optional[_Job] = None
    _numbers = itertools.count(1)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_msg(self._on_custom_message)

    def set_state(self, sync_data: Any) -> None:
        """Applies the browser's changes; their observers may compute in a worker (see the class)."""
        self._from_browser = True
        try:
            super().set_state(sync_data)
        finally:
            self._from_browser = False

    def _on_custom_message(self, widget: Any, content: Any, buffers: Any) -> None:
        """The cancel button's ``{"type": "cancel", "id"}``; other messages as :class:`ExportMixin` reads them."""
        if isinstance(content, dict) and content.get("type") == "cancel":
            job = self._job
            if job is not None and content.get("id") in (None, job.number):
                job.run.cancel()
            return
        super()._on_custom_message(widget, content, buffers)

    @property
    def error(self) -> str:
        """The message the widget shows for its last failed update; ``""`` when none."""
        return self._error_text

    def _show_error(self, message: str) -> None:
        """Shows ``message`` in the widget's error banner (``""`` hides it) with a custom message to its
        views (a view opened later starts without it)."""
        if message or self._error_text:
            self.send({"type": "error", "message": message})
        self._error_text = message

    def __setattr__(self, name: str, value: Any) -> None:
        """Sets an attribute; a :class:`SaliencyError` from a validator or observer is re-raised
        here with the traitlets frames dropped, so a user sees their own line and the message."""
        __tracebackhide__ = True  # noqa: F841 (IPython and pytest hide this frame too)
        try:
            super().__setattr__(name, value)
        except SaliencyError as exc:
            raise exc.with_traceback(None) from None

    def _invalid(self, message: str) -> None:
        """Shows ``message`` in the widget and raises it as a :class:`SaliencyError`."""
        self._show_error(message)
        raise InvalidValue(message)

    def _guarded(self, change: dict[str, Any], update: Callable[[], None]) -> None:
        """Runs ``update`` for a trait change — in a worker thread for the browser's slow requests
        (see the class) — and on failure shows the error, restores the trait's old value (the
        previous view stays) and re-raises."""
        if not self._ready or self._reverting:
            return
        if self._from_browser and self._start_job(change, update):
            return
        self._stop_job()  # computed here: it supersedes the worker's computation
        try:
            with self.hold_sync(), self._watched():
                update()
        except Exception as exc:
            self._undo([change], describe(exc))
            raise
        self._show_error("")

    def _undo(self, changes: list[dict[str, Any]], message: str) -> None:
        """Puts ``changes`` back (newest first), re-sends the restored state and shows ``message``."""
        self._reverting = True
        try:
            for change in reversed(changes):
                setattr(self, change["name"], change["old"])
            try:
                with self.hold_sync():
                    self._after_revert()
            except Exception:  # best effort: the first error is the one to report
                pass
        finally:
            self._reverting = False
        self._show_error(message)

    def _after_revert(self) -> None:
        """Called once a failed change was undone, to re-send what the restored state shows."""

    # ------------------------------------------------------ slow updates
    def _computes_unseen(self) -> bool:
        """Whether this widget's computations may run in a worker thread (``Backend.computes_unseen``)."""
        return False

    def _background_work(self) -> list[Step]:
        """What the current state needs that is not computed yet, as steps a worker thread may run
        (each reads no trait: they may change meanwhile); [] when nothing slow is missing."""
        return []

    def _start_job(self, change: dict[str, Any], update: Callable[[], None]) -> bool:
        """Starts computing the browser's request in a worker thread, superseding the running one;
        False when it should be computed here (nothing slow is missing, or a worker is not allowed)."""
        loop = _main_loop()
        if loop is None or not self._computes_unseen():
            return False
        try:
            steps = self._background_work()
        except Exception:  # refused at once (too large, a bad value): the update here says so and undoes it
            return False
        if not steps:
            return False
        previous = self._job
        number = next(self._numbers)
        job = _Job(number, self._progress_run(number, loop), [change], [update])
        if previous is not None:  # superseded: it stops at its next pass; its changes wait for this result
            previous.run.cancel()
            job.changes[:0], job.updates[:0] = previous.changes, previous.updates
        job.thread = threading.Thread(target=self._work, args=(job, steps, previous, loop),
                                      name=f"saliency-widgets-{number}", daemon=True)
        self._job = job
        job.thread.start()
        return True

    def _work(self, job: _Job, steps: list[Step], previous: Optional[_Job], loop: asyncio.AbstractEventLoop) -> None:
        """The worker thread: waits for the superseded computation to stop, runs ``steps`` and hands
        their results to the main thread (:meth:`_finish`)."""
        if previous is not None and previous.thread is not None:
            previous.thread.join()
        keep: list[Callable[[], None]] = []
        error: Optional[BaseException] = None
        try:
            with beside_the_user(), progress.watching(job.run):
                for step in steps:
                    job.run.check()
                    keep.append(step())
        except BaseException as exc:  # Cancelled too: the main thread decides what it means
            error = exc
        _call_soon(loop, self._finish, job, keep, error)

    def _finish(self, job: _Job, keep: list[Callable[[], None]], error: Optional[BaseException]) -> None:
        """On the main thread: applies the latest request's results, or undoes its changes when it was
        cancelled (no message) or failed (the error shown). A superseded job's results are dropped."""
        if job is not self._job:
            return
        self._job = None
        if error is not None:
            self._undo(job.changes, "" if isinstance(error, progress.Cancelled) else describe(error))
            return
        try:
            for store in keep:
                store()
            with self.hold_sync(), self._watched():
                for update in job.updates:
                    update()
        except Exception as exc:
            self._undo(job.changes, describe(exc))
            return
        self._show_error("")

    def _stop_job(self) -> None:
        """Cancels the worker's computation: a change computed on the main thread supersedes it."""
        job, self._job = self._job, None
        if job is not None:
            job.run.cancel()

    def _watched(self) -> Any:
        """A block whose computations on this thread report their progress to the views (no cancel:
        the kernel reads no message until the block ends)."""
        return progress.watching(self._progress_run(next(self._numbers), None))

    def _progress_run(self, number: int, loop: Optional[asyncio.AbstractEventLoop]) -> progress.Run:
        """A run whose reports reach the views as ``{"type": "progress", "id": number, ...}``; sent from
        the main thread (through ``loop`` when it runs in a worker, which can then be cancelled)."""
        def report(run: progress.Run) -> None:
            message = {"type": "progress", "id": number, "cancellable": loop is not None, **progress.describe(run)}
            if loop is None:
                self.send(message)
            else:
                _call_soon(loop, self.send, message)

        return progress.Run(listener=report)
