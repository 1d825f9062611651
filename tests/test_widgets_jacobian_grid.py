"""Tier A: JacobianGrid driven from Python, without a browser."""

import numpy as np
import pytest
import torch
from _widget_models import batch, cnn, mlp

import saliency_widgets as sw
from saliency_widgets.errors import SaliencyError
from saliency_widgets.transport import from_wire
from saliency_widgets.widgets import JacobianGrid, jacobian_grid

TOL = dict(rtol=1e-5, atol=1e-6)


def test_jacobian_equals_the_engines_for_each_sample():
    model, x = mlp(), batch(3, 8)
    g = JacobianGrid(model, x, labels=list("abcde"))
    full = sw.jacobian(model, x)
    np.testing.assert_allclose(g.jacobian, full[0], **TOL)
    np.testing.assert_allclose(from_wire(g._jacobian), full[0], **TOL)
    assert g._rows == [0, 1, 2, 3, 4]
    g.index = 2
    np.testing.assert_allclose(g.jacobian, full[2], **TOL)
    assert g._jacobian["index"] == 2 and g._scores["index"] == 2


def test_selected_starts_on_the_argmax_and_follows_clicks():
    model, x = mlp(), batch(3, 8)
    g = JacobianGrid(model, x)
    assert g.selected == int(model(torch.as_tensor(x[:1])).argmax())
    g.set_state({"selected": 1})
    assert g.selected == 1
    with pytest.raises(SaliencyError, match="selected must be one of the shown outputs"):
        g.selected = 7
    assert g.selected == 1 and g.error


def test_image_tiles_share_one_scale_and_sum_channels():
    model, xi = cnn(), batch(2, 3, 8, 8, seed=1)
    g = JacobianGrid(model, xi, outputs=[1, 3, 5], labels=["one", "three", "five"])
    ref = sw.jacobian(model, xi, outputs=[1, 3, 5])[0]
    np.testing.assert_allclose(g.jacobian, ref, **TOL)
    assert g._jacobian["shape"] == [3, 8, 8]
    np.testing.assert_allclose(from_wire(g._jacobian), ref.sum(axis=1), rtol=1e-5, atol=1e-5)
    assert [g._labels[i] for i in g._rows] == ["one", "three", "five"]
    assert g.selected in (1, 3, 5)


def test_multi_dimensional_outputs_take_index_tuples():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 2, 3, padding=1).eval()  # output (2, 5, 5) per sample
    x = batch(1, 1, 5, 5)
    g = JacobianGrid(conv, x, outputs=[(1, 2, 2), (0, 0, 0)], kind="image")
    assert g._rows == [1 * 25 + 2 * 5 + 2, 0]
    assert g._labels[37] == "(1, 2, 2)"
    np.testing.assert_allclose(g.jacobian, sw.jacobian(conv, x, outputs=[(1, 2, 2), (0, 0, 0)])[0], **TOL)


def test_too_large_to_draw_asks_for_outputs(monkeypatch):
    monkeypatch.setattr(jacobian_grid, "MAX_WIRE_BYTES", 64)
    with pytest.raises(SaliencyError, match="pass outputs="):
        JacobianGrid(mlp(), batch(1, 8))


def test_lock_scale_keeps_the_scale_across_samples():
    g = JacobianGrid(mlp(), batch(3, 8))
    g.lock_scale = True
    locked = g.scale_max
    assert locked > 0
    g.index = 1
    assert g.scale_max == locked


def test_image_tiles_carry_the_shown_samples_picture_for_their_underlay():
    from saliency_widgets.inputs import background_image

    model, xi = cnn(), batch(2, 3, 8, 8, seed=1)
    g = JacobianGrid(model, xi)
    want = background_image(xi[0], g._layout_info)
    np.testing.assert_array_equal(from_wire(g._image), want)
    assert g._image["index"] == 0 and g._image["dtype"] == "uint8" and g._image["shape"] == [8, 8, 3]
    g.index = 1
    np.testing.assert_array_equal(from_wire(g._image), background_image(xi[1], g._layout_info))
    assert JacobianGrid(mlp(), batch(2, 8))._image is None  # vectors have no picture
