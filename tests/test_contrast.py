"""``contrast=`` (DESIGN §3.1): maps of score(target) − score(contrast), "why A and not B", for every
method and check, against independent references written out by hand (torch autograd, a Keras
GradientTape, a hand-written Grad-CAM), and the refusals of contrasts that cannot be meant."""

from __future__ import annotations

import numpy as np
import pytest

import saliency_widgets as sw
from saliency_widgets import checks
from saliency_widgets.backends import randomized_copies
from saliency_widgets.errors import SaliencyError

torch = pytest.importorskip("torch")
from models import keras_cnn, keras_mlp, torch_cnn, torch_mlp  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def mlp():
    return torch_mlp()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(3).normal(size=(3, 6)).astype(np.float32)


@pytest.fixture(scope="module")
def cnn():
    return torch_cnn(channels=3, size=12)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(4).normal(size=(2, 3, 12, 12)).astype(np.float32)


def torch_difference_gradient(model, x, target, contrast):
    """∂(out[i, target[i]] − out[i, contrast[i]]) / ∂x by autograd, written out by hand."""
    xt = torch.tensor(x, requires_grad=True)
    out = model(xt).reshape(len(x), -1)
    rows = torch.arange(len(x))
    (g,) = torch.autograd.grad((out[rows, torch.as_tensor(target)] - out[rows, torch.as_tensor(contrast)]).sum(), xt)
    return g.numpy()


def tape_difference_gradient(model, x, target, contrast):
    """The same for a Keras model, with a GradientTape."""
    import tensorflow as tf

    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = tf.reshape(model(xt, training=False), (len(x), -1))
        score = tf.gather(out, target, axis=1, batch_dims=1) - tf.gather(out, contrast, axis=1, batch_dims=1)
    return tape.gradient(score, xt).numpy()


# ------------------------------------------------------------ gradient methods
@pytest.mark.parametrize("method", ["gradient", "input_x_gradient"])
def test_torch_gradient_of_the_difference(mlp, x, method):
    result = sw.attribute(mlp, x, 1, contrast=3, method=method)
    expected = torch_difference_gradient(mlp, x, [1] * 3, [3] * 3) * (x if method == "input_x_gradient" else 1)
    np.testing.assert_allclose(result.values, expected, **TOL)
    assert result.targets == [(1,)] * 3 and result.contrasts == [(3,)] * 3
    np.testing.assert_allclose(result.outputs, mlp(torch.from_numpy(x)).detach().numpy(), **TOL)


@pytest.mark.parametrize("method", ["gradient", "input_x_gradient"])
def test_keras_gradient_of_the_difference_matches_a_gradient_tape(x, method):
    pytest.importorskip("tensorflow")
    model = keras_mlp()
    values = sw.saliency(model, x, [0, 1, 2], contrast=[3, 2, 0], method=method)
    expected = tape_difference_gradient(model, x, [0, 1, 2], [3, 2, 0]) * (x if method == "input_x_gradient" else 1)
    np.testing.assert_allclose(values, expected, rtol=1e-4, atol=1e-6)


def test_per_sample_contrasts_and_arg_max_targets(mlp, x):
    predicted = mlp(torch.from_numpy(x)).argmax(1).numpy()
    contrasts = [(int(p) + 1) % 4 for p in predicted]
    for method in ("gradient", "smoothgrad"):
        kw = {"n_samples": 4, "seed": 0} if method == "smoothgrad" else {}
        result = sw.attribute(mlp, x, None, contrast=np.array(contrasts), method=method, **kw)
        assert result.targets == [(int(p),) for p in predicted]
        assert result.contrasts == [(c,) for c in contrasts]
    np.testing.assert_allclose(sw.saliency(mlp, x, None, contrast=contrasts),
                               torch_difference_gradient(mlp, x, predicted, contrasts), **TOL)


def test_smoothgrad_of_the_difference_is_the_difference_of_smoothgrads(mlp, x):
    """Linear in the explained score: with the same noise, SmoothGrad(t − c) = SmoothGrad(t) − SmoothGrad(c)."""
    kw = dict(method="smoothgrad", n_samples=6, seed=7)
    both = sw.saliency(mlp, x, 0, contrast=2, **kw)
    np.testing.assert_allclose(both, sw.saliency(mlp, x, 0, **kw) - sw.saliency(mlp, x, 2, **kw), **TOL)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_integrated_gradients_are_complete_against_the_difference(x, framework):
    if framework == "keras":
        pytest.importorskip("tensorflow")
    model = torch_mlp() if framework == "torch" else keras_mlp()
    baseline = np.full_like(x, 0.3)
    result = sw.attribute(model, x, 2, contrast=0, method="integrated_gradients", steps=64, baseline=baseline)
    f = sw.attribution.predict(model, x)
    f_base = sw.attribution.predict(model, baseline)
    difference = (f[:, 2] - f[:, 0]) - (f_base[:, 2] - f_base[:, 0])
    np.testing.assert_allclose(result.values.reshape(3, -1).sum(axis=1), difference, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result.completeness_error, 0.0, atol=1e-4)
    relative = checks.completeness(model, x, 2, contrast=0, steps=64, baseline=baseline)
    assert relative.shape == (3,) and (relative < 1e-3).all()


def test_occlusion_measures_drops_of_the_difference(mlp, x):
    def score(inputs):
        out = mlp(torch.from_numpy(inputs)).detach().numpy()
        return out[:, 1] - out[:, 3]

    expected = np.zeros_like(x)
    for j in range(x.shape[1]):  # one feature per window on a vector, replaced by the baseline 0
        occluded = x.copy()
        occluded[:, j] = 0
        expected[:, j] = score(x) - score(occluded)
    np.testing.assert_allclose(sw.saliency(mlp, x, 1, contrast=3, method="occlusion"), expected, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ Grad-CAM
def _hand_cam(model, layer, x, target, contrast):
    """Grad-CAM of out[t] − out[c], written out: A and g = ∂(out[t] − out[c])/∂A by a hook and autograd,
    weights = spatial mean of g, ReLU(Σ_k w_k A_k), upsampled bilinearly (align_corners=False)."""
    captured = {}
    handle = layer.register_forward_hook(lambda m, i, out: captured.setdefault("a", out))
    try:
        out = model(torch.from_numpy(x))
    finally:
        handle.remove()
    a = captured["a"]
    rows = torch.arange(len(x))
    (g,) = torch.autograd.grad((out[rows, target] - out[rows, contrast]).sum(), a)
    cam = torch.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1, keepdim=True))
    return torch.nn.functional.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]


def test_gradcam_is_the_cam_of_the_difference_score_not_the_difference_of_cams(cnn, images):
    layer = "5"  # the Softplus after the last convolution
    ours = sw.saliency(cnn, images, [0, 1], contrast=[3, 3], method="gradcam", layer=layer)
    expected = _hand_cam(cnn, cnn[5], images, [0, 1], [3, 3]).detach().numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    assert ours.min() > 0.01
    # output 3's own CAM is clipped to 0 by its ReLU: the difference of two CAMs would be output 0's CAM alone
    cams = [sw.saliency(cnn, images, t, method="gradcam", layer=layer) for t in ([0, 1], [3, 3])]
    assert np.abs(ours - (cams[0] - cams[1])).min() > 0.01


def test_keras_gradcam_of_the_difference_matches_a_gradient_tape():
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    model = keras_cnn(size=12)
    xk = np.random.default_rng(5).normal(size=(2, 12, 12, 3)).astype(np.float32)
    layer = model.layers[3]  # the second convolution, (6, 6, 6)
    both = keras.Model(model.inputs, [layer.output, model.outputs[0]])
    with tf.GradientTape() as tape:
        a, out = both(tf.constant(xk), training=False)
        score = tf.gather(out, [1, 3], axis=1, batch_dims=1) - tf.gather(out, [0, 0], axis=1, batch_dims=1)
    g = tape.gradient(score, a).numpy()
    a = a.numpy()
    cam = np.maximum((g.mean(axis=(1, 2), keepdims=True) * a).sum(axis=-1), 0)
    expected = tf.image.resize(cam[..., None], (12, 12), method="bilinear", antialias=False).numpy()[..., 0]
    ours = sw.saliency(model, xk, [1, 3], contrast=0, method="gradcam", layer=layer.name)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6)


def test_gradcam_plus_plus_takes_the_difference_gradient(cnn, images):
    from saliency_widgets.gradcam import gradcam_plus_plus

    captured = {}
    handle = cnn[5].register_forward_hook(lambda m, i, out: captured.setdefault("a", out))
    try:
        out = cnn(torch.from_numpy(images))
    finally:
        handle.remove()
    (g,) = torch.autograd.grad((out[:, 3] - out[:, 1]).sum(), captured["a"])
    expected = gradcam_plus_plus(captured["a"].detach().numpy(), g.numpy(), channel_axis=0, size=(12, 12))
    ours = sw.saliency(cnn, images, 3, contrast=1, method="gradcam_plus_plus", layer="5")
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


# -------------------------------------------------------------------- checks
def test_random_logit_compares_difference_maps_of_other_outputs(mlp, x):
    result = checks.random_logit(mlp, x, 0, contrast=1, n=2, seed=0)
    assert result.contrasts == [(1,)] * 3
    assert result.others.shape == (3, 2) and not np.isin(result.others, [0, 1]).any()
    shown = torch_difference_gradient(mlp, x, [0] * 3, [1] * 3)
    for i in range(3):
        for j, other in enumerate(result.others[i]):
            expected = checks.spearman(shown[i], torch_difference_gradient(mlp, x[i:i + 1], [other], [1])[0])
            assert result.correlations[i, j] == pytest.approx(expected, abs=1e-9)
    smooth = checks.random_logit(mlp, x, 0, contrast=1, n=2, seed=0, method="smoothgrad", n_samples=3)
    np.testing.assert_array_equal(smooth.others, result.others)  # one per-output path, same draw
    with pytest.raises(SaliencyError, match="other than the target and the contrast"):
        checks.random_logit(torch_mlp(n_out=2), x, 0, contrast=1)


def test_deletion_insertion_follows_the_difference_score(mlp, x):
    ranking = np.abs(sw.saliency(mlp, x, 2, contrast=0))
    result = checks.deletion_insertion(mlp, x, ranking, 2, contrast=0, steps=3)
    out = mlp(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(result.deletion[:, 0], out[:, 2] - out[:, 0], **TOL)
    base = mlp(torch.zeros(1, 6)).detach().numpy()[0]
    np.testing.assert_allclose(result.insertion[:, 0], np.full(3, base[2] - base[0]), **TOL)
    np.testing.assert_allclose(result.deletion[:, -1], result.insertion[:, 0], **TOL)
    with pytest.raises(SaliencyError, match="would be zero"):
        checks.deletion_insertion(mlp, x, ranking, 2, contrast=2)


def test_randomization_keeps_the_contrast_in_every_copy(mlp, x):
    result = checks.randomization(mlp, x, 1, contrast=2, seed=0)
    np.testing.assert_allclose(result.original, torch_difference_gradient(mlp, x, [1] * 3, [2] * 3), **TOL)
    for maps, (_, copy) in zip(result.maps, randomized_copies(mlp, cascade=True, seed=0)):
        np.testing.assert_allclose(maps, torch_difference_gradient(copy, x, [1] * 3, [2] * 3), **TOL)


# ----------------------------------------------------------------- refusals
def test_a_contrast_equal_to_the_target_is_refused(mlp, x):
    with pytest.raises(SaliencyError, match="sample 1 is its target.*would be zero"):
        sw.saliency(mlp, x, [0, 2, 1], contrast=[1, 2, 3])
    predicted = int(mlp(torch.from_numpy(x[:1])).argmax())
    with pytest.raises(SaliencyError, match="arg-max output.*would be zero"):
        sw.saliency(mlp, x[:1], contrast=predicted, method="integrated_gradients")
    for method in ("gradcam", "occlusion", "smoothgrad"):
        with pytest.raises(SaliencyError, match="would be zero"):
            sw.saliency(torch_cnn(), np.zeros((1, 3, 12, 12), np.float32), 2, contrast=2, method=method)


@pytest.mark.parametrize("contrast, message", [
    (4, "contrast 4 is out of range"), ([0, 1], "got 2 contrasts for a batch of 3"), (True, "contrast must be"),
    (1.0, "contrast must be"), ("dog", "contrast must be"), ((0, 1), "does not index one sample's output"),
])
def test_bad_contrasts_say_what_to_pass(mlp, x, contrast, message):
    before = {k: v.clone() for k, v in mlp.state_dict().items()}
    with pytest.raises(SaliencyError, match=message):
        sw.saliency(mlp, x, 3, contrast=contrast)
    assert all(torch.equal(v, before[k]) for k, v in mlp.state_dict().items())
