"""What every Keras gradient engine shares: the protocol, and the pieces of one model call that
:class:`~.backend.KerasBackend` intercepts (recording a head, recording or replacing the layer
attributed to), written once with ``keras.ops`` so they run on TensorFlow, torch and JAX alike.

An engine computes one *kind* of call (see :meth:`Engine.run`) with its framework's gradients:
``tf.GradientTape`` (:mod:`.tensorflow_engine`), ``torch.autograd`` (:mod:`.torch_engine`),
``jax.vjp`` / ``jax.vmap`` (:mod:`.jax_engine`). Everything Keras-shaped — layers, heads, final
activations, the graph walk — stays in the backend, which hands the engine ``explained``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable, Optional

import keras
import numpy as np

from ..base import LayerRef, Query

if TYPE_CHECKING:
    from .backend import KerasBackend

#: The kinds of call an engine runs, and what each returns (numpy):
#: ``"forward"`` → the explained output; ``"activation"`` → the layer's output (its calls joined);
#: ``"vjp"`` → (output, [gradient per attributed entry, or of the layer]); ``"layer_vjp"`` →
#: (output, layer output, its gradient); ``"jacobian"`` → [(batch, rows, *shape) per entry];
#: ``"rows/<normalize>/<minus|plain>"`` → (scores, layer output, gradients) (``Backend.output_rows``).
KINDS = ("forward", "activation", "vjp", "layer_vjp", "jacobian", "rows")

NOT_DIFFERENTIABLE = ("the explained output does not depend differentiably on what is attributed "
                      "(an argmax, a cast to int or a stop_gradient inside the model?)")


class Engine(ABC):
    """Runs calls of one Keras model with one Keras backend's gradient machinery."""

    def __init__(self, backend: "KerasBackend") -> None:
        self.backend = backend

    @abstractmethod
    def run(self, kind: str, query: Query, entries: list[np.ndarray], args: list[np.ndarray],
            activation: Optional[np.ndarray]) -> Any:
        """One call of ``kind`` (see :data:`KINDS`) on numpy ``entries``; ``args``: the targets
        (``vjp``, ``layer_vjp``), the rows (``jacobian``) or positions, tokens and minus (``rows/``);
        ``activation`` replaces ``query.layer``'s output. Returns numpy arrays, float32."""

    def new_state(self, activation: Any, watch: Optional[Callable[[Any], Any]]) -> dict[str, Any]:
        """The state one model call's handlers share: ``activation`` replaces the layer's output,
        ``watch(tensor) -> tensor`` marks the layer's own output for differentiation (None: not needed)."""
        return {"watch": watch, "activation": activation, "calls": 0}

    def explain(self, query: Query, tensors: list[Any], state: dict[str, Any]) -> Any:
        """The explained output of one model call on backend tensors."""
        return self.backend.explained(query, tensors, state)


class LayerDidNotRun(Exception):
    """A call's head or attribution layer never ran; :meth:`KerasBackend._run` says which layers do."""

    def __init__(self, layer: LayerRef) -> None:
        super().__init__(layer.name)
        self.layer = layer


def recorded(state: dict[str, Any], key: str, layer: LayerRef) -> Any:
    """What a handler recorded in ``state[key]`` for ``layer``, which must have run."""
    if key not in state:
        raise LayerDidNotRun(layer)
    return state[key]


def joined(tensors: list[Any], axis: int) -> Any:
    """``tensors`` concatenated along ``axis`` (one tensor: itself)."""
    return keras.ops.concatenate(tensors, axis=axis) if len(tensors) > 1 else tensors[0]


def recording(state: dict[str, Any], key: str, inner: Optional[tuple[Any, Callable]]) -> Callable:
    """A handler that runs the layer (through ``inner``'s handler, if any) and records its
    (first) output in ``state[key]``."""
    def handler(call: Callable, *args: Any, **kwargs: Any) -> Any:
        out = inner[1](call, *args, **kwargs) if inner else call(*args, **kwargs)
        state[key] = out[0] if isinstance(out, (list, tuple)) else out
        return out

    return handler


def replacing(layer: LayerRef, state: dict[str, Any], inner: Optional[tuple[Any, Callable]]) -> Callable:
    """A handler for the attribution layer: its output is ``state["activation"]`` when given
    (its slice along axis 1 for each call with ``calls="all"``), else its own output, passed
    through ``state["watch"]``; recorded in ``state["leaves"]``. Refuses a second call in one
    forward pass unless ``layer.calls`` says which calls count (:class:`LayerRef`)."""
    def handler(call: Callable, *args: Any, **kwargs: Any) -> Any:
        state["calls"] += 1
        out = inner[1](call, *args, **kwargs) if inner else call(*args, **kwargs)
        if not layer.attributes_call(state["calls"]):
            return out
        first = out[0] if isinstance(out, (list, tuple)) else out
        activation = state["activation"]
        if activation is None:
            new = first if state["watch"] is None else state["watch"](first)
            state.setdefault("leaves", []).append(new)
        else:
            start = state.setdefault("offset", 0)
            length = first.shape[1] if layer.calls == "all" else None
            new = activation if length is None else activation[:, start:start + length]
            state["offset"] = start + (length or 0)
            state["leaves"] = [activation]
        return new if not isinstance(out, (list, tuple)) else type(out)((new, *out[1:]))

    return handler


def chosen_sum(y: Any, targets: Any) -> Any:
    """The sum over samples of each sample's target entry of ``y`` (flattened): ``targets`` one
    flat index per sample, -1 for that sample's arg-max. Its gradient is each sample's gradient."""
    ops = keras.ops
    flat = ops.reshape(y, (ops.shape(y)[0], -1))
    targets = ops.cast(targets, "int32")
    index = ops.where(targets < 0, ops.cast(ops.argmax(flat, axis=1), "int32"), targets)
    return ops.sum(flat * ops.one_hot(index, ops.shape(flat)[1], dtype=flat.dtype))


def row_scores(y: Any, positions: Any, tokens: Any, minus: Any, normalize: str) -> Any:
    """``(batch, n)``: ``y`` ``(batch, length, vocabulary)`` at ``positions``, entries ``tokens``,
    normalised over the vocabulary at those positions only (see :meth:`Backend.output_rows`),
    minus entries ``minus``."""
    ops = keras.ops
    vocabulary = y.shape[-1]
    at = ops.take(y, positions, axis=1)
    if normalize == "log_softmax":
        at = ops.log_softmax(at, axis=-1)
    elif normalize == "softmax":
        at = ops.softmax(at, axis=-1)

    def pick(index: Any) -> Any:
        return ops.sum(at * ops.one_hot(index, vocabulary, dtype=at.dtype), axis=-1)

    return pick(tokens) if minus is None else pick(tokens) - pick(minus)


def rows_kind(kind: str) -> tuple[str, bool]:
    """``(normalize, subtracts)`` of a ``"rows/<normalize>/<minus|plain>"`` kind."""
    normalize, subtracts = kind.split("/")[1:]
    return normalize, subtracts == "minus"
