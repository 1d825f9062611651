"""Framework detection. The only place that decides which backend package to import.

Detection looks at the model's class hierarchy by module name, so that
``import saliency_widgets`` imports no framework: a backend package is imported only once a
model of its framework shows up, and a model of one framework never imports another's.
A Keras 3 model is recognised before anything else: on the torch backend it is also a
``torch.nn.Module``, yet its layers, layout and weights are Keras's (DESIGN §3.9).
"""

from __future__ import annotations

import sys
import weakref
from importlib import import_module
from typing import Any, Iterator, Optional

from ..errors import NotAModelError, SaliencyError
from .base import Backend

#: The values of every public ``framework=`` keyword.
FRAMEWORKS = ("torch", "keras", "jax")

_KERAS_ROOTS = {"keras", "keras_hub", "keras_nlp", "keras_cv"}
_JAX_ROOTS = {"jax", "jaxlib", "flax"}

# One backend per live model: it keeps compiled functions, the chosen Jacobian strategy and
# the detected final activation across calls. The backend asked for with ``framework=`` is
# remembered too, so every later call on that model (by any entry point) gets it.
_cache: "weakref.WeakKeyDictionary[Any, Backend]" = weakref.WeakKeyDictionary()


def _class_roots(obj: Any) -> set[str]:
    return {cls.__module__.split(".")[0] for cls in type(obj).__mro__}


def get_backend(model: Any, framework: Optional[str] = None) -> Backend:
    """The backend for ``model``: a Keras 3 model (on TensorFlow, torch or JAX), a
    ``torch.nn.Module`` or a callable on torch tensors, a Flax NNX module or a ``jax.jit``
    function. ``framework`` ("torch", "keras" or "jax") places a callable that detection cannot
    (a plain function on jax arrays: ``framework="jax"``); None detects."""
    if isinstance(model, Backend):
        return model
    if framework is not None and not (isinstance(framework, str) and framework in FRAMEWORKS):
        raise SaliencyError(f"framework must be one of {', '.join(map(repr, FRAMEWORKS))} or None (detected); "
                            f"got {framework!r}"[:200])
    try:
        cached = _cache[model]
        if framework is None or cached.framework == framework:
            return cached
    except (KeyError, TypeError):
        pass
    backend = _make_backend(model, _detect(model, framework))
    try:
        _cache[model] = backend
    except TypeError:  # not weak-referenceable (e.g. a bound method): no caching
        pass
    return backend


def _detect(model: Any, framework: Optional[str]) -> str:
    """The framework of ``model``: its classes' (refusing a ``framework`` they contradict), else for a
    plain callable ``framework``, else torch's or JAX's, whichever is loaded (torch first)."""
    placed = _placed_by_class(model)
    if placed is not None:
        if framework is not None and framework != placed:
            raise SaliencyError(f"{type(model).__qualname__} is a {placed} model, not {framework}: leave framework= "
                                 "out (it is for plain functions, which detection cannot place)")
        return placed
    if framework is not None:
        if not callable(model) or isinstance(model, type):
            raise SaliencyError(f"framework={framework!r} needs a callable model; got {type(model).__qualname__}")
        return framework
    if callable(model) and not isinstance(model, type):
        if "torch" in sys.modules:
            return "torch"
        if "jax" in sys.modules:
            return "jax"
    raise NotAModelError(
        f"expected a model: a Keras 3 model (on TensorFlow, torch or JAX), a torch.nn.Module or a callable "
        f"on torch tensors, a Flax NNX module or a jax.jit function (a plain function on jax arrays: pass "
        f"framework='jax'); got {type(model).__module__}.{type(model).__qualname__}"
    )


def _placed_by_class(model: Any) -> Optional[str]:
    """The framework the classes of ``model`` belong to (Keras first), or None."""
    roots = _class_roots(model)
    if "tf_keras" in roots and "keras" not in roots:
        raise NotAModelError(
            f"{type(model).__qualname__} is a Keras 2 (tf_keras) model, which saliency_widgets does not support "
            "(its layers and variables differ from Keras 3's); load it in Keras 3: save it with "
            "model.save('model.h5') and load it with keras.saving.load_model('model.h5')"
        )
    if roots & _KERAS_ROOTS:
        return "keras"
    if "torch" in roots:
        return "torch"
    if roots & _JAX_ROOTS:
        return "jax"
    return None


def _make_backend(model: Any, framework: str) -> Backend:
    if framework == "keras":
        from .keras.backend import KerasBackend

        return KerasBackend(model)
    if framework == "torch":
        from .torch.backend import TorchBackend

        return TorchBackend(model)
    from .jax.backend import JaxBackend

    return JaxBackend(model)


def randomized_copies(model: Any, *, cascade: bool = True, seed: Optional[int] = None) -> Iterator[tuple[str, Any]]:
    """Copies of ``model`` with its layers re-initialized from the output backwards, as
    ``(layer name, copy)`` (the model randomization test); ``model`` itself is never changed."""
    backend = get_backend(model)
    module = import_module(f"{__name__}.{backend.framework}.randomize")
    return module.randomized_copies(backend.model, cascade=cascade, seed=seed)
