"""The first call on a Keras graph of per-sample layers takes its output shape from the graph
(no probe pass); anything that may mix the samples of a batch is still probed and refused."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import saliency_widgets as sw  # noqa: E402
from saliency_widgets.backends.keras.backend import KerasBackend  # noqa: E402
from saliency_widgets.structure import flatten  # noqa: E402
from models import keras_cnn, keras_lstm, tape_gradient  # noqa: E402


@pytest.fixture
def forwards(monkeypatch):
    """Counts the backend's forward passes (the probe is one)."""
    calls = []
    original = KerasBackend.forward

    def counted(self, query, entries, activation=None):
        calls.append(len(entries[0]))
        return original(self, query, entries, activation)

    monkeypatch.setattr(KerasBackend, "forward", counted)
    return calls


def residual_net(seed=0):
    """A small functional residual CNN, as keras.applications builds them."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((10, 10, 3))
    h = keras.layers.ZeroPadding2D(1)(inputs)
    h = keras.layers.Conv2D(4, 3)(h)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU(6.0)(h)
    branch = keras.layers.DepthwiseConv2D(3, padding="same", activation="swish")(h)
    h = keras.layers.Add()([h, keras.layers.LayerNormalization()(branch)])
    h = keras.layers.Concatenate()([h, h])
    h = keras.layers.GlobalAveragePooling2D()(h)
    h = keras.layers.Dropout(0.5)(h)
    return keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(h))


@pytest.mark.parametrize("build, shape", [(residual_net, (10, 10, 3)), (keras_cnn, (12, 12, 3)),
                                          (keras_lstm, (7, 3))])
def test_first_call_on_per_sample_layers_runs_no_probe(build, shape, rng, forwards):
    model = build()
    x = rng.normal(size=(3, *shape)).astype(np.float32)
    got = sw.saliency(model, x, 1, output="probabilities")
    assert forwards == []
    np.testing.assert_allclose(got, tape_gradient(model, x, [1] * len(x)), rtol=1e-4, atol=1e-6)
    result = sw.attribute(build(), x, method="integrated_gradients", steps=8)
    assert forwards == [3, 3]  # the scores and f(baseline), no probe
    assert np.abs(result.completeness_error).max() < 0.05


def batch_mean_op():
    inputs = keras.Input((4,))
    h = keras.layers.Dense(3)(inputs)
    return keras.Model(inputs, h - keras.ops.mean(h, axis=0, keepdims=True))


def batch_softmax():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Softmax(axis=0)(keras.layers.Dense(3)(inputs)))


def batch_centring_activation():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(3, activation=lambda t: t - keras.ops.mean(t, axis=0))(inputs))


def batch_centring_lambda():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                             keras.layers.Lambda(lambda t: t - keras.ops.mean(t, axis=0))])


class CentringDense(keras.layers.Dense):
    def call(self, inputs):
        out = super().call(inputs)
        return out - keras.ops.mean(out, axis=0)


def batch_centring_subclass():
    return keras.Sequential([keras.Input((4,)), CentringDense(3)])


@pytest.mark.parametrize("build", [batch_mean_op, batch_softmax, batch_centring_activation, batch_centring_lambda,
                                   batch_centring_subclass])
def test_layers_that_may_mix_samples_are_probed_and_refused(build, rng, forwards):
    model = build()
    x = rng.normal(size=(3, 4)).astype(np.float32)
    with pytest.raises(sw.SaliencyError, match="mixes samples"):
        sw.saliency(model, x, 1, output="probabilities")  # a softmax is skipped for logits
    assert forwards[0] == 3  # the probe: rows 1, 0, 0


def concatenated(axis):
    inputs = keras.Input((4,))
    h = keras.layers.Dense(3)(inputs)
    return keras.Model(inputs, keras.layers.Concatenate(axis=axis)([h, h]))


def time_distributed():
    return keras.Sequential([keras.Input((5, 4)), keras.layers.TimeDistributed(keras.layers.Dense(2))])


def declared(model, x):
    backend = KerasBackend(model)
    spec, entries = flatten(x, backend.to_numpy)
    return backend.per_sample_output_shape(backend.query(spec), entries)


@pytest.mark.parametrize("build, x_shape, expected", [
    (residual_net, (2, 10, 10, 3), (5,)),
    (keras_lstm, (2, 7, 3), (2,)),
    (lambda: concatenated(1), (2, 4), (6,)),
    (lambda: concatenated(0), (2, 4), None),
    (lambda: concatenated(-2), (2, 4), None),  # axis -2 of a (batch, 3) tensor is the batch axis
    (batch_softmax, (2, 4), None),
    (time_distributed, (2, 5, 4), None),  # a wrapper: what it wraps is not looked into
    (residual_net, (2, 12, 12, 3), None),  # not the declared input size
])
def test_per_sample_output_shape_is_declared_only_for_per_sample_graphs(build, x_shape, expected):
    assert declared(build(), np.zeros(x_shape, np.float32)) == expected


def test_undeclared_input_sizes_are_probed(rng, forwards):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 2))
    h = keras.layers.Conv2D(3, 3, padding="same")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GlobalMaxPooling2D()(h)))
    x = rng.normal(size=(2, 6, 5, 2)).astype(np.float32)
    np.testing.assert_allclose(sw.saliency(model, x, 3), tape_gradient(model, x, [3] * len(x)), rtol=1e-4, atol=1e-6)
    assert forwards == [3]


def test_a_declared_shape_the_scores_contradict_is_refused_then_measured(rng, monkeypatch):
    model = residual_net()
    x = rng.normal(size=(2, 10, 10, 3)).astype(np.float32)
    monkeypatch.setattr(KerasBackend, "per_sample_output_shape", lambda self, query, entries: (6,))
    with pytest.raises(sw.SaliencyError, match=r"shape \(5,\).*declare \(6,\)"):
        sw.saliency(model, x, 4, output="probabilities")
    np.testing.assert_allclose(sw.saliency(model, x, 4, output="probabilities"), tape_gradient(model, x, [4] * len(x)),
                               rtol=1e-4, atol=1e-6)
