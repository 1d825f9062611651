"""Attribution methods, written once against the backend protocol.

Nothing here knows a framework: every forward pass and gradient goes through
:class:`~saliency_widgets.backends.base.Backend`, and every array is numpy.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from .backends import get_backend
from .backends.base import Backend
from .config import config
from .errors import MemoryBudgetError, NonDifferentiableError, SaliencyError, SaliencyWarning

METHODS = ("gradient", "input_x_gradient", "smoothgrad", "integrated_gradients")
OUTPUTS = ("logits", "probabilities")

#: Keyword options each method accepts, with their defaults.
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "gradient": {},
    "input_x_gradient": {},
    "smoothgrad": {"n_samples": 50, "noise": 0.15, "seed": None},
    "integrated_gradients": {"baseline": None, "steps": 50},
}

#: Guesses of working memory per input byte, used to size passes under
#: ``config.chunk_budget_bytes``. A copy of the input (SmoothGrad sample, IG
#: step) carries the model's activations: a CNN's are tens of times its input.
#: A Jacobian row mostly adds gradient buffers; measured on the benchmark MLP,
#: passes sized by the copy factor ran 2x slower than one pass for all rows.
_COPY_FACTOR = 32
_JACOBIAN_ROW_FACTOR = 4

Target = Union[None, int, Sequence[int], tuple]


@dataclass
class Attribution:
    """The result of :func:`attribute`: the map and what it was computed from."""

    #: Attribution of every input element, same shape as ``x``, float32.
    values: np.ndarray
    #: For each sample, the index (a tuple) into that sample's output that was explained.
    targets: list[tuple[int, ...]]
    #: The model's scores for the batch, ``(batch, *out_shape)``: logits or probabilities, as asked.
    outputs: np.ndarray
    method: str
    output: str
    #: Integrated gradients only: ``sum(values) - (f(x) - f(baseline))`` per sample.
    completeness_error: Optional[np.ndarray] = None


# --------------------------------------------------------------------- public
def saliency(model: Any, x: Any, target: Target = None, *, method: str = "gradient",
             output: str = "logits", **kw: Any) -> np.ndarray:
    """Attribution of ``target`` to every element of ``x``; an array of ``x.shape``.

    ``target``: ``None`` (each sample's arg-max output), an ``int`` (flat output
    index), a list with one int per sample, or a tuple indexing one sample's
    multi-dimensional output, e.g. ``(1, 1, 0)``. ``method``: ``"gradient"``,
    ``"input_x_gradient"``, ``"smoothgrad"`` (``n_samples=50``, ``noise=0.15`` of
    the input's range, ``seed=None``) or ``"integrated_gradients"``
    (``baseline=None`` → zeros, ``steps=50``). ``output``: ``"logits"`` (scores
    before a final softmax/sigmoid) or ``"probabilities"`` (the output as it is).
    """
    return attribute(model, x, target, method=method, output=output, **kw).values


def attribute(model: Any, x: Any, target: Target = None, *, method: str = "gradient",
              output: str = "logits", **kw: Any) -> Attribution:
    """Like :func:`saliency`, returning the targets, scores and IG completeness error too."""
    options = _method_options(method, kw)
    backend, xs, logits = _prepare(model, x, output)
    out_shape = _output_shape(backend, xs, logits)
    # Scores are needed first only to find arg-max targets; otherwise they come with the gradient.
    scores = _forward(backend, xs, logits) if target is None else None
    flat_targets = resolve_targets(target, (len(xs), *out_shape), scores)
    cotangent = _one_hot(flat_targets, (len(xs), *out_shape))
    delta = None
    if method in ("gradient", "input_x_gradient"):
        scores, values = _vjp(backend, xs, cotangent, logits)
        if method == "input_x_gradient":
            values = xs * values
    else:
        scores = _forward(backend, xs, logits) if scores is None else scores
        if method == "smoothgrad":
            values = _smoothgrad(backend, xs, cotangent, logits, **options)
        else:
            values, baseline = _integrated_gradients(backend, xs, cotangent, logits, **options)
            delta = _completeness_error(backend, values, baseline, scores, flat_targets, logits)
    if not logits:
        _warn_if_saturated(backend, scores, flat_targets)
    _warn_if_not_finite(values, "the attribution")
    targets = [np.unravel_index(int(t), out_shape) for t in flat_targets]
    return Attribution(
        values=values.astype(np.float32, copy=False),
        targets=[tuple(int(i) for i in t) for t in targets],
        outputs=scores,
        method=method,
        output=output,
        completeness_error=delta,
    )


def jacobian(model: Any, x: Any, *, output: str = "logits",
             outputs: Optional[Sequence[Union[int, tuple]]] = None) -> np.ndarray:
    """Per-sample Jacobian of the outputs w.r.t. the input.

    Returns ``(batch, *out_shape, *in_shape)``, or ``(batch, len(outputs), *in_shape)``
    when ``outputs`` (flat ints or index tuples into one sample's output) is given.
    Computed in vectorized chunks under ``config.chunk_budget_bytes``; refused with
    a :class:`MemoryBudgetError` above ``config.jacobian_budget_bytes``.
    """
    backend, xs, logits = _prepare(model, x, output)
    out_shape = _output_shape(backend, xs, logits)
    n_out = int(np.prod(out_shape, dtype=np.int64))
    rows = np.arange(n_out) if outputs is None else output_rows(outputs, out_shape)
    _check_jacobian_budget(xs, len(rows), outputs is None)
    chunk = _items_per_chunk(xs.nbytes, _JACOBIAN_ROW_FACTOR)
    parts = [_guarded(lambda r=r: backend.jacobian_rows(xs, r, logits=logits))
             for r in np.array_split(rows, max(1, math.ceil(len(rows) / chunk)))]
    result = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
    _warn_if_not_finite(result, "the Jacobian")
    if outputs is None:
        result = result.reshape(xs.shape[0], *out_shape, *xs.shape[1:])
    return result.astype(np.float32, copy=False)


def output_rows(outputs: Sequence[Union[int, tuple, list]], out_shape: tuple) -> np.ndarray:
    """Flat indices of ``outputs`` (flat ints, or index tuples/lists) into one sample's
    output of shape ``out_shape``, validated with messages that give the valid range."""
    return np.array([_flat_index(tuple(o) if isinstance(o, list) else o, out_shape, "outputs")
                     for o in outputs], dtype=np.int64)


def resolve_targets(target: Target, scores_shape: tuple, scores: Optional[np.ndarray] = None) -> np.ndarray:
    """One flat output index per sample, validated against ``scores_shape`` = (batch, *out).

    ``scores`` (the model's outputs) are needed only for ``target=None`` (arg-max).
    """
    batch, out_shape = scores_shape[0], scores_shape[1:]
    if target is None:
        if scores is None:
            raise ValueError("arg-max targets need the scores")
        return scores.reshape(batch, -1).argmax(axis=1).astype(np.int64)
    if isinstance(target, (str, bytes, float, tuple, int, np.integer)):
        return np.full(batch, _flat_index(target, out_shape, "target"), dtype=np.int64)
    per_sample = target.tolist() if isinstance(target, np.ndarray) else list(target)
    if len(per_sample) != batch:
        raise SaliencyError(
            f"got {len(per_sample)} targets for a batch of {batch} samples; pass one target per "
            "sample, a single int for all, or a tuple to index a multi-dimensional output"
        )
    return np.array([_flat_index(tuple(t) if isinstance(t, list) else t, out_shape, "target")
                     for t in per_sample], dtype=np.int64)


# ------------------------------------------------------------------- methods
def _smoothgrad(backend: Backend, xs: np.ndarray, cotangent: np.ndarray, logits: bool, *,
                n_samples: int, noise: float, seed: Optional[int]) -> np.ndarray:
    """Mean gradient over ``n_samples`` noisy copies; noise σ = ``noise`` × each sample's range."""
    n_samples = _positive_int("n_samples", n_samples)
    if not noise >= 0:
        raise SaliencyError(f"noise must be a non-negative fraction of the input range, got {noise}")
    rng = np.random.default_rng(seed)
    axes = tuple(range(1, xs.ndim))
    sigma = noise * (xs.max(axis=axes, keepdims=True) - xs.min(axis=axes, keepdims=True))

    def noisy(count: int) -> np.ndarray:
        return (xs + sigma * rng.standard_normal((count, *xs.shape))).astype(xs.dtype)

    weights = np.full(n_samples, 1.0 / n_samples)
    return _batched_gradient_sum(backend, xs, cotangent, logits, weights, noisy)


def _integrated_gradients(backend: Backend, xs: np.ndarray, cotangent: np.ndarray, logits: bool, *,
                          baseline: Any, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(x − baseline) × the path integral of the gradient, by Gauss–Legendre quadrature."""
    steps = _positive_int("steps", steps)
    base = _prepare_baseline(backend, baseline, xs)
    nodes, node_weights = np.polynomial.legendre.leggauss(steps)
    alphas, weights = (nodes + 1) / 2, node_weights / 2
    delta = xs - base
    position = iter(alphas)

    def path(count: int) -> np.ndarray:
        a = np.array([next(position) for _ in range(count)], dtype=xs.dtype)
        return (base + a.reshape(-1, *([1] * xs.ndim)) * delta).astype(xs.dtype)

    avg_grad = _batched_gradient_sum(backend, xs, cotangent, logits, weights, path)
    return delta * avg_grad, base


def _batched_gradient_sum(backend: Backend, xs: np.ndarray, cotangent: np.ndarray, logits: bool,
                          weights: np.ndarray, make_points: Callable[[int], np.ndarray]) -> np.ndarray:
    """``Σ_k weights[k] ∇f(points_k)``, evaluating the points as batches of copies of ``xs``.

    ``make_points(count)`` returns the next ``count`` point sets, ``(count, *xs.shape)``.
    """
    per_copy = _items_per_chunk(xs.nbytes, _COPY_FACTOR)
    total = np.zeros(xs.shape, dtype=np.float64)
    for start in range(0, len(weights), per_copy):
        w = weights[start:start + per_copy]
        points = make_points(len(w))
        flat_points = points.reshape(len(w) * xs.shape[0], *xs.shape[1:])
        tiled_cot = np.concatenate([cotangent] * len(w))
        grads = _vjp(backend, flat_points, tiled_cot, logits)[1].reshape(points.shape)
        total += np.tensordot(w, grads, axes=1)
    return total.astype(np.float32)


def _completeness_error(backend: Backend, values: np.ndarray, baseline: np.ndarray,
                        scores: np.ndarray, flat_targets: np.ndarray, logits: bool) -> np.ndarray:
    rows = np.arange(len(flat_targets))
    f_x = scores.reshape(len(rows), -1)[rows, flat_targets]
    f_base = _forward(backend, baseline, logits).reshape(len(rows), -1)[rows, flat_targets]
    total = values.reshape(len(rows), -1).sum(axis=1, dtype=np.float64)
    return (total - (f_x - f_base)).astype(np.float32)


# ------------------------------------------------------------------- helpers
def _prepare(model: Any, x: Any, output: str) -> tuple[Backend, np.ndarray, bool]:
    """Validates ``output`` and ``x`` and warns about training mode:
    ``(backend, x as float32 numpy, logits?)``."""
    _check_choice("output", output, OUTPUTS)
    backend = get_backend(model)
    xs = _prepare_input(backend, x)
    _warn_if_training(backend)
    return backend, xs, output == "logits"


def _output_shape(backend: Backend, xs: np.ndarray, logits: bool) -> tuple[int, ...]:
    """One sample's output shape, from a forward pass; remembered by the backend per
    input shape, so repeated Jacobians skip that pass."""
    key = (xs.shape[1:], logits)
    if key not in backend.output_shapes:
        backend.output_shapes[key] = _forward(backend, xs, logits).shape[1:]
    return backend.output_shapes[key]


def _forward(backend: Backend, xs: np.ndarray, logits: bool) -> np.ndarray:
    return _as_scores(_guarded(lambda: backend.forward(xs, logits=logits)), len(xs))


def _vjp(backend: Backend, xs: np.ndarray, cotangent: np.ndarray, logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, gradient)`` for a batch; the backend reshapes the cotangent to its output."""
    outputs, grad = _guarded(lambda: backend.vjp(xs, cotangent, logits=logits))
    return _as_scores(outputs, len(xs)), grad


def _as_scores(outputs: np.ndarray, batch: int) -> np.ndarray:
    """The model's outputs as ``(batch, *out)``; one score per sample becomes ``(batch, 1)``."""
    if outputs.ndim == 0 or outputs.shape[0] != batch:
        raise SaliencyError(
            f"the model's output has shape {outputs.shape}, but a batch of {batch} needs a "
            "leading batch axis of the same size"
        )
    return outputs[:, None] if outputs.ndim == 1 else outputs


def _guarded(compute: Callable[[], Any]) -> Any:
    """Runs a backend call; a framework's out-of-memory error becomes a budget hint."""
    try:
        return compute()
    except MemoryError as err:
        raise MemoryBudgetError(
            f"out of memory ({err}); lower sw.config.chunk_budget_bytes "
            f"(now {config.chunk_budget_bytes:,} bytes) or pass fewer outputs"
        ) from None


def _prepare_input(backend: Backend, x: Any) -> np.ndarray:
    xs = backend.to_numpy(x)
    if xs.ndim == 0:
        raise SaliencyError("x must be a batch with a leading batch axis, got a scalar")
    if xs.shape[0] == 0:
        raise SaliencyError("x is an empty batch (its first axis has length 0)")
    if not np.issubdtype(xs.dtype, np.floating):
        raise NonDifferentiableError(
            f"x has dtype {xs.dtype}; gradients need a floating-point input. For token ids, "
            "explain the embedding output instead of the integer ids"
        )
    _warn_if_not_finite(xs, "the input")
    return np.array(xs, dtype=np.float32)


def _prepare_baseline(backend: Backend, baseline: Any, xs: np.ndarray) -> np.ndarray:
    if baseline is None:
        return np.zeros_like(xs)
    base = np.asarray(backend.to_numpy(baseline), dtype=np.float32)
    try:
        return np.broadcast_to(base, xs.shape).copy()
    except ValueError:
        raise SaliencyError(
            f"baseline of shape {base.shape} does not broadcast to the input's shape {xs.shape}"
        ) from None


def _method_options(method: str, kw: dict[str, Any]) -> dict[str, Any]:
    _check_choice("method", method, METHODS)
    defaults = METHOD_OPTIONS[method]
    unknown = sorted(set(kw) - set(defaults))
    if unknown:
        accepted = ", ".join(defaults) if defaults else "no options"
        raise SaliencyError(f"method {method!r} does not take {', '.join(unknown)}; it accepts {accepted}")
    return {**defaults, **kw}


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise SaliencyError(f"unknown {name} {value!r}; choose one of {', '.join(map(repr, choices))}")


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise SaliencyError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _flat_index(index: Union[int, tuple], out_shape: tuple, what: str) -> int:
    n_out = int(np.prod(out_shape, dtype=np.int64))
    if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
        if not 0 <= index < n_out:
            raise SaliencyError(
                f"{what} {int(index)} is out of range: the model has {n_out} outputs per sample "
                f"(valid: 0 to {n_out - 1})"
            )
        return int(index)
    if isinstance(index, tuple) and all(isinstance(i, (int, np.integer)) for i in index):
        if len(index) != len(out_shape) or not all(0 <= i < n for i, n in zip(index, out_shape)):
            raise SaliencyError(
                f"{what} {index} does not index one sample's output of shape {out_shape} "
                f"(valid: a tuple of {len(out_shape)} ints, each 0 ≤ i < the axis length)"
            )
        return int(np.ravel_multi_index(index, out_shape))
    raise SaliencyError(
        f"{what} must be None, an int, one int per sample, or a tuple index into one sample's "
        f"output; got {index!r}"
    )


def _one_hot(flat_targets: np.ndarray, scores_shape: tuple) -> np.ndarray:
    cot = np.zeros((scores_shape[0], int(np.prod(scores_shape[1:]))), dtype=np.float32)
    cot[np.arange(len(flat_targets)), flat_targets] = 1
    return cot.reshape(scores_shape)


def _items_per_chunk(bytes_per_item: int, factor: int) -> int:
    """How many copies of an input of ``bytes_per_item`` fit one batched pass."""
    return max(1, int(config.chunk_budget_bytes // max(1, bytes_per_item * factor)))


def _check_jacobian_budget(xs: np.ndarray, n_rows: int, all_outputs: bool) -> None:
    need = xs.nbytes * n_rows
    if need > config.jacobian_budget_bytes:
        hint = ("pass outputs=[...] to compute only some outputs, " if all_outputs
                else "pass fewer outputs, ")
        raise MemoryBudgetError(
            f"the Jacobian would take {need / 2**20:,.1f} MiB ({n_rows} outputs × input of shape "
            f"{xs.shape}), more than the budget of {config.jacobian_budget_bytes / 2**20:,.0f} MiB; "
            f"{hint}a smaller batch, or raise sw.config.jacobian_budget_bytes"
        )


def _warn_if_not_finite(values: np.ndarray, what: str) -> None:
    # NaN and ±inf survive a float64 sum (which cannot overflow here): one cheap pass.
    if not np.isfinite(np.sum(values, dtype=np.float64)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        warnings.warn(f"{what} contains {bad} NaN or infinite values", SaliencyWarning, stacklevel=3)


def _warn_if_training(backend: Backend) -> None:
    if backend.is_training:
        warnings.warn(
            "the model is in training mode; attributions are computed in inference mode "
            "(dropout off, batch norm with running statistics) and the mode is left as it was",
            SaliencyWarning, stacklevel=3,
        )


def _warn_if_saturated(backend: Backend, scores: np.ndarray, flat_targets: np.ndarray) -> None:
    if backend.final_activation not in ("softmax", "sigmoid"):
        return
    probs = scores.reshape(scores.shape[0], -1)[np.arange(len(flat_targets)), flat_targets]
    slope = probs * (1 - probs)
    if np.any(slope < 1e-3):
        worst = int(np.argmin(slope))
        warnings.warn(
            f"the {backend.final_activation} output is saturated (probability {probs[worst]:.4f} "
            f"for sample {worst}): its gradient is about {1 / max(slope[worst], 1e-12):,.0f}× smaller "
            "than the logit's; output='logits' explains the score before the activation",
            SaliencyWarning, stacklevel=3,
        )
