"""What identifies a run of :func:`~saliency_widgets.attribute_dataset`, as JSON-able hashes.

- :func:`weights_fingerprint`: one SHA-256 hash of every weight of the model as its backend
  lists them (``Backend.named_weights``: torch ``state_dict()`` with its keys, buffers
  included; Keras ``model.weights`` in order), with their dtypes and shapes: the same model
  class with other weights hashes differently, the same weights in a rebuilt model the same;
- :func:`describe`: the method's options, arrays by their hash and layers by their names
  (torch) or positions (Keras);
- :func:`digest`: the hash of a batch's inputs, or of the rows a batch wrote to one column.

No framework is imported here: weights come from the model's backend, option tensors become
numpy through :func:`~saliency_widgets.backends.base.to_numpy`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Optional

import numpy as np

from ..backends import get_backend
from ..backends.base import to_numpy

#: Hex digits kept of every SHA-256 (128 bits): collisions are out of reach, journal lines stay short.
DIGEST_HEX = 32


def digest(arrays: Iterable[np.ndarray]) -> str:
    """SHA-256 of ``arrays``: each one's dtype and shape, then its raw bytes (C order). SHA-256,
    not BLAKE2b: this machine's CPU computes it in hardware, 0.43 against 0.86 ms for a batch of
    64 3×32×32 images, which every finished batch pays twice (its inputs and its results)."""
    h = hashlib.sha256()
    for array in arrays:
        _update(h, np.asarray(array))
    return h.hexdigest()[:DIGEST_HEX]


def weights_fingerprint(model: Any) -> Optional[dict[str, Any]]:
    """``{"sha256": hash, "tensors": count, "values": count}`` of every weight of ``model``
    (``Backend.named_weights``), or None for a callable whose weights cannot be found."""
    named = get_backend(model).named_weights()
    if named is None:
        return None
    h = hashlib.sha256()
    for name, array in named:
        h.update(str(name).encode("utf-8", "replace") + b"\0")
        _update(h, array)
    return {"sha256": h.hexdigest()[:DIGEST_HEX], "tensors": len(named), "values": sum(int(a.size) for _, a in named)}


def describe(value: Any, model: Any = None) -> Any:
    """A JSON-able stand-in for an option: arrays by their hash, a layer of ``model`` by its
    name, a function by its qualified name."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): describe(v, model) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [describe(v, model) for v in value]
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        array = np.asarray(to_numpy(value))
        return {"shape": list(array.shape), "sha256": digest([array])}
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    modules = getattr(model, "named_modules", None)
    if callable(modules) and callable(getattr(value, "named_modules", None)):  # a torch submodule
        for name, module in modules():
            if module is value:
                return {"module": name, "class": kind}
    layers = getattr(model, "layers", None)
    if isinstance(layers, (list, tuple)):  # a Keras layer: by position, its name may be a generated one
        for position, layer in enumerate(layers):
            if layer is value:
                return {"layer": position, "class": kind}
    name = getattr(value, "name", None)
    if isinstance(name, str):  # a nested Keras layer (or anything else with a name)
        return {"name": name, "class": kind}
    qualname = getattr(value, "__qualname__", None)
    if isinstance(qualname, str):  # a function or a class
        return f"{getattr(value, '__module__', '')}.{qualname}"
    return kind


def _update(h: Any, array: np.ndarray) -> None:
    h.update(f"{array.dtype.str}{tuple(array.shape)};".encode())
    if array.dtype.hasobject:
        h.update(repr(array.tolist()).encode())
        return
    array = np.ascontiguousarray(array)
    h.update(memoryview(array.reshape(-1).view(np.uint8)))
