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
model and method the engine supports, and takes ``x`` (an array, a tuple/list/dict
such as a tokenizer's output), ``head=``, ``layer=`` and ``fixed=`` exactly as
``sw.attribute`` does. The user's model is never modified.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from . import arguments, progress
from .attribution import (METHOD_OPTIONS, Target, attribute, jacobian, predict, resolve_contrasts, resolve_targets,
                          saliency)
from .backends import get_backend, randomized_copies
from .backends.base import to_numpy
from .errors import SaliencyError, SaliencyWarning
from .heads import explained_scores
from .inputs import Layout, infer_layout, layer_kind
from .structure import InputSpec, Structure, flatten
from .occlusion import samples_per_pass
from .frameworks import accepts_framework

_FROM_JACOBIAN = ("gradient", "input_x_gradient")


@dataclass
class RandomLogit:
    """Result of :func:`random_logit`."""

    #: ``(batch, n)`` Spearman correlation of the target's map with each random output's map.
    correlations: np.ndarray
    #: ``(batch, n)`` flat indices of the random outputs (never the sample's target or contrast).
    others: np.ndarray
    #: The explained output of each sample (an index tuple into its output).
    targets: list[tuple[int, ...]]
    #: With ``contrast=``, each sample's contrasted output (every map explains its output minus this one).
    contrasts: Optional[list[tuple[int, ...]]] = None

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
@accepts_framework
def random_logit(model: Any, x: Any, target: Target = None, *, contrast: Target = None, method: str = "gradient",
                 n: int = 5, seed: Optional[int] = None, output: str = "logits", head: Any = None, layer: Any = None,
                 fixed: Any = None, **kw: Any) -> RandomLogit:
    """Spearman correlation between the map of ``target`` and the maps of ``n`` random
    other outputs, per sample (signed maps, all elements of every attributed entry). With
    ``contrast=`` every map explains its output minus the contrast (as ``sw.attribute``), and
    the other outputs are neither the target nor the contrast. For
    ``"gradient"`` (and ``"input_x_gradient"`` without ``layer=``) the other maps come from
    one vectorized ``sw.jacobian`` pass; other methods run once per output. ``seed`` picks
    the outputs (and SmoothGrad's noise, the same for every map). ``x``, ``head=``,
    ``layer=``, ``fixed=`` and ``kw`` (the method's options) are as in ``sw.attribute``."""
    engine = {"output": output, "head": head, "layer": layer, "fixed": fixed}
    kw = _seeded(method, seed, kw)
    with progress.stage(2, "random logit"):  # the map, then the other outputs' maps
        reference = attribute(model, x, target, contrast=contrast, method=method, **engine, **kw)
        progress.step()
        return _random_logit(model, x, reference, n, seed, method, engine, kw)


def _random_logit(model: Any, x: Any, reference: Any, n: int, seed: Optional[int], method: str,
                  engine: dict[str, Any], kw: dict[str, Any]) -> RandomLogit:
    """:func:`random_logit` once the map of the target (``reference``) is computed."""
    out_shape = reference.outputs.shape[1:]
    n_out = int(np.prod(out_shape))
    excluded = [reference.targets] + ([] if reference.contrasts is None else [reference.contrasts])
    if n_out <= len(excluded):
        raise SaliencyError("the random-logit test compares outputs, and this model has only one" if n_out < 2 else
                            "the random-logit test compares the map with those of outputs other than the target and "
                            "the contrast, and this model has only two")
    n = min(int(n), n_out - len(excluded))
    flat = np.array([[np.ravel_multi_index(t, out_shape) for t in indices] for indices in excluded]).T
    rng = np.random.default_rng(seed)
    others = np.stack([_others(rng, n_out, row, n) for row in flat])
    contrasts = None if reference.contrasts is None else flat[:, 1]
    maps = _maps_of_outputs(model, x, others, contrasts, method, engine, kw)
    shown = _flat(reference.values)
    correlations = np.array([[spearman(shown[i], maps[j][i]) for j in range(n)] for i in range(len(shown))])
    return RandomLogit(correlations, others, reference.targets, reference.contrasts)


@accepts_framework
def deletion_insertion(model: Any, x: Any, attribution: Any, target: Target = None, *, contrast: Target = None,
                       steps: int = 20, baseline: Any = 0.0, output: str = "logits", head: Any = None,
                       layer: Any = None, fixed: Any = None) -> DeletionInsertion:
    """The target score (minus the ``contrast``'s where given, as ``sw.attribute`` explains it) as
    the elements ``attribution`` ranks highest are replaced by ``baseline`` (deletion) or revealed
    on it (insertion), in ``steps`` equal parts.

    The entries perturbed are those ``sw.attribute`` attributes (the floating ones, or all
    but ``fixed=``); where there is none — token ids — ``x["input_ids"]`` of a dict ``x``,
    or ``x`` itself. ``attribution`` is one array for one perturbed entry, else ``x``'s
    structure; each has its entry's shape or one that broadcasts to it (e.g.
    ``(batch, 1, H, W)`` to remove whole pixels); several entries are ranked together.
    With ``layer=`` (an embedding layer), an attribution ``(batch, tokens, embedding)`` is
    summed over its extra trailing axes: one value per token. **Token ids are never
    averaged or scaled**: a removed token is replaced by the id ``baseline`` (default 0,
    BERT's ``[PAD]``; pass the ``[PAD]`` or ``[MASK]`` id of your tokenizer). ``baseline``
    may be a scalar, an array that broadcasts to the entry (one row per sample), or
    ``x``'s structure. The copies are evaluated in batched forward passes.
    """
    arguments.positive_int("steps", steps)
    spec, entries = flatten(x, get_backend(model).to_numpy, fixed)
    positions = _perturbed(spec)
    rankings = [_ranking(r, entries[p], spec.name(p), layer is not None)
                for r, p in zip(_leaves_at(attribution, spec, positions, "attribution"), positions)]
    bases = [_deletion_baseline(b, entries[p], spec.name(p))
             for b, p in zip(_leaves_at(baseline, spec, positions, "baseline"), positions)]
    batch = len(entries[0])
    flat = np.concatenate([r.reshape(batch, -1) for r in rankings], axis=1)
    splits = np.cumsum([r[0].size for r in rankings])[:-1]
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.round(fractions * flat.shape[1]).astype(np.int64)
    position = _rank_positions(flat)
    flat_targets, contrasts = _flat_targets(model, x, target, contrast, output, head, fixed)
    grid = (2, steps + 1, batch)  # (deletion / insertion, step, sample)
    scores = []
    per_pass = samples_per_pass(sum(e[0].nbytes for e in entries))
    with progress.stage(int(np.prod(grid)), "deletion / insertion"):  # each batch of perturbed copies is a pass
        for first in range(0, int(np.prod(grid)), per_pass):
            kind, step, sample = np.unravel_index(np.arange(first, min(first + per_pass, int(np.prod(grid)))), grid)
            top = position[sample] < counts[step][:, None]
            removed = np.where(kind[:, None] == 0, top, ~top)
            points = [e[sample] for e in entries]
            for p, r, part, base in zip(positions, rankings, np.split(removed, splits, axis=1), bases):
                points[p] = np.where(part.reshape(len(sample), *r.shape[1:]), base[sample], points[p])
            out = predict(model, spec.pack(points), output=output, head=head, fixed=fixed).reshape(len(sample), -1)
            scores.append(explained_scores(out, flat_targets[sample], None if contrasts is None else contrasts[sample]))
            progress.step(len(sample))
    curves = np.concatenate(scores).reshape(grid).transpose(0, 2, 1)
    return DeletionInsertion(fractions, curves[0], curves[1])


@accepts_framework
def randomization(model: Any, x: Any, target: Target = None, *, contrast: Target = None, method: str = "gradient",
                  cascade: bool = True, seed: Optional[int] = None, output: str = "logits", head: Any = None,
                  layer: Any = None, fixed: Any = None, **kw: Any) -> Randomization:
    """Maps of copies of the model with layers re-initialized from the output backwards
    (``cascade``: cumulatively, as Adebayo et al.'s Fig. 2; else one layer at a time),
    with their Spearman and SSIM similarity to the original map, per sample.

    Similarities compare the maps as displayed: absolute values, summed over an
    image's channels (a text layer's embedding axis), scaled to [0, 1]. The targets (and
    ``contrast``, as in ``sw.attribute``) stay those of the original model. ``seed`` seeds the re-initialization (and SmoothGrad's
    noise, the same for every map). ``x``, ``head=``, ``layer=`` and ``fixed=`` are as in
    ``sw.attribute``; a layer object given as ``head=`` or ``layer=`` is found in each copy
    by its name in the model. Several attributed entries are compared as one flat map.
    """
    engine = {"output": output, "head": head, "layer": layer, "fixed": fixed}
    kw = _seeded(method, seed, kw)
    backend = get_backend(model)
    with progress.stage(1 + _weighted_layers(backend), "randomization test"):  # the original map, then one per layer
        reference = attribute(model, x, target, contrast=contrast, method=method, **engine, **kw)
        progress.step()
        in_copies = {**engine, "head": backend.by_name(head), "layer": backend.by_name(layer)}
        original = _one_map(reference.values)
        names, maps = [], []
        for name, copy in randomized_copies(model, cascade=cascade, seed=seed):
            names.append(name)
            maps.append(_one_map(saliency(copy, x, reference.targets, contrast=reference.contrasts, method=method,
                                          **in_copies, **kw)))
            progress.step()
    if not maps:
        raise SaliencyError("the model has no layers with weights to randomize")
    layout = _display(model, original, layer)
    shown = _displayed(original, layout)
    spearmans = np.array([[spearman(a, b) for a, b in zip(_displayed(m, layout), shown)] for m in maps])
    ssims = np.array([[ssim(a, b) for a, b in zip(_displayed(m, layout), shown)] for m in maps])
    return Randomization(original, names, np.stack(maps), spearmans, ssims)


@accepts_framework
def completeness(model: Any, x: Any, target: Target = None, *, contrast: Target = None, steps: int = 50,
                 baseline: Any = None, output: str = "logits", head: Any = None, layer: Any = None,
                 fixed: Any = None) -> np.ndarray:
    """``|Σ attribution − (f(x) − f(baseline))| / |f(x) − f(baseline)|`` of integrated
    gradients, per sample (``inf`` where ``f(x) = f(baseline)`` and the sum is not 0); f is the
    target's score, minus the ``contrast``'s where given.
    ``x``, ``baseline``, ``head=``, ``layer=`` and ``fixed=`` are as in ``sw.attribute``
    (with ``layer=``, a ``baseline`` of token ids, e.g. ``{"input_ids": pad_ids}``)."""
    result = attribute(model, x, target, contrast=contrast, method="integrated_gradients", output=output, head=head,
                       layer=layer, fixed=fixed, steps=steps, baseline=baseline)
    error = result.completeness_error.astype(np.float64)
    total = _flat(result.values).sum(axis=1, dtype=np.float64)
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
def _parts(values: Any) -> list[np.ndarray]:
    """The arrays of an engine result: one array, or the attributed entries of ``x``'s structure."""
    if isinstance(values, Mapping):
        values = list(values.values())
    elif not isinstance(values, (tuple, list)):
        return [np.asarray(values)]
    return [np.asarray(v) for v in values if v is not None]


def _flat(values: Any) -> np.ndarray:
    """``(batch, elements)``: every attributed element of each sample, entry after entry."""
    parts = _parts(values)
    return np.concatenate([p.reshape(len(p), -1) for p in parts], axis=1)


def _one_map(values: Any) -> np.ndarray:
    """One array per result: the map of one attributed entry, else all entries as :func:`_flat`."""
    parts = _parts(values)
    return parts[0] if len(parts) == 1 else _flat(values)


def _perturbed(spec: InputSpec) -> list[int]:
    """Positions of the entries deletion / insertion perturbs (see :func:`deletion_insertion`)."""
    if spec.attributed:
        return list(spec.attributed)
    if spec.kind == "array":
        return [0]
    if spec.kind == "dict" and "input_ids" in spec.keys:
        return [spec.keys.index("input_ids")]
    raise SaliencyError(
        f"x ({spec.summary()}) has no entry to perturb: none is floating-point and none is called 'input_ids'. "
        "Name the entries to keep as they are with fixed= (e.g. fixed=['attention_mask']); the others are perturbed"
    )


def _leaves_at(value: Any, spec: InputSpec, positions: list[int], what: str) -> list[Any]:
    """``value``'s part for each perturbed entry: ``x``'s structure, else the same value for all."""
    mapping = isinstance(value, Mapping)
    if not (spec.structured and (mapping or Structure.of(value).structured)):
        return [value] * len(positions)
    keys = [spec.keys[p] for p in positions]
    if mapping == (spec.kind == "dict") and (mapping or len(value) == len(spec.keys)):
        found = [value.get(k) if mapping else value[k] for k in keys]
        if all(v is not None for v in found):
            return found
    raise SaliencyError(
        f"{what} must have x's structure ({spec.summary()}) with a value for each perturbed entry "
        f"({', '.join(map(repr, keys))}), or be one value for all of them; got a {type(value).__name__}"
    )


def _ranking(value: Any, entry: np.ndarray, name: str, at_layer: bool) -> np.ndarray:
    """``value`` as a ranking of ``entry``'s elements (float64, broadcastable to the entry)."""
    ranking = np.asarray(value, dtype=np.float64)
    if at_layer and ranking.ndim > entry.ndim:  # (batch, tokens, embedding) → one value per token
        ranking = ranking.sum(axis=tuple(range(entry.ndim, ranking.ndim)))
    try:
        fits = ranking.ndim == entry.ndim and np.broadcast_shapes(ranking.shape, entry.shape) == entry.shape
    except ValueError:
        fits = False
    if not fits or ranking.shape[0] != len(entry):
        hint = ("" if at_layer else "; for an attribution at a layer's output (e.g. token embeddings), pass that "
                "layer= too, and it is summed to one value per token")
        raise SaliencyError(
            f"attribution {ranking.shape} must broadcast to the shape of {name}, {entry.shape} "
            f"(the attribution with its batch axis){hint}"
        )
    return ranking


def _deletion_baseline(value: Any, entry: np.ndarray, name: str) -> np.ndarray:
    """``value`` broadcast to ``entry``, in its dtype; token ids only ever become whole ids."""
    base = np.asarray(to_numpy(value))
    integer = not np.issubdtype(entry.dtype, np.floating)
    if integer and not (base.dtype.kind in "iub" or np.array_equal(base, np.round(base))):
        raise SaliencyError(
            f"{name} holds token ids, which are replaced by an id, never averaged; baseline= must be whole ids "
            f"(the [PAD] or [MASK] token id), got {value!r}"
        )
    try:
        return np.broadcast_to(base.astype(entry.dtype), entry.shape)
    except ValueError:
        raise SaliencyError(
            f"baseline of shape {base.shape} does not broadcast to the shape of {name}, {entry.shape}; pass a "
            "scalar, one value per element, or one row per sample"
        ) from None


def _weighted_layers(backend: Any) -> int:
    """About how many layers the randomization test re-initializes (its progress; at least 1)."""
    try:
        with warnings.catch_warnings():  # output shapes unknown without an input: only the counts are read
            warnings.simplefilter("ignore", SaliencyWarning)
            return max(1, sum(1 for info in backend.layers() if info.n_params))
    except Exception:  # a model whose layers cannot be listed without an input: progress is only a guess
        return 1


def _seeded(method: str, seed: Optional[int], kw: dict[str, Any]) -> dict[str, Any]:
    """``kw`` with a seed for a method that draws noise (SmoothGrad), so that every map
    of a check sees the same noise: the user's own, else ``seed``, else a fresh one."""
    if "seed" not in METHOD_OPTIONS.get(method, {}):
        return kw
    return {"seed": int(np.random.default_rng().integers(2**31)) if seed is None else seed, **kw}


def _others(rng: np.random.Generator, n_out: int, excluded: Any, n: int) -> np.ndarray:
    """``n`` distinct random outputs of ``n_out``, none of the flat indices ``excluded`` (an int or a
    sequence: the target, and the contrast)."""
    excluded = np.unique(excluded)
    choices = rng.choice(n_out - len(excluded), size=n, replace=False)
    for skipped in excluded:  # ascending: each shift past one keeps the next comparison right
        choices = choices + (choices >= skipped)
    return choices


def _maps_of_outputs(model: Any, x: Any, others: np.ndarray, contrasts: Optional[np.ndarray], method: str,
                     engine: dict[str, Any], kw: dict[str, Any]) -> list[np.ndarray]:
    """``others.shape[1]`` flat maps ``(batch, elements)``: map j of sample i explains ``others[i, j]``
    (minus ``contrasts[i]`` where given), from one Jacobian pass where the method is a Jacobian row
    (rows subtracted for a contrast, times the input for input×gradient)."""
    if method not in _FROM_JACOBIAN or method == "input_x_gradient" and engine["layer"] is not None:
        contrast = None if contrasts is None else contrasts.tolist()
        maps = []
        with progress.stage(others.shape[1]):  # one map per output
            for j in range(others.shape[1]):
                maps.append(_flat(saliency(model, x, others[:, j].tolist(), contrast=contrast, method=method,
                                           **engine, **kw)))
                progress.step()
        return maps
    rows = np.unique(others if contrasts is None else np.concatenate([others.ravel(), contrasts]))
    parts = _parts(jacobian(model, x, outputs=rows.tolist(), **engine))  # each (batch, len(rows), *entry)
    jac = np.concatenate([p.reshape(*p.shape[:2], -1) for p in parts], axis=2)
    samples = np.arange(len(jac))
    where = np.searchsorted(rows, others)
    maps = [jac[samples, where[:, j]] for j in range(others.shape[1])]
    if contrasts is not None:
        versus = jac[samples, np.searchsorted(rows, contrasts)]
        maps = [m - versus for m in maps]
    if method == "gradient":
        return maps
    spec, entries = flatten(x, get_backend(model).to_numpy, engine["fixed"])
    inputs = np.concatenate([entries[i].reshape(len(jac), -1) for i in spec.attributed], axis=1)
    return [inputs * m for m in maps]


def _rank_positions(ranking: np.ndarray) -> np.ndarray:
    """``(batch, elements)``: where each element of a sample comes in its descending
    order (0 = highest; ties keep their order)."""
    flat = ranking.reshape(len(ranking), -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    position = np.empty_like(order)
    position[np.arange(len(flat))[:, None], order] = np.arange(flat.shape[1])
    return position


def _flat_targets(model: Any, x: Any, target: Target, contrast: Target, output: str, head: Any, fixed: Any
                  ) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Each sample's flat target and contrast (None without ``contrast``), checked as ``sw.attribute`` checks them."""
    scores = predict(model, x, output=output, head=head, fixed=fixed)
    targets = resolve_targets(target, scores.shape, scores)
    return targets, resolve_contrasts(contrast, targets, scores.shape[0], scores.shape[1:], arg_max=target is None)


def _display(model: Any, maps: np.ndarray, layer: Any) -> Layout:
    """How maps of this shape are drawn: text at an embedding layer, else as inferred (see :mod:`.inputs`)."""
    backend = get_backend(model)
    kind = None if maps.ndim in (2, 3, 4) else "vector"
    if layer is not None and maps.ndim == 3:
        kind = layer_kind(backend.find_layer(layer).obj) or kind
    return infer_layout(maps.shape[1:], backend.framework, kind)


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
