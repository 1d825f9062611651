"""Tier B: clicks and keys in the order people use them (issue 10, items 6 and 9)."""

import pytest
from _widget_models import batch, cnn, mlp

from saliency_widgets.widgets import JacobianGrid, SaliencyMap

pytestmark = pytest.mark.browser
LABELS = ["cat", "dog", "car", "ship", "frog"]


def saves(page):
    return [e["changes"] for e in page.evaluate("window.__sw.log") if e["type"] == "save_changes"]


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
