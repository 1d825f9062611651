"""Keras on JAX: ``jax.vjp`` / ``jax.vmap`` over the model's call in a stateless scope, whose
variables are arguments of the jit-compiled function (never constants baked into it: a model
trained further gives new numbers), compiled once per kind of call and query (jit's own cache
handles the shapes)."""

from __future__ import annotations

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import keras
import numpy as np

from ..base import Query
from .engine import Engine, chosen_sum, joined, recorded, row_scores, rows_kind


class JaxEngine(Engine):
    """JAX cannot differentiate with respect to a value computed inside a function, so the
    gradient with respect to a layer's output is taken by running that output in as an argument
    (the layer's output is computed first, in its own compiled pass)."""

    def __init__(self, backend: Any) -> None:
        super().__init__(backend)
        self._compiled: dict[tuple, Callable] = {}

    def run(self, kind: str, query: Query, entries: list[np.ndarray], args: list[np.ndarray],
            activation: Optional[np.ndarray]) -> Any:
        variables = self.backend.model.variables
        values = [v.value for v in variables]
        tensors = [jnp.asarray(e) for e in entries]
        args = [jnp.asarray(a) for a in args]
        if query.layer is not None and activation is None and kind not in ("forward", "activation"):
            activation = self._function("activation", query, variables)(values, tensors, [], None)
        elif activation is not None:
            activation = jnp.asarray(activation)
        result = self._function(kind, query, variables)(values, tensors, args, activation)
        if kind == "layer_vjp":
            y, grad = result
            result = (y, activation, grad)
        return jax.tree_util.tree_map(lambda a: np.asarray(a, dtype=np.float32), result)

    def _function(self, kind: str, query: Query, variables: list[Any]) -> Callable:
        """The compiled function of one kind of call: ``(values of variables, tensors, args, activation)``,
        one per list of variables (a layer added or replaced since gets its own: the values passed
        in are always mapped onto the variables they were read from)."""
        key = (kind, query.key, tuple(id(v) for v in variables))
        if key not in self._compiled:
            self._compiled[key] = jax.jit(self._body(kind, query, variables))
        return self._compiled[key]

    def _body(self, kind: str, query: Query, model_variables: list[Any]) -> Callable:
        layer_mode = query.layer is not None
        attributed = query.spec.attributed

        def call(values: list[Any], tensors: list[Any], activation: Any, leaves: bool = False) -> Any:
            state = self.new_state(activation, None)
            with keras.StatelessScope(state_mapping=list(zip(model_variables, values))):
                y = self.explain(query, tensors, state)
            return joined(recorded(state, "leaves", query.layer), 1) if leaves else y

        def pullback(values: list[Any], tensors: list[Any], activation: Any, select: Callable) -> tuple:
            """``(selected output, explained output, pullback of the selection)``."""
            def selected(wrt: list[Any]) -> tuple[Any, Any]:
                inputs = list(tensors)
                for i, w in zip(attributed, [] if layer_mode else wrt):
                    inputs[i] = w
                y = call(values, inputs, wrt[0] if layer_mode else activation)
                return select(y), y

            wrt = [activation] if layer_mode else [tensors[i] for i in attributed]
            chosen, back, y = jax.vjp(selected, wrt, has_aux=True)
            return chosen, y, back

        def rows_of(chosen: Any, back: Callable) -> list[Any]:
            """``(batch, n, *shape)`` per differentiated tensor: the pullback vectorised over the n
            one-hot cotangents of ``chosen`` ``(batch, n)``."""
            n = chosen.shape[1]
            cotangents = jnp.broadcast_to(jnp.eye(n, dtype=chosen.dtype)[:, None, :], (n, *chosen.shape))
            (grads,) = jax.vmap(back)(cotangents)
            return [jnp.swapaxes(g, 0, 1) for g in grads]

        def body(values: list[Any], tensors: list[Any], args: list[Any], activation: Any) -> Any:
            if kind in ("forward", "activation"):
                return call(values, tensors, activation, leaves=kind == "activation")
            if kind == "jacobian":
                chosen, _, back = pullback(values, tensors, activation,
                                           lambda y: y.reshape(y.shape[0], -1)[:, args[0]])
                return rows_of(chosen, back)
            if kind.startswith("rows/"):
                normalize, subtracts = rows_kind(kind)
                minus = args[2] if subtracts else None
                scores, _, back = pullback(values, tensors, activation,
                                           lambda y: row_scores(y, args[0], args[1], minus, normalize))
                (grads,) = rows_of(scores, back)
                return scores, activation, grads
            total, y, back = pullback(values, tensors, activation, lambda y: chosen_sum(y, args[0]))
            (grads,) = back(jnp.ones_like(total))
            return (y, grads[0]) if kind == "layer_vjp" else (y, grads)

        return body
