"""Attribution methods, written once against the backend protocol.

Nothing here knows a framework: every forward pass and gradient goes through
:class:`~saliency_widgets.backends.base.Backend`, and every array is numpy.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from . import arguments, progress
from .backends import get_backend
from .backends.base import Backend, Query, Targets, sum_of_copies, to_numpy
from .config import config
from .errors import MemoryBudgetError, NonDifferentiableError, SaliencyError, SaliencyWarning
from .gradcam import default_layer, gradcam, gradcam_plus_plus
from .heads import explained_scores, looks_like_probabilities
from .inputs import infer_layout
from .passes import PassSizes, remember_settled, starting_sizes
from .occlusion import occlusion
from .structure import Structure, baseline_entries, flatten, replaced, select, signature, tile
from .frameworks import accepts_framework

METHODS = ("gradient", "input_x_gradient", "smoothgrad", "integrated_gradients", "gradcam", "gradcam_plus_plus",
           "occlusion")
OUTPUTS = ("logits", "probabilities")

#: Keyword options each method accepts, with their defaults.
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "gradient": {},
    "input_x_gradient": {},
    "smoothgrad": {"n_samples": 50, "noise": 0.15, "seed": None},
    "integrated_gradients": {"baseline": None, "steps": 50},
    "gradcam": {"relu": True},
    "gradcam_plus_plus": {"relu": True},
    "occlusion": {"window": None, "stride": None, "baseline": 0.0},
}
#: How each method option is checked (see :mod:`saliency_widgets.arguments`); ``baseline`` is checked
#: where it is made an array of ``x``'s structure.
_OPTION_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "n_samples": lambda name, value: arguments.positive_int(
        name, value, arguments.MAX_SAMPLES, f"the mean of {arguments.MAX_SAMPLES:,} noisy gradients has a standard "
        "error of 1 % of one gradient's spread, and every sample costs a forward and backward pass of the batch; "
        "pass fewer"),
    "noise": arguments.fraction,
    "seed": lambda name, value: arguments.seed(value),
    "steps": lambda name, value: arguments.positive_int(
        name, value, arguments.MAX_STEPS, f"Gauss–Legendre quadrature with {arguments.MAX_STEPS:,} nodes is exact "
        f"for polynomials of degree {2 * arguments.MAX_STEPS - 1:,}, and its nodes take time growing as steps³ "
        "to compute; pass fewer"),
    "relu": arguments.flag,
    "window": arguments.sizes,
    "stride": arguments.sizes,
}
_CAMS = {"gradcam": gradcam, "gradcam_plus_plus": gradcam_plus_plus}
#: Methods computed from one gradient pass, which also gives the scores (and arg-max targets).
_ONE_PASS = ("gradient", "input_x_gradient", *_CAMS)

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

    #: Attribution, float32: an array of ``x.shape`` for a single-array ``x``; ``x``'s structure
    #: (``None`` for fixed entries) for a tuple/list/dict ``x``; ``(batch, *layer_shape)`` with ``layer=``.
    values: Any
    #: For each sample, the index (a tuple) into that sample's output that was explained.
    targets: list[tuple[int, ...]]
    #: The model's scores for the batch, ``(batch, *out_shape)``: logits or probabilities, as asked.
    outputs: np.ndarray
    method: str
    output: str
    #: Integrated gradients only: ``sum(values) - (f(x) - f(baseline))`` per sample.
    completeness_error: Optional[np.ndarray] = None
    #: The name of the layer the attribution landed on (``layer=``), else None.
    layer: Optional[str] = None
    #: With ``contrast=``, each sample's contrasted output (an index tuple, as ``targets``): the map
    #: explains score(target) − score(contrast). None without.
    contrasts: Optional[list[tuple[int, ...]]] = None


@dataclass
class _Problem:
    """One call's model, query and flat input entries (see :mod:`saliency_widgets.structure`)."""

    backend: Backend
    query: Query
    entries: list[np.ndarray]

    #: First call only: the scores of a reordered batch, to be checked by ``_verify``.
    probe: Optional[np.ndarray] = None
    #: First call only, instead of the probe: the output shape the model's structure declares.
    declared: Optional[tuple[int, ...]] = None
    #: Whether this is the first call for this input signature and query (see ``_start``).
    first: bool = False
    #: The passes to use instead of the backend's search (see :func:`attribute_in_passes`).
    passes: Optional[Callable[[PassSizes], PassSizes]] = None

    @property
    def batch(self) -> int:
        return int(self.entries[0].shape[0])

    @property
    def key(self) -> tuple:
        """(input signature, query key): what the backend keeps output shapes and pass sizes under."""
        return signature(self.entries), self.query.key

    @property
    def at_layer(self) -> bool:
        return self.query.layer is not None

    @property
    def logits(self) -> bool:
        return self.query.logits


# --------------------------------------------------------------------- public
@accepts_framework
def saliency(model: Any, x: Any, target: Target = None, *, contrast: Target = None, method: str = "gradient",
             output: str = "logits", head: Any = None, layer: Any = None, fixed: Any = None,
             **kw: Any) -> Any:
    """Attribution of ``target`` to every element of ``x`` (or of ``layer``'s output).

    ``x``: an array, a tuple/list of arrays or a dict of arrays (a HuggingFace
    ``BatchEncoding``), batch first; entries named by ``fixed=`` (default: every
    non-floating entry, e.g. token ids and masks) are passed through unattributed.
    ``target``: ``None`` (each sample's arg-max output), an ``int`` (flat output
    index), a list with one int per sample, or a tuple indexing one sample's
    multi-dimensional output, e.g. ``(1, 1, 0)``. ``contrast``: an output (an ``int`` or an index
    tuple, like ``target``) or one per sample: the map then explains score(target) − score(contrast),
    "why A and not B" — exact for every method, as each is linear in the explained score (integrated
    gradients are complete against the difference; Grad-CAM maps the gradient of the difference, before
    its weighting and ReLU; occlusion measures drops of the difference). ``method``: ``"gradient"``,
    ``"input_x_gradient"``, ``"smoothgrad"`` (``n_samples=50``, ``noise=0.15`` of
    the range, ``seed=None``: an int, or a numpy ``Generator`` one is drawn from; an int gives the
    same map every call; torch draws the noise with its own generator on the model's device,
    Keras with numpy's) or
    ``"integrated_gradients"`` (``baseline=None`` →
    zeros, ``steps=50``); ``"gradcam"`` / ``"gradcam_plus_plus"`` (``relu=True``; at
    ``layer=``, default the last layer with a spatial output; returns ``(batch, H, W)``
    or ``(batch, L)``, upsampled to the input); ``"occlusion"`` (``window=``,
    ``stride=``, ``baseline=0``, see :func:`saliency_widgets.occlusion.occlusion`).
    ``output``: ``"logits"`` (scores before the softmax /
    sigmoid the output comes out of) or ``"probabilities"`` (the output as it is).
    ``head``: what is explained — an output entry (index or name), a layer, or a
    callable ``head(outputs) -> tensor``. ``layer``: attribute to this layer's
    output instead of the input. Returns an array of ``x.shape`` (``x``'s
    structure for a structured ``x``; ``(batch, *layer_shape)`` with ``layer=``).
    """
    return _attribute(model, x, target, method, output, head, layer, fixed, kw, scored=False,
                      contrast=contrast).values


@accepts_framework
def attribute(model: Any, x: Any, target: Target = None, *, contrast: Target = None, method: str = "gradient",
              output: str = "logits", head: Any = None, layer: Any = None, fixed: Any = None,
              **kw: Any) -> Attribution:
    """Like :func:`saliency`, returning the targets (and contrasts), scores and IG completeness error too."""
    return _attribute(model, x, target, method, output, head, layer, fixed, kw, scored=True, contrast=contrast)


def attribute_in_passes(passes: Callable[[PassSizes], PassSizes], model: Any, x: Any, target: Target = None, *,
                        method: str = "gradient", output: str = "logits", head: Any = None, layer: Any = None,
                        fixed: Any = None, **kw: Any) -> Attribution:
    """:func:`attribute` whose SmoothGrad / integrated-gradients passes are ``passes(own)``, ``own``
    being the backend's timed search for this input signature: the dataset engine fixes a run's
    passes this way, so that a resumed run gives the same bits."""
    return _attribute(model, x, target, method, output, head, layer, fixed, kw, scored=True, passes=passes)


def _attribute(model: Any, x: Any, target: Target, method: str, output: str, head: Any, layer: Any, fixed: Any,
               kw: dict[str, Any], *, scored: bool,
               passes: Optional[Callable[[PassSizes], PassSizes]] = None, contrast: Target = None) -> Attribution:
    """:func:`attribute`. Without ``scored``, SmoothGrad and IG skip the forward passes whose
    scores (and completeness error) only the result reports, when no target, check or warning
    needs them: ``outputs`` and ``completeness_error`` may then be None. ``passes``: as in
    :func:`attribute_in_passes`."""
    options = method_options(method, kw)
    target = arguments.plain_target(target, to_numpy)
    contrast = arguments.plain_target(contrast, to_numpy, "contrast")
    if method in _CAMS and layer is None:
        layer = _default_cam_layer(model, x, fixed)
    ids = method == "occlusion" and np.asarray(to_numpy(options["baseline"])).dtype.kind in "iu"
    try:
        p = _setup(model, x, output, head, layer, fixed, occlude_ids=ids)
    except NonDifferentiableError:
        if method != "occlusion":
            raise
        if not Structure.of(x).structured:
            raise SaliencyError(
                f"x holds integers (token ids?) and occlusion replaces windows of x by baseline=, which must then "
                f"be an int (e.g. the [PAD] token id), got {arguments.shown(options['baseline'])}"
            ) from None
        raise SaliencyError(
            "x has no entry to occlude: entries that are not floating-point (token ids, masks) are fixed by "
            "default. Name only the entries to keep with fixed= (e.g. fixed=['attention_mask']) and pass the "
            "[PAD] or [MASK] token id as baseline="
        ) from None
    p.passes = passes
    out_shape = _start(p)
    delta = None
    if method in _ONE_PASS:  # target=None: each sample's arg-max, taken from the same pass
        requested = None if target is None else _requested_targets(target, p.batch, out_shape)
        if contrast is not None and requested is None:  # a contrast pass needs its targets first
            requested = _forward(p, p.entries).reshape(p.batch, -1).argmax(axis=1)
        contrasts = resolve_contrasts(contrast, requested, p.batch, out_shape, arg_max=target is None)
        if method in _CAMS:
            scores, values = _class_activation_map(p, method, requested, contrasts, **options)
        else:
            scores, values = _gradient_times(p, requested, contrasts, method == "input_x_gradient")
        _verify(p, scores)
        flat_targets = scores.reshape(p.batch, -1).argmax(axis=1) if requested is None else requested
    else:
        needed = scored or target is None or method == "occlusion" or p.first or not p.logits
        scores = _forward(p, p.entries) if needed else None
        if scores is not None:
            _verify(p, scores)
        flat_targets = resolve_targets(target, (p.batch, *out_shape), scores)
        contrasts = resolve_contrasts(contrast, flat_targets, p.batch, out_shape, arg_max=target is None)
        if method == "smoothgrad":
            values = _smoothgrad(p, flat_targets, contrasts, **options)
        elif method == "occlusion":
            values = _occlusion(p, flat_targets, contrasts, scores, **options)
        else:
            values, delta = _integrated_gradients(p, flat_targets, contrasts, scores, **options)
    _warn_about_activation(p, scores, flat_targets)  # scores None: logits, not a first call
    if not _finite(*values, *([] if scores is None else [scores])):
        _warn_if_scores_not_finite(p, _forward(p, p.entries) if scores is None else scores)
        for v in values:
            _warn_if_not_finite(v, "the attribution")
    values = [v if v.dtype == np.float32 else v.astype(np.float32) for v in values]
    return Attribution(
        values=values[0] if p.at_layer else p.query.spec.result(values),
        targets=_index_tuples(flat_targets, out_shape, p.batch),
        outputs=scores,
        method=method,
        output=output,
        completeness_error=delta,
        layer=p.query.layer.name if p.at_layer else None,
        contrasts=None if contrasts is None else _index_tuples(contrasts, out_shape, p.batch),
    )


@accepts_framework
def jacobian(model: Any, x: Any, *, output: str = "logits",
             outputs: Optional[Sequence[Union[int, tuple]]] = None, head: Any = None,
             layer: Any = None, fixed: Any = None) -> Any:
    """Per-sample Jacobian of the outputs w.r.t. the input (or ``layer``'s output).

    Returns ``(batch, *out_shape, *in_shape)``, or ``(batch, len(outputs), *in_shape)``
    when ``outputs`` (flat ints or index tuples into one sample's output) is given;
    ``x``'s structure of such arrays for a structured ``x``. Computed in vectorized
    chunks under ``config.chunk_budget_bytes``; refused with a
    :class:`MemoryBudgetError` above ``config.jacobian_budget_bytes``.
    """
    outputs = arguments.plain_outputs(outputs, to_numpy)
    p = _setup(model, x, output, head, layer, fixed)
    for i in p.query.spec.attributed:
        _warn_if_not_finite(p.entries[i], "the input")
    out_shape = _start(p)
    if p.first:
        scores = _forward(p, p.entries)
        _verify(p, scores)
        _warn_about_activation(p, scores, None, stacklevel=3)
    else:
        _warn_about_activation(p, None, None, stacklevel=3)
    n_out = int(np.prod(out_shape, dtype=np.int64))
    shapes = _variable_shapes(p)
    _check_jacobian_budget(p.batch, shapes, n_out if outputs is None else len(outputs), outputs is None)
    rows = np.arange(n_out) if outputs is None else output_rows(outputs, out_shape)
    chunk = _items_per_chunk(_bytes_per_copy(p), _JACOBIAN_ROW_FACTOR)
    parts = []
    with progress.stage(len(rows), "Jacobian"):  # each chunk of rows is a pass
        for r in np.array_split(rows, max(1, math.ceil(len(rows) / chunk))):
            parts.append(_guarded(lambda r=r: p.backend.jacobian_rows(p.query, p.entries, r)))
            progress.step(len(r))
    results = []
    for i, shape in enumerate(shapes):
        result = np.concatenate([part[i] for part in parts], axis=1) if len(parts) > 1 else parts[0][i]
        _warn_if_not_finite(result, "the Jacobian")
        if outputs is None:
            result = result.reshape(p.batch, *out_shape, *shape)
        results.append(result.astype(np.float32, copy=False))
    return results[0] if p.at_layer else p.query.spec.result(results)


def layer_output(model: Any, x: Any, layer: Any, *, head: Any = None, fixed: Any = None) -> np.ndarray:
    """The output of ``layer`` (a name, index or object as in ``sw.layers``) for a batch,
    ``(batch, *layer_shape)`` float32; for a layer returning a tuple, its first tensor. ``head``:
    the explained output as in :func:`attribute` (a model with several outputs needs it to run)."""
    backend = get_backend(model)
    spec, entries = flatten(x, backend.to_numpy, fixed)
    p = _Problem(backend, backend.query(spec, head=head, layer=layer), entries)
    return _variables(p)[0]


def predict(model: Any, x: Any, *, output: str = "logits", head: Any = None, fixed: Any = None) -> np.ndarray:
    """The explained output for a batch, ``(batch, *out_shape)`` float32: the logits (scores
    before the final softmax/sigmoid) or the probabilities, of the chosen ``head``."""
    check_choice("output", output, OUTPUTS)
    backend = get_backend(model)
    spec, entries = flatten(x, backend.to_numpy, fixed)
    p = _Problem(backend, backend.query(spec, head=head, logits=output == "logits"), entries)
    _start(p)
    scores = _forward(p, p.entries)
    _verify(p, scores)
    return scores


def output_rows(outputs: Sequence[Union[int, tuple, list]], out_shape: tuple) -> np.ndarray:
    """Flat indices of ``outputs`` (flat ints, or index tuples/lists; negative positions in tuples
    count from the end) into one sample's output of shape ``out_shape``, validated with messages that
    give the valid range."""
    return np.array([_flat_index(o, out_shape, "outputs") for o in arguments.plain_outputs(outputs, to_numpy)],
                    dtype=np.int64)


def resolve_targets(target: Target, scores_shape: tuple, scores: Optional[np.ndarray] = None,
                    what: str = "target") -> np.ndarray:
    """One flat output index per sample, validated against ``scores_shape`` = (batch, *out).

    ``scores`` (the model's outputs) are needed only for ``target=None`` (arg-max). Arrays and
    tensors are taken as :func:`saliency_widgets.arguments.plain_target` reads them. ``what``
    names the argument in messages (``"contrast"`` for a contrast, which is never None here).
    """
    batch, out_shape = scores_shape[0], scores_shape[1:]
    target = arguments.plain_target(target, to_numpy, what)
    if target is None:
        if scores is None:
            raise ValueError("arg-max targets need the scores")
        return scores.reshape(batch, -1).argmax(axis=1).astype(np.int64)
    if not isinstance(target, list):
        return np.full(batch, _flat_index(target, out_shape, what), dtype=np.int64)
    if len(target) != batch:
        raise SaliencyError(
            f"got {len(target)} {what}s for a batch of {batch} samples; pass one {what} per "
            "sample, a single int for all, or a tuple to index a multi-dimensional output"
        )
    return np.array([_flat_index(t, out_shape, what) for t in target], dtype=np.int64)


def resolve_contrasts(contrast: Target, targets: Union[int, np.ndarray], batch: int, out_shape: tuple, *,
                      arg_max: bool) -> Optional[np.ndarray]:
    """One flat contrast index per sample (None without ``contrast``), refused where it is the
    sample's target (``arg_max``: the targets are the samples' arg-max outputs)."""
    if contrast is None:
        return None
    contrasts = resolve_targets(contrast, (batch, *out_shape), what="contrast")
    same = np.flatnonzero(contrasts == targets)
    if len(same):
        i = int(same[0])
        index = _index_tuples(int(contrasts[i]), out_shape, 1)[0]
        which = "its arg-max output, the target of target=None" if arg_max else "its target"
        raise SaliencyError(
            f"contrast {index[0] if len(index) == 1 else index} of sample {i} is {which}: "
            "score(target) − score(contrast) is then 0 and its map would be zero; contrast with another output"
        )
    return contrasts


def _requested_targets(target: Target, batch: int, out_shape: tuple) -> Union[int, np.ndarray]:
    """``target`` as the backends take it: one flat index for a target every sample shares (an int
    or an index tuple), else one per sample (see :func:`resolve_targets`)."""
    target = arguments.plain_target(target, to_numpy)
    if isinstance(target, (tuple, int)):
        return _flat_index(target, out_shape, "target")
    return resolve_targets(target, (batch, *out_shape))


# ------------------------------------------------------------------- methods
def _smoothgrad(p: _Problem, flat_targets: np.ndarray, contrasts: Optional[np.ndarray], *, n_samples: int,
                noise: float, seed: Optional[int]) -> list[np.ndarray]:
    """Mean gradient over ``n_samples`` noisy copies; noise σ = ``noise`` × each sample's range
    (of each attributed entry, or of the layer's activation). Options as ``method_options`` checked them."""
    points = _variables(p)
    sigmas = [p.backend.staged((noise * _sample_range(v)).astype(np.float32)) for v in points]
    points = [p.backend.staged(v) for v in points]
    # One stream per variable, drawn copy after copy (Backend.standard_normal): the same seed
    # gives the same noise however the copies are split into passes.
    if isinstance(seed, np.random.Generator):  # a generator of the caller's: one seed drawn from it
        seed = int(seed.integers(2 ** 63))
    sequence = np.random.SeedSequence(seed)
    rngs = [np.random.Generator(np.random.PCG64(s)) for s in (sequence, *sequence.spawn(len(points) - 1))]

    def noisy(count: int) -> list[Any]:
        copies = []
        for v, s, rng in zip(points, sigmas, rngs):  # in place: no temporaries of the pass's size
            noise = p.backend.standard_normal(rng, (count, *v.shape))
            noise *= s
            noise += v
            copies.append(noise)
        return copies

    weights = np.full(n_samples, 1.0 / n_samples)
    return _batched_gradient_sum(p, flat_targets, contrasts, weights, noisy, "SmoothGrad")


def _integrated_gradients(p: _Problem, flat_targets: np.ndarray, contrasts: Optional[np.ndarray],
                          scores: Optional[np.ndarray], *, baseline: Any,
                          steps: int) -> tuple[list[np.ndarray], Optional[np.ndarray]]:
    """(x − baseline) × the path integral of the gradient, by Gauss–Legendre quadrature;
    with the completeness error ``sum(attribution) − (f(x) − f(baseline))`` per sample
    (None without ``scores``: f(baseline) is then not computed), f being the target's score minus
    the contrast's with ``contrasts``. ``steps`` as ``method_options`` checked it."""
    points = _variables(p)
    bases, base_entries = _baselines(p, baseline, points)
    alphas, weights = gauss_legendre(steps)
    deltas = [v - b for v, b in zip(points, bases)]
    staged = [(p.backend.staged(b), p.backend.staged(d)) for b, d in zip(bases, deltas)]
    position = iter(alphas)

    def path(count: int) -> list[Any]:
        a = p.backend.staged(np.array([next(position) for _ in range(count)], dtype=np.float32))
        copies = []
        for b, d in staged:  # in place: one array of the pass's size, no temporaries
            point = d * a.reshape(-1, *([1] * b.ndim))
            point += b
            copies.append(point)
        return copies

    avg_grads = _batched_gradient_sum(p, flat_targets, contrasts, weights, path, "integrated gradients")
    values = [d * g for d, g in zip(deltas, avg_grads)]
    if scores is None:
        return values, None
    f_base = _forward(p, base_entries, bases[0] if p.at_layer else None)
    f_x = explained_scores(scores, flat_targets, contrasts)
    f_b = explained_scores(f_base, flat_targets, contrasts)
    total = sum(v.reshape(p.batch, -1).sum(axis=1, dtype=np.float64) for v in values)
    return values, (total - (f_x - f_b)).astype(np.float32)


@functools.lru_cache(maxsize=16)
def gauss_legendre(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and weights on [0, 1] (an eigenvalue problem: 1 ms for 50 steps, once)."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas, weights = (nodes + 1) / 2, weights / 2
    alphas.setflags(write=False)
    weights.setflags(write=False)
    return alphas, weights


def _explained_pass(p: _Problem, targets: Targets, contrasts: Optional[np.ndarray]
                    ) -> tuple[list[np.ndarray], Targets, Optional[np.ndarray]]:
    """``(entries, targets, copy weights)`` of one gradient pass explaining score(target) −
    score(contrast): the batch as it is without ``contrasts``; else two copies of it, the first
    explaining the targets (weight +1), the second the contrasts (weight −1), which the gradient
    sums over (``Backend.vjp``'s ``copy_weights``)."""
    if contrasts is None:
        return p.entries, targets, None
    rows = np.concatenate([np.broadcast_to(targets, p.batch), contrasts]).astype(np.int64)
    return tile(p.entries, 2), rows, np.array([1.0, -1.0])


def _gradient_times(p: _Problem, targets: Targets, contrasts: Optional[np.ndarray], times_input: bool
                    ) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(scores, gradients)`` of target − contrast (see :func:`_explained_pass`), multiplied by what
    they are taken against when ``times_input``; at a layer the activation comes from the same pass as
    its gradient (:func:`_layer_vjp`)."""
    if times_input and p.at_layer:
        scores, activation, gradient = _layer_vjp(p, targets, contrasts)
        return scores, [activation * gradient]
    entries, rows, weights = _explained_pass(p, targets, contrasts)
    scores, grads = _vjp(p, entries, None, rows, copy_weights=weights)
    scores = scores[:p.batch]
    return scores, [v * g for v, g in zip(_variables(p), grads)] if times_input else grads


def _layer_vjp(p: _Problem, targets: Targets, contrasts: Optional[np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(scores, activation, gradient)`` at ``query.layer`` from one pass (``Backend.layer_vjp``),
    the gradient that of target − contrast (see :func:`_explained_pass`)."""
    entries, rows, weights = _explained_pass(p, targets, contrasts)
    scores, activation, gradient = _guarded(lambda: p.backend.layer_vjp(p.query, entries, rows))
    if weights is not None:
        activation, gradient = activation[:p.batch], sum_of_copies(gradient, weights)
    return _as_scores(scores, len(entries[0]))[:p.batch], activation, gradient


def _class_activation_map(p: _Problem, method: str, targets: Targets, contrasts: Optional[np.ndarray], *,
                          relu: bool) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(scores, [map])``: Grad-CAM(++) from the layer's activation and the gradient of target −
    contrast w.r.t. it (one pass: the CAM of the difference score, whose gradient is the difference of
    the gradients before the CAM's weighting and ReLU), upsampled to the spatial size of the (first
    attributed) input entry."""
    scores, activation, gradient = _layer_vjp(p, targets, contrasts)
    channels_first = p.backend.framework == "torch"
    n_spatial = activation.ndim - 2
    sample = p.entries[(p.query.spec.attributed or (0,))[0]].shape[1:]
    if len(sample) == n_spatial + 1:
        size = sample[1:] if channels_first else sample[:-1]
    elif len(sample) == n_spatial:
        size = sample
    else:
        raise SaliencyError(
            f"layer {p.query.layer.name!r} has {max(n_spatial, 0)} spatial axes but the input sample has shape "
            f"{sample}: pass layer= a layer whose spatial axes follow the input's"
        )
    cam = _CAMS[method](activation, gradient, channel_axis=0 if channels_first else -1, size=size, relu=relu)
    return scores, [cam]


def _default_cam_layer(model: Any, x: Any, fixed: Any) -> str:
    """The last layer with a spatial output (``gradcam.default_layer``), remembered per input shape."""
    backend = get_backend(model)
    spec, entries = flatten(x, backend.to_numpy, fixed)
    key = ("default cam layer", signature(entries))
    if key not in backend.output_shapes:
        if spec.structured and backend.framework != "keras":  # only Keras declares its layers' shapes
            raise SaliencyError("with a tuple/list/dict x, pass layer= (a convolutional layer; sw.layers lists them)")
        layers = backend.layers(entries[0][:1])
        backend.output_shapes[key] = default_layer(layers, channel_axis=0 if backend.framework == "torch" else -1,
                                                   spatial_axes=entries[0].ndim - 2).name
    return backend.output_shapes[key]


def _occlusion(p: _Problem, flat_targets: np.ndarray, contrasts: Optional[np.ndarray], scores: np.ndarray, *,
               window: Any, stride: Any, baseline: Any) -> list[np.ndarray]:
    """Occlusion of each attributed entry in turn (the others as they are), in batched forward passes.

    Default windows (see :func:`~saliency_widgets.occlusion.window_shape`): one element of a vector
    (one feature, one token id), one time step of a sequence with all its features (the longer axis
    is time, as it is drawn), about 1/8 of each side of an image with all channels together
    (torch channels first, Keras last)."""
    if p.at_layer:
        raise SaliencyError("occlusion perturbs the input; it does not take layer= (use a gradient method there)")
    values = []
    for position in p.query.spec.attributed:
        entry = p.entries[position]
        channel_axis = _occluded_whole(entry.shape[1:], p.backend.framework)

        def scores_of(batch: np.ndarray, position: int = position) -> np.ndarray:
            copies = tile(p.entries, len(batch) // p.batch, skip=[position])
            return _forward(p, replaced(copies, [position], [batch]))

        values.append(occlusion(scores_of, entry, flat_targets, window=window, stride=stride,
                                baseline=p.backend.to_numpy(baseline),
                                channel_axis=channel_axis, reference=scores, contrasts=contrasts))
    return values


def _occluded_whole(sample_shape: tuple[int, ...], framework: str) -> Optional[int]:
    """The axis of a sample that occlusion windows span whole: an image's channels, a sequence's
    features (the shorter axis; the longer is time, as :func:`infer_layout` draws it)."""
    if len(sample_shape) not in (2, 3):
        return None
    layout = infer_layout(sample_shape, framework)
    return 1 - layout.time_axis if layout.kind == "sequence" else layout.channel_axis


def _baselines(p: _Problem, baseline: Any, points: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(baseline of each attributed variable, full entries whose forward pass is f(baseline))``."""
    spec = p.query.spec
    if p.at_layer:
        if baseline is None:
            return [np.zeros_like(points[0])], p.entries
        entries = baseline_entries(spec, p.entries, baseline, p.backend.to_numpy)
        return [_guarded(lambda: p.backend.activation(p.query, entries))], p.entries
    if baseline is None:
        bases = [np.zeros_like(v) for v in points]
    else:
        full = baseline_entries(spec, p.entries, baseline, p.backend.to_numpy)
        bases = [full[i].astype(np.float32) for i in spec.attributed]
    return bases, replaced(p.entries, spec.attributed, bases)


def _batched_gradient_sum(p: _Problem, flat_targets: np.ndarray, contrasts: Optional[np.ndarray],
                          weights: np.ndarray, make_points: Callable[[int], list[np.ndarray]],
                          label: str = "") -> list[np.ndarray]:
    """``Σ_k weights[k] ∇f(points_k)``, evaluating the points as batches of copies of the sample batch;
    f is the target's score, minus the contrast's with ``contrasts`` (a second gradient of the same
    points, weighted −1: the points, drawn on the model's device, are not copied).

    ``make_points(count)`` returns the next ``count`` copies of each variable, ``(count, *shape)``;
    every input entry (fixed ones too) is repeated alongside with its own sample. Each pass is a
    :func:`progress.step` (``label`` names the stage): a cancelled computation stops after its pass.
    """
    key = p.key
    architecture = None
    if key not in p.backend.pass_sizes:
        architecture = p.backend.architecture()
        p.backend.pass_sizes[key] = starting_sizes(
            architecture, key,
            lambda: PassSizes(_items_per_chunk(_bytes_per_copy(p), _COPY_FACTOR), p.backend.layouts(p.query, p.entries)))
    own = p.backend.pass_sizes[key]
    sizes = own if p.passes is None else p.passes(own)
    was_done = own.done
    totals = [np.zeros(s, dtype=np.float64) for s in ((p.batch, *shape) for shape in _variable_shapes(p))]
    replaced_entries = () if p.at_layer else p.query.spec.attributed
    start = 0
    with progress.stage(len(weights), label):
        while start < len(weights):
            w = weights[start:start + sizes.next(len(weights) - start)]
            began = time.perf_counter()
            points = [v.reshape(len(w) * p.batch, *v.shape[2:]) for v in make_points(len(w))]
            entries = tile(p.entries, len(w), skip=replaced_entries)
            explained = [(flat_targets, w)] if contrasts is None else [(flat_targets, w), (contrasts, -w)]
            for rows, copy_weights in explained:
                _, grads = _vjp(p, entries, points, np.tile(rows, len(w)), sizes.layout_for(len(w)),
                                copy_weights=copy_weights)
                for total, g in zip(totals, grads):  # a float32 sum within the pass, a float64 one across passes
                    total += g
            sizes.record(time.perf_counter() - began)
            start += len(w)
            progress.step(len(w))
    if own.settled and not (was_done and own.done) and p.passes is None:  # later models start where it stands
        remember_settled(p.backend.architecture() if architecture is None else architecture, key, own)
    return [t.astype(np.float32) for t in totals]


# ------------------------------------------------------------------- helpers
def _setup(model: Any, x: Any, output: str, head: Any, layer: Any, fixed: Any, *,
           occlude_ids: bool = False) -> _Problem:
    """Validates ``output``, ``x`` and ``fixed``, resolves ``head`` and ``layer``, warns about
    training mode. ``occlude_ids``: an integer single-array ``x`` is attributed (occlusion of token
    ids by an int baseline needs no gradient)."""
    check_choice("output", output, OUTPUTS)
    backend = get_backend(model)
    spec, entries = flatten(x, backend.to_numpy, fixed, backend.input_names)
    if occlude_ids and layer is None and not spec.structured:
        spec = dataclasses.replace(spec, attributed=(0,))
    if layer is None and not spec.attributed:
        given = (f"x has dtype {entries[0].dtype}" if not spec.structured else "no entry of x is floating-point ("
                 + ", ".join(f"{spec.name(i)}: {e.dtype}" for i, e in enumerate(entries)) + ")")
        raise NonDifferentiableError(
            f"{given}; gradients need a floating-point input. For token ids, attribute to the embedding "
            "layer's output with layer= (e.g. layer='embeddings'; sw.layers(model) lists the layers)"
        )
    p = _Problem(backend, backend.query(spec, head=head, logits=output == "logits", layer=layer), entries)
    _warn_if_training(backend)
    return p


def _start(p: _Problem) -> tuple[int, ...]:
    """One sample's output shape, remembered per input signature and query. The first time, it
    comes from the model's structure where the backend can show that each sample's output
    depends on that sample alone (kept in ``p.declared``: :func:`_verify` checks it against the
    scores), else from a forward pass on a reordered, resized batch (rows 1, 0, 0 of ``x``),
    kept in ``p.probe``: :func:`_verify` compares it with the scores the call computes anyway,
    so that a model which mixes samples is refused at the cost of one small pass."""
    key = p.key
    if key in p.backend.refusals:
        raise SaliencyError(p.backend.refusals[key])
    if key not in p.backend.output_shapes:
        p.first = True
        p.declared = p.backend.per_sample_output_shape(p.query, p.entries)
        if p.declared is None:
            try:
                p.probe = _forward(p, _probe_entries(p))
            except SaliencyError:
                _forward(p, p.entries)  # the same failure, told with the caller's own shapes
                raise
        p.backend.output_shapes[key] = p.declared if p.declared is not None else p.probe.shape[1:]
    return p.backend.output_shapes[key]


def _probe_entries(p: _Problem) -> list[np.ndarray]:
    if p.batch >= 2:  # reordered and resized: catches batch statistics and time-major recurrences alike
        return select(p.entries, [1, 0, 0])
    other = [e * 0.5 + 0.25 if np.issubdtype(e.dtype, np.floating) else e for e in p.entries]
    return [np.concatenate([e, o]) for e, o in zip(p.entries, other)]


def _verify(p: _Problem, scores: np.ndarray) -> None:
    """Refuses a model whose sample 0 (or 1) output changed with the rest of the batch, or whose
    output shape is not the one its structure declared (see :func:`_start`)."""
    if p.declared is not None:
        declared, p.declared = p.declared, None
        if scores.shape[1:] != declared:
            p.backend.output_shapes[p.key] = scores.shape[1:]
            raise SaliencyError(
                f"the model's output has shape {scores.shape[1:]} per sample for this input, but its layers "
                f"declare {declared}, which this call's targets were resolved against; call again: "
                "the measured shape is used from now on"
            )
    if p.probe is None:
        return
    probe, p.probe = p.probe, None
    if probe.shape[1:] != scores.shape[1:]:
        _refuse_mixing(p, f"a sample's output has shape {probe.shape[1:]} in a batch of {len(probe)} but "
                          f"{scores.shape[1:]} in a batch of {len(scores)}: its shape follows the batch size (a batch "
                          "× batch score such as CLIP's logits_per_image?), so the model mixes samples along the "
                          "first axis. Pass head= a per-sample output (e.g. the embeddings) to explain it")
    pairs = [(0, 1), (1, 0), (2, 0)] if p.batch >= 2 else [(0, 0)]
    scale = max(1.0, float(np.max(np.abs(scores[np.isfinite(scores)]), initial=0.0)))

    def same(a: np.ndarray, b: np.ndarray) -> bool:
        return np.allclose(a, b, rtol=1e-2, atol=1e-3 * scale, equal_nan=True)

    row = next((row for probe_row, row in pairs if not same(probe[probe_row], scores[row])), None)
    if row is None:
        return
    del p.backend.output_shapes[p.key]  # nothing about this input is known to be right
    if not same(_forward(p, _probe_entries(p)), probe):
        raise SaliencyError(
            "the model's output changes between identical calls: dropout in training mode? call model.eval() "
            "(or remove the randomness); attributions of a random output would not be reproducible"
        )
    _refuse_mixing(p, f"sample {row}'s output changes when the other samples of the batch change: the model mixes "
                      "samples along the first axis (a recurrent layer with batch_first=False, batch statistics, or "
                      "an input whose batch axis is not first). Per-sample attributions would be wrong: give x "
                      "with the batch axis first, and build RNNs with batch_first=True")


def _refuse_mixing(p: _Problem, reason: str) -> None:
    """Refuses the model for this input signature and query, now and on every later call."""
    p.backend.output_shapes.pop(p.key, None)
    p.backend.refusals[p.key] = reason
    raise SaliencyError(reason)


def _variables(p: _Problem) -> list[np.ndarray]:
    """What is attributed: the attributed input entries, or the layer's activation."""
    if p.at_layer:
        return [_guarded(lambda: p.backend.activation(p.query, p.entries))]
    return [p.entries[i] for i in p.query.spec.attributed]


def _variable_shapes(p: _Problem) -> list[tuple[int, ...]]:
    """Per-sample shapes of what is attributed."""
    if p.at_layer:
        key = ("layer", signature(p.entries), p.query.key)
        if key not in p.backend.output_shapes:
            p.backend.output_shapes[key] = _variables(p)[0].shape[1:]
        return [p.backend.output_shapes[key]]
    return [p.entries[i].shape[1:] for i in p.query.spec.attributed]


def _bytes_per_copy(p: _Problem) -> int:
    """Bytes of one copy of the batch: its entries, plus the layer's activation with ``layer=``."""
    inputs = sum(e.nbytes for e in p.entries)
    if not p.at_layer:
        return inputs
    return inputs + 4 * p.batch * int(np.prod(_variable_shapes(p)[0], dtype=np.int64))


def _sample_range(v: np.ndarray) -> np.ndarray:
    axes = tuple(range(1, v.ndim))
    return v.max(axis=axes, keepdims=True) - v.min(axis=axes, keepdims=True)


def _forward(p: _Problem, entries: list[np.ndarray], activation: Optional[np.ndarray] = None) -> np.ndarray:
    out = _guarded(lambda: p.backend.forward(p.query, entries, activation))
    return _as_scores(out, len(entries[0]))


def _vjp(p: _Problem, entries: list[np.ndarray], points: Optional[list[Any]],
         flat_targets: Union[None, int, np.ndarray], layout: Any = None,
         copy_weights: Optional[np.ndarray] = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(scores, gradients)`` for a batch; ``points`` replace the attributed entries (or the
    layer's activation) when given. Targets as ``Backend.vjp`` takes them; ``layout`` is one
    of ``Backend.layouts`` (None: the backend's default); with ``copy_weights`` the gradients
    are summed over the copies the batch is made of (``Backend.vjp``)."""
    spec = p.query.spec
    activation = None
    if points is not None and p.at_layer:
        activation = points[0]
    elif points is not None:
        entries = replaced(entries, spec.attributed, points)
    outputs, grads = _guarded(lambda: p.backend.vjp(p.query, entries, flat_targets, activation, layout=layout,
                                                    copy_weights=copy_weights))
    return _as_scores(outputs, len(entries[0])), grads


def _as_scores(outputs: np.ndarray, batch: int) -> np.ndarray:
    """The model's outputs as ``(batch, *out)``; one score per sample becomes ``(batch, 1)``."""
    if outputs.ndim == 0 or outputs.shape[0] != batch:
        raise SaliencyError(
            f"the explained output has shape {outputs.shape}, but a batch of {batch} needs a "
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


def method_options(method: str, kw: dict[str, Any]) -> dict[str, Any]:
    check_choice("method", method, METHODS)
    defaults = METHOD_OPTIONS[method]
    unknown = sorted(set(kw) - set(defaults))
    if unknown:
        accepted = ", ".join(defaults) if defaults else "no options"
        raise SaliencyError(f"method {method!r} does not take {', '.join(unknown)}; it accepts {accepted}")
    checked = {name: _OPTION_CHECKS[name](name, value) if name in _OPTION_CHECKS else value
               for name, value in kw.items()}
    return {**defaults, **checked}


def check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise SaliencyError(f"unknown {name} {arguments.shown(value)}; choose one of {', '.join(map(repr, choices))}")


def _flat_index(index: Union[int, tuple], out_shape: tuple, what: str) -> int:
    """The flat index of ``index`` (a flat int, or an index tuple whose negative positions count
    from the end of their axis, as in Python) into one sample's output of ``out_shape``."""
    n_out = math.prod(out_shape)
    if arguments.is_integer(index):
        if not 0 <= index < n_out:
            raise SaliencyError(
                f"{what} {int(index)} is out of range: the model has {n_out} outputs per sample "
                f"(valid: 0 to {n_out - 1})"
            )
        return int(index)
    if isinstance(index, tuple) and all(arguments.is_integer(i) for i in index):
        if len(index) != len(out_shape) or not all(-n <= i < n for i, n in zip(index, out_shape)):
            raise SaliencyError(
                f"{what} {index} does not index one sample's output of shape {out_shape} "
                f"(valid: a tuple of {len(out_shape)} ints, each -n ≤ i < n for its axis length n)"
            )
        return int(np.ravel_multi_index(tuple(int(i) % n for i, n in zip(index, out_shape)), out_shape))
    raise SaliencyError(
        f"{what} must be None, an int, one int per sample, or a tuple index into one sample's "
        f"output; got {arguments.shown(index)}"
    )


def _items_per_chunk(bytes_per_item: int, factor: int) -> int:
    """How many copies of an input of ``bytes_per_item`` fit one batched pass."""
    return max(1, int(config.chunk_budget_bytes // max(1, bytes_per_item * factor)))


def _check_jacobian_budget(batch: int, shapes: list[tuple[int, ...]], n_rows: int, all_outputs: bool) -> None:
    need = 4 * batch * n_rows * sum(int(np.prod(s, dtype=np.int64)) for s in shapes)
    if need > config.jacobian_budget_bytes:
        hint = ("pass outputs=[...] to compute only some outputs, " if all_outputs
                else "pass fewer outputs, ")
        shown = " + ".join(str((batch, *s)) for s in shapes)
        raise MemoryBudgetError(
            f"the Jacobian would take {need / 2**20:,.1f} MiB ({n_rows} outputs × input of shape "
            f"{shown}), more than the budget of {config.jacobian_budget_bytes / 2**20:,.0f} MiB; "
            f"{hint}a smaller batch, or raise sw.config.jacobian_budget_bytes"
        )


def _index_tuples(flat: Union[int, np.ndarray], shape: tuple[int, ...], batch: int) -> list[tuple[int, ...]]:
    """Each sample's flat index (one int for all, or one each) as a tuple of ints into ``shape``
    (one vectorized unravel, no numpy scalars)."""
    if isinstance(flat, int):
        index = (flat,) if len(shape) == 1 else tuple(int(i) for i in np.unravel_index(flat, shape))
        return [index] * batch
    if len(shape) == 1:
        return [(i,) for i in np.asarray(flat).tolist()]
    axes = np.unravel_index(np.asarray(flat, dtype=np.int64), shape)
    return list(zip(*(a.tolist() for a in axes)))


def _finite(*arrays: np.ndarray) -> bool:
    """Whether every value is finite, as far as one sum per array can tell: NaN and ±inf survive a
    sum, so True is certain; False may be a finite sum's overflow, which callers count exactly.
    (One pass without a temporary array, and no BLAS call that would wake BLAS's threads.)"""
    return math.isfinite(sum(float(np.add.reduce(a, axis=None)) for a in arrays))


def _warn_if_not_finite(values: np.ndarray, what: str) -> None:
    if not _finite(values):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        if bad:
            warnings.warn(f"{what} contains {bad} NaN or infinite values", SaliencyWarning, stacklevel=3)


def _warn_if_scores_not_finite(p: _Problem, scores: np.ndarray) -> None:
    """NaN or inf in the model's scores: blamed on the input when it holds some, else on the model.
    (An input NaN the model never looks at, e.g. under a mask, leaves the scores finite: no warning.)"""
    if _finite(scores):
        return
    inputs = [p.entries[i] for i in p.query.spec.attributed if not np.isfinite(p.entries[i]).all()]
    for entry in inputs:
        _warn_if_not_finite(entry, "the input")
    if inputs:
        return
    bad = int(scores.size - np.count_nonzero(np.isfinite(scores)))
    if bad:  # none: the sum overflowed
        warnings.warn(f"the model's output contains {bad} NaN or infinite values for a finite input",
                      SaliencyWarning, stacklevel=3)


def _warn_if_training(backend: Backend) -> None:
    if backend.is_training:
        warnings.warn(
            "the model is in training mode; attributions are computed in inference mode "
            "(dropout off, batch norm with running statistics) and the mode is left as it was",
            SaliencyWarning, stacklevel=3,
        )


def _warn_about_activation(p: _Problem, scores: Optional[np.ndarray],
                           flat_targets: Union[None, int, np.ndarray], stacklevel: int = 4) -> None:
    """Probabilities asked: warn when the targets (if any) are saturated. Logits asked but none
    found: warn when the output looks like probabilities (a property of the model: checked on
    the first call for each input signature and query, then remembered: every later call warns
    too, whatever its entry point), naming ``head=`` as the fix."""
    found = p.backend.skipped_activation(p.query)
    if not p.logits:
        if found in ("softmax", "sigmoid") and scores is not None and flat_targets is not None:
            _warn_if_saturated(found, scores, flat_targets)
        return
    if found is None and p.first:
        functional = p.backend.unskipped_activation(p.query)
        if functional is not None or looks_like_probabilities(scores):
            how = (f"comes out of a {functional} called as a function" if functional
                   else "looks like probabilities (non-negative rows that sum to 1)")
            p.backend.activation_warnings[p.key] = (
                f"output='logits' could not find the logits: the explained output {how}, so this explains "
                "probabilities. Pass head=<the layer that computes the scores> (a name or index from "
                "sw.layers(model)) to explain the logits"
            )
    if p.key in p.backend.activation_warnings:
        warnings.warn(p.backend.activation_warnings[p.key], SaliencyWarning, stacklevel=stacklevel)


def _warn_if_saturated(activation: str, scores: np.ndarray, flat_targets: Union[int, np.ndarray]) -> None:
    rows = np.arange(scores.shape[0])
    probs = scores.reshape(len(rows), -1)[rows, flat_targets]
    slope = probs * (1 - probs)
    if np.any(slope < 1e-3):
        worst = int(np.argmin(slope))
        warnings.warn(
            f"the {activation} output is saturated (probability {probs[worst]:.4f} "
            f"for sample {worst}): its gradient is about {1 / max(slope[worst], 1e-12):,.0f}× smaller "
            "than the logit's; output='logits' explains the score before the activation",
            SaliencyWarning, stacklevel=4,
        )
