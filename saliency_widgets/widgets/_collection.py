"""Building a widget's first view with the cyclic garbage collector paused."""

from __future__ import annotations

import functools
import gc
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def collection_deferred(method: F) -> F:
    """``method`` run with cyclic garbage collection paused, and the collector left as it was.

    The first widget of a kernel loads the widget classes and, for its static PNG,
    matplotlib: hundreds of thousands of new objects, whose count sets off full
    collections over everything the framework has loaded (0.15 s each with torch).
    Paused, those collections run after the widget is shown instead of before it;
    reference counting still frees everything that is not in a cycle.
    """

    @functools.wraps(method)
    def paused(*args: Any, **kwargs: Any) -> Any:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return method(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return paused  # type: ignore[return-value]
