"""The small pieces of ``torch.autograd`` work that the torch backend and Keras's torch engine
(``backends/keras/torch_engine.py``) share."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch


def gradient_or_zeros(grad: Optional[torch.Tensor], wrt: torch.Tensor, batched: int = 0) -> torch.Tensor:
    """A gradient from ``autograd.grad``; zeros where the output does not depend on ``wrt`` at all
    (``batched``: the leading axis of an ``is_grads_batched`` gradient)."""
    if grad is not None:
        return grad
    shape = (batched, *wrt.shape) if batched else wrt.shape
    return torch.zeros(shape, dtype=wrt.dtype, device=wrt.device)


def row_gradients(scores: torch.Tensor, wrt: list[torch.Tensor]) -> torch.Tensor:
    """``(batch, n, *shape)``: the gradient of each of the ``n`` scores ``(batch, n)`` with respect to
    ``wrt`` joined along its axis 1, one backward pass per row through the one graph (a sample's score
    reads that sample only: one sum for all samples). On the CPU that ran faster than batching the
    backward over the rows (``is_grads_batched``: 1.8× the time for 8 rows of a GPT-2 config,
    measured), and it holds one row's gradients at a time."""
    n = scores.shape[1]
    rows = []
    for k in range(n):
        grads = torch.autograd.grad(scores[:, k].sum(), wrt, retain_graph=k < n - 1, allow_unused=True)
        rows.append(torch.cat([gradient_or_zeros(g, w) for g, w in zip(grads, wrt)], dim=1))
    return torch.stack(rows, dim=1)


def float32_numpy(t: torch.Tensor) -> np.ndarray:
    """A tensor's values as float32 numpy on the CPU, detached (no copy where they are already that)."""
    t = t.detach()
    if t.dtype != torch.float32 or t.device.type != "cpu":
        t = t.to("cpu", torch.float32)
    return t.numpy()
