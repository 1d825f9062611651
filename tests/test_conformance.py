"""The conformance matrix (DESIGN §6): every public entry point × every input kind × every framework.

Each cell is one test, ``<framework>-<kind>-<entry>`` (e.g. ``torch-dict-random_logit``): it calls
one entry point on one row's tiny model and batch, with the row's ``head=`` / ``layer=``, and
compares the result with a reference. Rows (``_conformance_models.BUILDERS``) are the input
kinds: ``array``, ``tuple`` and ``dict`` (two float inputs), ``tokens`` (token ids with
``layer=`` the embedding), ``head`` (a multi-output model, ``head=`` the second output), and
two documented refusals (``ids_without_layer``, ``layer_twice``) whose every cell asserts the
``SaliencyError``. Columns (:data:`ENTRIES`) are the entry points: each ``sw.saliency``
method, ``contrast=`` (gradient, and integrated gradients' linearity and completeness), ``sw.attribute``,
``sw.jacobian``, the four checks, ``sw.attribute_dataset`` on both engines, and each widget's
constructor (``SaliencyMap`` with a ``contrast`` too), retarget, ``to_figure`` and ``to_html``. The gradient,
integrated-gradients (captum / completeness) and occlusion cells compare with hand-written
references (``torch.autograd.grad``, the gradient of the framework Keras runs on, ``jax.grad``,
the model's own forward pass); the
other cells compare with ``sw.saliency`` / ``sw.attribute`` / ``sw.jacobian`` on the same
inputs and options. A feature that works through ``sw.saliency`` but not through a check, a
dataset run or a widget fails here by construction.

To add an input kind: write a builder returning a :class:`Case` (model, batch, ``kw``, and the
hand-written ``gradient`` / ``scores`` / ``baseline_scores``) in ``_conformance_models.py`` and
list it in ``BUILDERS`` for each framework; every column then runs on it. To add an entry
point: write ``call(case, tmp_path)`` (the public call alone, so that refusal rows can expect
its error) and ``check(case, result)`` (the comparison) and add an :class:`Entry` to
:data:`ENTRIES`; every row then runs it. Do not mark failing cells xfail: a failing cell is a
feature that does not reach that entry point.
"""

from __future__ import annotations

import io
import json
import pathlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest

import saliency_widgets as sw
from _conformance_jax import BUILDERS as JAX_BUILDERS
from _conformance_models import BUILDERS, N_OUT, OTHER, TARGET, Case, leaves, mirror, weights_bytes
from saliency_widgets.errors import SaliencyError

STEPS, N_SAMPLES = 8, 4
#: Integrated gradients' steps in the completeness cells: one step (the midpoint rule) leaves an
#: error well above rounding, so the check's number is compared, not its rounding noise.
COMPLETENESS_STEPS = 1
FRAMEWORKS = ("torch", "keras", "jax")
KINDS = ("array", "tuple", "dict", "tokens", "head")
REFUSALS = ("ids_without_layer", "layer_twice")
#: Rows whose ``kw`` has ``layer=``.
LAYER_KINDS = ("tokens", "layer_twice")
STATIC = pathlib.Path(sw.__file__).parent / "static"


# ------------------------------------------------------------ comparisons
def assert_close(got: Any, want: Any, rtol: float = 1e-5) -> None:
    """``got`` has ``want``'s structure (``None`` where ``want`` has ``None``) and each array
    equals it to ``rtol``, with an absolute tolerance of ``rtol`` × the array's largest magnitude."""
    if want is None:
        assert got is None
        return
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want)
    elif isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want)
    else:
        want_array = np.asarray(want, dtype=np.float64)
        scale = float(np.abs(want_array).max(initial=0.0))
        np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want_array, rtol=rtol, atol=rtol * scale + 1e-12)
        return
    for got_leaf, want_leaf in zip(leaves(got), leaves(want)):
        assert_close(got_leaf, want_leaf, rtol)


def flat_sample(values: Any, i: int) -> np.ndarray:
    """Sample ``i`` of every attributed entry of a result, flattened and concatenated."""
    return np.concatenate([np.ravel(v[i]) for v in leaves(values) if v is not None])


def flat_batch(values: Any) -> np.ndarray:
    """``(batch, elements)``: :func:`flat_sample` of every sample (a map of several entries
    compares with a check that reports them as one flat map)."""
    batch = len(next(v for v in leaves(values) if v is not None))
    return np.stack([flat_sample(values, i) for i in range(batch)])


def per_sample_sum(values: Any) -> np.ndarray:
    """Each sample's sum over every attributed element (float64)."""
    return flat_batch(values).sum(axis=1, dtype=np.float64)


def shown(case: Case, values: Any) -> np.ndarray:
    """The part of an engine result a widget shows: the entry ``case.shown``, or the whole array."""
    return np.asarray(values if case.shown is None else values[case.shown])


def times(gradient: Any, value: Any) -> Any:
    """Input (or activation) × gradient, entry by entry (``None`` stays ``None``)."""
    return mirror(gradient, lambda k, g: None if g is None else g * (value if k is None else value[k]))


def minus(a: Any, b: Any) -> Any:
    """``a − b`` entry by entry (``None`` stays ``None``)."""
    return mirror(a, lambda k, v: None if v is None else v - (b if k is None else b[k]))


def png_bytes(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def assert_png(_case: Case, data: bytes) -> None:
    assert data.startswith(b"\x89PNG")


def page_check(bundle: str) -> Callable[[Case, pathlib.Path], None]:
    """A check that the page written is a non-empty HTML page inlining ``bundle`` (as a JSON string)."""

    def check(_case: Case, path: pathlib.Path) -> None:
        page = path.read_text(encoding="utf-8")
        assert page.startswith("<!doctype html>")
        assert json.dumps((STATIC / bundle).read_text(encoding="utf-8")).replace("<", "\\u003c") in page

    return check


# ------------------------------------------------------------ the columns
@dataclass(frozen=True)
class Entry:
    """One column: ``call`` is the public call alone (refusal rows expect its error), ``check``
    compares its result with the reference."""

    call: Callable[[Case, pathlib.Path], Any]
    check: Callable[[Case, Any], None]
    #: Run on the refusal rows (entry points that take the row's ``x`` and ``kw``).
    refusable: bool = True
    #: Run on rows with ``layer=`` (occlusion perturbs the input and is refused with ``layer=``).
    with_layer: bool = True


def _saliency(method: str, **options: Any) -> Callable[[Case, pathlib.Path], Any]:
    return lambda case, _tmp: sw.saliency(case.model, case.x, TARGET, method=method, **case.kw, **options)


def _check_gradient(case: Case, got: Any) -> None:
    assert_close(got, case.gradient(TARGET)[0])


def _check_input_x_gradient(case: Case, got: Any) -> None:
    assert_close(got, times(*case.gradient(TARGET)))


def _smoothgrad(case: Case, _tmp: pathlib.Path) -> tuple[Any, Any, Any]:
    def run(noise: float) -> Any:
        return sw.saliency(case.model, case.x, TARGET, method="smoothgrad", n_samples=N_SAMPLES, noise=noise, seed=0,
                           **case.kw)

    return run(0.1), run(0.1), run(0.0)


def _check_smoothgrad(case: Case, got: tuple[Any, Any, Any]) -> None:
    noisy, again, noiseless = got
    assert_close(again, noisy)  # seeded: the same noise every call
    assert_close(noiseless, case.gradient(TARGET)[0])  # no noise: the mean of N_SAMPLES equal gradients


def _integrated_gradients(case: Case, _tmp: pathlib.Path) -> Any:
    return sw.attribute(case.model, case.x, TARGET, method="integrated_gradients", steps=STEPS, **case.kw,
                        **case.ig_kw)


def _check_integrated_gradients(case: Case, got: Any) -> None:
    if case.captum_ig is not None:
        assert_close(got.values, case.captum_ig(TARGET, STEPS), rtol=1e-4)
    gap = case.scores(case.x)[:, TARGET] - case.baseline_scores()[:, TARGET]
    np.testing.assert_allclose(per_sample_sum(got.values), gap, rtol=1e-4, atol=1e-4 * np.abs(gap).max())


def _contrast(case: Case, _tmp: pathlib.Path) -> Any:
    return sw.saliency(case.model, case.x, TARGET, contrast=OTHER, **case.kw)


def _check_contrast(case: Case, got: Any) -> None:
    """The gradient of score(TARGET) − score(OTHER): the difference of the hand-written gradients."""
    assert_close(got, minus(case.gradient(TARGET)[0], case.gradient(OTHER)[0]))


def _integrated_gradients_contrast(case: Case, _tmp: pathlib.Path) -> tuple[Any, Any, Any]:
    def run(target: int, contrast: Any) -> Any:
        return sw.attribute(case.model, case.x, target, contrast=contrast, method="integrated_gradients", steps=STEPS,
                            **case.kw, **case.ig_kw)

    return run(TARGET, OTHER), run(TARGET, None), run(OTHER, None)


def _check_integrated_gradients_contrast(case: Case, got: tuple[Any, Any, Any]) -> None:
    """Linear in the explained score: IG(TARGET − OTHER) = IG(TARGET) − IG(OTHER), complete against the
    difference's gap f(x) − f(baseline)."""
    both, target, other = got
    assert_close(both.values, minus(target.values, other.values), rtol=1e-4)
    gap = case.scores(case.x) - case.baseline_scores()
    np.testing.assert_allclose(both.completeness_error, per_sample_sum(both.values) - (gap[:, TARGET] - gap[:, OTHER]),
                               rtol=1e-3, atol=1e-4 * np.abs(gap).max())


def _check_occlusion(case: Case, got: Any) -> None:
    """Window 1: each element's drop in the target score when it alone is set to 0, by hand."""
    score = case.scores(case.x)[:, TARGET]

    def by_hand(key: Any, entry: np.ndarray) -> Any:
        if not np.issubdtype(entry.dtype, np.floating):
            return None
        drops = np.zeros(entry.shape, dtype=np.float64)
        for j in np.ndindex(entry.shape[1:]):
            occluded = entry.copy()
            occluded[(slice(None), *j)] = 0
            batch = occluded if key is None else mirror(case.x, lambda k, v: occluded if k == key else v)
            drops[(slice(None), *j)] = score - case.scores(batch)[:, TARGET]
        return drops

    assert_close(got, mirror(case.x, by_hand))


def _check_attribute(case: Case, got: Any) -> None:
    assert_close(got.values, case.gradient(TARGET)[0])
    assert got.targets == [(TARGET,)] * len(got.outputs)
    assert_close(got.outputs, case.scores(case.x))


def _check_jacobian(case: Case, got: Any) -> None:
    for t in range(N_OUT):
        assert_close(mirror(got, lambda _k, j: None if j is None else j[:, t]), case.gradient(t)[0])


def _random_logit(case: Case, _tmp: pathlib.Path) -> Any:
    return sw.checks.random_logit(case.model, case.x, TARGET, n=2, seed=0, **case.kw)


def _check_random_logit(case: Case, got: Any) -> None:
    """Each correlation is scipy's Spearman of the target's ``sw.saliency`` map and the listed
    other output's, over all attributed elements of the sample."""
    from scipy.stats import spearmanr

    others = np.asarray(got.others)
    assert others.shape == (len(got.correlations), 2) and not np.any(others == TARGET)
    own = sw.saliency(case.model, case.x, TARGET, **case.kw)
    for i, row in enumerate(others):
        for j, other in enumerate(row):
            theirs = sw.saliency(case.model, case.x, int(other), **case.kw)
            expected = spearmanr(flat_sample(own, i), flat_sample(theirs, i)).statistic
            assert got.correlations[i, j] == pytest.approx(expected, abs=1e-6)


def _deletion_insertion(case: Case, _tmp: pathlib.Path) -> Any:
    attribution = sw.saliency(case.model, case.x, TARGET, **case.kw)
    return sw.checks.deletion_insertion(case.model, case.x, attribution, TARGET, steps=4, **case.kw)


def _check_deletion_insertion(case: Case, got: Any) -> None:
    """Nothing deleted, and everything revealed, is ``x`` itself: the target's score at ``x``."""
    score = case.scores(case.x)[:, TARGET]
    np.testing.assert_allclose(got.fractions, np.linspace(0, 1, 5))
    assert_close(got.deletion[:, 0], score)
    assert_close(got.insertion[:, -1], score)


def _randomization(case: Case, _tmp: pathlib.Path) -> tuple[Any, bool]:
    before = weights_bytes(case.model)
    result = sw.checks.randomization(case.model, case.x, TARGET, seed=0, **case.kw)
    return result, weights_bytes(case.model) == before


def _check_randomization(case: Case, got: tuple[Any, bool]) -> None:
    result, untouched = got
    assert untouched  # computed on copies: the user's model keeps its weights
    assert_close(flat_batch(result.original), flat_batch(case.gradient(TARGET)[0]))
    assert len(result.layers) == len(result.maps) > 0
    assert all(flat_batch(m).shape == flat_batch(result.original).shape for m in result.maps)


def _completeness(case: Case, _tmp: pathlib.Path) -> Any:
    return sw.checks.completeness(case.model, case.x, TARGET, steps=COMPLETENESS_STEPS, **case.kw, **case.ig_kw)


def _check_completeness(case: Case, got: Any) -> None:
    """``|Σ attribution − (f(x) − f(baseline))| / |f(x) − f(baseline)|`` from ``sw.attribute``'s
    integrated gradients and the model's score at the baseline."""
    ig = sw.attribute(case.model, case.x, TARGET, method="integrated_gradients", steps=COMPLETENESS_STEPS,
                      **case.kw, **case.ig_kw)
    gap = ig.outputs[:, TARGET].astype(np.float64) - case.baseline_scores()[:, TARGET]
    expected = np.abs(per_sample_sum(ig.values) - gap) / np.abs(gap)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-6)


def _dataset(engine: str) -> Callable[[Case, pathlib.Path], Any]:
    return lambda case, tmp: sw.attribute_dataset(case.model, case.dataset(), TARGET, batch_size=2, engine=engine,
                                                  path=tmp / engine, progress=False, **case.kw)


def _check_dataset(case: Case, got: Any) -> None:
    """Batches of 2 give the rows of ``sw.saliency`` on the whole batch (samples never mix)."""
    assert got.complete
    assert_close(mirror(got.values, lambda _k, v: None if v is None else np.asarray(v)),
                 sw.saliency(case.model, case.x, TARGET, **case.kw))
    np.testing.assert_array_equal(np.asarray(got.targets).reshape(-1), TARGET)


def _saliency_map(case: Case, _tmp: pathlib.Path) -> Any:
    return sw.SaliencyMap(case.model, case.x, target=TARGET, tokens=case.tokens, **case.widget_kw)


def _check_saliency_map(case: Case, widget: Any, target: int = TARGET) -> None:
    """``.attribution`` is ``sw.saliency`` of the shown sample (0) with the widget's method."""
    assert widget.target == target and widget.error == ""
    expected = sw.saliency(case.model, case.x, target, method=widget.method, **case.widget_kw)
    assert_close(widget.attribution, shown(case, expected)[0])


def _saliency_map_contrast(case: Case, _tmp: pathlib.Path) -> Any:
    return sw.SaliencyMap(case.model, case.x, target=TARGET, contrast=OTHER, tokens=case.tokens, **case.widget_kw)


def _check_saliency_map_contrast(case: Case, widget: Any) -> None:
    """``.attribution`` is ``sw.saliency(..., contrast=)`` of the shown sample (0)."""
    assert (widget.target, widget.contrast, widget.error) == (TARGET, OTHER, "")
    expected = sw.saliency(case.model, case.x, TARGET, contrast=OTHER, method=widget.method, **case.widget_kw)
    assert_close(widget.attribution, shown(case, expected)[0])


def _retarget(case: Case, tmp: pathlib.Path) -> Any:
    widget = _saliency_map(case, tmp)
    widget.target = OTHER
    return widget


def _saliency_map_html(case: Case, tmp: pathlib.Path) -> pathlib.Path:
    return _saliency_map(case, tmp).to_html(tmp / "saliency_map.html")


def _jacobian_grid(case: Case, _tmp: pathlib.Path) -> Any:
    return sw.JacobianGrid(case.model, case.x, tokens=case.tokens, **case.widget_kw)


def _check_jacobian_grid(case: Case, grid: Any) -> None:
    """``.jacobian`` is ``sw.jacobian`` of the shown sample (0)."""
    assert_close(grid.jacobian, shown(case, sw.jacobian(case.model, case.x, **case.widget_kw))[0])


def _select(case: Case, tmp: pathlib.Path) -> Any:
    grid = _jacobian_grid(case, tmp)
    grid.selected = OTHER
    return grid


def _check_selected(case: Case, grid: Any) -> None:
    """The selected row is the hand-written gradient of that output, sample 0."""
    assert grid.selected == OTHER and grid.error == ""
    assert_close(grid.jacobian[OTHER], shown(case, case.gradient(OTHER)[0])[0])


def _jacobian_grid_html(case: Case, tmp: pathlib.Path) -> pathlib.Path:
    return _jacobian_grid(case, tmp).to_html(tmp / "jacobian_grid.html")


def _check_weights(case: Case, total: int) -> None:
    assert total == case.n_params


def _weight_inspector(case: Case, _tmp: pathlib.Path) -> int:
    """The blocks of every layer with weights, shown one layer at a time: their total size."""
    inspector = sw.WeightInspector(case.model)
    total = 0
    for info in sw.layers(case.model):
        if info.n_params > 0:
            inspector.layer = info.name
            total += sum(block.array.size for block in inspector.blocks)
    return total


ENTRIES: dict[str, Entry] = {
    "saliency_gradient": Entry(_saliency("gradient"), _check_gradient),
    "saliency_input_x_gradient": Entry(_saliency("input_x_gradient"), _check_input_x_gradient),
    "saliency_smoothgrad": Entry(_smoothgrad, _check_smoothgrad),
    "saliency_integrated_gradients": Entry(_integrated_gradients, _check_integrated_gradients),
    "saliency_occlusion": Entry(_saliency("occlusion", window=1), _check_occlusion, refusable=False,
                                with_layer=False),
    "saliency_contrast": Entry(_contrast, _check_contrast),
    "integrated_gradients_contrast": Entry(_integrated_gradients_contrast, _check_integrated_gradients_contrast),
    "attribute": Entry(lambda case, _tmp: sw.attribute(case.model, case.x, TARGET, **case.kw), _check_attribute),
    "jacobian": Entry(lambda case, _tmp: sw.jacobian(case.model, case.x, **case.kw), _check_jacobian),
    "random_logit": Entry(_random_logit, _check_random_logit),
    "deletion_insertion": Entry(_deletion_insertion, _check_deletion_insertion, refusable=False),
    "randomization": Entry(_randomization, _check_randomization),
    "completeness": Entry(_completeness, _check_completeness),
    "dataset_local": Entry(_dataset("local"), _check_dataset),
    "dataset_ray": Entry(_dataset("ray"), _check_dataset),
    "SaliencyMap": Entry(_saliency_map, _check_saliency_map),
    "SaliencyMap_contrast": Entry(_saliency_map_contrast, _check_saliency_map_contrast),
    "SaliencyMap_retarget": Entry(_retarget, lambda case, w: _check_saliency_map(case, w, OTHER), refusable=False),
    "SaliencyMap_to_figure": Entry(lambda case, tmp: png_bytes(_saliency_map(case, tmp).to_figure()),
                                   assert_png, refusable=False),
    "SaliencyMap_to_html": Entry(_saliency_map_html, page_check("saliency_map.js"), refusable=False),
    "JacobianGrid": Entry(_jacobian_grid, _check_jacobian_grid),
    "JacobianGrid_selected": Entry(_select, _check_selected, refusable=False),
    "JacobianGrid_to_figure": Entry(lambda case, tmp: png_bytes(_jacobian_grid(case, tmp).to_figure()),
                                    assert_png, refusable=False),
    "JacobianGrid_to_html": Entry(_jacobian_grid_html, page_check("jacobian_grid.js"), refusable=False),
    "WeightInspector": Entry(_weight_inspector, _check_weights, refusable=False),
}


def _cells() -> list[Any]:
    """Every framework × row × column that applies, with its id ``<framework>-<kind>-<entry>``."""
    cells = []
    for framework in FRAMEWORKS:
        for kind in (*KINDS, *REFUSALS):
            for name, entry in ENTRIES.items():
                if (kind in REFUSALS and not entry.refusable) or (kind in LAYER_KINDS and not entry.with_layer):
                    continue
                cells.append(pytest.param(framework, kind, name, id=f"{framework}-{kind}-{name}"))
    return cells


# --------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def case_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Case]:
    """Builds each row once for the whole file."""
    built: dict[tuple[str, str], Case] = {}

    def get(framework: str, kind: str) -> Case:
        for module in {"torch": ("torch", "captum", "transformers"), "keras": ("keras",),
                       "jax": ("jax", "flax")}[framework]:
            pytest.importorskip(module)
        if (framework, kind) not in built:
            built[framework, kind] = {**BUILDERS, **JAX_BUILDERS}[framework, kind](np.random.default_rng(0),
                                                               tmp_path_factory.mktemp("vocab"))
        return built[framework, kind]

    return get


@pytest.fixture(scope="module")
def ray_session() -> Any:
    """One local Ray for every ``dataset_ray`` cell of the file, shut down at its end."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             _system_config={"prestart_worker_first_driver": False, "enable_metrics_collection": False})
    yield ray
    ray.shutdown()


# ------------------------------------------------------------------ cells
@pytest.mark.parametrize(("framework", "kind", "entry"), _cells())
def test_cell(framework: str, kind: str, entry: str, case_of: Callable[[str, str], Case],
              tmp_path: pathlib.Path, request: pytest.FixtureRequest) -> None:
    case = case_of(framework, kind)
    if entry == "dataset_ray":
        request.getfixturevalue("ray_session")
    column = ENTRIES[entry]
    if case.refusal is not None:
        with pytest.raises(SaliencyError, match=case.refusal):
            column.call(case, tmp_path)
        return
    column.check(case, column.call(case, tmp_path))
