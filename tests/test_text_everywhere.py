"""Text and structured inputs reach every check, widget and export (token ids, dicts, ``layer=``,
``head=``, ``fixed=``), and the widgets refuse bad trait values without losing the old one.

Numbers are compared with ``sw.saliency`` / ``sw.attribute`` / ``sw.jacobian`` on the same inputs
(checked against captum and autograd elsewhere), or with the model's own forward pass on token ids
replaced by hand."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import traitlets
from _widget_models import batch, mlp, tiny_bert
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr
from torch import nn

import saliency_widgets as sw
from saliency_widgets.errors import SaliencyError
from saliency_widgets.inputs import infer_layout
from saliency_widgets.transport import from_wire

TOL = {"rtol": 1e-4, "atol": 1e-5}
PAD = 0  # [PAD] in tests._widget_models.TINY_VOCAB


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sw.SaliencyWarning)
        yield


# ------------------------------------------------------------------ models
@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    """``(model, tokenizer, x, embedding module)`` of a 1-layer BERT, 3 sentences."""
    model, tokenizer, x = tiny_bert(tmp_path_factory.mktemp("vocab"),
                                    ("the film was great", "a long dull plot again", "not bad at all"))
    return model, tokenizer, x, model.bert.embeddings.word_embeddings


def bert_scores(model, x, ids) -> np.ndarray:
    with torch.no_grad():
        return model(**{**{k: torch.as_tensor(v) for k, v in x.items()}, "input_ids": torch.as_tensor(ids)}).logits.numpy()


class TwoHeads(nn.Module):
    """Token ids and a mask → embedding → masked mean → two outputs in a dict (no 'logits')."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.a, self.b = nn.Embedding(12, 4), nn.Linear(4, 3), nn.Linear(4, 4)

    def forward(self, input_ids, attention_mask):
        h = (self.emb(input_ids) * attention_mask[..., None]).mean(1)
        return {"sentiment": self.a(h), "topic": self.b(torch.tanh(h))}


@pytest.fixture(scope="module")
def two_heads():
    x = {"input_ids": np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8], [9, 10, 11, 2, 0]]),
         "attention_mask": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])}
    return TwoHeads().eval(), x


@pytest.fixture(scope="module")
def keras_ids():
    """Keras Embedding → GlobalAveragePooling1D → Dense, and a batch of token ids."""
    import keras

    keras.utils.set_random_seed(3)
    ids = keras.Input((6,), dtype="int32")
    emb = keras.layers.Embedding(12, 4, embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=3),
                                 name="emb")(ids)
    out = keras.layers.Dense(3, name="out")(keras.layers.Activation("tanh")(keras.layers.GlobalAveragePooling1D()(emb)))
    model = keras.Model(ids, out)
    tokens = np.random.default_rng(0).integers(1, 12, size=(2, 6)).astype(np.int32)
    return model, tokens, model.get_layer("emb")


class TwoFloats(nn.Module):
    """f(a, b) of two float entries (a: 6 features, b: 3 × 4)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(4)
        self.a, self.b = nn.Linear(6, 3), nn.Linear(12, 3)

    def forward(self, a, b):
        return torch.tanh(self.a(a) + self.b(b.flatten(1)))


# --------------------------------------------------------------- references
def spearman_rows(model, x, got, **kw) -> np.ndarray:
    """Each correlation of a ``RandomLogit`` from scipy and ``sw.saliency``'s maps."""
    own = flat_maps(sw.saliency(model, x, [t[0] for t in got.targets], **kw))
    out = np.empty(got.correlations.shape)
    for j in range(got.others.shape[1]):
        theirs = flat_maps(sw.saliency(model, x, got.others[:, j].tolist(), **kw))
        for i in range(len(out)):
            out[i, j] = spearmanr(own[i], theirs[i]).statistic
    return out


def flat_maps(values) -> np.ndarray:
    """``(batch, elements)``: every attributed entry of a result (``None`` for fixed ones), flattened."""
    parts = list(values.values()) if isinstance(values, dict) else values if isinstance(values, tuple) else [values]
    return np.concatenate([p.reshape(len(p), -1) for p in parts if p is not None], axis=1)


def deletion_by_hand(scores, ids, per_token, target, pad, steps):
    """Deletion and insertion curves: the top-``k`` tokens of each sample set to (or kept over) ``pad``."""
    order = np.argsort(-per_token, axis=1, kind="stable")
    deletion, insertion = [], []
    for k in np.round(np.linspace(0, 1, steps + 1) * ids.shape[1]).astype(int):
        top = np.zeros(ids.shape, dtype=bool)
        np.put_along_axis(top, order[:, :k], True, axis=1)
        deletion.append(scores(np.where(top, pad, ids))[np.arange(len(ids)), target])
        insertion.append(scores(np.where(top, ids, pad))[np.arange(len(ids)), target])
    return np.stack(deletion, 1), np.stack(insertion, 1)


# ------------------------------------------------------------ 1. the checks
def test_checks_take_a_tokenizer_dict_and_the_embedding_module(bert):
    model, _, x, emb = bert
    kw = {"layer": emb, "method": "input_x_gradient"}
    got = sw.checks.random_logit(model, x, n=2, seed=0, **kw)
    np.testing.assert_allclose(got.correlations, spearman_rows(model, x, got, **kw), atol=1e-6)

    pad = np.full_like(x["input_ids"], PAD)
    # one step (the midpoint rule) leaves an error well above float rounding: the number is compared
    relative = sw.checks.completeness(model, x, 1, steps=1, layer=emb, baseline={"input_ids": pad})
    ig = sw.attribute(model, x, 1, method="integrated_gradients", steps=1, layer=emb, baseline={"input_ids": pad})
    gap = ig.outputs[:, 1] - bert_scores(model, x, pad)[:, 1]
    assert relative.min() > 1e-3
    np.testing.assert_allclose(relative, np.abs(ig.values.sum(axis=(1, 2)) - gap) / np.abs(gap), rtol=1e-3)


def test_randomization_finds_the_layer_object_in_each_copy(bert):
    model, _, x, emb = bert
    before = {k: v.clone() for k, v in model.state_dict().items()}
    got = sw.checks.randomization(model, x, 2, layer=emb, method="input_x_gradient", seed=0)
    np.testing.assert_allclose(got.original, sw.saliency(model, x, 2, layer=emb, method="input_x_gradient"), **TOL)
    assert got.maps.shape == (len(got.layers), *got.original.shape) and len(got.layers) > 3
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # copies only


def test_deletion_insertion_replaces_whole_token_ids_with_the_pad_id(bert):
    model, _, x, emb = bert
    attribution = sw.saliency(model, x, 0, layer=emb, method="input_x_gradient")
    steps = x["input_ids"].shape[1]
    got = sw.checks.deletion_insertion(model, x, attribution, 0, steps=steps, baseline=PAD, layer=emb)
    deletion, insertion = deletion_by_hand(lambda ids: bert_scores(model, x, ids), x["input_ids"],
                                           attribution.sum(axis=2), 0, PAD, steps)
    np.testing.assert_allclose(got.deletion, deletion, **TOL)
    np.testing.assert_allclose(got.insertion, insertion, **TOL)


def test_deletion_insertion_refuses_a_baseline_that_is_not_a_token_id(bert):
    model, _, x, emb = bert
    attribution = sw.saliency(model, x, 0, layer=emb)
    with pytest.raises(SaliencyError, match=r"holds token ids.*never averaged.*\[PAD\] or \[MASK\] token id\), got 0.5"):
        sw.checks.deletion_insertion(model, x, attribution, 0, baseline=0.5, layer=emb)
    with pytest.raises(SaliencyError, match=r"must broadcast to the shape of x\['input_ids'\].*pass that layer="):
        sw.checks.deletion_insertion(model, x, attribution, 0)


def test_checks_on_keras_token_ids_with_the_embedding_layer(keras_ids):
    model, tokens, emb = keras_ids
    got = sw.checks.random_logit(model, tokens, n=2, seed=1, layer=emb)
    np.testing.assert_allclose(got.correlations, spearman_rows(model, tokens, got, layer=emb), atol=1e-6)

    relative = sw.checks.completeness(model, tokens, 2, steps=1, layer=emb, baseline=np.zeros_like(tokens))
    ig = sw.attribute(model, tokens, 2, method="integrated_gradients", steps=1, layer=emb, baseline=np.zeros_like(tokens))
    gap = ig.outputs[:, 2] - np.asarray(model(np.zeros_like(tokens)))[:, 2]
    assert relative.min() > 1e-3
    np.testing.assert_allclose(relative, np.abs(ig.values.sum(axis=(1, 2)) - gap) / np.abs(gap), rtol=1e-3)

    weights = [w.copy() for w in model.get_weights()]
    result = sw.checks.randomization(model, tokens, 0, layer=emb, seed=0)
    np.testing.assert_allclose(result.original, sw.saliency(model, tokens, 0, layer=emb), **TOL)
    assert result.layers == ["out", "emb"]
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))


def test_deletion_insertion_of_keras_token_ids_without_layer(keras_ids):
    """A ranking of the ids themselves (one value per token), the removed ones replaced by id 1."""
    model, tokens, emb = keras_ids
    ranking = sw.saliency(model, tokens, 1, layer=emb, method="input_x_gradient").sum(axis=2)
    got = sw.checks.deletion_insertion(model, tokens, ranking, 1, steps=6, baseline=1)
    deletion, insertion = deletion_by_hand(lambda ids: np.asarray(model(ids)), tokens, ranking, 1, 1, 6)
    np.testing.assert_allclose(got.deletion, deletion, **TOL)
    np.testing.assert_allclose(got.insertion, insertion, **TOL)


def test_checks_take_head_as_a_name_and_as_a_layer_object(two_heads):
    model, x = two_heads
    got = sw.checks.random_logit(model, x, n=3, seed=0, head="topic", layer=model.emb)
    np.testing.assert_allclose(got.correlations, spearman_rows(model, x, got, head="topic", layer=model.emb), atol=1e-6)
    kw = {"head": model.b, "layer": model.emb, "method": "input_x_gradient"}
    result = sw.checks.randomization(model, x, 1, seed=0, **kw)
    np.testing.assert_allclose(result.original, sw.saliency(model, x, 1, **kw), **TOL)
    assert result.layers == ["b", "a", "emb"]
    assert not np.allclose(result.maps[0], result.original)  # the head's own layer, re-initialized


def test_checks_of_two_float_entries_and_fixed(rng):
    model = TwoFloats().eval()
    x = (batch(3, 6, seed=1), batch(3, 3, 4, seed=2))
    attribution = sw.saliency(model, x, 2)
    got = sw.checks.deletion_insertion(model, x, attribution, 2, steps=3)
    flat = np.concatenate([attribution[0], attribution[1].reshape(3, -1)], axis=1)
    order = np.argsort(-flat, axis=1, kind="stable")
    top = np.zeros(flat.shape, dtype=bool)
    np.put_along_axis(top, order[:, :6], True, axis=1)  # one third of the 18 elements
    kept = np.where(top, 0.0, np.concatenate([x[0], x[1].reshape(3, -1)], axis=1)).astype(np.float32)
    with torch.no_grad():
        by_hand = model(torch.tensor(kept[:, :6]), torch.tensor(kept[:, 6:].reshape(3, 3, 4))).numpy()[:, 2]
    np.testing.assert_allclose(got.deletion[:, 1], by_hand, **TOL)

    only_b = sw.checks.random_logit(model, x, 2, n=2, seed=0, fixed=[0])
    np.testing.assert_allclose(only_b.correlations, spearman_rows(model, x, only_b, fixed=[0]), atol=1e-6)


# ------------------------------------------------------ 2. JacobianGrid text
def test_jacobian_grid_at_the_embedding_exports(bert, tmp_path):
    model, tokenizer, x, emb = bert
    grid = sw.JacobianGrid(model, x, layer=emb, tokens=tokenizer, index=1)
    np.testing.assert_allclose(grid.jacobian, sw.jacobian(model, x, layer=emb)[1], **TOL)
    fig = grid.to_figure()
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == tokenizer.convert_ids_to_tokens(x["input_ids"][1].tolist())
    assert grid.savefig(tmp_path / "grid.svg").stat().st_size > 0
    assert grid.to_html(tmp_path / "grid.html").stat().st_size > 0


# ------------------------------------------------------- 3. head= everywhere
def test_saliency_map_keeps_head_for_every_computation(two_heads, tmp_path):
    model, x = two_heads
    kw = {"head": "topic", "layer": model.emb}
    w = sw.SaliencyMap(model, x, target=3, index=2, **kw)
    assert w.n_outputs == 4
    np.testing.assert_allclose(w.attribution, sw.saliency(model, x, 3, method=w.method, **kw)[2], **TOL)
    w.target = 1
    np.testing.assert_allclose(w.attribution, sw.saliency(model, x, 1, method=w.method, **kw)[2], **TOL)
    sample = {k: v[2:3] for k, v in x.items()}
    item = w.run_check("deletion_insertion")
    expected = sw.checks.deletion_insertion(model, sample, w.attribution[None], 1, steps=20, **kw)
    np.testing.assert_allclose(item["deletion"], expected.deletion[0], **TOL)
    item = w.run_check("randomization")
    expected = sw.checks.randomization(model, sample, 1, method=w.method, seed=0, **kw)
    np.testing.assert_allclose(item["spearman"], expected.spearman[:, 0], **TOL)
    w.prefetch()
    np.testing.assert_allclose(w.checks["random_logit"]["value"], np.nanmean(w.checks["random_logit"]["correlations"]))
    assert w.savefig(tmp_path / "map.png").stat().st_size > 0
    grid = sw.JacobianGrid(model, x, **kw)
    np.testing.assert_allclose(grid.jacobian, sw.jacobian(model, x, **kw)[0], **TOL)


# ----------------------------------------------- 4. completeness in the strip
def test_text_widget_runs_every_check_it_lists(bert):
    model, tokenizer, x, emb = bert
    pad = {"input_ids": np.full_like(x["input_ids"][:1], PAD)}
    options = {"integrated_gradients": {"steps": 1, "baseline": pad}}
    w = sw.SaliencyMap(model, x, layer=emb, tokens=tokenizer, method="integrated_gradients", method_kwargs=options)
    sample = {k: v[:1] for k, v in x.items()}
    expected = sw.checks.completeness(model, sample, w.target, steps=1, layer=emb, baseline=pad)[0]
    for name in w.checks:
        assert w.run_check(name)["status"] in ("ok", "warn")
    assert w.run_check("completeness")["value"] == pytest.approx(expected, rel=1e-3)
    w.method = "input_x_gradient"
    assert "completeness" not in w.checks
    with pytest.raises(SaliencyError, match="completeness checks integrated gradients: set method='integrated_gradients'"):
        w.run_check("completeness")


# ------------------------------------------------- 5. per-sample baselines
def test_a_batch_baseline_gives_each_sample_its_row(bert):
    model, tokenizer, x, emb = bert
    baseline = np.full_like(x["input_ids"], PAD)
    baseline[1] = 4  # [MASK] for sample 1 only: a shared row would give another map
    options = {"integrated_gradients": {"baseline": {"input_ids": baseline}, "steps": 4}}
    w = sw.SaliencyMap(model, x, layer=emb, tokens=tokenizer, method="integrated_gradients", method_kwargs=options,
                       index=1)
    expected = sw.attribute(model, x, w.target, layer=emb, **{"method": "integrated_gradients", **options["integrated_gradients"]})
    np.testing.assert_allclose(w.attribution, expected.values[1], **TOL)
    assert w.completeness_error == pytest.approx(float(expected.completeness_error[1]), abs=1e-4)
    w.index = 2
    expected = sw.saliency(model, x, w.target, layer=emb, method="integrated_gradients", **options["integrated_gradients"])
    np.testing.assert_allclose(w.attribution, expected[2], **TOL)
    with pytest.raises(SaliencyError, match=r"baseline of shape \(2, 7\) has 2 rows but x has 3 samples"):
        sw.SaliencyMap(model, x, layer=emb, method="integrated_gradients",
                       method_kwargs={"integrated_gradients": {"baseline": {"input_ids": baseline[:2]}}})


# -------------------------------------------------- 6. several float entries
@pytest.mark.parametrize("structure", ["tuple", "dict"])
def test_widgets_draw_each_of_two_float_entries(structure, tmp_path):
    model = TwoFloats().eval()
    a, b = batch(2, 6, seed=1), batch(2, 3, 4, seed=2)
    x, keys = ((a, b), (0, 1)) if structure == "tuple" else ({"a": a, "b": b}, ("a", "b"))
    forward = model if structure == "tuple" else (lambda a, b: model(a, b))
    expected = sw.saliency(forward, x, 2)
    w = sw.SaliencyMap(forward, x, target=2)
    assert w.entries == list(keys) and w.entry == keys[0]
    np.testing.assert_allclose(w.attribution, expected[keys[0]][0], **TOL)
    w.entry = keys[1]
    np.testing.assert_allclose(w.attribution, expected[keys[1]][0], **TOL)
    assert w._layout["kind"] == "sequence" and w.to_figure() is not None
    assert w.run_check("deletion_insertion")["status"] in ("ok", "warn")
    with pytest.raises(SaliencyError, match=r"entry must be one of .*; got 'c'"):
        w.entry = "c"
    assert w.entry == keys[1]
    picked = sw.SaliencyMap(forward, x, target=2, entry=keys[1])
    np.testing.assert_allclose(picked.attribution, expected[keys[1]][0], **TOL)
    grid = sw.JacobianGrid(forward, x, entry=keys[1])
    np.testing.assert_allclose(grid.jacobian, sw.jacobian(forward, x)[keys[1]][0], **TOL)
    grid.entry = keys[0]
    np.testing.assert_allclose(grid.jacobian, sw.jacobian(forward, x)[keys[0]][0], **TOL)
    assert grid.savefig(tmp_path / "grid.png").stat().st_size > 0


# ------------------------------------------------------ 7. trait refusals
@pytest.fixture(scope="module")
def widgets():
    model, x = mlp(), batch(3, 8)
    return {"SaliencyMap": sw.SaliencyMap(model, x), "JacobianGrid": sw.JacobianGrid(model, x)}


def valid(widget, name: str, value: float) -> bool:
    """Whether ``value`` is one the trait ``name`` should take."""
    if name in ("index", "target", "selected"):
        bound = {"index": 3, "target": 5, "selected": 5}[name]
        return float(value).is_integer() and 0 <= value < bound
    limits = {"outlier_perc": (0, 100), "opacity": (0, 1), "scale_max": (0, math.inf)}[name]
    return math.isfinite(value) and limits[0] <= value and (value <= limits[1] if name == "opacity" else value < limits[1])


NUMERIC = [("SaliencyMap", n) for n in ("index", "target", "outlier_perc", "opacity", "scale_max")] + \
          [("JacobianGrid", n) for n in ("index", "selected", "outlier_perc", "scale_max")]


@pytest.mark.parametrize(("kind", "name"), NUMERIC)
@pytest.mark.parametrize("how", ["setattr", "set_state"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32),
                       st.integers(-3, 8).map(float), st.sampled_from([float("nan"), -1.0, 1.5, 100.0, 2.0])))
def test_a_refused_trait_value_keeps_the_old_one(widgets, kind, name, how, value):
    widget = widgets[kind]
    old = getattr(widget, name)
    integer = isinstance(old, int)
    new = int(value) if integer and float(value).is_integer() else value
    try:
        if how == "setattr":
            setattr(widget, name, new)
        else:
            widget.set_state({name: new})
    except (SaliencyError, traitlets.TraitError):
        assert getattr(widget, name) == old
        assert not valid(widget, name, value)
    else:
        assert valid(widget, name, value) and getattr(widget, name) == new
    assert widget.to_figure() is not None
    setattr(widget, name, old)


def test_opacity_nan_was_accepted_before():
    w = sw.SaliencyMap(mlp(), batch(1, 8))
    with pytest.raises(SaliencyError, match=r"opacity must be in \[0, 1\].*got nan"):
        w.opacity = float("nan")
    with pytest.raises(SaliencyError, match=r"outlier_perc must be in \[0, 100\); got nan"):
        w.set_state({"outlier_perc": float("nan")})
    assert (w.opacity, w.outlier_perc) == (0.75, 2.0)
    assert w.to_figure() is not None


# ------------------------------------------------ 8. layouts of 1-D signals
@pytest.mark.parametrize(("shape", "framework", "time_axis", "display"), [
    ((80, 3000), "torch", 1, (3000, 80)),   # Whisper: (mel, frames)
    ((8, 50), "torch", 1, (50, 8)),
    ((2, 20), "torch", 1, (20, 2)),         # torch Conv1d: (channels, length)
    ((20, 2), "keras", 0, (20, 2)),         # Keras Conv1D: (length, channels)
    ((7, 3), "torch", 0, (7, 3)),           # an RNN's (time, features)
])
def test_the_long_axis_is_time(shape, framework, time_axis, display):
    layout = infer_layout(shape, framework)
    assert (layout.kind, layout.time_axis, layout.display_shape) == ("sequence", time_axis, display)
    values = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    np.testing.assert_array_equal(layout.reduce(values[None])[0], values.T if time_axis else values)


def test_a_conv1d_widget_draws_length_as_time():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv1d(2, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 18, 4)).eval()
    x = batch(2, 2, 20)
    w = sw.SaliencyMap(model, x, target=1, method="input_x_gradient")
    assert w._layout["display_shape"] == w._layout["sample_shape"] == [20, 2]
    expected = sw.saliency(model, x, 1, method="input_x_gradient")[0].T
    np.testing.assert_allclose(w._display_values(), expected, **TOL)
    image = w.to_figure().axes[0].images[0].get_array()
    assert image.shape[:2] == (2, 20)  # features down, the 20 time steps across
    w.prefetch()  # the browser's own input × gradient, from the wire's Jacobian and input (time first)
    jacobian, sample = from_wire(w._jacobian), from_wire(w._input)
    np.testing.assert_allclose(jacobian[1] * sample, expected, **TOL)


@pytest.mark.parametrize("rows", [[float("nan"), 3], [0, float("inf")], [4, 1], ["a", 2], [1]])
def test_a_bad_zoom_request_is_refused_and_the_old_one_kept(rows):
    w = sw.WeightInspector(mlp())
    good = {"block": w.blocks[0].name, "rows": [0, 2], "cols": [0, 3]}
    w.zoom = good
    answer = w._zoom
    with pytest.raises(SaliencyError, match=r'zoom must be \{"block": name, "rows": \[r0, r1\].*got'):
        w.set_state({"zoom": {**good, "rows": rows}})
    assert w.zoom == good and w._zoom == answer
    assert w.to_figure() is not None
