"""Framework-free descriptions of layers and their weight arrays.

Backends turn a framework's raw variables into these records; widgets and
``sw.layers`` / ``sw.layer_weights`` only ever see these. Everything that both
frameworks share lives here: the gate packing tables, the block names, the
description sentences and the update equations. The backend modules
(``backends/torch/weights.py``, ``backends/keras/weights.py``, ``backends/jax/weights.py``) only map their
framework's variables onto the builders below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Sequence

import numpy as np

from .errors import SaliencyError

Role = Literal["kernel", "input", "recurrent", "bias"]
Framework = Literal["keras", "torch", "flax"]
CellKind = Literal["simple", "lstm", "gru"]


@dataclass(frozen=True)
class LayerInfo:
    """One layer as ``model.summary()`` would list it.

    ``output_shape`` is per sample (no batch axis); ``None`` when it is unknown
    (a torch model for which no example input was given).
    """

    name: str
    type: str
    output_shape: Optional[tuple]
    n_params: int


@dataclass(frozen=True)
class WeightBlock:
    """One named, documented weight array of a layer (DESIGN §3.3)."""

    name: str
    role: Role
    gate: Optional[str]
    source: str
    array: np.ndarray = field(repr=False)
    description: str
    #: What each axis of ``array`` runs over, e.g. ``("input features", "units")``.
    axes: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple:
        return tuple(self.array.shape)


# ------------------------------------------------------------- layer lookup
def resolve_layer(named: Sequence[tuple[str, Any]], layer: Any) -> tuple[str, Any]:
    """Finds ``layer`` (a name, an index or the object itself) among ``(name, object)`` pairs."""
    if isinstance(layer, str):
        for name, obj in named:
            if name == layer:
                return name, obj
    elif isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if -len(named) <= layer < len(named):
            return named[int(layer)]
    else:
        for name, obj in named:
            if obj is layer:
                return name, obj
    valid = ", ".join(repr(name) for name, _ in named) or "(none)"
    raise SaliencyError(f"no layer {layer!r} in this model; valid layers (names or indices 0..{len(named) - 1}): {valid}")


def no_weights_error(name: str, layer_type: str) -> SaliencyError:
    """The error for a layer that holds no weight arrays."""
    return SaliencyError(f"layer {name!r} ({layer_type}) has no weights")


def did_not_run_error(name: str, layer_type: str, ran: Sequence[tuple[str, str]]) -> SaliencyError:
    """The refusal of a layer (``layer=`` or ``head=``) that never ran in the forward pass.
    ``ran``: ``(name, type)`` of the listed layers that did, in order; up to three are
    suggested, those of the same type first (T5's unused ``shared`` → its ``embed_tokens``)."""
    same = [n for n, t in ran if t == layer_type]
    picks = (same or [n for n, _ in ran])[:3]
    example = f", e.g. {', '.join(repr(n) for n in picks)}" if picks else ""
    return SaliencyError(
        f"layer {name!r} ({layer_type}) did not run in the forward pass, so nothing can be attributed to "
        f"it or explained by it; pick a layer that runs{example}"
    )


# ------------------------------------------------------------ descriptions
def shape_text(shape: Sequence[int]) -> str:
    """``(1, 3)`` → ``"1×3"``; ``(3,)`` → ``"3"``."""
    return "×".join(str(int(n)) for n in shape) if len(shape) else "scalar"


def describe(name: str, shape: Sequence[int], what: str, axes: Sequence[str]) -> str:
    """One sentence: ``"<name> (<shape>): <what>; <meaning of the axes>"``."""
    return f"{name} ({shape_text(shape)}): {what}; {_axes_phrase(axes)}"


def _axes_phrase(axes: Sequence[str]) -> str:
    if len(axes) == 0:
        return "a single value"
    if len(axes) == 1:
        return f"one value per {axes[0]}"
    if len(axes) == 2:
        return f"rows = {axes[0]}, columns = {axes[1]}"
    return f"axes = ({', '.join(axes)})"


def as_array(values: Any) -> np.ndarray:
    """A float32 numpy copy (the block never shares memory with the model)."""
    return np.array(values, dtype=np.float32, copy=True)


def block(name: str, role: Role, source: str, array: Any, what: str, axes: Sequence[str], gate: Optional[str] = None) -> WeightBlock:
    """A :class:`WeightBlock` whose description follows :func:`describe`."""
    array = as_array(array)
    return WeightBlock(name, role, gate, source, array, describe(name, array.shape, what, axes), tuple(axes))


# ------------------------------------------------------ feed-forward layers
Layout = Literal["in_out", "out_in"]
"""``"in_out"``: Keras (input axes first, outputs last); ``"out_in"``: torch (outputs first)."""


def dense_kernel(source: str, array: Any, layout: Layout) -> WeightBlock:
    """The matrix of a Dense (Keras, ``y = x·W + b``) or Linear (torch, ``y = x·Wᵀ + b``) layer."""
    if layout == "in_out":
        return block("kernel", "kernel", source, array, "multiplies the input x (y = x·W + b)", ("input features", "units"))
    return block("kernel", "kernel", source, array, "multiplies the input x (y = x·Wᵀ + b)", ("units", "input features"))


def conv_kernel(source: str, array: Any, layout: Layout, groups: int = 1) -> WeightBlock:
    """A convolution kernel: Keras ``(*window, in, filters)``, torch ``(filters, in, *window)``."""
    array = as_array(array)
    window = {1: ("kernel position",), 2: ("kernel row", "kernel column")}.get(
        array.ndim - 2, tuple(f"kernel axis {i}" for i in range(array.ndim - 2))
    )
    channels = "input channels" if groups == 1 else f"input channels per group ({groups} groups)"
    axes = (*window, channels, "filters") if layout == "in_out" else ("filters", channels, *window)
    what = "slides over the input and multiplies each window of it; filter k produces output channel k"
    return block("kernel", "kernel", source, array, what, axes)


def bias_block(source: str, array: Any, per: str = "unit") -> WeightBlock:
    """The bias of a Dense/Linear ("unit") or convolution ("filter") layer."""
    return block("bias", "bias", source, array, f"added to each {per}'s output", (per,))


def embedding_table(source: str, array: Any) -> WeightBlock:
    """An embedding table ``(vocabulary, dimensions)`` (same layout in both frameworks)."""
    what = "looked up, not multiplied: token i's vector is row i"
    return block("embeddings", "kernel", source, array, what, ("tokens", "embedding dimensions"))


_BATCHNORM = {
    "gamma": ("scale γ", "kernel", "multiplies the normalized input"),
    "beta": ("offset β", "bias", "added after scaling"),
    "mean": ("moving mean", "bias", "subtracted from the input at inference (a running statistic, not trained)"),
    "variance": (
        "moving variance",
        "kernel",
        "the input is divided by √(variance + ε) at inference (a running statistic, not trained)",
    ),
}


def batchnorm_block(part: Literal["gamma", "beta", "mean", "variance"], source: str, array: Any) -> WeightBlock:
    """One of a batch normalization's four arrays: y = γ·(x − mean)/√(variance + ε) + β."""
    name, role, what = _BATCHNORM[part]
    return block(name, role, source, array, what, ("channel",))


AttentionPart = Literal["query", "key", "value", "output"]

#: What each projection of multi-head attention does: (its kernel, its bias).
_ATTENTION: dict[str, tuple[str, str]] = {
    "query": ("projects the query input onto each head's queries", "added to each head's queries"),
    "key": ("projects the key input onto each head's keys", "added to each head's keys"),
    "value": ("projects the value input onto each head's values", "added to each head's values"),
    "output": ("maps each head's attended values to the output features, summed over the heads", "added to the output"),
}

#: Axes of the attention blocks in Keras' layout (``MultiHeadAttention``'s einsum sublayers).
ATTENTION_AXES: dict[tuple[str, str], tuple[str, ...]] = {
    ("query", "kernel"): ("query features", "heads", "key dimensions"),
    ("query", "bias"): ("heads", "key dimensions"),
    ("key", "kernel"): ("key features", "heads", "key dimensions"),
    ("key", "bias"): ("heads", "key dimensions"),
    ("value", "kernel"): ("value features", "heads", "value dimensions"),
    ("value", "bias"): ("heads", "value dimensions"),
    ("output", "kernel"): ("heads", "value dimensions", "output features"),
    ("output", "bias"): ("output feature",),
}


def attention_block(part: AttentionPart, role: Literal["kernel", "bias"], source: str, array: Any) -> WeightBlock:
    """The kernel or bias of one projection of multi-head attention, named ``"query · kernel"`` etc.

    The ``·`` puts the projections in rows and kernel / bias in columns of the inspector's table.
    """
    kernel_what, bias_what = _ATTENTION[part]
    what = kernel_what if role == "kernel" else bias_what
    return block(f"{part} · {role}", role, source, array, what, ATTENTION_AXES[part, role])


_BIAS_WORDS = ("bias", "beta", "offset", "shift")


def raw_block(source: str, array: Any, layer_type: str) -> WeightBlock:
    """A variable of a layer type this module does not interpret, shown as stored."""
    array = as_array(array)
    role: Role = "bias" if any(w in source.lower() for w in _BIAS_WORDS) else "kernel"
    what = (
        f"a stored variable of a {layer_type} layer; its layout is not interpreted here, "
        f"so its axes are shown as the framework stores them"
    )
    return block(source, role, source, array, what, tuple(f"axis {i}" for i in range(array.ndim)))


# -------------------------------------------------------- recurrent layers
#: Gates in each framework's packing order: (symbol, gate name).
GATES: dict[tuple[Framework, CellKind], tuple[tuple[str, str], ...]] = {
    ("keras", "lstm"): (("i", "input"), ("f", "forget"), ("c", "cell"), ("o", "output")),
    ("torch", "lstm"): (("i", "input"), ("f", "forget"), ("g", "cell"), ("o", "output")),
    ("keras", "gru"): (("z", "update"), ("r", "reset"), ("h", "candidate")),
    ("torch", "gru"): (("r", "reset"), ("z", "update"), ("n", "candidate")),
    ("keras", "simple"): (),
    ("torch", "simple"): (),
    ("flax", "lstm"): (("i", "input"), ("f", "forget"), ("g", "cell"), ("o", "output")),
    ("flax", "gru"): (("r", "reset"), ("z", "update"), ("n", "candidate")),
    ("flax", "simple"): (),
}


@dataclass(frozen=True)
class RecurrentCell:
    """What a recurrent layer computes, enough to write its update equation."""

    framework: Framework
    kind: CellKind
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    reset_after: bool = True
    num_layers: int = 1
    bidirectional: bool = False
    projection: bool = False
    #: Flax ``SimpleCell(residual=True)``: h(t−1) is added to the pre-activation.
    residual: bool = False

    @property
    def gates(self) -> tuple[tuple[str, str], ...]:
        return GATES[(self.framework, self.kind)]


@dataclass(frozen=True)
class Packed:
    """One recurrent variable before gate splitting.

    ``axis`` is the axis along which the gates are packed (Keras: last, torch:
    first); in ``axes`` that axis is named for one gate's slice (e.g. ``"units"``).
    A gate's description reads ``"<what> in the <gate> gate <symbol>; <extra>"``;
    ``notes[gate]``, when given, replaces ``extra`` for that gate.
    """

    source: str
    part: str
    role: Role
    array: np.ndarray
    axis: int
    what: str
    axes: tuple[str, ...]
    extra: str = ""
    notes: dict = field(default_factory=dict)


def direction_prefix(layer_index: Optional[int], direction: Optional[str]) -> str:
    """``"layer 1 · reverse · "`` for stacked / bidirectional RNNs, ``""`` otherwise."""
    parts = ([f"layer {layer_index}"] if layer_index is not None else []) + ([direction] if direction else [])
    return "".join(f"{p} · " for p in parts)


def gate_block_name(prefix: str, part: str, gate: Optional[str]) -> str:
    """``"layer 1 · input kernel · forget gate"``."""
    return f"{prefix}{part}" + (f" · {gate} gate" if gate else "")


def split_block_name(name: str, gate: Optional[str]) -> tuple[str, str]:
    """The inverse of :func:`gate_block_name`: ``(prefix, part)``, e.g. ``("layer 1 · ", "input kernel")``."""
    suffix = f" · {gate} gate" if gate else ""
    base = name[: len(name) - len(suffix)] if suffix and name.endswith(suffix) else name
    prefix, sep, part = base.rpartition(" · ")
    return (prefix + sep, part)


def split_packed(array: np.ndarray, n: int, axis: int) -> list[np.ndarray]:
    """Cuts ``array`` into ``n`` equal slices along ``axis`` (the gates, in packing order)."""
    if array.shape[axis] % n:
        raise SaliencyError(f"cannot split an axis of {array.shape[axis]} into {n} gates")
    return [piece.copy() for piece in np.split(array, n, axis=axis)]


def recurrent_blocks(cell: RecurrentCell, packed: Sequence[Packed], split_gates: bool, prefix: str = "") -> list[WeightBlock]:
    """The blocks of one recurrent cell (one layer and direction), split by gate or kept packed."""
    gates = cell.gates
    out = []
    for var in packed:
        array = as_array(var.array)
        if not gates or not split_gates:
            out.append(_packed_block(var, array, gates, prefix))
            continue
        for (symbol, gate), piece in zip(gates, split_packed(array, len(gates), var.axis)):
            name = gate_block_name(prefix, var.part, gate)
            what = _clauses(f"{var.what} in the {gate} gate {symbol}", var.notes.get(gate, var.extra))
            out.append(WeightBlock(name, var.role, gate, var.source, piece, describe(name, piece.shape, what, var.axes),
                                   tuple(var.axes)))
    return out


def _clauses(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _packed_block(var: Packed, array: np.ndarray, gates: Sequence[tuple[str, str]], prefix: str) -> WeightBlock:
    name = gate_block_name(prefix, var.part, None)
    if not gates:
        return WeightBlock(name, var.role, None, var.source, array,
                           describe(name, array.shape, _clauses(var.what, var.extra), var.axes), tuple(var.axes))
    axes = list(var.axes)
    symbols = " ".join(s for s, _ in gates)
    axes[var.axis] = f"{len(gates)} gates ({symbols}) × {axes[var.axis]}"
    order = ", ".join(f"{s} ({g})" for s, g in gates)
    what = _clauses(
        f"{var.what} for all {len(gates)} gates, packed one after another in the order {order}",
        var.extra,
        *(var.notes[g] for _, g in gates if g in var.notes),
    )
    return WeightBlock(name, var.role, None, var.source, array, describe(name, array.shape, what, axes), tuple(axes))


# ---------------------------------------------------------------- equations
def _act(name: str) -> str:
    return "σ" if name == "sigmoid" else name


def recurrent_equation(cell: RecurrentCell) -> str:
    """The update equation of a recurrent layer, with its symbols mapped to block names."""
    math, prose = recurrent_equation_parts(cell)
    return "\n".join([*math, *prose])


def recurrent_equation_parts(cell: RecurrentCell) -> tuple[list[str], list[str]]:
    """``(math lines, prose lines)``: the update equations, then the legend and notes."""
    body = {"keras": _keras_equation, "flax": _flax_equation}.get(cell.framework, _torch_equation)(cell)
    notes = []
    if cell.num_layers > 1:
        both = " (both directions concatenated)" if cell.bidirectional else ""
        notes.append(f"layer l ≥ 1 reads the h_t of layer l−1{both} as its input x_t")
    if cell.bidirectional:
        notes.append("the reverse (backward) direction runs from the last time step to the first, with its own weights")
    return body[:-1], [body[-1], *notes]


def _gate_legend(cell: RecurrentCell) -> str:
    return "* = gate: " + ", ".join(f"{s} = {g} gate" for s, g in cell.gates)


def _keras_equation(cell: RecurrentCell) -> list[str]:
    a, s = _act(cell.activation), _act(cell.recurrent_activation)
    if cell.kind == "simple":
        return [
            f"h_t = {a}(x_t·W_x + h_{{t−1}}·W_h + b)",
            "W_x = input kernel, W_h = recurrent kernel, b = bias",
        ]
    if cell.kind == "lstm":
        lines = [f"{g}_t = {s}(x_t·W_x{g} + h_{{t−1}}·W_h{g} + b_{g})" for g in "ifo"]
        lines.insert(2, f"c̃_t = {a}(x_t·W_xc + h_{{t−1}}·W_hc + b_c)")
        return [
            *lines,
            "c_t = f_t ⊙ c_{t−1} + i_t ⊙ c̃_t",
            f"h_t = o_t ⊙ {a}(c_t)",
            f"W_x* = input kernel, W_h* = recurrent kernel, b_* = bias; {_gate_legend(cell)}",
        ]
    if cell.reset_after:
        lines = [f"{g}_t = {s}(x_t·W_x{g} + b_x{g} + h_{{t−1}}·W_h{g} + b_h{g})" for g in "zr"]
        lines.append(f"h̃_t = {a}(x_t·W_xh + b_xh + r_t ⊙ (h_{{t−1}}·W_hh + b_hh))")
        legend = "W_x* = input kernel, W_h* = recurrent kernel, b_x* = input bias, b_h* = recurrent bias"
    else:
        lines = [f"{g}_t = {s}(x_t·W_x{g} + h_{{t−1}}·W_h{g} + b_{g})" for g in "zr"]
        lines.append(f"h̃_t = {a}(x_t·W_xh + (r_t ⊙ h_{{t−1}})·W_hh + b_h)")
        legend = "W_x* = input kernel, W_h* = recurrent kernel, b_* = bias"
    return [*lines, "h_t = z_t ⊙ h_{t−1} + (1 − z_t) ⊙ h̃_t", f"{legend}; {_gate_legend(cell)}"]


def _torch_equation(cell: RecurrentCell) -> list[str]:
    a, s = _act(cell.activation), _act(cell.recurrent_activation)
    legend = (
        "W_i* = input kernel (weight_ih), W_h* = recurrent kernel (weight_hh), "
        "b_i* = bias (input-hidden) (bias_ih), b_h* = bias (hidden-hidden) (bias_hh)"
    )
    if cell.kind == "simple":
        return [
            f"h_t = {a}(W_ih x_t + b_ih + W_hh h_{{t−1}} + b_hh)",
            "W_ih = input kernel (weight_ih), W_hh = recurrent kernel (weight_hh), "
            "b_ih + b_hh = bias (input-hidden) + bias (hidden-hidden): torch adds them, only their sum matters",
        ]
    if cell.kind == "lstm":
        lines = [f"{g}_t = {s}(W_i{g} x_t + b_i{g} + W_h{g} h_{{t−1}} + b_h{g})" for g in "if"]
        lines.append(f"g_t = {a}(W_ig x_t + b_ig + W_hg h_{{t−1}} + b_hg)")
        lines.append(f"o_t = {s}(W_io x_t + b_io + W_ho h_{{t−1}} + b_ho)")
        lines.append("c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t")
        lines.append(f"h_t = W_hr (o_t ⊙ {a}(c_t))" if cell.projection else f"h_t = o_t ⊙ {a}(c_t)")
        if cell.projection:
            legend += ", W_hr = projection (weight_hr)"
    else:
        lines = [f"{g}_t = {s}(W_i{g} x_t + b_i{g} + W_h{g} h_{{t−1}} + b_h{g})" for g in "rz"]
        lines.append(f"n_t = {a}(W_in x_t + b_in + r_t ⊙ (W_hn h_{{t−1}} + b_hn))")
        lines.append("h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}")
    return [*lines, f"{legend}; {_gate_legend(cell)}"]


def _flax_equation(cell: RecurrentCell) -> list[str]:
    """Flax NNX cells: kernels ``(in, out)`` as Keras's, one ``Linear`` per gate (``LSTMCell``) or
    the gates packed in one (``OptimizedLSTMCell``, ``GRUCell``)."""
    a, s = _act(cell.activation), _act(cell.recurrent_activation)
    if cell.kind == "simple":
        residual = " + h_{t−1}" if cell.residual else ""
        return [
            f"h_t = {a}(x_t·W_i + b + h_{{t−1}}·W_h{residual})",
            "W_i = input kernel, b = bias, W_h = recurrent kernel",
        ]
    if cell.kind == "lstm":
        lines = [f"{g}_t = {s}(x_t·W_i{g} + h_{{t−1}}·W_h{g} + b_{g})" for g in "if"]
        lines.append(f"g_t = {a}(x_t·W_ig + h_{{t−1}}·W_hg + b_g)")
        lines.append(f"o_t = {s}(x_t·W_io + h_{{t−1}}·W_ho + b_o)")
        return [
            *lines,
            "c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t",
            f"h_t = o_t ⊙ {a}(c_t)",
            f"W_i* = input kernel, W_h* = recurrent kernel, b_* = bias; {_gate_legend(cell)}",
        ]
    lines = [f"{g}_t = {s}(x_t·W_i{g} + b_i{g} + h_{{t−1}}·W_h{g})" for g in "rz"]
    lines.append(f"n_t = {a}(x_t·W_in + b_in + r_t ⊙ (h_{{t−1}}·W_hn))")
    return [
        *lines,
        "h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}",
        f"W_i* = input kernel, b_i* = input bias, W_h* = recurrent kernel (no recurrent bias); {_gate_legend(cell)}",
    ]
