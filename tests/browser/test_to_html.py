"""``to_html`` pages opened offline in headless Chromium, the toolbar's export
buttons, and the exported figure's colours against the browser's canvases."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from _figure_pixels import cell_pixels, heatmaps, render
from _widget_models import batch, cnn, mlp
from pixels import canvas_rgba

import saliency_widgets as sw
from saliency_widgets import colors
from saliency_widgets.widgets import JacobianGrid, SaliencyMap, WeightInspector

pytestmark = pytest.mark.browser
HEATMAP = '[data-sw-widget] [data-sw-role="heatmap"]'
EVIL = "<script>alert(1)</script>"
LABELS = ["cat", "dog", "car", EVIL, "ship"]


@pytest.fixture
def offline(chromium, tmp_path):
    """Opens a widget's ``to_html`` file with every non-file request aborted; records
    requests and dialogs, and fails on JavaScript errors."""
    context = chromium.new_context(viewport={"width": 1100, "height": 800}, accept_downloads=True)
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    pg = context.new_page()
    pg.requests, pg.dialogs, errors = [], [], []
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: errors.append(str(e)))

    def _open(widget, name="widget.html"):
        path = widget.to_html(tmp_path / name)
        pg.goto(path.as_uri())
        pg.wait_for_function("window.__sw && window.__sw.ready", timeout=30_000)
        return pg

    yield _open
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def test_saliency_page_switches_target_offline_and_shows_script_labels_as_text(offline):
    model, x = mlp(), batch(3, 8)
    page = offline(SaliencyMap(model, x, target=0, labels=LABELS))
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP)[0], colors.colorize(sw.saliency(model, x, target=0)[0]))
    page.click('[data-sw-output="2"]')
    page.wait_for_selector('[data-sw-output="2"][aria-pressed="true"]')
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP)[0], colors.colorize(sw.saliency(model, x, target=2)[0]))
    assert page.get_attribute('[data-sw-role="status"]', "data-busy") == "false"
    assert EVIL in page.text_content('[data-sw-output="3"]')
    assert page.locator("[data-sw-widget] script").count() == 0
    page.click('[data-sw-output="3"]')
    assert EVIL in page.text_content(".sw-title")
    assert page.dialogs == []
    assert all(u.startswith(("file:", "blob:", "data:")) for u in page.requests), page.requests
    page.hover(HEATMAP, position={"x": 3, "y": 3})
    page.wait_for_function("document.querySelector('[role=tooltip]').style.display === 'block'")
    assert "attribution" in page.text_content("[role=tooltip]")


def test_jacobian_page_selects_tiles(offline):
    g = JacobianGrid(cnn(), batch(2, 3, 8, 8, seed=1))
    page = offline(g)
    page.click('.sw-tile[data-sw-output="6"]')
    assert page.get_attribute('.sw-tile[data-sw-output="6"]', "aria-pressed") == "true"
    assert page.get_attribute(f'.sw-tile[data-sw-output="{g.selected}"]', "aria-pressed") == "false"


def test_weight_inspector_page_switches_layers_from_embedded_blocks(offline):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    inspector = WeightInspector(model)
    page = offline(inspector)
    assert page.get_attribute('[data-sw-layer="0"]', "aria-pressed") == "true"
    page.click('[data-sw-layer="2"]')
    page.wait_for_selector('[data-sw-layer="2"][aria-pressed="true"]')
    page.wait_for_function("document.querySelector('[data-sw-block=\"kernel\"]').height === 2")
    kernel = model[2].weight.detach().numpy()
    got = canvas_rgba(page, '[data-sw-block="kernel"]')
    np.testing.assert_array_equal(got, colors.colorize(kernel, m=float(np.abs(kernel).max())))
    assert page.get_attribute('[data-sw-layer="1"]', "aria-disabled") == "true"  # Tanh: no weights, not selectable


def test_export_buttons_download_a_png_and_an_svg(offline):
    page = offline(SaliencyMap(mlp(), batch(1, 8), labels=LABELS))
    with page.expect_download() as info:
        page.click('[data-sw-action="export-png"]')
    png = info.value
    assert png.suggested_filename.endswith(".png")
    with open(png.path(), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with page.expect_download() as info:
        page.click('[data-sw-action="export-svg"]')
    root = ET.parse(info.value.path()).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def figure_cells(widget) -> list[np.ndarray]:
    fig = widget.to_figure()
    pixels = render(fig)
    return [cell_pixels(fig, im, pixels)[..., :3].astype(int) for im in heatmaps(fig)]


def test_figure_colours_equal_the_canvas_colours(show):
    """The same state in the browser and in ``to_figure``: equal colours at every cell."""
    w = SaliencyMap(mlp(), batch(3, 8), target=1, sign="positive", outlier_perc=10)
    page = show(w)
    [cells] = figure_cells(w)
    np.testing.assert_allclose(cells, canvas_rgba(page, HEATMAP)[..., :3], atol=1)

    g = JacobianGrid(mlp(), batch(2, 8), labels=LABELS)
    page = show(g)
    [cells] = figure_cells(g)
    np.testing.assert_allclose(cells, canvas_rgba(page, HEATMAP)[..., :3], atol=1)

    tiles = JacobianGrid(cnn(), batch(2, 3, 8, 8, seed=1))
    page = show(tiles)
    for i, cells in enumerate(figure_cells(tiles)):  # image tiles: the map composited over the faint input
        heat = canvas_rgba(page, f'canvas[data-sw-output="{tiles._rows[i]}"]')
        under = canvas_rgba(page, f'.sw-tile[data-sw-output="{tiles._rows[i]}"] [data-sw-role="underlay"]')[..., 0]
        np.testing.assert_allclose(cells, colors.overlay(heat, under, 1.0), atol=1)

    inspector = WeightInspector(mlp())
    page = show(inspector)
    for block, cells in zip(inspector.blocks, figure_cells(inspector)):
        np.testing.assert_allclose(cells, canvas_rgba(page, f'[data-sw-block="{block.name}"]')[..., :3], atol=1)


def test_image_figure_is_the_canvas_overlay_composited(show):
    """An image map: the figure equals the heatmap canvas (with its per-pixel alpha and
    the opacity) composited over the grey input canvas."""
    w = SaliencyMap(cnn(), batch(2, 3, 8, 8, seed=1), target=3, opacity=0.6)
    page = show(w)
    heat = canvas_rgba(page, HEATMAP)
    grey = canvas_rgba(page, '[data-sw-role="input-image"]')[..., 0]
    assert page.evaluate(f"document.querySelector('{HEATMAP}').style.opacity") == "0.6"
    [cells] = figure_cells(w)
    np.testing.assert_allclose(cells, colors.overlay(heat, grey, 0.6), atol=1)
