"""Checks that keep a saliency map honest (numpy in, numpy out).

- :func:`random_logit` — does the map depend on the class? (Sixt et al.; xplique
  ``RandomLogitMetric``): rank correlation between the target's map and the maps
  of random other outputs.
- :func:`deletion_insertion` — do the elements a map ranks first move the score?
  (Petsiuk et al., RISE): the target score as they are removed / revealed.
- :func:`randomization` — does the map depend on the weights? (Adebayo et al.,
  2018): maps of copies of the model whose layers are re-initialized from the
  output backwards, and their similarity to the original map.
- :func:`completeness` — how far integrated gradients are from
  ``sum(attribution) = f(x) − f(baseline)``, relative to ``|f(x) − f(baseline)|``.

Only public functions compute maps and scores (``sw.saliency``, ``sw.jacobian``,
``sw.attribution.attribute`` / ``predict``), so every check works for every
model and method the engine supports. The user's model is never modified.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .attribution import METHOD_OPTIONS, Target, attribute, jacobian, predict, resolve_targets, saliency
from .backends import get_backend, randomized_copies
from .backends.base import to_numpy
from .errors import SaliencyError
from .inputs import Layout, infer_layout
from .occlusion import samples_per_pass

_FROM_JACOBIAN = ("gradient", "input_x_gradient")


@dataclass
class RandomLogit:
    """Result of :func:`random_logit`."""

    #: ``(batch, n)`` Spearman correlation of the target's map with each random output's map.
    correlations: np.ndarray
    #: ``(batch, n)`` flat indices of the random outputs (never the sample's target).
    others: np.ndarray
    #: The explained output of each sample (an index tuple into its output).
    targets: list[tuple[int, ...]]

    @property
    def mean(self) -> np.ndarray:
        """``(batch,)`` mean correlation: near 1 means the map hardly depends on the class.
        Correlations with a constant map (NaN) are left out."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a sample whose maps are all constant: NaN
            return np.nanmean(self.correlations, axis=1)


@dataclass
class DeletionInsertion:
    """Result of :func:`deletion_insertion`."""

    #: ``(steps + 1,)`` fraction of the elements removed (deletion) or revealed (insertion).
    fractions: np.ndarray
    #: ``(batch, steps + 1)`` target score as the top-ranked elements are set to the baseline.
    deletion: np.ndarray
    #: ``(batch, steps + 1)`` target score as the top-ranked elements are revealed on the baseline.
    insertion: np.ndarray

    @property
    def deletion_auc(self) -> np.ndarray:
        """``(batch,)`` area under the deletion curve: lower means a more faithful ranking."""
        return np.trapezoid(self.deletion, self.fractions, axis=1)

    @property
    def insertion_auc(self) -> np.ndarray:
        """``(batch,)`` area under the insertion curve: higher means a more faithful ranking."""
        return np.trapezoid(self.insertion, self.fractions, axis=1)


@dataclass
class Randomization:
    """Result of :func:`randomization`: one row per randomized layer, output layer first."""

    #: ``(batch, *map_shape)`` the map of the model as it is.
    original: np.ndarray
    #: The layer re-initialized at each step (with ``cascade``, together with those before it).
    layers: list[str]
    #: ``(steps, batch, *map_shape)`` the map after each step.
    maps: np.ndarray
    #: ``(steps, batch)`` Spearman rank correlation of each map with the original.
    spearman: np.ndarray
    #: ``(steps, batch)`` structural similarity (SSIM) of each map with the original.
    ssim: np.ndarray


# --------------------------------------------------------------------- checks
def random_logit(model: Any, x: Any, target: Target = None, *, method: str = "gradient", n: int = 5,
                 seed: Optional[int] = None, output: str = "logits", **kw: Any) -> RandomLogit:
    """Spearman correlation between the map of ``target`` and the maps of ``n`` random
    other outputs, per sample (signed maps, all elements). For ``"gradient"`` and
    ``"input_x_gradient"`` the other maps come from one vectorized ``sw.jacobian`` pass;
    other methods run once per output. ``seed`` picks the outputs (and SmoothGrad's
    noise, the same for every map); ``kw`` are the method's options."""
    xs = _as_batch(x)
    kw = _seeded(method, seed, kw)
    reference = attribute(model, xs, target, method=method, output=output, **kw)
    n_out = int(np.prod(reference.outputs.shape[1:]))
    if n_out < 2:
        raise SaliencyError("the random-logit test compares outputs, and this model has only one")
    n = min(int(n), n_out - 1)
    flat_targets = np.array([np.ravel_multi_index(t, reference.outputs.shape[1:]) for t in reference.targets])
    rng = np.random.default_rng(seed)
    others = np.stack([_others(rng, n_out, t, n) for t in flat_targets])
    maps = _maps_of_outputs(model, xs, others, method, output, kw)
    correlations = np.array([[spearman(reference.values[i], maps[j][i]) for j in range(n)] for i in range(len(xs))])
    return RandomLogit(correlations, others, reference.targets)


def deletion_insertion(model: Any, x: Any, attribution: np.ndarray, target: Target = None, *, steps: int = 20,
                       baseline: Any = 0.0, output: str = "logits") -> DeletionInsertion:
    """The target score as the elements ``attribution`` ranks highest are replaced by
    ``baseline`` (deletion) or revealed on it (insertion), in ``steps`` equal parts.

    ``attribution`` has ``x``'s shape or one that broadcasts to it (e.g. ``(batch, 1, H, W)``
    to remove whole pixels). The copies are evaluated in batched forward passes.
    """
    xs = _as_batch(x)
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise SaliencyError(f"steps must be a positive integer, got {steps!r}")
    ranking = np.asarray(attribution, dtype=np.float64)
    try:
        fits = ranking.ndim == xs.ndim and np.broadcast_shapes(ranking.shape, xs.shape) == xs.shape
        base = np.broadcast_to(np.asarray(baseline, dtype=xs.dtype), xs.shape)
    except ValueError:
        fits = False
    if not fits or ranking.shape[0] != len(xs):
        raise SaliencyError(
            f"attribution {ranking.shape} and baseline {np.shape(baseline)} must broadcast to the input's "
            f"shape {xs.shape} (the attribution with its batch axis)"
        )
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.round(fractions * ranking[0].size).astype(np.int64)
    position = _rank_positions(ranking)
    flat_targets = _flat_targets(model, xs, target, output)
    grid = (2, steps + 1, len(xs))  # (deletion / insertion, step, sample)
    scores = []
    per_pass = samples_per_pass(xs[0].nbytes)
    for first in range(0, int(np.prod(grid)), per_pass):
        kind, step, sample = np.unravel_index(np.arange(first, min(first + per_pass, int(np.prod(grid)))), grid)
        top = (position[sample] < counts[step][:, None]).reshape(len(sample), *ranking.shape[1:])
        removed = np.where(kind.reshape(-1, *[1] * (xs.ndim - 1)) == 0, top, ~top)
        points = np.where(removed, base[sample], xs[sample])
        out = predict(model, points, output=output).reshape(len(sample), -1)
        scores.append(out[np.arange(len(sample)), flat_targets[sample]])
    curves = np.concatenate(scores).reshape(grid).transpose(0, 2, 1)
    return DeletionInsertion(fractions, curves[0], curves[1])


def randomization(model: Any, x: Any, target: Target = None, *, method: str = "gradient", cascade: bool = True,
                  seed: Optional[int] = None, output: str = "logits", **kw: Any) -> Randomization:
    """Maps of copies of the model with layers re-initialized from the output backwards
    (``cascade``: cumulatively, as Adebayo et al.'s Fig. 2; else one layer at a time),
    with their Spearman and SSIM similarity to the original map, per sample.

    Similarities compare the maps as displayed: absolute values, summed over an
    image's channels, scaled to [0, 1]. The targets stay those of the original model.
    ``seed`` seeds the re-initialization (and SmoothGrad's noise, the same for every map).
    """
    xs = _as_batch(x)
    kw = _seeded(method, seed, kw)
    reference = attribute(model, xs, target, method=method, output=output, **kw)
    layout = _display(model, xs)
    original = reference.values
    names, maps = [], []
    for name, copy in randomized_copies(model, cascade=cascade, seed=seed):
        names.append(name)
        maps.append(saliency(copy, xs, reference.targets, method=method, output=output, **kw))
    if not maps:
        raise SaliencyError("the model has no layers with weights to randomize")
    shown = _displayed(original, layout)
    spearmans = np.array([[spearman(a, b) for a, b in zip(_displayed(m, layout), shown)] for m in maps])
    ssims = np.array([[ssim(a, b) for a, b in zip(_displayed(m, layout), shown)] for m in maps])
    return Randomization(original, names, np.stack(maps), spearmans, ssims)


def completeness(model: Any, x: Any, target: Target = None, *, steps: int = 50, baseline: Any = None,
                 output: str = "logits") -> np.ndarray:
    """``|Σ attribution − (f(x) − f(baseline))| / |f(x) − f(baseline)|`` of integrated
    gradients, per sample (``inf`` where ``f(x) = f(baseline)`` and the sum is not 0)."""
    result = attribute(model, _as_batch(x), target, method="integrated_gradients", output=output,
                       steps=steps, baseline=baseline)
    error = result.completeness_error.astype(np.float64)
    total = result.values.reshape(len(error), -1).sum(axis=1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(error) / np.abs(total - error)


# ------------------------------------------------------------ similarities
def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two arrays' elements (ties get their average rank);
    NaN when either is constant."""
    ra, rb = _ranks(np.ravel(a)), _ranks(np.ravel(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    norm = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / norm) if norm > 0 else float("nan")


def ssim(a: np.ndarray, b: np.ndarray, *, window: int = 7, data_range: float = 1.0) -> float:
    """Mean structural similarity of two same-shaped maps (any rank), as scikit-image's
    ``structural_similarity`` with a uniform ``window`` (clipped to odd sizes that fit
    each axis), sample covariances, K1 = 0.01 and K2 = 0.03."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise SaliencyError(f"SSIM compares maps of one shape; got {a.shape} and {b.shape}")
    sizes = [min(window, n if n % 2 else n - 1) for n in a.shape]
    count = int(np.prod(sizes))
    cov_norm = count / (count - 1) if count > 1 else 1.0
    ux, uy = _box_mean(a, sizes), _box_mean(b, sizes)
    vx = cov_norm * (_box_mean(a * a, sizes) - ux * ux)
    vy = cov_norm * (_box_mean(b * b, sizes) - uy * uy)
    vxy = cov_norm * (_box_mean(a * b, sizes) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean())


# ------------------------------------------------------------------ helpers
def _as_batch(x: Any) -> np.ndarray:
    xs = np.asarray(to_numpy(x), dtype=np.float32)
    if xs.ndim == 0 or len(xs) == 0:
        raise SaliencyError("x must be a non-empty batch (one array with a leading batch axis)")
    return xs


def _seeded(method: str, seed: Optional[int], kw: dict[str, Any]) -> dict[str, Any]:
    """``kw`` with a seed for a method that draws noise (SmoothGrad), so that every map
    of a check sees the same noise: the user's own, else ``seed``, else a fresh one."""
    if "seed" not in METHOD_OPTIONS.get(method, {}):
        return kw
    return {"seed": int(np.random.default_rng().integers(2**31)) if seed is None else seed, **kw}


def _others(rng: np.random.Generator, n_out: int, target: int, n: int) -> np.ndarray:
    choices = rng.choice(n_out - 1, size=n, replace=False)
    return choices + (choices >= target)  # skip the target itself


def _maps_of_outputs(model: Any, xs: np.ndarray, others: np.ndarray, method: str, output: str,
                     kw: dict[str, Any]) -> list[np.ndarray]:
    """``others.shape[1]`` maps, each ``xs.shape``: map j of sample i explains ``others[i, j]``."""
    if method not in _FROM_JACOBIAN:
        return [saliency(model, xs, others[:, j].tolist(), method=method, output=output, **kw)
                for j in range(others.shape[1])]
    rows = np.unique(others)
    jac = jacobian(model, xs, output=output, outputs=rows.tolist())  # (batch, len(rows), *x)
    where = np.searchsorted(rows, others)
    maps = [jac[np.arange(len(xs)), where[:, j]] for j in range(others.shape[1])]
    return [xs * m for m in maps] if method == "input_x_gradient" else maps


def _rank_positions(ranking: np.ndarray) -> np.ndarray:
    """``(batch, elements)``: where each element of a sample comes in its descending
    order (0 = highest; ties keep their order)."""
    flat = ranking.reshape(len(ranking), -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    position = np.empty_like(order)
    position[np.arange(len(flat))[:, None], order] = np.arange(flat.shape[1])
    return position


def _flat_targets(model: Any, xs: np.ndarray, target: Target, output: str) -> np.ndarray:
    scores = predict(model, xs, output=output)
    return resolve_targets(target, scores.shape, scores)


def _display(model: Any, xs: np.ndarray) -> Layout:
    kind = None if xs.ndim in (2, 3, 4) else "vector"
    return infer_layout(xs.shape[1:], get_backend(model).framework, kind)


def _displayed(maps: np.ndarray, layout: Layout) -> np.ndarray:
    """Per-sample maps as a person sees them: |value| (summed over channels), scaled to [0, 1]."""
    shown = np.abs(maps)
    if shown.shape[1:] == layout.sample_shape:
        shown = layout.reduce(shown)
    peak = shown.reshape(len(shown), -1).max(axis=1).reshape(-1, *[1] * (shown.ndim - 1))
    return shown / np.where(peak > 0, peak, 1.0)


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    sorted_v = v[order]
    starts = np.r_[True, sorted_v[1:] != sorted_v[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], len(v)] - 1
    ranks = np.empty(len(v))
    ranks[order] = ((first + last) / 2.0)[group]
    return ranks


def _box_mean(a: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Mean over every full window of ``sizes`` (the "valid" region), one axis at a time."""
    for axis, size in enumerate(sizes):
        c = np.cumsum(np.moveaxis(a, axis, 0), axis=0)
        c = np.concatenate([np.zeros((1, *c.shape[1:])), c])
        a = np.moveaxis((c[size:] - c[:-size]) / size, 0, axis)
    return a
