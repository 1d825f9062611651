"""Tier B (issue 24, item 2): "why A and not B" — the "versus" control and alt-click on an output draw the
map of score(A) − score(B); with the prefetched Jacobian the page draws it from two rows, asking the kernel
for nothing."""

import numpy as np
import pytest
from _widget_models import batch, mlp
from pixels import canvas_rgba

import saliency_widgets as sw
from saliency_widgets import colors
from saliency_widgets.widgets import SaliencyMap
from saliency_widgets.widgets.standalone import record_messages

pytestmark = pytest.mark.browser
HEATMAP = '[data-sw-widget] [data-sw-role="heatmap"]'
VERSUS = '[data-sw-role="contrast"]'
LABELS = ["cat", "dog", "car", "ship", "frog"]


def log(page, kind):
    return [e for e in page.evaluate("window.__sw.log") if e["type"] == kind]


def busy(page):
    return page.get_attribute('[data-sw-role="status"]', "data-busy") == "true"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_versus_with_a_prefetched_jacobian_is_drawn_in_the_page(show_in, artifacts, scheme):
    model, x = mlp(), batch(3, 8)
    w = SaliencyMap(model, x, target=0, labels=LABELS)
    w.prefetch()  # the kernel's answer to the page's Jacobian request, sent up front
    page = show_in(w, scheme)
    assert page.locator(f"{VERSUS} option").all_text_contents() == ["none", *LABELS]
    assert page.locator(f'{VERSUS} option[value="0"]').is_disabled()  # the target cannot be its own contrast

    page.select_option(VERSUS, "2")
    # the page tells the kernel the new trait and draws the map at once: no map asked for, none awaited
    assert [e["changes"] for e in log(page, "save_changes")] == [{"contrast": 2, "_request": 1}]
    assert log(page, "send") == [] and not busy(page)
    difference = sw.saliency(model, x, 0, contrast=2)[0]
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP)[0], colors.colorize(difference))
    assert page.text_content(".sw-title") == "Saliency of “cat” vs “car”"
    assert "sw-versus" in page.get_attribute('[data-sw-output="2"]', "class")
    with record_messages(w) as sent:  # the kernel, given the page's message, computes nothing to send back
        w.set_state(log(page, "save_changes")[0]["changes"])
    assert "_attribution" not in {k for m, _ in sent for k in m.get("state", {})}
    np.testing.assert_allclose(w.attribution, difference, rtol=1e-5, atol=1e-6)
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"tier-b-versus-{scheme}.png"))

    page.click('[data-sw-output="4"]', modifiers=["Alt"])  # alt-click: contrast with “frog” instead
    assert log(page, "save_changes")[-1]["changes"] == {"contrast": 4, "_request": 2} and not busy(page)
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP)[0], colors.colorize(sw.saliency(model, x, 0, contrast=4)[0]))
    assert page.input_value(VERSUS) == "4" and page.text_content(".sw-title") == "Saliency of “cat” vs “frog”"

    page.click('[data-sw-output="4"]')  # a plain click on the contrast makes it the target, alone
    assert log(page, "save_changes")[-1]["changes"] == {"target": 4, "contrast": None, "_request": 3}
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP)[0], colors.colorize(sw.saliency(model, x, 4)[0]))
    assert page.input_value(VERSUS) == "" and page.text_content(".sw-title") == "Saliency of “frog”"
    assert log(page, "send") == []
