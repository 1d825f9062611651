"""``layers()`` of a Flax NNX module: each listed layer with its per-sample output shape, found by
``jax.eval_shape`` (no computation) of a private copy whose layers record their first output."""

from __future__ import annotations

import warnings
from typing import Any, Optional

import jax
import numpy as np
from flax import nnx

from ...errors import SaliencyError, SaliencyWarning
from ...structure import InputSpec
from ...weights import LayerInfo
from .calls import first_calls
from .modules import Listed, listed_modules, size, type_name

_ONE_ARRAY = InputSpec("array", (0,), attributed=(0,))


def jax_layers(model: nnx.Module, example: Optional[np.ndarray], seen: list[tuple]) -> list[LayerInfo]:
    """Every listed layer; output shapes from ``example``, else from zeros shaped like the last single
    input the model was attributed on (``seen``: the keys of ``Backend.output_shapes``), else from zeros
    of a ``Linear``-first model's input width; unknown (None, with a warning) otherwise."""
    listed = listed_modules(model)
    shapes: list[Optional[tuple]] = [None] * len(listed)
    if example is not None:
        shapes = _shapes(model, listed, example)
    else:
        for guess in _guesses(listed, seen):
            try:
                shapes = _shapes(model, listed, guess)
                break
            except SaliencyError:
                pass
    if listed and all(shape is None for shape in shapes):
        warnings.warn(
            "output shapes of an NNX module are unknown without an input: pass example= or input_shape= "
            "(one sample's shape) to sw.layers, or attribute the model once first (sw.saliency on an input)",
            SaliencyWarning, stacklevel=4,
        )
    return [LayerInfo(item.name, type_name(item.module), shape, size(item.module))
            for item, shape in zip(listed, shapes)]


def _shapes(model: nnx.Module, listed: list[Listed], example: np.ndarray) -> list[Optional[tuple]]:
    graphdef, state = nnx.split(model)
    paths = [item.path for item in listed]

    def outputs(s: Any, x: Any) -> dict[int, Any]:
        seen = first_calls(graphdef, s, _ONE_ARRAY, [x], paths)
        return {i: seen[p] for i, p in enumerate(paths) if isinstance(seen.get(p), jax.Array)}

    one = np.asarray(example)[:1]
    try:
        once = jax.eval_shape(outputs, state, one)
        twice = jax.eval_shape(outputs, state, np.concatenate([one, one]))
    except SaliencyError:
        raise
    except Exception as err:  # the model's own error, from its code or JAX's
        raise SaliencyError(f"could not run the model on an input of shape {one.shape} to find output shapes: "
                            f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from err
    return [_per_sample(once.get(i), twice.get(i)) for i in range(len(paths))]


def _per_sample(once: Any, twice: Any) -> Optional[tuple]:
    """Drops the one axis whose size follows the batch size (1 → 2)."""
    if once is None or twice is None or len(once.shape) != len(twice.shape):
        return None
    changed = [i for i, (a, b) in enumerate(zip(once.shape, twice.shape)) if a != b]
    if len(changed) > 1 or changed and (once.shape[changed[0]], twice.shape[changed[0]]) != (1, 2):
        return None
    return tuple(n for i, n in enumerate(once.shape) if i not in changed)


def _guesses(listed: list[Listed], seen: list[tuple]) -> list[np.ndarray]:
    """Inputs to trace when none is given, best first: the last single input attributed, then
    zeros of the input width of a model whose first layer with variables is a ``Linear``."""
    guesses = []
    for key in reversed(seen):
        for part in key if isinstance(key, tuple) else ():
            if _one_array_signature(part):
                shape, dtype = part[0]
                guesses.append(np.zeros((1, *shape), np.dtype(dtype)))
                break
        if guesses:
            break
    first = next((item.module for item in listed if size(item.module)), None)
    if isinstance(first, nnx.Linear):
        guesses.append(np.zeros((1, first.in_features), np.float32))
    return guesses


def _one_array_signature(part: Any) -> bool:
    """Whether ``part`` is the signature of a single array: ``((per-sample shape, dtype str),)``."""
    return (isinstance(part, tuple) and len(part) == 1 and isinstance(part[0], tuple) and len(part[0]) == 2
            and isinstance(part[0][0], tuple) and isinstance(part[0][1], str))
