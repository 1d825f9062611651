"""One-sided colour scales (issue 24, item 1): a map that is ≥ 0 by construction (Grad-CAM, Grad-CAM++
with their ReLU) is drawn 0 → max on a sequential map, never on the upper half of the diverging one —
decided by its method, not guessed from its values — and so are absolute-value views; on screen (the wire
says so) and in exports."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from _figure_pixels import cell_pixels, heatmaps, render
from _widget_models import batch, cnn, mlp

from saliency_widgets import colors
from saliency_widgets.errors import SaliencyError
from saliency_widgets.export import COLORBAR_GID, format_value
from saliency_widgets.gradcam import nonnegative
from saliency_widgets.inputs import background_image
from saliency_widgets.widgets import SaliencyMap

CAPTION = "one-sided: ≥ 0 by construction"


def test_a_signed_view_of_a_nonnegative_map_is_drawn_one_sided():
    assert colors.shown_sign("all", True) == "positive"
    for sign in ("positive", "negative", "absolute_value"):
        assert colors.shown_sign(sign, True) == sign
    assert colors.shown_sign("all", False) == "all"
    with pytest.raises(SaliencyError, match="sign must be one of"):
        colors.shown_sign("signed", True)


@pytest.mark.parametrize("method, options, expected", [
    ("gradcam", {}, True), ("gradcam_plus_plus", {}, True), ("gradcam", {"relu": True}, True),
    ("gradcam", {"relu": False}, False), ("gradient", {}, False), ("occlusion", {}, False),
    ("integrated_gradients", {}, False),
])
def test_nonnegative_comes_from_the_method_and_its_relu(method, options, expected):
    assert nonnegative(method, options) is expected


def cam_map(**kw):
    return SaliencyMap(cnn(), batch(1, 3, 8, 8, seed=1), target=3, method="gradcam", **kw)


def colorbar(fig):
    """``(LUT pixels, tick labels, caption)`` of the figure's colour bar (the caption's lines, wrapped to
    the figure's width, joined)."""
    bar = next(ax for ax in fig.axes for im in ax.images if im.get_gid() == COLORBAR_GID)
    image = next(im for im in bar.images if im.get_gid() == COLORBAR_GID)
    caption = " ".join(bar.get_xlabel().split())
    return np.asarray(image.get_array())[0], [t.get_text() for t in bar.get_xticklabels()], caption


@pytest.mark.parametrize("method", ["gradcam", "gradcam_plus_plus"])
def test_grad_cam_is_sent_and_exported_on_the_one_sided_scale(method):
    w = SaliencyMap(cnn(), batch(1, 3, 8, 8, seed=1), target=3, method=method)
    display = w.attribution
    assert display.min() >= 0 and display.max() > 0
    assert w._attribution["nonnegative"] is True  # the browser draws it one-sided
    assert w.sign == "all"  # the user's choice is kept; only the drawing follows the map
    scale = w._scale()
    assert (scale.sign, scale.nonnegative) == ("positive", True)
    m = colors.scale_max(display, "positive")
    assert scale.m == m == colors.scale_max(display, "all")  # the same magnitude saturates
    fig = w.to_figure()
    lut, ticks, caption = colorbar(fig)
    np.testing.assert_array_equal(lut, colors.sign_lut("positive"))
    assert ticks == ["0", format_value(m)]
    assert caption == f"“{w._labels[w.target]}”: what raises it · {CAPTION} · top 2% clipped"  # the target named
    idx = colors.to_index(display, "positive", m)
    assert idx.min() < 128 < idx.max()  # the lower half of the colour map is used too
    rgba = colors.sign_lut("positive")[idx].copy()
    rgba[..., 3] = colors.overlay_alpha(idx, "positive")
    want = colors.overlay(rgba, colors.greyscale(background_image(w._x[0], w._layout_info)), w.opacity)
    (image,) = heatmaps(fig)
    got = cell_pixels(fig, image, render(fig))
    np.testing.assert_allclose(got[..., :3].astype(int), want.astype(int), atol=1)


def test_exported_files_carry_the_one_sided_colour_bar(tmp_path):
    w = cam_map()
    svg = w.savefig(tmp_path / "cam.svg")
    texts = " ".join("".join(t.itertext()) for t in ET.parse(svg).iter("{http://www.w3.org/2000/svg}text"))
    assert CAPTION in texts and "signed (red +, blue −)" not in texts
    assert w.savefig(tmp_path / "cam.pdf").read_bytes().startswith(b"%PDF")
    png = w.savefig(tmp_path / "cam.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_grad_cam_without_its_relu_is_signed_and_stays_diverging():
    w = cam_map(method_kwargs={"gradcam": {"relu": False}})
    assert w.attribution.min() < 0 < w.attribution.max()
    assert w._attribution["nonnegative"] is False
    scale = w._scale()
    assert (scale.sign, scale.nonnegative) == ("all", False)
    assert colorbar(w.to_figure())[2] == f"“{w._labels[w.target]}”: red raises it, blue lowers it · signed (red +, blue −) · top 2% clipped"


def test_a_signed_method_stays_signed_even_where_its_values_are_all_positive():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2).eval()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, 2.0, 1.0]]))
    w = SaliencyMap(model, batch(1, 4), target=0)
    assert (w.attribution > 0).all()  # the gradient is W[0]: positive, but not by construction
    assert w._attribution["nonnegative"] is False
    assert w._scale().sign == "all"


def test_other_views_of_grad_cam_are_drawn_as_asked():
    w = cam_map()
    w.sign = "absolute_value"
    scale = w._scale()
    assert (scale.sign, scale.nonnegative) == ("absolute_value", False)
    lut, ticks, caption = colorbar(w.to_figure())
    np.testing.assert_array_equal(lut, colors.sign_lut("absolute_value"))
    assert ticks[0] == "0" and "absolute value" in caption


def test_an_absolute_value_view_is_one_sided_from_zero_to_max():
    w = SaliencyMap(mlp(), batch(1, 8), target=1)
    assert w.attribution.min() < 0 < w.attribution.max()
    w.sign = "absolute_value"
    m = colors.scale_max(w.attribution, "absolute_value")
    assert colors.value_range(m, "absolute_value") == (0.0, m)
    fig = w.to_figure()
    lut, ticks, caption = colorbar(fig)
    np.testing.assert_array_equal(lut, colors.sign_lut("absolute_value"))
    assert ticks == ["0", format_value(m)] and "absolute value" in caption
    image = heatmaps(fig)[0]
    got = cell_pixels(fig, image, render(fig))
    want = colors.colorize(np.abs(w.attribution), "absolute_value", m=m)[None]
    np.testing.assert_allclose(got[..., :3].astype(int), want[..., :3].astype(int), atol=1)


def test_the_checks_strip_draws_grad_cam_one_sided_too():
    w = cam_map()
    w.run_check("randomization")
    fig = w.to_figure(checks=True)
    original = heatmaps(fig)[1]  # the map, then the randomization row: the original first, then one per layer
    np.testing.assert_array_equal(original.get_array(), colors.colorize(w.attribution, "positive"))
