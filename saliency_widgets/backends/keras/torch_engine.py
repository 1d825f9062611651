"""Keras on torch: ``torch.autograd.grad`` through the Keras model's own call (eager; never
``.backward()``, so no ``.grad`` is written on the model's variables)."""

from __future__ import annotations

from typing import Any, Optional

import keras
import numpy as np
import torch

from ...errors import NonDifferentiableError
from ..base import Query
from ..torch.autograd import float32_numpy, gradient_or_zeros, row_gradients
from .engine import NOT_DIFFERENTIABLE, Engine, joined, recorded, row_scores, rows_kind


class TorchEngine(Engine):
    """Every kind of call eagerly, with gradients taken where Keras put the tensors. The gradient
    with respect to a layer's output is taken at that output in the same pass."""

    def __init__(self, backend: Any) -> None:
        super().__init__(backend)
        #: Where Keras puts tensors (its torch backend's device), asked once: ``keras.ops.convert_to_tensor``
        #: costs 0.06 ms an array, ``torch.as_tensor`` a tenth of it.
        self._device = keras.ops.convert_to_tensor(np.zeros(1, np.float32)).device

    def run(self, kind: str, query: Query, entries: list[np.ndarray], args: list[np.ndarray],
            activation: Optional[np.ndarray]) -> Any:
        tensors = [torch.as_tensor(e, device=self._device) for e in entries]
        args = [torch.as_tensor(a, device=self._device) for a in args]
        if activation is not None:
            activation = torch.as_tensor(activation, device=self._device)
        if kind in ("forward", "activation"):
            with torch.no_grad():
                state = self.new_state(activation, None)
                y = self.explain(query, tensors, state)
                return float32_numpy(y if kind == "forward" else joined(recorded(state, "leaves", query.layer), 1))
        with torch.enable_grad():
            y, wrt = self._differentiable(query, tensors, activation)
            if kind == "jacobian":
                return [float32_numpy(j) for j in _jacobian(y, wrt, args[0])]
            if kind.startswith("rows/"):
                normalize, subtracts = rows_kind(kind)
                scores = row_scores(y, args[0], args[1], args[2] if subtracts else None, normalize)
                if not scores.requires_grad:
                    raise NonDifferentiableError(NOT_DIFFERENTIABLE)
                return float32_numpy(scores), float32_numpy(joined(wrt, 1)), float32_numpy(row_gradients(scores, wrt))
            total = _chosen_sum(y, args[0])
            if not total.requires_grad:
                raise NonDifferentiableError(NOT_DIFFERENTIABLE)
            grads = _gradients(torch.autograd.grad(total, wrt, allow_unused=True), wrt)
            if kind == "layer_vjp":
                return float32_numpy(y), float32_numpy(wrt[0]), float32_numpy(grads[0])
            return float32_numpy(y), [float32_numpy(g) for g in grads]

    def _differentiable(self, query: Query, tensors: list[torch.Tensor], activation: Optional[torch.Tensor]
                        ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(explained output, tensors to differentiate with respect to)``: the attributed entries
        (fresh tensors of ours, made to require grad), or the layer's output or the activation given."""
        if query.layer is None:
            for i in query.spec.attributed:
                tensors[i] = tensors[i].detach().requires_grad_(True)
            return self.explain(query, tensors, self.new_state(None, None)), [tensors[i] for i in query.spec.attributed]
        if activation is not None:
            activation = activation.detach().requires_grad_(True)
        state = self.new_state(activation, _watched)
        y = self.explain(query, tensors, state)
        return y, list(recorded(state, "leaves", query.layer))


def _chosen_sum(y: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """:func:`.engine.chosen_sum` in torch's own ops: a gather, where ``keras.ops``' one-hot product
    costs half a millisecond a call on the CPU (measured on a 3072-512-512-100 MLP, batch 32)."""
    flat = y.reshape(y.shape[0], -1)
    targets = targets.to(flat.device)
    index = torch.where(targets < 0, flat.argmax(dim=1), targets)
    return flat.gather(1, index[:, None]).sum()


def _watched(tensor: torch.Tensor) -> torch.Tensor:
    """A layer output to differentiate with respect to: itself inside the graph, else (a model
    whose variables require no grad, the layer first) a leaf of ours that requires grad."""
    return tensor if tensor.requires_grad else tensor.detach().requires_grad_(True)


def _gradients(grads: tuple, wrt: list[torch.Tensor]) -> list[torch.Tensor]:
    """``grads`` with an unused input's None as zeros; all None: nothing is differentiable."""
    if all(g is None for g in grads):
        raise NonDifferentiableError(NOT_DIFFERENTIABLE)
    return [gradient_or_zeros(g, w) for g, w in zip(grads, wrt)]


def _jacobian(y: torch.Tensor, wrt: list[torch.Tensor], rows: torch.Tensor) -> list[torch.Tensor]:
    """``(batch, len(rows), *shape)`` per tensor of ``wrt``: one backward pass batched over the rows
    (``is_grads_batched``), or one per row where an op has no batching rule."""
    selected = y.reshape(y.shape[0], -1)[:, rows.long()]
    n = selected.shape[1]
    if not selected.requires_grad:
        raise NonDifferentiableError(NOT_DIFFERENTIABLE)
    cotangents = torch.eye(n, dtype=selected.dtype, device=selected.device)[:, None, :].expand(n, *selected.shape)
    try:
        grads = torch.autograd.grad(selected, wrt, grad_outputs=cotangents, is_grads_batched=True,
                                    allow_unused=True, retain_graph=True)
        return [g.transpose(0, 1) for g in _gradients(grads, [w.expand(n, *w.shape) for w in wrt])]
    except RuntimeError:  # an op vmap cannot batch
        per_row = [_gradients(torch.autograd.grad(selected[:, k].sum(), wrt, allow_unused=True,
                                                  retain_graph=k < n - 1), wrt) for k in range(n)]
        return [torch.stack([row[i] for row in per_row], dim=1) for i in range(len(wrt))]
