"""Keras 3 attributions, on whichever backend Keras runs (``KERAS_BACKEND``: TensorFlow, torch or
JAX), against gradients written out by hand in that backend's framework (``models.keras_grad``:
GradientTape, torch.autograd.grad, jax.grad), finite differences, closed-form cases, and the torch
backend (parity)."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import saliency_widgets as sw  # noqa: E402
from models import (central_differences, keras_cnn, keras_grad, keras_lstm, keras_mlp,  # noqa: E402
                    keras_mlp_like, keras_numpy, tape_gradient, torch_mlp)

ops = keras.ops


def test_mlp_gradient_matches_tape_and_finite_differences(rng):
    model = keras_mlp()
    x = rng.normal(size=(3, 6)).astype(np.float32)
    got = sw.saliency(model, x, target=[1, 2, 0])
    np.testing.assert_allclose(got, tape_gradient(model, x, [1, 2, 0]), rtol=1e-5, atol=1e-6)

    def f(z):
        return float(keras_numpy(model(z[None].astype(np.float32), training=False))[0, 2])

    np.testing.assert_allclose(got[1], central_differences(f, x[1].astype(np.float64), eps=1e-2),
                               rtol=2e-2, atol=1e-3)


def test_softmax_activation_is_skipped_for_logits(rng):
    model = keras_mlp(softmax=True)
    x = rng.normal(size=(2, 6)).astype(np.float32)
    logits = sw.saliency(model, x, target=1)
    dense = model.layers[-1]

    def logit_1(ts):
        return ops.sum((ops.matmul(model.layers[0](ts[0]), dense.kernel) + dense.bias)[:, 1])

    np.testing.assert_allclose(logits, keras_grad(logit_1, [x])[0], rtol=1e-5, atol=1e-6)
    probs = sw.saliency(model, x, target=1, output="probabilities")
    np.testing.assert_allclose(probs, tape_gradient(model, x, [1, 1]), rtol=1e-5, atol=1e-7)
    assert dense.activation.__name__ == "softmax"  # the model is left as it was


def test_trailing_softmax_layer_is_skipped_for_logits(rng):
    inputs = keras.Input((6,))
    scores = keras.layers.Dense(3)(keras.layers.Dense(8, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Softmax()(scores))
    logit_model = keras.Model(inputs, scores)
    x = rng.normal(size=(2, 6)).astype(np.float32)
    np.testing.assert_allclose(sw.saliency(model, x, 2), tape_gradient(logit_model, x, [2, 2]), rtol=1e-5)
    np.testing.assert_allclose(sw.jacobian(model, x), sw.jacobian(logit_model, x), rtol=1e-5)


def test_all_ones_convolution_pixel_gradient_is_top_left_block():
    model = keras.Sequential([keras.Input((4, 4, 1)),
                              keras.layers.Conv2D(1, 3, padding="same", use_bias=False, kernel_initializer="ones")])
    x = np.ones((1, 4, 4, 1), np.float32)
    got = sw.saliency(model, x, target=(1, 1, 0))
    expected = np.zeros((4, 4), np.float32)
    expected[:3, :3] = 1
    np.testing.assert_array_equal(got[0, :, :, 0], expected)


def test_cnn_jacobian_matches_per_target_tape(rng):
    model = keras_cnn()
    x = rng.normal(size=(2, 12, 12, 3)).astype(np.float32)
    J = sw.jacobian(model, x)
    assert J.shape == (2, 5, 12, 12, 3)
    for t in range(5):
        np.testing.assert_allclose(J[:, t], tape_gradient(model, x, [t, t]), rtol=1e-4, atol=1e-6)
    for i in range(2):
        np.testing.assert_allclose(J[i], sw.jacobian(model, x[i:i + 1])[0], rtol=1e-4, atol=1e-6)


def test_lstm_then_dense(rng):
    model = keras_lstm()
    x = rng.normal(size=(2, 7, 3)).astype(np.float32)
    got = sw.saliency(model, x, target=0)
    np.testing.assert_allclose(got, tape_gradient(model, x, [0, 0]), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sw.jacobian(model, x)[:, 0], got, rtol=1e-4, atol=1e-6)


def test_integrated_gradients_completeness_and_backend_tensor_input(rng):
    """The input as the backend's own tensor (a tf tensor, a torch tensor, a jax array)."""
    model = keras_cnn()
    x = rng.normal(size=(2, 12, 12, 3)).astype(np.float32)
    result = sw.attribute(model, ops.convert_to_tensor(x), target=3,
                          method="integrated_gradients", steps=256)
    f_x = keras_numpy(model(x, training=False))[:, 3]
    f_0 = keras_numpy(model(np.zeros_like(x), training=False))[:, 3]
    np.testing.assert_allclose(result.values.reshape(2, -1).sum(1), f_x - f_0, rtol=0.01, atol=1e-4)


def test_batchnorm_moving_statistics_untouched(rng):
    model = keras_cnn()
    bn = model.layers[1]
    bn.moving_mean.assign(rng.normal(size=4).astype(np.float32))
    before = [w.copy() for w in model.get_weights()]
    x = rng.normal(size=(4, 12, 12, 3)).astype(np.float32)
    for method in sw.METHODS:
        sw.saliency(model, x, method=method)
    sw.jacobian(model, x)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert all(layer.trainable for layer in model.layers)


def test_torch_and_keras_with_same_weights_agree(rng):
    torch_model = torch_mlp(softmax=True)
    keras_model = keras_mlp_like(torch_model, softmax=True)
    x = rng.normal(size=(3, 6)).astype(np.float32)
    np.testing.assert_allclose(sw.jacobian(keras_model, x), sw.jacobian(torch_model, x), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sw.jacobian(keras_model, x, output="probabilities"),
                               sw.jacobian(torch_model, x, output="probabilities"), rtol=1e-4, atol=1e-7)
    for method in ("gradient", "input_x_gradient", "integrated_gradients"):
        np.testing.assert_allclose(sw.saliency(keras_model, x, 2, method=method),
                                   sw.saliency(torch_model, x, 2, method=method), rtol=1e-4, atol=1e-6)
    # Each framework draws SmoothGrad's noise with its own generator; without noise the maps agree.
    np.testing.assert_allclose(sw.saliency(keras_model, x, 2, method="smoothgrad", noise=0.0, n_samples=3),
                               sw.saliency(torch_model, x, 2, method="smoothgrad", noise=0.0, n_samples=3),
                               rtol=1e-4, atol=1e-6)


def test_smoothgrad_is_the_mean_tape_gradient_of_numpy_noisy_copies(rng):
    """Keras draws SmoothGrad's noise with numpy's generator, default_rng(seed), copy after copy."""
    model = keras_mlp()
    x = rng.normal(size=(2, 6)).astype(np.float32)
    got = sw.saliency(model, x, 1, method="smoothgrad", n_samples=8, noise=0.2, seed=7)
    sigma = (0.2 * (x.max(1, keepdims=True) - x.min(1, keepdims=True))).astype(np.float32)
    noisy = x + sigma * np.random.default_rng(7).standard_normal((8, *x.shape), dtype=np.float32)
    expected = np.mean([tape_gradient(model, n, [1, 1]) for n in noisy], axis=0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    # The same noise again; the call may now run traced, whose float32 rounding differs from eager's.
    again = sw.saliency(model, x, 1, method="smoothgrad", n_samples=8, noise=0.2, seed=7)
    np.testing.assert_allclose(again, got, rtol=1e-5, atol=1e-6 * np.abs(got).max())


def test_one_score_per_sample_does_not_mix_samples(rng):
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.ops.squeeze(keras.layers.Dense(1, activation="tanh")(inputs), -1))
    x = rng.normal(size=(3, 6)).astype(np.float32)
    expected = keras_grad(lambda ts: ops.sum(model(ts[0], training=False)), [x])[0]
    np.testing.assert_allclose(sw.saliency(model, x, target=0), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sw.jacobian(model, x)[:, 0], expected, rtol=1e-5, atol=1e-7)
