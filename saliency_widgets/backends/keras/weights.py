"""Layers and named weight blocks of Keras 3 models (used by ``KerasBackend``).

Only maps Keras variables onto the framework-free builders of
``saliency_widgets.weights``; all names, descriptions and equations live there.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional

import keras
import numpy as np

from ...errors import SaliencyError, SaliencyWarning
from ...weights import (
    ATTENTION_AXES,
    LayerInfo,
    Packed,
    RecurrentCell,
    WeightBlock,
    attention_block,
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
#: Block prefix → name of the MultiHeadAttention sublayer (an EinsumDense) that holds it.
_ATTENTION_SUBLAYERS = {"query": "query", "key": "key", "value": "value", "output": "attention_output"}


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


def require_built(model: Any) -> None:
    """Refuses a model that is not built: it has no weights yet, and calling it here would build
    it, which changes the user's model."""
    if not getattr(model, "built", True):
        raise SaliencyError(
            f"the Keras model {model.name!r} is not built yet, so it has no weights: build it or call it on "
            "an input first (model.build((None, *sample_shape)) or model(x)), or give it a keras.Input; "
            "saliency_widgets does not build it for you, as that would change your model"
        )


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
    if not obj.built:
        raise SaliencyError(
            f"layer {name!r} ({type_name(obj)}) is not built, so it has no weights yet: it has never run. "
            "Build the model or call it on an input first; a layer still unbuilt after that is not on the "
            "path of the model's call"
        )
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


def _blocks(layer: Any, split_gates: bool, prefix: str, source_prefix: str) -> list[WeightBlock]:
    """Every variable of ``layer`` exactly once: interpreted blocks, then the others shown raw."""
    if isinstance(layer, keras.layers.Bidirectional):
        return [
            *_blocks(layer.forward_layer, split_gates, "forward · ", f"{layer.forward_layer.name}/"),
            *_blocks(layer.backward_layer, split_gates, "backward · ", f"{layer.backward_layer.name}/"),
        ]
    arrays = _arrays(layer)
    blocks = _interpret(layer, arrays, split_gates, prefix, source_prefix)
    return blocks + [raw_block(source_prefix + path, a, type(layer).__name__) for path, a in arrays.items()]


def _arrays(layer: Any) -> dict[str, np.ndarray]:
    """The values of ``layer.weights`` (what ``count_params`` counts, trainable or not), keyed by
    their path below the layer (``"kernel"``, ``"dense_a/bias"``); a repeated path gets ``" (2)"``."""
    out: dict[str, np.ndarray] = {}
    for v in layer.weights:
        path = key = _below(layer, v.path)
        n = 1
        while key in out:
            n += 1
            key = f"{path} ({n})"
        out[key] = keras.ops.convert_to_numpy(v.value)
    return out


def _below(layer: Any, path: str) -> str:
    """``path`` relative to ``layer`` (Keras gives variables and sublayers the path of their owner)."""
    return path.removeprefix(f"{layer.path}/")


def _interpret(
    layer: Any, arrays: dict[str, np.ndarray], split_gates: bool, prefix: str, src: str
) -> list[WeightBlock]:
    """Blocks for the layer types whose layout is known; takes the arrays they show out of ``arrays``."""
    if isinstance(layer, keras.layers.Dense) and "kernel" in arrays:
        return [dense_kernel(src + "kernel", arrays.pop("kernel"), "in_out"), *_bias(arrays, src, "unit")]
    if isinstance(layer, _CONV) and "kernel" in arrays:
        kernel = conv_kernel(src + "kernel", arrays.pop("kernel"), "in_out", layer.groups)
        return [kernel, *_bias(arrays, src, "filter")]
    if isinstance(layer, keras.layers.Embedding) and "embeddings" in arrays:
        return [embedding_table(src + "embeddings", arrays.pop("embeddings"))]
    if isinstance(layer, keras.layers.BatchNormalization):
        return [batchnorm_block(part, src + n, arrays.pop(n)) for n, part in _BATCHNORM_PARTS.items() if n in arrays]
    if isinstance(layer, keras.layers.MultiHeadAttention):
        return [
            attention_block(part, role, src + path, arrays.pop(path))
            for part, sublayer in _ATTENTION_SUBLAYERS.items()
            for role in ("kernel", "bias")
            if (path := f"{sublayer}/{role}") in arrays and arrays[path].ndim == len(ATTENTION_AXES[part, role])
        ]
    cell = f"{_below(layer, layer.cell.path)}/" if isinstance(layer, _RNN) else ""
    if isinstance(layer, _RNN) and {cell + "kernel", cell + "recurrent_kernel"} <= arrays.keys():
        own = {n: arrays.pop(cell + n) for n in ("kernel", "recurrent_kernel", "bias") if cell + n in arrays}
        return recurrent_blocks(_cell(layer), _rnn_packed(layer, own, split_gates, src), split_gates, prefix)
    return []


def _bias(arrays: dict[str, np.ndarray], src: str, per: str) -> list[WeightBlock]:
    """The ``bias`` of a Dense or convolution layer, if it has one (taken out of ``arrays``)."""
    return [bias_block(src + "bias", arrays.pop("bias"), per)] if "bias" in arrays else []


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
