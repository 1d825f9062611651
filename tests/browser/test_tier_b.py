"""Tier B: the bundled JS in a plain page with a stand-in model, in headless Chromium."""

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
    assert saves(page) == [{"target": 2}]
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

    def reply(target):
        values = sw.saliency(model, x, target=target)[0]
        wire = to_wire(values, target=target, index=0, method="gradient", output="logits", completeness_error=None)
        page.evaluate(
            """([b, meta]) => {
                const bin = Uint8Array.from(atob(b), (c) => c.charCodeAt(0));
                window.__sw.kernelSet("_attribution", { ...meta, data: bin.buffer });
            }""",
            [__import__("base64").b64encode(bytes(wire["data"])).decode(), {k: v for k, v in wire.items() if k != "data"}],
        )
        page.evaluate("new Promise(requestAnimationFrame)")
        return values

    reply(3)  # an older click's answer: ignored
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP), before)
    assert page.get_attribute('[data-sw-role="status"]', "data-busy") == "true"
    values = reply(4)  # plain ArrayBuffer this time
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
    page.evaluate("window.__sw.kernelSet('_error', 'target must be <i>valid</i>')")
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
    assert saves(page) == [{"target": 777}]
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
        px = canvas_rgba(page, f'canvas[data-sw-output="{i}"]')
        np.testing.assert_array_equal(px, colors.colorize(display[i], m=m))
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
