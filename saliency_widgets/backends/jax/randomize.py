"""Copies of a Flax NNX module with layers re-initialized, for the model randomization test.

The user's module is never touched: every copy is an ``nnx.clone``, and the new values are drawn
with ``jax.random`` keys seeded from ``seed`` (the module's own ``nnx.Rngs`` streams are not
advanced). NNX layers do not keep their initializers, so each variable gets Flax's default
initializer for its kind: kernels LeCun normal (``(…, in, out)``), embedding tables Flax's
``Embed`` default, biases and offsets zeros, scales ones, batch-norm statistics mean 0 and
variance 1; any other variable is drawn from a normal with its own mean and standard deviation.
"""

from __future__ import annotations

from typing import Any, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ...errors import SaliencyError
from .modules import layer_variables, listed_modules, navigate

_ZEROS = ("bias", "mean")
_ONES = ("scale", "var")


def randomized_copies(model: Any, *, cascade: bool, seed: int | None) -> Iterator[tuple[str, Any]]:
    """Yields ``(layer name, copy)`` for each listed layer with variables, from the output backwards.

    ``cascade``: each copy also keeps the layers re-initialized before it (one copy, randomized
    further at every step); otherwise only that one layer is re-initialized in a fresh copy."""
    if not isinstance(model, nnx.Module):
        raise SaliencyError("the randomization test re-initializes layers, so it needs a Flax NNX module, not a "
                            "function")
    layers = [item for item in listed_modules(model) if layer_variables(item.module)]
    seeds = np.random.default_rng(seed).integers(2**31, size=len(layers))
    current = nnx.clone(model)
    for item, layer_seed in zip(reversed(layers), seeds):
        if not cascade:
            current = nnx.clone(model)
        _reinitialize(navigate(current, item.path), jax.random.key(int(layer_seed)))
        yield item.name, current


def _reinitialize(module: nnx.Module, key: Any) -> None:
    weights = layer_variables(module)
    for (path, variable), variable_key in zip(weights.items(), jax.random.split(key, len(weights))):
        variable.set_value(_fresh(str(path[-1]), variable.get_value(), module, variable_key))


def _fresh(name: str, old: Any, module: nnx.Module, key: Any) -> Any:
    """New values for the variable ``name`` (of ``module``) that holds ``old``."""
    shape, dtype = old.shape, old.dtype
    if name == "embedding" and isinstance(module, nnx.Embed):
        return nnx.initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0)(key, shape, dtype)
    if name == "kernel" and len(shape) >= 2:
        return nnx.initializers.lecun_normal()(key, shape, dtype)
    if name in _ZEROS:
        return jnp.zeros(shape, dtype)
    if name in _ONES:
        return jnp.ones(shape, dtype)
    values = np.asarray(old, dtype=np.float64)
    spread = values.std() if values.size > 1 else 1.0
    return (values.mean() + spread * jax.random.normal(key, shape)).astype(dtype)
