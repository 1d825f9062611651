"""Grad-CAM maths (numpy) against captum, torch ``F.interpolate`` and ``tf.image.resize``."""

from __future__ import annotations

import numpy as np
import pytest

import saliency_widgets as sw
from saliency_widgets.errors import SaliencyError
from saliency_widgets.gradcam import default_layer, gradcam, gradcam_plus_plus, resize_linear
from saliency_widgets.weights import LayerInfo

SIZES_2D = [((5, 7), (12, 9)), ((12, 9), (5, 4)), ((3, 3), (3, 3)), ((1, 4), (6, 8))]
SIZES_1D = [(5, 13), (13, 5), (4, 4)]


@pytest.mark.parametrize("src,dst", SIZES_2D)
def test_bilinear_resize_matches_torch_interpolate(rng, src, dst):
    torch = pytest.importorskip("torch")
    maps = rng.normal(size=(2, *src)).astype(np.float32)
    ref = torch.nn.functional.interpolate(torch.from_numpy(maps)[:, None], size=dst, mode="bilinear",
                                          align_corners=False)[:, 0].numpy()
    np.testing.assert_allclose(resize_linear(maps, dst), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("src,dst", SIZES_1D)
def test_linear_resize_matches_torch_interpolate(rng, src, dst):
    torch = pytest.importorskip("torch")
    maps = rng.normal(size=(3, src)).astype(np.float32)
    ref = torch.nn.functional.interpolate(torch.from_numpy(maps)[:, None], size=dst, mode="linear",
                                          align_corners=False)[:, 0].numpy()
    np.testing.assert_allclose(resize_linear(maps, (dst,)), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("src,dst", SIZES_2D + [((s,), (d,)) for s, d in SIZES_1D])
def test_resize_matches_tf_image_resize(rng, src, dst):
    tf = pytest.importorskip("tensorflow")
    maps = rng.normal(size=(2, *src)).astype(np.float32)
    images = maps.reshape(2, src[0], src[1] if len(src) == 2 else 1, 1)
    target = (dst[0], dst[1] if len(dst) == 2 else 1)
    ref = tf.image.resize(images, target, method="bilinear", antialias=False).numpy().reshape(2, *dst)
    np.testing.assert_allclose(resize_linear(maps, dst), ref, rtol=1e-5, atol=1e-6)


def _torch_activation_and_gradient(model, layer, x, target):
    """A and ∂score/∂A by a forward hook and autograd, written out by hand."""
    import torch

    captured = {}
    handle = layer.register_forward_hook(lambda m, i, out: captured.setdefault("a", out))
    try:
        scores = model(torch.from_numpy(x))
    finally:
        handle.remove()
    a = captured["a"]
    (g,) = torch.autograd.grad(scores[torch.arange(len(x)), target].sum(), a)
    return a.detach().numpy(), g.numpy()


@pytest.mark.parametrize("relu", [True, False])
def test_gradcam_matches_captum_layer_gradcam(rng, relu):
    torch = pytest.importorskip("torch")
    captum_attr = pytest.importorskip("captum.attr")
    from models import torch_cnn

    model = torch_cnn(channels=3, size=12)
    layer = model[5]  # Softplus after the last convolution: (6, 6, 6) per sample
    x = rng.normal(size=(3, 3, 12, 12)).astype(np.float32)
    target = [0, 2, 4]
    a, g = _torch_activation_and_gradient(model, layer, x, target)
    ours = gradcam(a, g, channel_axis=0, size=(12, 12), relu=relu)
    cam = captum_attr.LayerGradCam(model, layer).attribute(torch.from_numpy(x), target=target,
                                                          relu_attributions=relu)
    ref = captum_attr.LayerAttribution.interpolate(cam, (12, 12), "bilinear")[:, 0].detach().numpy()
    assert ours.shape == (3, 12, 12)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
    assert np.abs(ref).max() > 1e-3


def _gradcam_pp_by_hand(a, g):
    """Grad-CAM++ of one sample (channels, h, w), with explicit loops over channels and pixels:
    α_kij = g²_kij / (2·g²_kij + (Σ_ab A_kab)·g³_kij), 0 where the denominator is 0."""
    k, h, w = a.shape
    cam = np.zeros((h, w))
    for c in range(k):
        s = sum(a[c, i, j] for i in range(h) for j in range(w))  # the activation alone
        weight = 0.0
        for i in range(h):
            for j in range(w):
                den = 2 * g[c, i, j] ** 2 + s * g[c, i, j] ** 3  # the cube of the gradient at (i, j)
                alpha = g[c, i, j] ** 2 / den if den != 0 else 0.0
                weight += alpha * max(g[c, i, j], 0.0)
        cam += weight * a[c]
    return np.maximum(cam, 0)


def _gradcam_pp_reference(a, g):
    """Grad-CAM++ maps of a channels-first batch (batch, k, h, w), before ReLU and upsampling, written
    out as pytorch-grad-cam's ``GradCAMPlusPlus.get_cam_weights`` computes them (there with an
    ``eps=1e-6`` in the denominator; here 0 where it is 0, as DESIGN §3.6), in float64."""
    a, g = a.astype(np.float64), g.astype(np.float64)
    grads_power_2 = g ** 2
    grads_power_3 = grads_power_2 * g
    sum_activations = np.sum(a, axis=(2, 3))
    den = 2 * grads_power_2 + sum_activations[:, :, None, None] * grads_power_3
    aij = np.where(den != 0, grads_power_2 / np.where(den != 0, den, 1.0), 0.0)
    weights = np.sum(np.maximum(g, 0) * aij, axis=(2, 3))
    return np.sum(weights[:, :, None, None] * a, axis=1)


def test_gradcam_plus_plus_matches_the_formula(rng):
    a = rng.normal(size=(2, 4, 3, 5))
    g = rng.normal(size=(2, 4, 3, 5))
    g[0, 1] = 0  # a channel with no gradient: denominator 0 → α = 0
    expected = np.stack([_gradcam_pp_by_hand(a[i], g[i]) for i in range(2)])
    np.testing.assert_allclose(gradcam_plus_plus(a, g, channel_axis=0), expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.maximum(_gradcam_pp_reference(a, g), 0), expected, rtol=1e-9, atol=1e-12)
    # channels-last gives the same map
    last = gradcam_plus_plus(np.moveaxis(a, 1, -1), np.moveaxis(g, 1, -1), channel_axis=-1)
    np.testing.assert_allclose(last, expected, rtol=1e-6, atol=1e-9)
    assert expected.max() > 0


def test_gradcam_plus_plus_tiny_case_by_hand():
    """2 channels, 2×2 activation, gradients chosen so that every α is a round number.

    channel 0: A = [[1, 2], [0, 1]] (Σ A = 4), g = [[1, .5], [-1, 0]]
      α = 1/(2+4·1) = 1/6;  .25/(.5+4·.125) = 1/4;  1/(2-4) = -1/2 (ReLU(g)=0);  0 (g = 0, den 0)
      w_0 = 1/6·1 + 1/4·.5 = 7/24
    channel 1: A = [[-1, .5], [.5, 2]] (Σ A = 2), g = [[2, -1], [.5, 1]]
      α = 4/(8+2·8) = 1/6;  den = 2 + 2·(-1) = 0 → 0;  .25/(.5+2·.125) = 1/3;  1/(2+2) = 1/4
      w_1 = 1/6·2 + 1/3·.5 + 1/4·1 = 3/4
    map = 7/24·A_0 + 3/4·A_1 = [[-11, 23], [9, 43]] / 24
    (the old Σ_ij A·g³ in the denominator gives w_0 = 4/13 + 1/14 instead)"""
    a = np.array([[[[1.0, 2.0], [0.0, 1.0]], [[-1.0, 0.5], [0.5, 2.0]]]])
    g = np.array([[[[1.0, 0.5], [-1.0, 0.0]], [[2.0, -1.0], [0.5, 1.0]]]])
    # one channel at a time: map = w_k · A_k
    for k, w in ((0, 7 / 24), (1, 3 / 4)):
        cam = gradcam_plus_plus(a[:, k:k + 1], g[:, k:k + 1], channel_axis=0, relu=False)
        np.testing.assert_allclose(cam, w * a[:, k], rtol=1e-6, atol=1e-7)
    expected = np.array([[[-11.0, 23.0], [9.0, 43.0]]]) / 24
    np.testing.assert_allclose(gradcam_plus_plus(a, g, channel_axis=0, relu=False), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gradcam_plus_plus(a, g, channel_axis=0), np.maximum(expected, 0), rtol=1e-6, atol=1e-7)
    last = gradcam_plus_plus(np.moveaxis(a, 1, -1), np.moveaxis(g, 1, -1), channel_axis=-1, relu=False)
    np.testing.assert_allclose(last, expected, rtol=1e-6, atol=1e-7)
    assert np.isfinite(last).all()


def test_gradcam_one_dimensional_layer(rng):
    a = rng.normal(size=(2, 6, 5))  # channels-first 1-D: (channels, length)
    g = rng.normal(size=(2, 6, 5))
    expected = np.maximum(np.einsum("bk,bkl->bl", g.mean(axis=2), a), 0)
    np.testing.assert_allclose(gradcam(a, g, channel_axis=0), expected, rtol=1e-6)
    assert gradcam(a, g, channel_axis=0, size=(20,)).shape == (2, 20)


def test_gradcam_refuses_a_flat_layer(rng):
    with pytest.raises(SaliencyError, match="convolutional layer"):
        gradcam(rng.normal(size=(2, 8)), rng.normal(size=(2, 8)), channel_axis=0)


def test_default_layer_torch_and_keras():
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    from models import keras_cnn, torch_cnn

    torch_layers = sw.layers(torch_cnn(channels=3, size=12), input_shape=(3, 12, 12))
    assert default_layer(torch_layers, channel_axis=0).name == "5"  # the Softplus after the last conv
    keras_layers = sw.layers(keras_cnn(size=12, channels=3))
    chosen = default_layer(keras_layers, channel_axis=-1)
    assert chosen.output_shape == (6, 6, 6) and chosen.type == "Conv2D"


def test_default_layer_skips_one_by_one_maps_and_needs_shapes():
    infos = [LayerInfo("conv", "Conv2d", (8, 4, 4), 10), LayerInfo("pool", "AdaptiveAvgPool2d", (8, 1, 1), 0),
             LayerInfo("fc", "Linear", (3,), 27)]
    assert default_layer(infos, channel_axis=0).name == "conv"
    with pytest.raises(SaliencyError, match="no.*spatial|has none"):
        default_layer(infos[1:], channel_axis=0)
    with pytest.raises(SaliencyError, match="unknown"):
        default_layer([LayerInfo("fc", "Linear", None, 27)], channel_axis=0)


# ------------------------------------------------------- through the engine
def test_engine_gradcam_matches_captum_and_names_the_layer(rng):
    torch = pytest.importorskip("torch")
    captum_attr = pytest.importorskip("captum.attr")
    from models import torch_cnn

    model = torch_cnn(channels=3, size=12)
    x = rng.normal(size=(3, 3, 12, 12)).astype(np.float32)
    result = sw.attribute(model, x, [0, 2, 4], method="gradcam")
    assert result.layer == "5" and result.values.shape == (3, 12, 12)
    cam = captum_attr.LayerGradCam(model, model[5]).attribute(torch.from_numpy(x), target=[0, 2, 4],
                                                              relu_attributions=True)
    ref = captum_attr.LayerAttribution.interpolate(cam, (12, 12), "bilinear")[:, 0].detach().numpy()
    np.testing.assert_allclose(result.values, ref, rtol=1e-5, atol=1e-6)
    # another layer, named by its object; arg-max targets from the same pass
    first_conv = sw.attribute(model, x, method="gradcam", layer=model[2], relu=False)
    arg_max = model(torch.from_numpy(x)).detach().numpy().argmax(axis=1).tolist()
    assert [t[0] for t in first_conv.targets] == arg_max
    cam = captum_attr.LayerGradCam(model, model[2]).attribute(torch.from_numpy(x), target=arg_max)
    ref = captum_attr.LayerAttribution.interpolate(cam, (12, 12), "bilinear")[:, 0].detach().numpy()
    np.testing.assert_allclose(first_conv.values, ref, rtol=1e-5, atol=1e-6)


def test_engine_gradcam_default_layer_of_a_vit_is_its_patch_grid(rng):
    """A ViT's last layers output token sequences (one spatial axis), which cannot be laid over a
    2-D image; the default is the last layer with the image's two spatial axes: the patch projection."""
    torch = pytest.importorskip("torch")
    captum_attr = pytest.importorskip("captum.attr")
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    model = ViTForImageClassification(ViTConfig(image_size=16, patch_size=4, hidden_size=16, num_hidden_layers=1,
                                                num_attention_heads=2, intermediate_size=32, num_labels=3)).eval()
    x = rng.normal(size=(2, 3, 16, 16)).astype(np.float32)
    result = sw.attribute(model, x, 1, method="gradcam")
    assert result.layer == "vit.embeddings.patch_embeddings.projection" and result.values.shape == (2, 16, 16)
    projection = model.vit.embeddings.patch_embeddings.projection
    cam = captum_attr.LayerGradCam(lambda t: model(t).logits, projection).attribute(torch.from_numpy(x), target=1,
                                                                                   relu_attributions=True)
    ref = captum_attr.LayerAttribution.interpolate(cam, (16, 16), "bilinear")[:, 0].detach().numpy()
    np.testing.assert_allclose(result.values, ref, rtol=1e-5, atol=1e-6)


def test_engine_gradcam_plus_plus_matches_the_formula(rng):
    torch = pytest.importorskip("torch")
    from models import torch_cnn

    model = torch_cnn(channels=3, size=12)
    x = rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    got = sw.saliency(model, x, [1, 3], method="gradcam_plus_plus", layer="4")
    a, g = _torch_activation_and_gradient(model, model[4], x, [1, 3])
    by_hand = np.stack([_gradcam_pp_by_hand(a[i].astype(np.float64), g[i].astype(np.float64)) for i in range(2)])
    expected = torch.nn.functional.interpolate(torch.from_numpy(by_hand)[:, None], size=(12, 12), mode="bilinear",
                                               align_corners=False)[:, 0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert expected.max() > 0


def _assert_close_at_float32(got, expected):
    """Equal up to float32 rounding at the map's scale."""
    scale = np.abs(expected).max()
    assert scale > 1e-3
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("layer", ["4", "5"])  # the last Conv2d, and the Softplus after it
def test_engine_gradcam_plus_plus_torch_matches_the_pytorch_grad_cam_formula(rng, layer):
    torch = pytest.importorskip("torch")
    from models import torch_cnn

    model = torch_cnn(channels=3, size=12)
    x = rng.normal(size=(3, 3, 12, 12)).astype(np.float32)
    target = [0, 2, 4]
    got = sw.saliency(model, x, target, method="gradcam_plus_plus", layer=layer)
    a, g = _torch_activation_and_gradient(model, model[int(layer)], x, target)
    cam = np.maximum(_gradcam_pp_reference(a, g), 0)
    expected = torch.nn.functional.interpolate(torch.from_numpy(cam)[:, None], size=(12, 12), mode="bilinear",
                                               align_corners=False)[:, 0].numpy()
    assert got.shape == (3, 12, 12)
    _assert_close_at_float32(got, expected)


def test_engine_gradcam_plus_plus_keras_matches_the_pytorch_grad_cam_formula(rng):
    tf = pytest.importorskip("tensorflow")
    from models import keras_cnn

    model = keras_cnn(size=12, channels=3)
    x = rng.normal(size=(3, 12, 12, 3)).astype(np.float32)
    target = np.array([0, 2, 4])
    got = sw.saliency(model, x, target, method="gradcam_plus_plus", layer=3)  # Conv2D + softplus, channels-last
    a, g = _keras_activation_and_gradient(model, 3, x, target)
    cam = np.maximum(_gradcam_pp_reference(np.moveaxis(a, -1, 1), np.moveaxis(g, -1, 1)), 0)
    expected = tf.image.resize(cam[..., None].astype(np.float32), (12, 12), method="bilinear")[..., 0].numpy()
    assert got.shape == (3, 12, 12)
    _assert_close_at_float32(got, expected)


def test_engine_gradcam_one_dimensional_torch(rng):
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 5, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2), nn.Conv1d(5, 4, 3),
                          nn.Tanh(), nn.Flatten(), nn.Linear(4 * 5, 3)).eval()
    x = rng.normal(size=(2, 2, 14)).astype(np.float32)
    got = sw.attribute(model, x, 1, method="gradcam")
    assert got.layer == "4" and got.values.shape == (2, 14)
    a, g = _torch_activation_and_gradient(model, model[4], x, [1, 1])
    cam = np.maximum(np.einsum("bk,bkl->bl", g.mean(axis=2), a), 0)
    expected = torch.nn.functional.interpolate(torch.from_numpy(cam)[:, None], size=14, mode="linear",
                                               align_corners=False)[:, 0].numpy()
    np.testing.assert_allclose(got.values, expected, rtol=1e-5, atol=1e-7)


def _keras_activation_and_gradient(model, split, x, target):
    """A (the output of ``model.layers[split]``) and ∂score/∂A with a GradientTape written out."""
    import tensorflow as tf

    h = tf.convert_to_tensor(x)
    for layer in model.layers[:split + 1]:
        h = layer(h, training=False)
    with tf.GradientTape() as tape:
        tape.watch(h)
        out = h
        for layer in model.layers[split + 1:]:
            out = layer(out, training=False)
        score = tf.reduce_sum(tf.gather(out, target, axis=1, batch_dims=1))
    return h.numpy(), tape.gradient(score, h).numpy()


def _keras_gradcam_by_hand(model, split, x, target, size):
    """Grad-CAM with a GradientTape written out: the layers up to ``split`` give A, the rest the score."""
    import tensorflow as tf

    h, g = _keras_activation_and_gradient(model, split, x, target)
    cam = tf.nn.relu(tf.reduce_sum(tf.reduce_mean(g, axis=(1, 2), keepdims=True) * h, axis=-1))
    return tf.image.resize(cam[..., None], size, method="bilinear")[..., 0].numpy()


def test_engine_gradcam_keras_matches_a_gradient_tape(rng):
    pytest.importorskip("tensorflow")
    from models import keras_cnn

    model = keras_cnn(size=12, channels=3)
    x = rng.normal(size=(3, 12, 12, 3)).astype(np.float32)
    result = sw.attribute(model, x, [0, 2, 4], method="gradcam")
    assert result.layer == model.layers[3].name and result.values.shape == (3, 12, 12)
    expected = _keras_gradcam_by_hand(model, 3, x, np.array([0, 2, 4]), (12, 12))
    np.testing.assert_allclose(result.values, expected, rtol=1e-5, atol=1e-6)
    assert expected.max() > 1e-3
    first = sw.saliency(model, x, [0, 2, 4], method="gradcam", layer=0)  # the first conv, full resolution
    np.testing.assert_allclose(first, _keras_gradcam_by_hand(model, 0, x, np.array([0, 2, 4]), (12, 12)),
                               rtol=1e-5, atol=1e-6)


def test_engine_gradcam_refuses_a_model_without_spatial_layers(rng):
    pytest.importorskip("torch")
    from models import torch_mlp

    with pytest.raises(SaliencyError, match="spatial output"):
        sw.saliency(torch_mlp(), rng.normal(size=(2, 6)).astype(np.float32), method="gradcam")


def test_engine_gradcam_default_layer_of_a_keras_model_built_without_input(rng):
    keras = pytest.importorskip("keras")

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Conv2D(3, 3, activation="relu"), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2)])  # no Input layer: built by the user
    model.build((None, 6, 6, 1))
    x = rng.normal(size=(2, 6, 6, 1)).astype(np.float32)
    result = sw.attribute(model, x, 1, method="gradcam")
    assert result.layer == model.layers[0].name and result.values.shape == (2, 6, 6)
    np.testing.assert_allclose(result.values, _keras_gradcam_by_hand(model, 0, x, np.array([1, 1]), (6, 6)),
                               rtol=1e-5, atol=1e-6)
