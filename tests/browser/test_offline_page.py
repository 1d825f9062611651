"""Tier B: an honest offline page (issue 24, item 6). In a ``to_html`` page the controls that need a kernel are
disabled and a note (``data-sw-role="offline-note"``) says so; what the page embeds keeps working, and nothing
spins for ever."""

from __future__ import annotations

import numpy as np
import pytest
from _widget_models import batch, cnn, mlp
from contrast import assert_readable
from pixels import canvas_rgba

import saliency_widgets as sw
from saliency_widgets import colors
from saliency_widgets.widgets import JacobianGrid, SaliencyMap
from saliency_widgets.widgets.standalone import standalone_html

pytestmark = pytest.mark.browser
HEATMAP = '[data-sw-widget] [data-sw-role="heatmap"]'
NOTE = '[data-sw-role="offline-note"]'
BUSY = '[data-sw-role="status"]'


@pytest.fixture
def offline(chromium, tmp_path):
    """Opens a widget's offline page (``to_html``; dark: on a dark page in a dark colour scheme) with every
    non-file request aborted; fails on JavaScript errors."""
    opened = []

    def _open(widget, scheme="light", **kw):
        context = chromium.new_context(viewport={"width": 1100, "height": 800}, color_scheme=scheme)
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        opened.append((context, errors))
        path = tmp_path / f"{scheme}-{len(opened)}.html"
        if scheme == "dark":
            path.write_text(standalone_html(widget, background="#1e1e1e", variants=widget._html_variants(), offline=True,
                                            **kw), encoding="utf-8")
        else:
            widget.to_html(path, **kw)
        page.goto(path.as_uri())
        page.wait_for_function("window.__sw && window.__sw.ready", timeout=30_000)
        page.evaluate("new Promise((r) => setTimeout(r, 50))")  # the page's answer to the Jacobian request
        return page

    yield _open
    for context, errors in opened:
        context.close()
        assert not errors, f"JavaScript errors: {errors}"


def disabled_options(page, action: str) -> list[str]:
    return page.evaluate("(a) => [...document.querySelector(`[data-sw-action='${a}']`).options]"
                         ".filter((o) => o.disabled).map((o) => o.value)", action)


def test_saliency_page_disables_what_needs_the_kernel_and_says_so(offline):
    model, x = mlp(), batch(3, 8)
    page = offline(SaliencyMap(model, x, target=0))
    note = page.text_content(NOTE)
    assert page.is_visible(NOTE) and "Offline page" in note and "other samples" in note and "checks" in note
    assert page.is_disabled('[data-sw-action="next-sample"]') and page.is_disabled('[data-sw-action="index"]')
    assert page.locator('[data-sw-role="checks"] button').count() == 0  # no check button that would spin
    # gradient and gradient × input for every output come from the embedded Jacobian; the rest needs the kernel
    assert set(disabled_options(page, "method")) == {"smoothgrad", "integrated_gradients", "occlusion"}
    page.click('[data-sw-output="2"]')
    page.wait_for_selector('[data-sw-output="2"][aria-pressed="true"]')
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP)[0], colors.colorize(sw.saliency(model, x, target=2)[0]))
    page.select_option('[data-sw-action="method"]', "input_x_gradient")
    assert page.get_attribute(BUSY, "data-busy") == "false"
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP)[0],
                                  colors.colorize(sw.saliency(model, x, target=2, method="input_x_gradient")[0]))


def test_a_map_the_page_does_not_embed_is_refused_with_a_reason_not_a_spinner(offline):
    model, x = mlp(), batch(1, 8)
    page = offline(SaliencyMap(model, x, target=0, method="integrated_gradients"))
    drawn = canvas_rgba(page, HEATMAP)
    page.click('[data-sw-output="3"]')  # integrated gradients of output 3: not in the page
    assert page.get_attribute('[data-sw-output="0"]', "aria-pressed") == "true"
    assert "not embedded" in page.text_content(NOTE) and page.get_attribute(BUSY, "data-busy") == "false"
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP), drawn)
    page.select_option('[data-sw-action="method"]', "gradient")  # embedded by the Jacobian: allowed
    assert "not embedded" not in page.text_content(NOTE)
    page.click('[data-sw-output="3"]')
    page.wait_for_selector('[data-sw-output="3"][aria-pressed="true"]')
    assert disabled_options(page, "method") == ["smoothgrad", "integrated_gradients", "occlusion"]  # IG: target 0 only
    page.click('[data-sw-output="0"]')
    page.select_option('[data-sw-action="method"]', "integrated_gradients")  # back to the embedded map
    assert page.get_attribute(BUSY, "data-busy") == "false"
    np.testing.assert_array_equal(canvas_rgba(page, HEATMAP), drawn)


def test_a_page_over_its_budget_draws_its_8_bit_maps_and_says_they_are_rounded(offline):
    w = SaliencyMap(cnn(16, 10), batch(1, 3, 16, 16), target=1)
    exact_page = standalone_html(w, variants=w._html_variants(), offline=True)
    drawn = []
    for budget in (None, len(exact_page.encode("utf-8")) - 20_000):  # the second: the Jacobian must shrink
        page = offline(w, max_bytes=budget or 10**8)
        page.click('[data-sw-output="7"]')  # drawn from the (8-bit) Jacobian
        page.wait_for_selector('[data-sw-output="7"][aria-pressed="true"]')
        drawn.append(canvas_rgba(page, HEATMAP).astype(int))
    assert "8-bit" in page.text_content(NOTE)
    steps = np.abs(drawn[0] - drawn[1]).max(axis=-1)
    assert np.mean(steps <= 12) > 0.97 and steps.max() <= 40  # a few steps of the 256-colour scale


def test_a_jacobian_grid_page_locks_the_samples_only(offline):
    page = offline(JacobianGrid(mlp(), batch(3, 8)))
    assert page.is_disabled('[data-sw-action="prev-sample"]') and "other samples" in page.text_content(NOTE)
    page.click('[data-sw-output="3"]')
    assert page.get_attribute('[data-sw-output="3"]', "aria-pressed") == "true"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshot_of_the_offline_note_in_light_and_dark(offline, artifacts, scheme):
    page = offline(SaliencyMap(mlp(), batch(3, 8), target=0, labels=["cat", "dog", "car", "ship", "frog"],
                               feature_names=[f"f{i}" for i in range(8)]), scheme)
    page.click('[data-sw-output="4"]')
    assert_readable(page, NOTE)
    page.locator(".sw-root").screenshot(path=str(artifacts / f"offline-note-{scheme}.png"))
