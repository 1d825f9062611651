"""Framework detection. The only place that decides which backend module to import.

Detection looks at the model's class hierarchy by module name, so that
``import saliency_widgets`` never imports torch or tensorflow: a backend module
is imported only once a model of its framework shows up.
"""

from __future__ import annotations

import sys
import weakref
from importlib import import_module
from typing import Any, Iterator, Optional

from ..errors import NotAModelError
from .base import Backend

_KERAS_ROOTS = ("keras", "tensorflow")


def _class_roots(obj: Any) -> set[str]:
    return {cls.__module__.split(".")[0] for cls in type(obj).__mro__}


# One backend per live model: it keeps compiled functions (Keras), the chosen
# Jacobian strategy and the detected final activation across calls.
_cache: "weakref.WeakKeyDictionary[Any, Backend]" = weakref.WeakKeyDictionary()


def get_backend(model: Any) -> Backend:
    """The backend for ``model``: a ``torch.nn.Module`` (or a callable on torch
    tensors) or a Keras 3 model on the TensorFlow backend."""
    if isinstance(model, Backend):
        return model
    try:
        return _cache[model]
    except (KeyError, TypeError):
        pass
    backend = _make_backend(model)
    try:
        _cache[model] = backend
    except TypeError:  # not weak-referenceable (e.g. a bound method): no caching
        pass
    return backend


def _make_backend(model: Any) -> Backend:
    roots = _class_roots(model)
    if "tf_keras" in roots and "keras" not in roots:
        raise NotAModelError(
            f"{type(model).__qualname__} is a Keras 2 (tf_keras) model, which saliency_widgets does not support "
            "(its layers and variables differ from Keras 3's); load it in Keras 3: save it with "
            "model.save('model.h5') and load it with keras.saving.load_model('model.h5')"
        )
    if "torch" in roots:
        from .torch_backend import TorchBackend

        return TorchBackend(model)
    if roots & set(_KERAS_ROOTS):
        from .keras_backend import KerasBackend

        return KerasBackend(model)
    if callable(model) and "torch" in sys.modules and not isinstance(model, type):
        from .torch_backend import TorchBackend

        return TorchBackend(model)
    raise NotAModelError(
        f"expected a model: a torch.nn.Module, a callable on torch tensors, or a Keras 3 "
        f"model (keras.Model / Sequential / functional) on the TensorFlow backend; "
        f"got {type(model).__module__}.{type(model).__qualname__}"
    )


def randomized_copies(model: Any, *, cascade: bool = True, seed: Optional[int] = None) -> Iterator[tuple[str, Any]]:
    """Copies of ``model`` with its layers re-initialized from the output backwards, as
    ``(layer name, copy)`` (the model randomization test); ``model`` itself is never changed."""
    backend = get_backend(model)
    module = import_module(f"{__name__}.{backend.framework}_randomize")
    return module.randomized_copies(backend.model, cascade=cascade, seed=seed)
