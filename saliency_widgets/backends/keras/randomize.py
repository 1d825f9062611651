"""Copies of a Keras model with layers re-initialized, for the model randomization test.

The user's model is never touched: every copy is ``keras.models.clone_model``
with the model's weights set into it, and the layers' own initializers are
called with explicit seeds, so no global random state is consumed.
"""

from __future__ import annotations

from typing import Any, Iterator

import keras
import numpy as np

from ...errors import SaliencyError
from .weights import listed_layers

# Variables whose initializer attribute is not named "<variable>_initializer".
_INITIALIZER_NAMES = {"recurrent_kernel": "recurrent_initializer"}


def randomized_copies(model: Any, *, cascade: bool, seed: int | None) -> Iterator[tuple[str, Any]]:
    """Yields ``(layer name, copy)`` for each layer with weights, from the output backwards.

    ``cascade``: each copy also keeps the layers re-initialized before it;
    otherwise only that one layer is re-initialized in a fresh copy. Every
    variable gets its layer's own initializer (``kernel_initializer``, ...);
    a variable without one is drawn from a normal with its own mean and std.
    """
    positions = [i for i, (_, layer) in enumerate(listed_layers(model)) if layer.weights]
    names = [listed_layers(model)[i][0] for i in positions]
    rng = np.random.default_rng(seed)
    current = _clone(model)
    for position, name in zip(reversed(positions), reversed(names)):
        if not cascade:
            current = _clone(model)
        _reinitialize(listed_layers(current)[position][1], rng)
        yield name, current


def _clone(model: Any) -> Any:
    try:
        clone = keras.models.clone_model(model)
    except Exception as err:  # Keras raises several types for models it cannot rebuild
        raise SaliencyError(
            f"the randomization test copies the model with keras.models.clone_model, which failed ({err}); "
            "it needs a Sequential or functional model"
        ) from None
    clone.set_weights(model.get_weights())
    return clone


def _reinitialize(layer: Any, rng: np.random.Generator) -> None:
    for owner in layer._flatten_layers(include_self=True, recursive=True):
        for variable in [*owner._trainable_variables, *owner._non_trainable_variables]:
            initializer = getattr(owner, _INITIALIZER_NAMES.get(variable.name, f"{variable.name}_initializer"), None)
            variable.assign(_fresh_values(variable, initializer, int(rng.integers(2**31))))


def _fresh_values(variable: Any, initializer: Any, seed: int) -> Any:
    if isinstance(initializer, keras.initializers.Initializer):
        config = initializer.get_config()
        if "seed" in config:
            initializer = type(initializer).from_config({**config, "seed": seed})
        return initializer(tuple(variable.shape), dtype=variable.dtype)
    old = np.asarray(variable.numpy())
    draw = np.random.default_rng(seed).normal(old.mean(), old.std() if old.size > 1 else 1.0, old.shape)
    return draw.astype(old.dtype)
