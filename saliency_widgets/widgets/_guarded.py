"""The base of every widget: trait changes that fail leave the previous view in place."""

from __future__ import annotations

import pathlib
from typing import Any, Callable

import anywidget
import traitlets as t

from ..errors import SaliencyError, describe
from ._export import ExportMixin

STATIC = pathlib.Path(__file__).resolve().parent.parent / "static"


class InvalidValue(SaliencyError, t.TraitError):
    """A value a widget refuses. A ``TraitError`` too, so that a refusal inside held notifications
    (``set_state``, as the browser sets traits) rolls the trait back to its old value."""


def bundle(name: str) -> str:
    """The built front-end module ``name`` from ``static/``, as text. A widget class's ``_esm``
    is this text, not the path: anywidget connects every instance to a path's change signal,
    which keeps each widget (and its model) alive for good."""
    return (STATIC / name).read_text(encoding="utf-8")


class GuardedWidget(ExportMixin, anywidget.AnyWidget):
    """An anywidget whose updates either succeed or are undone.

    A failed update shows its message inside the widget (drawn with ``data-sw-role="error"``;
    a model's own exception by its type and message, :func:`..errors.describe`), puts the changed
    trait back to its old value and re-raises, so Python sees a clear exception and the view stays
    usable; the next successful update clears the message. The message travels as a custom message
    (``{"type": "error", "message"}``, ``""`` to clear), not as a synced trait: it is never saved
    with the notebook's widget state, restored on a page reload or written into a ``to_html`` page.
    """

    #: The message the widget shows ("" when none), see :meth:`_show_error`.
    _error_text = ""

    #: False until the subclass' ``__init__`` has built its first view.
    _ready = False
    #: True while a failed change is being undone (its observer must not run again).
    _reverting = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_msg(self._on_custom_message)

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
        """Runs ``update`` for a trait change; on failure show the error, restore
        the trait's old value (the previous view stays) and re-raise."""
        if not self._ready or self._reverting:
            return
        try:
            with self.hold_sync():
                update()
        except Exception as exc:
            self._reverting = True
            try:
                setattr(self, change["name"], change["old"])
                try:
                    with self.hold_sync():
                        self._after_revert()
                except Exception:  # best effort: the first error is the one to report
                    pass
            finally:
                self._reverting = False
            self._show_error(describe(exc))
            raise
        self._show_error("")

    def _after_revert(self) -> None:
        """Called once a failed change was undone, to re-send what the restored state shows."""
