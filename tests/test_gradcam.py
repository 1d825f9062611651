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
    """Grad-CAM++ of one sample (channels, h, w), with explicit loops over channels and pixels."""
    k, h, w = a.shape
    cam = np.zeros((h, w))
    for c in range(k):
        s = sum(a[c, i, j] * g[c, i, j] ** 3 for i in range(h) for j in range(w))
        weight = 0.0
        for i in range(h):
            for j in range(w):
                den = 2 * g[c, i, j] ** 2 + s
                alpha = g[c, i, j] ** 2 / den if den != 0 else 0.0
                weight += alpha * max(g[c, i, j], 0.0)
        cam += weight * a[c]
    return np.maximum(cam, 0)


def test_gradcam_plus_plus_matches_the_formula(rng):
    a = rng.normal(size=(2, 4, 3, 5))
    g = rng.normal(size=(2, 4, 3, 5))
    g[0, 1] = 0  # a channel with no gradient: denominator 0 → α = 0
    expected = np.stack([_gradcam_pp_by_hand(a[i], g[i]) for i in range(2)])
    np.testing.assert_allclose(gradcam_plus_plus(a, g, channel_axis=0), expected, rtol=1e-6, atol=1e-9)
    # channels-last gives the same map
    last = gradcam_plus_plus(np.moveaxis(a, 1, -1), np.moveaxis(g, 1, -1), channel_axis=-1)
    np.testing.assert_allclose(last, expected, rtol=1e-6, atol=1e-9)
    assert expected.max() > 0


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
