"""Keras graph models that compute each sample's output from that sample alone, told from the graph.

A Sequential or functional model built only from Keras's own per-sample layers (convolutions,
dense layers, inference-mode normalization, pooling, merges along a non-batch axis, ...) cannot
mix the samples of a batch, and declares its output shape for fully known input shapes. For
such a model the first attribution call needs no probe pass (see ``attribution._start``):
on a fresh MobileNetV2 that pass costs about as much as half the gradient itself.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ...errors import SaliencyError
from ...heads import select_output
from .graph import graph_of

#: Layer classes (exact types: a subclass may override ``call``) whose inference-mode output
#: for a sample is a function of that sample alone, whatever their settings except those
#: checked below: a custom ``activation`` callable, an ``axis`` reaching the batch axis, a
#: stateful recurrence.
_PER_SAMPLE_LAYERS = (
    "InputLayer", "Dense", "Embedding", "Identity",
    "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "BatchNormalization", "Normalization", "Rescaling", "LayerNormalization", "UnitNormalization",
    "GroupNormalization",
    "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "ActivityRegularization",
    "Flatten", "Reshape", "Permute", "RepeatVector", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
    "Cropping1D", "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D",
    "SimpleRNN", "LSTM", "GRU",
)
#: Of those, the layers whose ``axis`` says what they normalize or join along.
_AXIS_LAYERS = ("LayerNormalization", "UnitNormalization", "GroupNormalization", "Softmax", "Concatenate")


def declared_output_shape(model: Any, head: Any, names: list[str], spec: Any, entries: Sequence[np.ndarray],
                          keras: Any) -> Optional[tuple[int, ...]]:
    """One sample's shape of the output ``head`` picks (None, an output index or name, or a
    :class:`~saliency_widgets.backends.base.LayerRef`; ``names``: the model's output names), when
    ``model`` is a graph of per-sample layers whose declared inputs are exactly ``entries``'
    shapes; else None."""
    graph = graph_of(model, keras)
    if graph is None or not _declares(graph, spec, entries) or not _per_sample(graph, keras):
        return None
    output = _head_output(graph, head, names, keras)
    if output is None:
        return None
    shape = tuple(output.shape)[1:]
    return shape if all(isinstance(d, int) for d in shape) else None


def input_mismatch(model: Any, spec: Any, entries: Sequence[np.ndarray], keras: Any) -> Optional[str]:
    """What in ``entries`` contradicts the inputs a graph model declares (their structure, names,
    ranks and known sizes, matched as Keras itself matches them), or None: they fit, or the model
    declares no inputs."""
    graph = graph_of(model, keras)
    if graph is None:
        return None
    declared = list(graph.inputs)
    if spec.kind == "dict":
        struct = graph._inputs_struct
        names = list(struct) if isinstance(struct, dict) else [t.name for t in declared]
        missing = [n for n in names if n not in spec.keys]
        if missing:
            return f"no entry for input {missing[0]!r}: the model's inputs are named {', '.join(map(repr, names))}"
    try:
        matched = graph._standardize_inputs(spec.pack([e[:1] for e in entries]))
    except (ValueError, TypeError, KeyError, IndexError) as err:  # Keras's words for what does not match
        return str(err)
    if len(matched) != len(declared):
        return f"the model takes {len(declared)} inputs, got {len(entries)}"
    for tensor, given in zip(declared, matched):
        want, got = tuple(tensor.shape)[1:], tuple(given.shape)[1:]
        if len(want) != len(got) or any(w is not None and w != g for w, g in zip(want, got)):
            which = f"input {tensor.name!r}" if len(declared) > 1 else "its input"
            return f"{which} is declared {want} per sample, got {got}"
    return None


def _declares(graph: Any, spec: Any, entries: Sequence[np.ndarray]) -> bool:
    """Whether the graph's inputs are declared with exactly the entries' per-sample shapes."""
    inputs = list(graph.inputs)
    if len(inputs) != len(entries):
        return False
    if spec.kind == "dict":
        by_name = {t.name: t for t in inputs}
        if set(by_name) != set(spec.keys):
            return False
        inputs = [by_name[k] for k in spec.keys]
    return all(tuple(t.shape)[1:] == e.shape[1:] for t, e in zip(inputs, entries))


def _per_sample(graph: Any, keras: Any) -> bool:
    """Whether every operation of the graph (and of graphs nested in it) is a per-sample layer."""
    for op in graph.operations:
        nested = graph_of(op, keras)
        if nested is not None:
            if not _per_sample(nested, keras):
                return False
            continue
        name = type(op).__name__
        if name not in _PER_SAMPLE_LAYERS or getattr(keras.layers, name, None) is not type(op):
            return False
        if not _builtin_activations(op, keras) or getattr(op, "stateful", False):
            return False
        if name in _AXIS_LAYERS and _reaches_batch_axis(op):
            return False
    return True


def _builtin_activations(layer: Any, keras: Any) -> bool:
    """Whether the layer's ``activation`` (and a recurrence's ``recurrent_activation``) are Keras's own."""
    for attr in ("activation", "recurrent_activation"):
        activation = getattr(layer, attr, None)
        if activation is not None and not isinstance(activation, str) and (
                getattr(keras.activations, getattr(activation, "__name__", ""), None) is not activation):
            return False
    return True


def _reaches_batch_axis(layer: Any) -> bool:
    """Whether the layer's ``axis`` names axis 0 of any tensor it is called on (unknown: yes)."""
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    ranks = [len(t.shape) for node in getattr(layer, "_inbound_nodes", []) for t in node.output_tensors]
    return not ranks or not all(isinstance(a, int) for a in axes) or any(a % r == 0 for a in axes for r in ranks)


def _head_output(graph: Any, head: Any, names: list[str], keras: Any) -> Optional[Any]:
    """The symbolic tensor ``head`` explains, if the graph tells it."""
    if head is not None and not isinstance(head, (int, str)):
        nodes = getattr(getattr(head, "obj", None), "_inbound_nodes", [])
        return nodes[0].output_tensors[0] if len(nodes) == 1 and len(nodes[0].output_tensors) == 1 else None
    try:
        return select_output(list(graph.outputs), head, lambda t: isinstance(t, keras.KerasTensor), names)
    except SaliencyError:  # the real call says what is wrong with the head
        return None
