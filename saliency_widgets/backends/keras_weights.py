"""Layers and named weight blocks of Keras 3 models (used by ``KerasBackend``).

Only maps Keras variables onto the framework-free builders of
``saliency_widgets.weights``; all names, descriptions and equations live there.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional

import keras
import numpy as np

from ..errors import SaliencyWarning
from ..weights import (
    LayerInfo,
    Packed,
    RecurrentCell,
    WeightBlock,
    batchnorm_block,
    bias_block,
    conv_kernel,
    dense_kernel,
    embedding_table,
    no_weights_error,
    raw_block,
    recurrent_blocks,
    recurrent_equation,
    resolve_layer,
)

_CONV = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_RNN = (keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU)
_BATCHNORM_PARTS = {"gamma": "gamma", "beta": "beta", "moving_mean": "mean", "moving_variance": "variance"}


# -------------------------------------------------------------------- layers
def listed_layers(model: Any) -> list[tuple[str, Any]]:
    """``model.layers``, with nested models flattened into ``"outer/inner"`` names.

    Wrappers such as ``Bidirectional`` stay one layer.
    """
    if not hasattr(model, "layers"):
        return [(model.name, model)]
    out: list[tuple[str, Any]] = []

    def walk(container: Any, prefix: str) -> None:
        for layer in container.layers:
            if isinstance(layer, keras.Model):
                walk(layer, f"{prefix}{layer.name}/")
            else:
                out.append((prefix + layer.name, layer))

    walk(model, "")
    return out


def keras_layers(model: Any, example: Optional[np.ndarray] = None) -> list[LayerInfo]:
    """LayerInfo for every layer; output shapes from each layer's symbolic ``output``.

    ``example`` is not needed (Keras records shapes when the model is built);
    layers outside a built functional/Sequential graph get ``output_shape=None``.
    """
    infos = [
        LayerInfo(name, type_name(layer), _output_shape(layer), int(layer.count_params()) if layer.built else 0)
        for name, layer in listed_layers(model)
    ]
    unknown = [info.name for info in infos if info.output_shape is None]
    if unknown:
        warnings.warn(
            f"output shapes unknown for {', '.join(unknown)}: Keras records them only for layers of a "
            f"built functional or Sequential model (give it a keras.Input or call model.build)",
            SaliencyWarning,
            stacklevel=4,
        )
    return infos


def type_name(layer: Any) -> str:
    """The class name; wrappers name what they wrap, e.g. ``"Bidirectional(LSTM)"``."""
    inner = getattr(layer, "forward_layer", None) or getattr(layer, "layer", None)
    name = type(layer).__name__
    return f"{name}({type(inner).__name__})" if isinstance(inner, keras.layers.Layer) else name


def _output_shape(layer: Any) -> Optional[tuple]:
    try:
        output = layer.output
    except (AttributeError, ValueError):
        return None
    if isinstance(output, (list, tuple)):
        output = output[0]
    return tuple(output.shape[1:])


# ------------------------------------------------------------------- weights
def keras_layer_weights(model: Any, layer: Any, split_gates: bool) -> list[WeightBlock]:
    """The named blocks of one layer (a name, an index or the layer object)."""
    name, obj = resolve_layer(listed_layers(model), layer)
    blocks = _blocks(obj, split_gates, "", "")
    if not blocks:
        raise no_weights_error(name, type_name(obj))
    return blocks


def keras_layer_equation(model: Any, layer: Any) -> Optional[str]:
    """The update equation of a recurrent layer (or a Bidirectional one), ``None`` otherwise."""
    cell = keras_layer_cell(model, layer)
    return None if cell is None else recurrent_equation(cell)


def keras_layer_cell(model: Any, layer: Any) -> Optional[RecurrentCell]:
    """What a recurrent (or Bidirectional recurrent) layer computes, ``None`` otherwise."""
    _, obj = resolve_layer(listed_layers(model), layer)
    if isinstance(obj, keras.layers.Bidirectional) and isinstance(obj.forward_layer, _RNN):
        return _cell(obj.forward_layer, bidirectional=True)
    return _cell(obj) if isinstance(obj, _RNN) else None


def keras_layer_name(model: Any, layer: Any) -> str:
    """The listed name of ``layer`` (a name, an index or the layer object)."""
    return resolve_layer(listed_layers(model), layer)[0]


def _blocks(layer: Any, split_gates: bool, prefix: str, source_prefix: str) -> list[WeightBlock]:
    """Interpreted blocks of ``layer`` plus its other variables shown raw."""
    if isinstance(layer, keras.layers.Bidirectional):
        return [
            *_blocks(layer.forward_layer, split_gates, "forward · ", f"{layer.forward_layer.name}/"),
            *_blocks(layer.backward_layer, split_gates, "backward · ", f"{layer.backward_layer.name}/"),
        ]
    arrays = {v.name: keras.ops.convert_to_numpy(v.value) for v in layer.weights}
    blocks = _interpret(layer, arrays, split_gates, prefix, source_prefix)
    used = {b.source for b in blocks}
    return blocks + [
        raw_block(source_prefix + n, a, type(layer).__name__) for n, a in arrays.items() if source_prefix + n not in used
    ]


def _interpret(layer: Any, arrays: dict[str, np.ndarray], split_gates: bool, prefix: str, src: str) -> list[WeightBlock]:
    """Blocks for the layer types whose layout is known; ``[]`` for others."""
    bias = [bias_block(src + "bias", arrays["bias"], "filter" if isinstance(layer, _CONV) else "unit")] if "bias" in arrays else []
    if isinstance(layer, keras.layers.Dense) and "kernel" in arrays:
        return [dense_kernel(src + "kernel", arrays["kernel"], "in_out"), *bias]
    if isinstance(layer, _CONV) and "kernel" in arrays:
        return [conv_kernel(src + "kernel", arrays["kernel"], "in_out", layer.groups), *bias]
    if isinstance(layer, keras.layers.Embedding) and "embeddings" in arrays:
        return [embedding_table(src + "embeddings", arrays["embeddings"])]
    if isinstance(layer, keras.layers.BatchNormalization):
        return [batchnorm_block(part, src + n, arrays[n]) for n, part in _BATCHNORM_PARTS.items() if n in arrays]
    if isinstance(layer, _RNN) and {"kernel", "recurrent_kernel"} <= set(arrays):
        return recurrent_blocks(_cell(layer), _rnn_packed(layer, arrays, split_gates, src), split_gates, prefix)
    return []


def _activation_name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or str(fn)


def _cell(layer: Any, bidirectional: bool = False) -> RecurrentCell:
    kind = "lstm" if isinstance(layer, keras.layers.LSTM) else "gru" if isinstance(layer, keras.layers.GRU) else "simple"
    cell = layer.cell
    return RecurrentCell(
        "keras",
        kind,
        activation=_activation_name(cell.activation),
        recurrent_activation=_activation_name(getattr(cell, "recurrent_activation", "sigmoid")),
        reset_after=bool(getattr(cell, "reset_after", True)),
        bidirectional=bidirectional,
    )


def _rnn_packed(layer: Any, arrays: dict[str, np.ndarray], split_gates: bool, src: str) -> list[Packed]:
    """Keras packs the gates along the last axis: kernel is (input, gates·units)."""
    packed = [
        Packed(src + "kernel", "input kernel", "input", arrays["kernel"], 1, "multiplies the input x(t)", ("input features", "units")),
        Packed(
            src + "recurrent_kernel", "recurrent kernel", "recurrent", arrays["recurrent_kernel"], 1,
            "multiplies the previous hidden state h(t−1)", ("units of h(t−1)", "units"),
        ),
    ]
    bias = arrays.get("bias")
    if bias is None:
        return packed
    if bias.ndim == 1:
        return packed + [Packed(src + "bias", "bias", "bias", bias, 0, "added to the pre-activation", ("unit",))]
    candidate = {"candidate": "for the candidate h the recurrent bias sits inside the reset gate's product r ⊙ (h(t−1)·W_hh + b_hh)"}
    if split_gates:
        return packed + [
            Packed(src + "bias", "input bias", "bias", bias[0], 0, "row 0 of the GRU bias, added to x(t)·W_x", ("unit",)),
            Packed(src + "bias", "recurrent bias", "bias", bias[1], 0, "row 1 of the GRU bias, added to h(t−1)·W_h", ("unit",), notes=candidate),
        ]
    what = "row 0 (input bias) is added to x(t)·W_x and row 1 (recurrent bias) to h(t−1)·W_h"
    return packed + [Packed(src + "bias", "bias", "bias", bias, 1, what, ("bias row (input then recurrent)", "unit"), notes=candidate)]
