"""Keras models with several inputs and outputs, hidden-layer heads, layer= and logits, on
whichever backend Keras runs (``KERAS_BACKEND``), against gradients written out by hand in that
backend's framework (``models.keras_grad``)."""

from __future__ import annotations

import numpy as np
import pytest

import saliency_widgets as sw

keras = pytest.importorskip("keras")

from models import keras_grad  # noqa: E402

ops = keras.ops


def two_in_two_out():
    keras.utils.set_random_seed(0)
    a = keras.Input((4,), name="a")
    b = keras.Input((3,), name="b")
    h = keras.layers.Dense(6, activation="tanh", name="hidden")(keras.layers.Concatenate()([a, b]))
    cls = keras.layers.Dense(3, activation="softmax", name="cls")(h)
    reg = keras.layers.Dense(2, name="reg")(h)
    return keras.Model({"a": a, "b": b}, [cls, reg])


def batch(rng):
    return {"a": rng.normal(size=(2, 4)).astype(np.float32), "b": rng.normal(size=(2, 3)).astype(np.float32)}


def test_two_inputs_as_dict_and_list_match_gradient_tape(rng):
    model = two_in_two_out()
    x = batch(rng)
    logits_layer = model.get_layer("cls")

    def cls_logit(ts):
        h = model.get_layer("hidden")(ops.concatenate(ts, -1))
        return ops.sum(ops.matmul(h, logits_layer.kernel)[:, 1] + logits_layer.bias[1])

    ref = keras_grad(cls_logit, [x["a"], x["b"]])
    got = sw.saliency(model, x, target=1, head="cls")
    np.testing.assert_allclose(got["a"], ref[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["b"], ref[1], rtol=1e-5, atol=1e-6)
    as_list = sw.saliency(model, [x["a"], x["b"]], target=1, head=0)
    np.testing.assert_allclose(as_list[0], ref[0], rtol=1e-5, atol=1e-6)


def test_second_output_by_index_and_name_and_hidden_layer_head(rng):
    model = two_in_two_out()
    x = batch(rng)

    def reg(ts):
        return ops.sum(model({"a": ts[0], "b": ts[1]})[1][:, 0])

    ref = keras_grad(reg, [x["a"], x["b"]])
    for head in (1, "reg"):
        got = sw.saliency(model, x, target=0, head=head)
        np.testing.assert_allclose(got["a"], ref[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(sw.SaliencyError, match="'cls', 'reg'"):
        sw.saliency(model, x)

    hidden = model.get_layer("hidden")

    def unit(ts):
        return ops.sum(hidden(ops.concatenate(ts, -1))[:, 4])

    ref_h = keras_grad(unit, [x["a"], x["b"]])
    got_h = sw.saliency(model, x, target=4, head="hidden")
    np.testing.assert_allclose(got_h["b"], ref_h[1], rtol=1e-5, atol=1e-6)


def test_time_distributed_softmax_explains_logits(rng):
    keras.utils.set_random_seed(1)
    dense = keras.layers.Dense(4, activation="softmax")
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.TimeDistributed(dense)])
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)

    def logit(ts):
        return ops.sum((ops.matmul(ts[0], dense.kernel) + dense.bias)[:, 2, 1])

    (ref,) = keras_grad(logit, [x])
    np.testing.assert_allclose(sw.saliency(model, x, target=(2, 1)), ref, rtol=1e-5, atol=1e-6)


def test_layer_attribution_matches_tape_on_the_hidden_activation(rng):
    model = two_in_two_out()
    x = batch(rng)
    hidden, cls = model.get_layer("hidden"), model.get_layer("cls")
    act = hidden(ops.concatenate([x["a"], x["b"]], -1))

    def logit(ts):
        return ops.sum((ops.matmul(ts[0], cls.kernel) + cls.bias)[:, 2])

    (ref,) = keras_grad(logit, [act])
    got = sw.saliency(model, x, target=2, head="cls", layer="hidden")
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    res = sw.attribute(model, x, target=2, head="cls", layer=hidden, method="integrated_gradients", steps=64)
    assert res.values.shape == (2, 6)
    assert np.all(np.abs(res.completeness_error) < 1e-3)


def test_embedding_layer_attribution_of_token_ids(rng):
    keras.utils.set_random_seed(2)
    ids = keras.Input((6,), dtype="int32")
    emb = keras.layers.Embedding(20, 4, name="emb")(ids)
    out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(emb))
    model = keras.Model(ids, out)
    tokens = rng.integers(1, 20, size=(3, 6))
    with pytest.raises(sw.NonDifferentiableError, match="layer="):
        sw.saliency(model, tokens)
    got = sw.attribute(model, tokens, target=1, layer="emb", method="integrated_gradients", steps=32)
    assert got.values.shape == (3, 6, 4)
    assert np.all(np.abs(got.completeness_error) < 1e-4)
