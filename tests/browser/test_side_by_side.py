"""Tier B (issue 24, items 3 and 8): the SaliencyMap side by side — the input in its colours, the map and the
overlay — growing with the card's width, one map per method in a row that one click retargets, and exports that
draw what the screen shows. Light and dark, 500 and 1800 px."""

import numpy as np
import pytest
import torch
from _figure_pixels import cell_pixels, heatmaps, render
from _widget_models import batch, cnn, mlp
from boxes import overflowing
from kernel import kernel_answers
from pixels import canvas_rgba
from viewports import SCHEMES, WIDTHS, at_width  # noqa: F401 (at_width is a fixture)

from saliency_widgets import colors
from saliency_widgets.transport import from_wire
from saliency_widgets.widgets import SaliencyMap
from saliency_widgets.widgets.standalone import record_messages

pytestmark = pytest.mark.browser
PANEL = '[data-sw-panel="{}"] canvas'
IG = {"integrated_gradients": {"steps": 8}}


def photo(n=2, size=8, seed=5):
    """RGB pictures in [0, 1] (kept as given, not stretched)."""
    return (0.1 + 0.8 * np.random.default_rng(seed).random((n, 3, size, size))).astype(np.float32)


def saves(page):
    return [e["changes"] for e in page.evaluate("window.__sw.log") if e["type"] == "save_changes"]


def box(page, selector):
    return page.locator(selector).first.bounding_box()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_side_by_side_shows_the_input_in_colour_the_map_and_the_overlay(at_width, artifacts, scheme, width):
    x = photo()
    w = SaliencyMap(cnn(), x, target=3, layout="side_by_side")
    page = at_width(w, scheme, width)
    picture = canvas_rgba(page, PANEL.format("input"))
    np.testing.assert_array_equal(picture[..., :3], np.round(np.moveaxis(x[0], 0, -1) * 255))  # its own colours
    assert np.ptp(picture[..., :3].astype(int), axis=-1).max() > 50  # in colour, not grey
    display = w.attribution.sum(axis=0)
    np.testing.assert_array_equal(canvas_rgba(page, PANEL.format("map")), colors.colorize(display))
    m = colors.scale_max(display)
    overlay = canvas_rgba(page, f'{PANEL.format("overlay")}[data-sw-role="heatmap"]')
    np.testing.assert_array_equal(overlay[..., 3], colors.overlay_alpha(colors.to_index(display, "all", m), "all"))
    boxes = [box(page, PANEL.format(p)) for p in ("input", "map", "overlay")]
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]  # input, map, overlay, left to right
    assert len({round(b["width"]) for b in boxes}) == 1 and boxes[0]["width"] % 8 == 0  # whole pixels per cell
    assert page.text_content('[data-sw-panel="input"] figcaption') == "input · colours as given (0 … 1)"
    assert overflowing(page) == []
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"side-by-side-{scheme}-{width}.png"))


def test_maps_grow_with_the_card_and_small_inputs_stay_crisp(at_width, artifacts):
    torch.manual_seed(0)
    vit_like = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 16, stride=16), torch.nn.Flatten(), torch.nn.Linear(2 * 14 * 14, 3)).eval()
    big = SaliencyMap(vit_like, photo(1, 224))
    sizes = {}
    for width in WIDTHS:
        page = at_width(big, "light", width)
        sizes[width] = box(page, '[data-sw-role="heatmap"]')["width"]
        assert overflowing(page) == []
    assert sizes[1800] >= 600 > 2.5 * 225 and sizes[500] < sizes[1800]  # not stuck at 225 px in a wide card
    big.view = "side_by_side"
    page = at_width(big, "light", 1800)
    assert min(box(page, PANEL.format(p))["width"] for p in ("input", "map", "overlay")) >= 440
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / "side-by-side-224-1800.png"))
    digit = SaliencyMap(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval(), batch(2, 1, 8, 8), layout="side_by_side")
    page = at_width(digit, "light", 1800)
    for panel in ("input", "map", "overlay"):
        canvas = page.locator(PANEL.format(panel)).first
        assert canvas.evaluate("c => getComputedStyle(c).imageRendering") == "pixelated"  # nearest-neighbour
        assert canvas.bounding_box()["width"] % 8 == 0 and canvas.bounding_box()["width"] >= 320


@pytest.mark.parametrize("scheme", SCHEMES)
def test_methods_row_retargets_every_map_with_one_request(at_width, artifacts, scheme):
    methods = ["gradient", "input_x_gradient", "integrated_gradients"]
    w = SaliencyMap(cnn(), photo(), target=1, layout="side_by_side", methods=methods, method_kwargs=IG)
    page = at_width(w, scheme, 1800)
    tile = '[data-sw-method="{}"] [data-sw-role="heatmap"]'

    def assert_tiles(shared=False):
        maps = {m: v.sum(axis=0) for m, v in w.attributions.items()}
        shared_m = max(colors.scale_max(v) for v in maps.values())
        for m, display in maps.items():
            want = colors.colorize(display, m=shared_m) if shared else colors.colorize(display)
            np.testing.assert_array_equal(canvas_rgba(page, tile.format(m)), want, err_msg=m)

    assert page.locator("[data-sw-method]").count() == 3 and page.get_attribute('[data-sw-method="gradient"]', "aria-pressed") == "true"
    assert_tiles()
    page.click('[data-sw-output="4"]')
    assert saves(page) == [{"target": 4, "_request": 1}]  # one request for the whole row
    assert "sw-stale" in page.get_attribute('[data-sw-method="integrated_gradients"]', "class")  # the kernel's part
    assert "sw-stale" not in page.get_attribute('[data-sw-method="input_x_gradient"]', "class")  # from the Jacobian
    with record_messages(w) as sent:
        w.set_state(saves(page)[-1])
    assert sum("_method_maps" in m.get("state", {}) for m, _ in sent) == 1  # one answer carries the row
    kernel_answers(page, w, "_method_maps", "_attribution", "_checks")
    assert page.get_attribute('[data-sw-role="status"]', "data-busy") == "false"
    assert_tiles()
    page.click('[data-sw-method="integrated_gradients"]')  # its map is already here: no wait
    assert saves(page)[-1] == {"method": "integrated_gradients", "_request": 2}
    assert page.get_attribute('[data-sw-method="integrated_gradients"]', "aria-pressed") == "true"
    assert page.get_attribute('[data-sw-role="status"]', "data-busy") == "false"
    w.set_state(saves(page)[-1])
    assert page.eval_on_selector_all('[data-sw-role="colorbar"] .sw-ticks span', "s => s.map((e) => e.textContent)") == ["−max", "0", "max"]
    page.click('[data-sw-action="shared-scale"]')
    assert saves(page)[-1] == {"shared_scale": True}
    w.set_state(saves(page)[-1])
    assert_tiles(shared=True)
    assert page.eval_on_selector_all('[data-sw-role="colorbar"] .sw-ticks span', "s => s.map((e) => e.textContent)")[1] == "0"
    assert page.text_content('[data-sw-method="gradient"] .sw-tile-label') == "gradient"  # no own range on a shared scale
    assert overflowing(page) == []
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"methods-row-{scheme}-1800.png"))
    page = at_width(w, scheme, 500)
    assert overflowing(page) == []
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"methods-row-{scheme}-500.png"))


def screen_overlay(page, panel_selector):
    """The overlay as the page composites it: the heat canvas (alpha) over its grey backdrop at the opacity."""
    heat = canvas_rgba(page, f'{panel_selector} [data-sw-role="heatmap"]')
    grey = canvas_rgba(page, f'{panel_selector} [data-sw-role="input-image"]')[..., 0]
    opacity = float(page.locator(f'{panel_selector} [data-sw-role="heatmap"]').first.evaluate("c => getComputedStyle(c).opacity"))
    return colors.overlay(heat, grey, opacity)


def figure_cells(fig):
    pixels = render(fig)
    return [cell_pixels(fig, image, pixels)[..., :3].astype(int) for image in heatmaps(fig)]


def test_exports_draw_the_screens_layout(show):
    """to_figure (and so PNG / SVG / PDF and the static PNG) draws the panels the screen shows, with its pixels."""
    w = SaliencyMap(cnn(), photo(), target=3, layout="side_by_side")
    page = show(w)
    screen = [canvas_rgba(page, PANEL.format("input")), canvas_rgba(page, PANEL.format("map")),
              screen_overlay(page, '[data-sw-panel="overlay"]')]
    for got, want in zip(figure_cells(w.to_figure()), screen, strict=True):
        np.testing.assert_allclose(got, want[..., :3].astype(int), atol=1)

    methods = ["gradient", "input_x_gradient"]
    w = SaliencyMap(cnn(), photo(), target=3, methods=methods, opacity=0.9)  # the overlay view: maps over the input
    page = show(w)
    screen = [screen_overlay(page, f'[data-sw-method="{m}"]') for m in methods]
    for got, want in zip(figure_cells(w.to_figure()), screen, strict=True):
        np.testing.assert_allclose(got, want[..., :3].astype(int), atol=1)

    w = SaliencyMap(mlp(), batch(3, 8), methods=["gradient", "input_x_gradient"])  # vector maps: stacked strips
    page = show(w)
    screen = [canvas_rgba(page, f'[data-sw-method="{m}"] [data-sw-role="heatmap"]') for m in w.methods]
    for got, want in zip(figure_cells(w.to_figure()), screen, strict=True):
        np.testing.assert_allclose(got, want[..., :3].astype(int), atol=1)


def test_a_sequence_side_by_side_draws_its_input_signal_above_the_map(at_width, artifacts):
    class Seq(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(2)
            self.lstm, self.head = torch.nn.LSTM(3, 8, batch_first=True), torch.nn.Linear(8, 3)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    w = SaliencyMap(Seq(), batch(2, 24, 3), feature_names=["temp", "wind", "rain"], layout="side_by_side")
    page = at_width(w, "light", 1800)
    lines = page.locator('[data-sw-role="signal"] polyline')
    assert lines.count() == 3 and page.text_content(".sw-signal-key") == "tempwindrain"
    signal, stage = box(page, '[data-sw-role="signal"] svg'), box(page, ".sw-stage")
    assert signal["y"] + signal["height"] <= stage["y"] and abs(signal["x"] - stage["x"]) < 1 and abs(signal["width"] - stage["width"]) < 1
    xs = [float(p.split(",")[0]) for p in lines.first.get_attribute("points").split()]
    cell = stage["width"] / 24
    np.testing.assert_allclose(xs, (np.arange(24) + 0.5) * cell, atol=0.1)  # each step over its map column
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / "side-by-side-sequence-1800.png"))
    w.view = "overlay"
    page = at_width(w, "light", 1800)
    assert page.locator('[data-sw-role="signal"]').is_hidden()
    assert from_wire(w._input).shape == (24, 3)
