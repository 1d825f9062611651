"""Tier B: the bundled JS in a plain page with a stand-in model, in headless Chromium."""

import base64

import numpy as np
import pytest
from _widget_models import batch, cnn, mlp
from pixels import canvas_rgba

import saliency_widgets as sw
from saliency_widgets import colors
from saliency_widgets.config import config
from saliency_widgets.transport import from_wire, to_wire
from saliency_widgets.widgets import JacobianGrid, SaliencyMap

pytestmark = pytest.mark.browser
HEATMAP = '[data-sw-widget] [data-sw-role="heatmap"]'
LABELS = ["cat", "dog", "car", "<b>bold</b>", "ship"]


def expected_rgba(values, sign="all", outlier_perc=2.0):
    return colors.colorize(values, sign, outlier_perc)


def saves(page):
    return [e["changes"] for e in page.evaluate("window.__sw.log") if e["type"] == "save_changes"]


def deliver(page, wire):
    """``wire`` (a map the kernel sent, e.g. ``w._attribution``) arriving in the page as ``_attribution``,
    its buffer as a plain ArrayBuffer; returns once the page has redrawn."""
    page.evaluate(
        """([b, meta]) => {
            const bin = Uint8Array.from(atob(b), (c) => c.charCodeAt(0));
            window.__sw.kernelSet("_attribution", { ...meta, data: bin.buffer });
        }""",
        [base64.b64encode(bytes(wire["data"])).decode(), {k: v for k, v in wire.items() if k != "data"}],
    )
    page.evaluate("new Promise(requestAnimationFrame)")


def busy(page):
    return page.get_attribute('[data-sw-role="status"]', "data-busy") == "true"


def test_vector_map_pixels_are_the_lut_colours(show):
    model, x = mlp(), batch(3, 8)
    w = SaliencyMap(model, x, labels=LABELS)
    page = show(w)  # every buffer arrives as a DataView at byte offset 8
    px = canvas_rgba(page, HEATMAP)
    assert px.shape == (1, 8, 4)
    np.testing.assert_array_equal(px[0], expected_rgba(w.attribution))


def test_click_sets_target_saves_and_redraws_from_the_jacobian(show):
    model, x = mlp(), batch(3, 8)
    w = SaliencyMap(model, x, target=0, labels=LABELS)
    page = show(w)
    before = canvas_rgba(page, HEATMAP)
    page.click('[data-sw-output="2"]')
    page.wait_for_function("window.__sw.log.length > 0")
    assert saves(page) == [{"target": 2, "_request": 1}]
    assert page.get_attribute('[data-sw-output="2"]', "aria-pressed") == "true"
    assert page.get_attribute('[data-sw-output="0"]', "aria-pressed") == "false"
    after = canvas_rgba(page, HEATMAP)
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after[0], expected_rgba(sw.saliency(model, x, target=2)[0]))
    assert page.get_attribute('[data-sw-role="status"]', "data-busy") == "false"


def test_stale_replies_are_dropped_and_array_buffers_decode(show, monkeypatch):
    monkeypatch.setattr(config, "prefetch_budget_bytes", 0)
    model, x = mlp(), batch(3, 8)
    w = SaliencyMap(model, x, target=0)
    page = show(w)
    before = canvas_rgba(page, HEATMAP)
    page.click('[data-sw-output="4"]')
    assert page.get_attribute('[data-sw-role="status"]', "data-busy") == "true"

    def reply(target, request):
        values = sw.saliency(model, x, target=target)[0]
        deliver(page, to_wire(values, target=target, index=0, method="gradient", output="logits", cam_layer="",
                              request=request, completeness_error=None))
        return values

    reply(3, 0)  # an older click's answer: ignored
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP), before)
    assert page.get_attribute('[data-sw-role="status"]', "data-busy") == "true"
    reply(4, 0)  # this click's key, but not the request the click made (its number is 1): ignored
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP), before)
    assert page.get_attribute('[data-sw-role="status"]', "data-busy") == "true"
    values = reply(4, 1)  # plain ArrayBuffer this time
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP)[0], expected_rgba(values))
    assert page.get_attribute('[data-sw-role="status"]', "data-busy") == "false"


def test_image_overlay_keeps_lut_colours_where_opaque(show):
    model, xi = cnn(), batch(2, 3, 8, 8, seed=1)
    w = SaliencyMap(model, xi, target=3)
    page = show(w)
    px = canvas_rgba(page, HEATMAP)
    display = w.attribution.sum(axis=0)
    idx = colors.to_index(display, "all", colors.scale_max(display))
    np.testing.assert_array_equal(px[..., 3], colors.overlay_alpha(idx, "all"))
    opaque = px[..., 3] == 255
    assert opaque.sum() >= 2
    np.testing.assert_array_equal(px[opaque][:, :3], colors.sign_lut("all")[idx[opaque]][:, :3])
    assert page.locator('[data-sw-role="input-image"]').count() == 1


def test_changing_sign_from_the_kernel_recolours(show):
    model, x = mlp(), batch(3, 8)
    w = SaliencyMap(model, x, target=1)
    page = show(w)
    page.evaluate("window.__sw.kernelSet('sign', 'absolute_value')")
    page.evaluate("new Promise(requestAnimationFrame)")
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP)[0], expected_rgba(w.attribution, "absolute_value"))
    assert "absolute value" in page.text_content('[data-sw-role="colorbar"]')


def test_labels_and_errors_are_text_not_html(show):
    w = SaliencyMap(mlp(), batch(1, 8), labels=LABELS)
    page = show(w)
    assert page.locator("[data-sw-widget] b").count() == 0
    assert "<b>bold</b>" in page.text_content('[data-sw-output="3"]')
    assert page.is_hidden('[data-sw-role="error"]')
    page.evaluate("window.__sw.kernelSend({type: 'error', message: 'target must be <i>valid</i>'})")
    page.wait_for_selector('[data-sw-role="error"]', state="visible")
    assert "target must be <i>valid</i>" in page.text_content('[data-sw-role="error"]')
    assert page.locator("[data-sw-widget] i").count() == 0


def test_many_outputs_show_top_k_and_search_reaches_any(show):
    import torch

    torch.manual_seed(0)
    w = SaliencyMap(torch.nn.Linear(8, 1000), batch(1, 8), labels=[f"class {i}" for i in range(1000)])
    page = show(w)
    assert page.locator(".sw-panel [data-sw-output]").count() == 10
    page.fill('input[type="search"]', "class 777")
    page.click('[data-sw-output="777"]')
    assert saves(page) == [{"target": 777, "_request": 1}]
    page.fill('input[type="search"]', "")
    page.click('[data-sw-action="show-all"]')
    assert page.locator(".sw-panel [data-sw-output]").count() == 1000


def test_jacobian_grid_tiles_share_one_scale_and_select_on_click(show, artifacts):
    model, xi = cnn(), batch(2, 3, 8, 8, seed=1)
    g = JacobianGrid(model, xi)
    page = show(g)
    tiles = page.locator('.sw-tile[data-sw-output]')
    assert tiles.count() == 10
    display = from_wire(g._jacobian)
    m = colors.scale_max(display)
    for i in (0, 7):
        px = canvas_rgba(page, f'canvas[data-sw-output="{i}"]')  # the LUT, transparent towards 0 over the faint input
        want, opaque = colors.colorize(display[i], m=m), px[..., 3] == 255
        np.testing.assert_array_equal(px[..., 3], colors.overlay_alpha(colors.to_index(display[i], "all", m), "all"))
        np.testing.assert_array_equal(px[opaque], want[opaque])
    page.click('.sw-tile[data-sw-output="7"]')
    assert saves(page) == [{"selected": 7}]
    assert page.get_attribute('.sw-tile[data-sw-output="7"]', "aria-pressed") == "true"
    page.hover('canvas[data-sw-output="2"]')
    page.wait_for_function("document.querySelector('[role=tooltip]').style.display === 'block'")
    assert "∂out/∂in" in page.text_content("[role=tooltip]")
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / "tier-b-jacobian-grid.png"))


def test_jacobian_matrix_rows_and_column_hover(show):
    model, x = mlp(), batch(2, 8)
    g = JacobianGrid(model, x, labels=LABELS, feature_names=[f"f{i}" for i in range(8)])
    page = show(g)
    px = canvas_rgba(page, HEATMAP)
    assert px.shape == (5, 8, 4)
    np.testing.assert_array_equal(px, colors.colorize(g.jacobian))
    page.click('.sw-rowlabels [data-sw-output="1"]')
    assert saves(page) == [{"selected": 1}]
    box = page.locator(HEATMAP).bounding_box()
    page.mouse.move(box["x"] + box["width"] * (3.5 / 8), box["y"] + 2)
    page.wait_for_function("document.querySelector('.sw-panel .sw-panel-head').textContent.includes('f3')")
    values = page.locator(".sw-panel .sw-bar-value").all_text_contents()
    assert len(values) == 5
    np.testing.assert_allclose([float(v) for v in values], g.jacobian[:, 3], rtol=1e-3, atol=1e-4)


METHOD = '[data-sw-action="method"]'


def test_a_reply_to_an_older_request_is_never_drawn(show, artifacts):
    """The kernel is slow on integrated gradients; the user moves on, comes back to the same method, picks
    another output. Each late reply is dropped, whatever its key: only the answer to the page's latest
    request is drawn, with that request's labels. The replies are made by the widget itself, fed the
    page's requests in order as the kernel would be."""
    model, x = mlp(), batch(3, 8)
    w = SaliencyMap(model, x, target=0, labels=LABELS, method_kwargs={"integrated_gradients": {"steps": 8}})
    page = show(w)  # the Jacobian is there: gradient is derived in the page
    gradient = canvas_rgba(page, HEATMAP)

    def kernel_takes(k):  # the kernel processes the page's k-th message and answers it
        w.set_state(saves(page)[k])
        return dict(w._attribution)

    page.select_option(METHOD, "integrated_gradients")
    assert saves(page) == [{"method": "integrated_gradients", "_request": 1}] and busy(page)
    answer1 = kernel_takes(0)
    assert (answer1["method"], answer1["target"], answer1["request"]) == ("integrated_gradients", 0, 1)
    page.select_option(METHOD, "gradient")  # before answer 1 arrives: drawn from the Jacobian at once
    assert saves(page)[-1] == {"method": "gradient", "_request": 2} and not busy(page)
    deliver(page, answer1)  # late: must not replace the gradient map nor take its label
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP), gradient)
    assert page.text_content(".sw-sub").startswith("gradient ·") and not busy(page)

    page.select_option(METHOD, "integrated_gradients")  # request 3: the key of request 1 again
    deliver(page, answer1)  # answer 1 once more: not an answer to request 3
    assert busy(page)
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP), gradient)  # the previous map, dimmed
    assert page.text_content(".sw-sub").startswith("gradient ·")  # labels stay with the map drawn
    kernel_takes(1)
    answer3 = kernel_takes(2)
    page.click('[data-sw-output="2"]')  # request 4: integrated gradients of “car”
    assert saves(page)[-1] == {"target": 2, "_request": 4}
    deliver(page, answer3)  # arrives after the click: dropped
    assert busy(page)
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP), gradient)
    assert page.text_content(".sw-title") == "Saliency of “cat”"

    deliver(page, kernel_takes(3))  # the answer to request 4
    assert not busy(page)
    expected = sw.saliency(model, x, target=2, method="integrated_gradients", steps=8)[0]
    np.testing.assert_allclose(w.attribution, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP)[0], expected_rgba(w.attribution))
    assert page.text_content(".sw-title") == "Saliency of “car”"
    assert page.text_content(".sw-sub").startswith("integrated gradients · logits · completeness error")
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / "tier-b-latest-request.png"))


def test_a_grad_cam_reply_for_another_layer_is_not_drawn(show):
    model, xi = cnn(), batch(1, 3, 8, 8, seed=1)
    w = SaliencyMap(model, xi, target=3, method="gradcam")
    page = show(w)
    before = canvas_rgba(page, HEATMAP)
    first = w._cam_layers[0]
    page.select_option('[data-sw-action="cam-layer"]', first)
    assert saves(page) == [{"cam_layer": first, "_request": 1}] and busy(page)
    last_layer = w._attribution
    assert last_layer["cam_layer"] == ""
    deliver(page, {**last_layer, "request": 1})  # numbered as this request, but the map of another layer
    assert busy(page)
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP), before)
    w.set_state(saves(page)[0])
    deliver(page, w._attribution)
    assert not busy(page)
    display = w.attribution
    px = canvas_rgba(page, HEATMAP)
    idx = colors.to_index(display, "positive", colors.scale_max(display))  # Grad-CAM is ≥ 0: one-sided
    np.testing.assert_array_equal(px[..., 3], colors.overlay_alpha(idx, "positive"))
