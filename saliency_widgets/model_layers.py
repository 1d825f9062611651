"""The public functions that list a model's layers and read their weights: ``sw.layers``,
``sw.layer_weights``, ``sw.layer_equation``.

They look the model's backend up, so they live above ``backends/``; the records they return
(:class:`~.weights.LayerInfo`, :class:`~.weights.WeightBlock`) live in :mod:`.weights`, which
the backends import (imports flow downward only).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from .backends import get_backend
from .errors import SaliencyError
from .weights import LayerInfo, WeightBlock, recurrent_equation, recurrent_equation_parts
from .frameworks import accepts_framework


@accepts_framework
def layers(model: Any, example: Any = None, *, input_shape: Optional[Sequence[int]] = None) -> list[LayerInfo]:
    """Every layer of ``model`` with its per-sample output shape and parameter count.

    Torch models need ``example`` (a batch, as the model takes it) or
    ``input_shape`` (one sample's shape, filled with zeros) to know output
    shapes; without either, ``output_shape`` is ``None``. Models that take
    integer tokens need an integer ``example``.
    """
    backend = get_backend(model)
    if example is not None and input_shape is not None:
        raise SaliencyError("pass either example= (a batch) or input_shape= (one sample's shape), not both")
    if example is not None:
        example = backend.to_numpy(example)
    elif input_shape is not None:
        example = np.zeros((1, *tuple(int(n) for n in input_shape)), dtype=np.float32)
    return backend.layers(example)


@accepts_framework
def layer_equation(model: Any, layer: Any) -> Optional[str]:
    """The update equation of a recurrent layer, naming its weight blocks; ``None`` for other layers."""
    cell = get_backend(model).layer_cell(layer)
    return None if cell is None else recurrent_equation(cell)


@accepts_framework
def layer_equation_parts(model: Any, layer: Any) -> tuple[list[str], list[str]]:
    """``(math lines, prose lines)`` of :func:`layer_equation` (both empty for non-recurrent
    layers): the widget typesets the first and prints the second."""
    cell = get_backend(model).layer_cell(layer)
    return ([], []) if cell is None else recurrent_equation_parts(cell)


@accepts_framework
def layer_name(model: Any, layer: Any) -> str:
    """The name (as in :func:`layers`) of ``layer``: a name, an index or the layer object."""
    return get_backend(model).find_layer(layer).name


@accepts_framework
def layer_weights(model: Any, layer: Any, *, split_gates: bool = True) -> list[WeightBlock]:
    """The named, documented weight blocks of one layer.

    ``layer`` is a name (as in :func:`layers`), an index into :func:`layers`,
    or the layer object. With ``split_gates`` the packed gate matrices of LSTM
    and GRU layers come back as one block per gate.
    """
    return get_backend(model).layer_weights(layer, split_gates=split_gates)
