"""The ``framework=`` keyword every public function and widget takes.

Detection places Keras models, torch modules, Flax NNX modules and ``jax.jit`` functions by
their classes (:func:`~.backends.get_backend`); a plain Python function says nothing of the
arrays it takes, so ``framework="jax"`` (or ``"torch"``, ``"keras"``) places it. The choice is
remembered with the model's backend, so every later call on it, by any entry point, gets it.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Optional, TypeVar

from .backends import FRAMEWORKS, get_backend

Function = TypeVar("Function", bound=Callable[..., Any])

_DOC = (f"``framework``: {', '.join(map(repr, FRAMEWORKS))}, or None (default) to detect it from the model; "
        "needed only for a plain function that detection cannot place (one on jax arrays: ``framework=\"jax\"``).")


def accepts_framework(function: Function) -> Function:
    """``function(model, ...)`` (or a method ``(self, model, ...)``) with a keyword ``framework=``
    that places ``model`` before ``function`` runs; its signature and docstring say so."""
    signature = inspect.signature(function)
    names = list(signature.parameters)
    position = names.index("model")

    @functools.wraps(function)
    def wrapper(*args: Any, framework: Optional[str] = None, **kwargs: Any) -> Any:
        if framework is not None:
            model = args[position] if len(args) > position else kwargs["model"]
            get_backend(model, framework)
        return function(*args, **kwargs)

    keyword = inspect.Parameter("framework", inspect.Parameter.KEYWORD_ONLY, default=None,
                                annotation="Optional[str]")
    parameters = list(signature.parameters.values())
    variadic = [i for i, p in enumerate(parameters) if p.kind is inspect.Parameter.VAR_KEYWORD]
    parameters.insert(variadic[0] if variadic else len(parameters), keyword)
    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__doc__ = f"{function.__doc__ or ''}\n\n    {_DOC}\n"
    return wrapper  # type: ignore[return-value]
