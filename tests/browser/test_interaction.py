"""Tier B: clicks and keys in the order people use them (issue 10, items 6 and 9)."""

import pytest
from _widget_models import batch, mlp

from saliency_widgets.widgets import JacobianGrid, SaliencyMap

pytestmark = pytest.mark.browser
LABELS = ["cat", "dog", "car", "ship", "frog"]


def saves(page):
    """The browser's messages, without the request number each map request carries (test_tier_b checks it)."""
    return [{k: v for k, v in e["changes"].items() if k != "_request"}
            for e in page.evaluate("window.__sw.log") if e["type"] == "save_changes"]


def test_a_click_after_typing_a_sample_and_enter_is_not_lost(show):
    page = show(SaliencyMap(mlp(), batch(3, 8), target=0, labels=LABELS))
    page.fill('[data-sw-action="index"]', "2")
    page.press('[data-sw-action="index"]', "Enter")
    for k in (3, 1, 4):  # the first click also blurs the number box
        page.click(f'[data-sw-output="{k}"]')
    assert saves(page) == [{"index": 1}, {"target": 3}, {"target": 1}, {"target": 4}]
    assert page.get_attribute('[data-sw-output="4"]', "aria-pressed") == "true"


def test_rerendering_keeps_the_row_under_the_pointer(show):
    page = show(SaliencyMap(mlp(), batch(3, 8), target=0, labels=LABELS))
    page.evaluate("window.__row = document.querySelector('[data-sw-output=\"2\"]')")
    page.click('[data-sw-output="2"]')
    page.evaluate("window.__sw.kernelSet('index', 2)")
    page.evaluate("new Promise(requestAnimationFrame)")
    assert page.evaluate("window.__row === document.querySelector('[data-sw-output=\"2\"]') && window.__row.isConnected")


def test_enter_in_the_output_search_selects_the_first_match(show):
    import torch

    torch.manual_seed(0)
    page = show(SaliencyMap(torch.nn.Linear(8, 1000), batch(1, 8), labels=[f"class {i}" for i in range(1000)]))
    page.fill('[data-sw-role="search"]', "class 77")
    page.press('[data-sw-role="search"]', "Enter")
    assert saves(page) == [{"target": 77}]
    assert page.get_attribute('.sw-panel [data-sw-output="77"]', "aria-pressed") == "true"


def active(page) -> dict:
    return page.evaluate("""() => { const e = document.activeElement;
      return { output: e.dataset.swOutput ?? null, action: e.dataset.swAction ?? null, role: e.dataset.swRole ?? null,
               tag: e.tagName, outline: getComputedStyle(e).outlineStyle }; }""")


def test_keyboard_moves_across_outputs_and_tab_reaches_every_control(show):
    page = show(SaliencyMap(mlp(), batch(3, 8), target=0, labels=LABELS))
    page.focus('[data-sw-output="0"]')
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert saves(page) == [{"target": 1}, {"target": 2}]
    assert active(page)["output"] == "2" and page.get_attribute('[data-sw-output="2"]', "aria-pressed") == "true"
    page.keyboard.press("ArrowUp")
    page.keyboard.press("End")
    assert saves(page)[-2:] == [{"target": 1}, {"target": 4}]
    page.keyboard.press("Enter")
    assert saves(page)[-1] == {"target": 4}
    # Tab from the page start through the widget: every control once, the output list as one stop
    page.mouse.click(2, 2)  # focus back on the page, before the widget
    stops = []
    for _ in range(25):
        page.keyboard.press("Tab")
        stops.append(active(page))
        if stops[-1]["tag"] == "BODY" and len(stops) > 1:
            break
    reached = {s["action"] or s["output"] for s in stops}
    assert {"method", "prev-sample", "index", "next-sample", "sign", "lock-scale", "export-png", "export-svg", "export-pdf"} <= reached
    assert [s["output"] for s in stops if s["output"]] == ["4"]  # the selected output is the list's one tab stop
    assert all(s["outline"] == "dashed" for s in stops if s["tag"] != "BODY")  # focus is visible: a dashed ring, not the selection's accent
    label = page.get_attribute('[data-sw-role="heatmap"]', "aria-label")
    assert page.get_attribute('[data-sw-role="heatmap"]', "role") == "img"
    assert label.startswith("Saliency of “frog” by gradient, 8 features; strongest at feature ")


def test_arrow_keys_move_across_tiles_and_matrix_rows(show):
    import torch

    torch.manual_seed(0)
    tiles = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(2 * 8 * 8, 50)).eval()
    page = show(JacobianGrid(tiles, batch(1, 3, 8, 8, seed=1)))
    columns = page.evaluate("getComputedStyle(document.querySelector('.sw-grid')).gridTemplateColumns.split(' ').length")
    page.focus('.sw-tile[data-sw-output="0"]')
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    assert 1 < columns < 50 and saves(page) == [{"selected": 1}, {"selected": 1 + columns}]
    assert active(page)["output"] == str(1 + columns)
    assert page.get_attribute(f'canvas[data-sw-output="{1 + columns}"]', "role") == "img"

    page = show(JacobianGrid(mlp(), batch(2, 8), labels=LABELS, feature_names=[f"f{i}" for i in range(8)]))
    page.focus('.sw-rowlabels [data-sw-output="0"]')
    page.keyboard.press("ArrowDown")
    assert saves(page) == [{"selected": 1}]
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert "f1" in page.text_content(".sw-panel .sw-panel-head")  # the keyboard's input column, like hover
    assert "5 outputs × 8 inputs" in page.get_attribute('[data-sw-role="heatmap"]', "aria-label")
