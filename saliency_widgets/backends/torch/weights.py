"""Layers and named weight blocks of ``torch.nn.Module`` models (used by ``TorchBackend``).

Only maps torch's parameters onto the framework-free builders of
``saliency_widgets.weights``; all names, descriptions and equations live there.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from ...errors import SaliencyError, SaliencyWarning
from ...weights import (
    LayerInfo,
    Packed,
    RecurrentCell,
    WeightBlock,
    batchnorm_block,
    bias_block,
    block,
    conv_kernel,
    dense_kernel,
    direction_prefix,
    embedding_table,
    no_weights_error,
    raw_block,
    recurrent_blocks,
    recurrent_equation,
    resolve_layer,
)

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_BATCHNORM_PARTS = {"weight": "gamma", "bias": "beta", "running_mean": "mean", "running_var": "variance"}


# -------------------------------------------------------------------- layers
def listed_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules ``layers()`` lists: leaves, plus containers holding parameters of their own.

    The root module is called ``"model"`` when it is listed itself.
    """
    out = []
    for name, module in model.named_modules():
        is_leaf = next(module.children(), None) is None
        if is_leaf or next(module.parameters(recurse=False), None) is not None:
            out.append((name or "model", module))
    return out


def torch_layers(model: nn.Module, example: Optional[np.ndarray]) -> list[LayerInfo]:
    """LayerInfo for every listed module; output shapes from a traced forward pass on ``example``,
    else on zeros shaped like the last input the model was attributed on (:func:`seen_example`),
    else on zeros of a ``Linear``-first model's input width.

    The batch axis of each output is found by tracing one and two copies of the
    example's first sample (so time-major RNN outputs are handled too). The
    model's training flags are restored and all hooks removed, also on error.
    """
    listed = listed_modules(model)
    shapes: list[Optional[tuple]] = [None] * len(listed)
    scripted = any(isinstance(module, torch.jit.ScriptModule) for _, module in listed)
    if scripted:
        warnings.warn(
            "output shapes unknown: the layers of a TorchScript module (torch.jit.script / torch.jit.trace) "
            "cannot be hooked to record them; pass the original nn.Module to see them",
            SaliencyWarning,
            stacklevel=4,
        )
    elif example is not None:
        shapes = _traced_shapes(model, listed, example)
    else:
        for guess in _guessed_examples(model, listed):
            try:
                shapes = _traced_shapes(model, listed, guess)
                break
            except SaliencyError:
                pass
    if not scripted and all(shape is None for shape in shapes):
        warnings.warn(
            "output shapes of a torch model are unknown without an input: pass example= or input_shape= "
            "(one sample's shape) to sw.layers, x= (one batch) or input_shape= to WeightInspector, "
            "or attribute the model once first (sw.saliency, a SaliencyMap or a JacobianGrid on an input)",
            SaliencyWarning,
            stacklevel=4,
        )
    return [
        LayerInfo(name, type(module).__name__, shape, sum(p.numel() for p in module.parameters(recurse=False)))
        for (name, module), shape in zip(listed, shapes)
    ]


_SHAPE_KEEPING = (nn.Flatten, nn.Identity, nn.Dropout)


def _guessed_examples(model: nn.Module, listed: list[tuple[str, nn.Module]]) -> list[np.ndarray]:
    """Inputs to trace when none is given, best first: the shape the model was last attributed on,
    then a ``Linear``-first model's input width."""
    features = _flat_input_features(listed)
    guesses = [seen_example(model), None if features is None else np.zeros((1, features), np.float32)]
    return [g for g in guesses if g is not None]


def seen_example(model: nn.Module) -> Optional[np.ndarray]:
    """Zeros (one sample) of the shape and dtype of the last new single-array input the model was
    attributed on (``sw.saliency``, ``sw.jacobian``, a SaliencyMap or JacobianGrid on it): its backend
    keeps each input signature (:func:`..structure.signature`) it has seen as a key of ``output_shapes``.
    None when it has seen none."""
    from .. import get_backend

    keys = list(get_backend(model).output_shapes)
    for key in reversed(keys):
        for part in key if isinstance(key, tuple) else ():
            if _is_one_array_signature(part):
                shape, dtype = part[0]
                return np.zeros((1, *shape), np.dtype(dtype))
    return None


def _is_one_array_signature(part: Any) -> bool:
    """Whether ``part`` is the signature of a single array: ``((per-sample shape, dtype str),)``."""
    return (isinstance(part, tuple) and len(part) == 1 and isinstance(part[0], tuple) and len(part[0]) == 2
            and isinstance(part[0][0], tuple) and isinstance(part[0][1], str))


def _flat_input_features(listed: list[tuple[str, nn.Module]]) -> Optional[int]:
    """The input width of a model whose first parametrized module is a ``Linear`` (reached
    through flatten / identity / dropout only): its input shape is then known."""
    for _, module in listed:
        if isinstance(module, nn.Linear):
            return module.in_features
        if not isinstance(module, _SHAPE_KEEPING):
            return None
    return None


def _traced_shapes(model: nn.Module, listed: list[tuple[str, nn.Module]], example: np.ndarray) -> list[Optional[tuple]]:
    one = _as_input(model, example[:1])
    once = _trace(model, listed, one)
    twice = _trace(model, listed, torch.cat([one, one]))
    return [_per_sample(a, b) for a, b in zip(once, twice)]


def _as_input(model: nn.Module, example: np.ndarray) -> torch.Tensor:
    tensors = [*model.parameters(), *model.buffers()]
    device = tensors[0].device if tensors else torch.device("cpu")
    x = torch.as_tensor(np.asarray(example))
    if x.is_floating_point():
        dtypes = [t.dtype for t in tensors if t.is_floating_point()]
        x = x.to(dtypes[0] if dtypes else torch.float32)
    return x.to(device)


def _trace(model: nn.Module, listed: list[tuple[str, nn.Module]], x: torch.Tensor) -> list[Optional[tuple]]:
    """Output shape (batch axis included) of each listed module's first call."""
    shapes: dict[int, Optional[tuple]] = {}

    def recorder(i: int):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if i not in shapes:
                tensor = _first_tensor(output)
                shapes[i] = None if tensor is None else tuple(tensor.shape)

        return hook

    flags = [(m, m.training) for m in model.modules()]
    hooks = [module.register_forward_hook(recorder(i)) for i, (_, module) in enumerate(listed)]
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    except Exception as err:
        raise SaliencyError(f"could not run the model on an input of shape {tuple(x.shape)} to find output shapes: {err}") from err
    finally:
        for handle in hooks:
            handle.remove()
        for module, flag in flags:
            module.training = flag
    return [shapes.get(i) for i in range(len(listed))]


def _first_tensor(output: Any) -> Optional[torch.Tensor]:
    """The output tensor of a module; for RNNs' ``(output, h_n)`` tuples, the first."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and not isinstance(output, PackedSequence):
        return _first_tensor(output[0])
    return None


def _per_sample(once: Optional[tuple], twice: Optional[tuple]) -> Optional[tuple]:
    """Drops the one axis whose size follows the batch size (1 → 2)."""
    if once is None or twice is None or len(once) != len(twice):
        return None
    batch_axes = [i for i, (a, b) in enumerate(zip(once, twice)) if (a, b) == (1, 2)]
    changed = [i for i, (a, b) in enumerate(zip(once, twice)) if a != b]
    if changed != batch_axes or len(batch_axes) > 1:
        return None
    return once[:batch_axes[0]] + once[batch_axes[0] + 1:] if batch_axes else once


# ------------------------------------------------------------------- weights
def torch_layer_weights(model: nn.Module, layer: Any, split_gates: bool) -> list[WeightBlock]:
    """The named blocks of one listed module (a name, an index or the module)."""
    name, module = resolve_layer(listed_modules(model), layer)
    tensors = {n: t for n, t in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]}
    blocks, used = _interpret(module, tensors, split_gates)
    params = dict(module.named_parameters(recurse=False))
    blocks += [raw_block(n, _numpy(t), type(module).__name__) for n, t in params.items() if n not in used]
    if not blocks:
        raise no_weights_error(name, type(module).__name__)
    return blocks


def torch_layer_equation(model: nn.Module, layer: Any) -> Optional[str]:
    """The update equation of a recurrent module, ``None`` for other modules."""
    cell = torch_layer_cell(model, layer)
    return None if cell is None else recurrent_equation(cell)


def torch_layer_cell(model: nn.Module, layer: Any) -> Optional[RecurrentCell]:
    """What a recurrent module computes, ``None`` for other modules."""
    _, module = resolve_layer(listed_modules(model), layer)
    return _cell(module) if isinstance(module, nn.RNNBase) else None


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()


def _interpret(module: nn.Module, tensors: dict[str, torch.Tensor], split_gates: bool) -> tuple[list[WeightBlock], set[str]]:
    """Blocks for the module types whose layout is known, and the tensor names they used."""
    arrays = {n: _numpy(t) for n, t in tensors.items() if t.is_floating_point()}
    if isinstance(module, nn.Linear):
        blocks = [dense_kernel("weight", arrays["weight"], "out_in")]
        blocks += [bias_block("bias", arrays["bias"])] if "bias" in arrays else []
    elif isinstance(module, _CONV):
        blocks = [conv_kernel("weight", arrays["weight"], "out_in", module.groups)]
        blocks += [bias_block("bias", arrays["bias"], "filter")] if "bias" in arrays else []
    elif isinstance(module, nn.Embedding):
        blocks = [embedding_table("weight", arrays["weight"])]
    elif isinstance(module, _BATCHNORM):
        blocks = [batchnorm_block(part, n, arrays[n]) for n, part in _BATCHNORM_PARTS.items() if n in arrays]
    elif isinstance(module, nn.RNNBase):
        blocks = _rnn_blocks(module, arrays, split_gates)
    else:
        return [], set()
    return blocks, {b.source for b in blocks}


def _cell(module: nn.RNNBase) -> RecurrentCell:
    kind = {"LSTM": "lstm", "GRU": "gru"}.get(module.mode, "simple")
    return RecurrentCell(
        "torch",
        kind,
        activation="relu" if module.mode == "RNN_RELU" else "tanh",
        num_layers=module.num_layers,
        bidirectional=module.bidirectional,
        projection=getattr(module, "proj_size", 0) > 0,
    )


def _rnn_blocks(module: nn.RNNBase, arrays: dict[str, np.ndarray], split_gates: bool) -> list[WeightBlock]:
    cell = _cell(module)
    directions = [("", "forward"), ("_reverse", "reverse")] if module.bidirectional else [("", None)]
    blocks = []
    for layer in range(module.num_layers):
        for suffix, direction in directions:
            prefix = direction_prefix(layer if module.num_layers > 1 else None, direction)
            packed = _rnn_packed(cell, layer, suffix, arrays)
            blocks += recurrent_blocks(cell, packed, split_gates, prefix)
            if f"weight_hr_l{layer}{suffix}" in arrays:
                name = f"{prefix}projection"
                what = "multiplies o(t) ⊙ tanh(c(t)) to give the smaller hidden state h(t)"
                blocks.append(block(name, "kernel", f"weight_hr_l{layer}{suffix}", arrays[f"weight_hr_l{layer}{suffix}"], what, ("projected units", "units")))
    return blocks


def _rnn_packed(cell: RecurrentCell, layer: int, suffix: str, arrays: dict[str, np.ndarray]) -> list[Packed]:
    """torch packs the gates along the first axis: weight_ih is (gates·hidden, input)."""
    tag = f"l{layer}{suffix}"
    if layer == 0:
        x, features = "the input x(t)", "input features"
    else:
        both = " (both directions concatenated)" if cell.bidirectional else ""
        x, features = f"layer {layer - 1}'s output h(t){both}", f"features of layer {layer - 1}'s output"
    h_axis = "projected units of h(t−1)" if cell.projection else "units of h(t−1)"
    bias_sum = "torch adds b_ih and b_hh, so only their sum acts as the bias"
    gru_note = {"candidate": "here b_hn is multiplied by the reset gate r together with W_hn·h(t−1), so b_in and b_hn are not interchangeable"}
    notes = gru_note if cell.kind == "gru" else {}
    packed = [
        Packed(f"weight_ih_{tag}", "input kernel", "input", arrays[f"weight_ih_{tag}"], 0, f"multiplies {x}", ("units", features)),
        Packed(f"weight_hh_{tag}", "recurrent kernel", "recurrent", arrays[f"weight_hh_{tag}"], 0, "multiplies the previous hidden state h(t−1)", ("units", h_axis)),
    ]
    if f"bias_ih_{tag}" in arrays:
        packed += [
            Packed(f"bias_ih_{tag}", "bias (input-hidden)", "bias", arrays[f"bias_ih_{tag}"], 0, "b_ih, added to W_ih·x(t)", ("unit",), bias_sum, notes),
            Packed(f"bias_hh_{tag}", "bias (hidden-hidden)", "bias", arrays[f"bias_hh_{tag}"], 0, "b_hh, added to W_hh·h(t−1)", ("unit",), bias_sum, notes),
        ]
    return packed
