"""Named weight blocks of Flax NNX layers (used by ``JaxBackend``).

Only maps NNX variables onto the framework-free builders of ``saliency_widgets.weights``; all
names, descriptions and equations live there. A block's ``source`` is its variable's path in
``nnx.state(model)`` (``"blocks/0/kernel"``); every variable of a layer (random-number state
aside) becomes exactly one block, those of unknown layouts shown raw.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
from flax import nnx

from ...weights import (
    GATES,
    Packed,
    RecurrentCell,
    WeightBlock,
    as_array,
    batchnorm_block,
    bias_block,
    conv_kernel,
    dense_kernel,
    describe,
    embedding_table,
    gate_block_name,
    no_weights_error,
    raw_block,
    recurrent_blocks,
)
from .modules import Path, layer_variables, value

#: Variable name → batch-norm part, for the normalization layers (scale and offset; statistics).
_NORM_PARTS = {"scale": "gamma", "bias": "beta", "mean": "mean", "var": "variance"}
_NORMS = (nnx.BatchNorm, nnx.LayerNorm, nnx.RMSNorm, nnx.GroupNorm)
#: ``LSTMCell``'s gate symbol → (its input Linear, its recurrent Linear).
_LSTM_LINEARS = {"i": ("ii", "hi"), "f": ("if_", "hf"), "g": ("ig", "hg"), "o": ("io", "ho")}


def jax_layer_weights(name: str, path: Path, module: nnx.Module, split_gates: bool) -> list[WeightBlock]:
    """The blocks of the layer ``module`` (listed as ``name``, at ``path`` in the model): its own
    variables (a recurrent layer's gate submodules' too), not those of its other submodules."""
    if isinstance(module, nnx.RNN):  # its cell's blocks
        return jax_layer_weights(name, (*path, "cell"), module.cell, split_gates)
    arrays = {"/".join(map(str, p)): value(v) for p, v in layer_variables(module).items()}
    prefix = "".join(f"{step}/" for step in path)
    blocks = _interpret(module, arrays, split_gates, prefix)
    blocks += [raw_block(prefix + p, a, type(module).__name__) for p, a in arrays.items()]
    if not blocks:
        raise no_weights_error(name, type(module).__name__)
    return blocks


def jax_layer_cell(module: nnx.Module) -> Optional[RecurrentCell]:
    """What a recurrent cell (or the ``nnx.RNN`` running one) computes; None for other modules."""
    if isinstance(module, nnx.RNN):
        module = module.cell
    kind = {nnx.LSTMCell: "lstm", nnx.OptimizedLSTMCell: "lstm", nnx.GRUCell: "gru", nnx.SimpleCell: "simple"}.get(
        type(module))
    if kind is None:
        return None
    return RecurrentCell("flax", kind, activation=_name(module.activation_fn),
                         recurrent_activation=_name(getattr(module, "gate_fn", "sigmoid")),
                         residual=bool(getattr(module, "residual", False)))


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or str(fn)


def _interpret(module: nnx.Module, arrays: dict[str, np.ndarray], split_gates: bool,
               src: str) -> list[WeightBlock]:
    """Blocks for the layer types whose layout is known; takes the arrays they show out of ``arrays``."""
    take = _taker(arrays, src)
    if isinstance(module, nnx.Linear):
        return [*take("kernel", lambda s, a: dense_kernel(s, a, "in_out")), *take("bias", bias_block)]
    if isinstance(module, nnx.Conv):
        groups = int(module.feature_group_count)
        return [*take("kernel", lambda s, a: conv_kernel(s, a, "in_out", groups)),
                *take("bias", lambda s, a: bias_block(s, a, "filter"))]
    if isinstance(module, nnx.Embed):
        return take("embedding", embedding_table)
    if isinstance(module, _NORMS):
        return [b for n, part in _NORM_PARTS.items() for b in take(n, lambda s, a, p=part: batchnorm_block(p, s, a))]
    if isinstance(module, nnx.LSTMCell):
        return _lstm_blocks(arrays, src)
    cell = jax_layer_cell(module)
    if cell is not None:
        return recurrent_blocks(cell, _packed(cell, arrays, src, split_gates), split_gates)
    return []


def _taker(arrays: dict[str, np.ndarray], src: str) -> Callable:
    """``take(name, build)``: ``[build(source, array)]`` for the variable ``name`` (removed from
    ``arrays``), ``[]`` where the layer has none (``use_bias=False``)."""
    def take(name: str, build: Callable[[str, np.ndarray], WeightBlock]) -> list[WeightBlock]:
        return [build(src + name, arrays.pop(name))] if name in arrays else []

    return take


def _lstm_blocks(arrays: dict[str, np.ndarray], src: str) -> list[WeightBlock]:
    """``LSTMCell`` keeps one ``Linear`` per gate and side (``ii`` … ``io`` on the input, without
    bias; ``hi`` … ``ho`` on h(t−1), with the gate's bias): one block per variable."""
    parts = (
        ("input kernel", "input", 0, "kernel", "multiplies the input x(t)", ("input features", "units")),
        ("recurrent kernel", "recurrent", 1, "kernel", "multiplies the previous hidden state h(t−1)",
         ("units of h(t−1)", "units")),
        ("bias", "bias", 1, "bias", "added to the pre-activation", ("unit",)),
    )
    blocks = []
    for part, role, side, var, what, axes in parts:
        for symbol, gate in GATES["flax", "lstm"]:
            path = f"{_LSTM_LINEARS[symbol][side]}/{var}"
            if path in arrays:
                array = as_array(arrays.pop(path))
                name = gate_block_name("", part, gate)
                blocks.append(WeightBlock(name, role, gate, src + path, array,
                                          describe(name, array.shape, f"{what} in the {gate} gate {symbol}", axes),
                                          axes))
    return blocks


def _packed(cell: RecurrentCell, arrays: dict[str, np.ndarray], src: str, split_gates: bool) -> list[Packed]:
    """``OptimizedLSTMCell`` / ``GRUCell`` / ``SimpleCell``: ``dense_i`` on x(t), ``dense_h`` on
    h(t−1), their kernels ``(in, gates·units)`` with the gates packed along the last axis."""
    packed = []
    if "dense_i/kernel" in arrays:
        packed.append(Packed(src + "dense_i/kernel", "input kernel", "input", arrays.pop("dense_i/kernel"), 1,
                             "multiplies the input x(t)", ("input features", "units")))
    if "dense_h/kernel" in arrays:
        packed.append(Packed(src + "dense_h/kernel", "recurrent kernel", "recurrent", arrays.pop("dense_h/kernel"), 1,
                             "multiplies the previous hidden state h(t−1)", ("units of h(t−1)", "units")))
    if "dense_i/bias" in arrays:
        candidate = {"candidate": "it stays outside the reset gate's product r ⊙ (h(t−1)·W_hn), which has no bias"}
        name = "input bias" if cell.kind == "gru" else "bias"
        packed.append(Packed(src + "dense_i/bias", name, "bias", arrays.pop("dense_i/bias"), 0,
                             "added to x(t)·W_i", ("unit",), notes=candidate if cell.kind == "gru" else {}))
    if "dense_h/bias" in arrays:
        packed.append(Packed(src + "dense_h/bias", "bias", "bias", arrays.pop("dense_h/bias"), 0,
                             "added to h(t−1)·W_h", ("unit",)))
    return packed

