"""Tier B (issue 24, items 1 and 7): a Grad-CAM map is drawn on the one-sided scale, 0 → max, in light and
dark hosts; the model's own exception is shown as the model's in the banner, which clears on the next
success and never reaches an offline page."""

import io

import numpy as np
import pytest
from _widget_models import FlakyModel, batch, cnn
from contrast import assert_readable
from kernel import kernel_answers
from pixels import canvas_rgba

from saliency_widgets import colors
from saliency_widgets.export import format_value
from saliency_widgets.widgets import SaliencyMap
from saliency_widgets.widgets.standalone import record_messages

pytestmark = pytest.mark.browser
HEATMAP = '[data-sw-widget] [data-sw-role="heatmap"]'
COLORBAR = '[data-sw-role="colorbar"]'
ERROR = '[data-sw-role="error"]'


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_grad_cam_map_uses_only_the_one_sided_colours(show_in, artifacts, scheme):
    w = SaliencyMap(cnn(), batch(1, 3, 8, 8, seed=1), target=3, method="gradcam")
    page = show_in(w, scheme)
    display = w.attribution
    m = colors.scale_max(display, "positive")
    idx = colors.to_index(display, "positive", m)
    assert idx.min() < 128 < idx.max()  # the lower half of the colour map is used, not only the upper one
    px = canvas_rgba(page, HEATMAP)
    np.testing.assert_array_equal(px[..., 3], colors.overlay_alpha(idx, "positive"))  # 0 where the map is 0
    opaque = px[..., 3] == 255
    assert opaque.sum() > 4
    np.testing.assert_array_equal(px[opaque][:, :3], colors.sign_lut("positive")[idx[opaque]][:, :3])
    diverging = {tuple(c) for c in colors.sign_lut("all")[:, :3]}
    assert not any(tuple(c) in diverging for c in px[opaque][:, :3])
    bar = canvas_rgba(page, f"{COLORBAR} canvas")[0]
    np.testing.assert_array_equal(bar, colors.sign_lut("positive"))  # the colour bar is the sequential map
    assert page.eval_on_selector_all(f"{COLORBAR} .sw-ticks span", "s => s.map((e) => e.textContent)") == ["0", format_value(m)]
    assert page.text_content(f"{COLORBAR} .sw-note").startswith("one-sided: ≥ 0 by construction")
    shot = screenshot_rgb(page.locator(".sw-stage").screenshot())  # the map over the grey input, as composited
    assert not ((shot[..., 2] > shot[..., 0] + 12) & (shot[..., 2] > shot[..., 1] + 12)).any()  # nothing blue on screen
    assert_readable(page)
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"colour-scales-gradcam-{scheme}.png"))


def screenshot_rgb(png: bytes) -> np.ndarray:
    """A screenshot's pixels as (h, w, 3) ints."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)


def forward(page, sent) -> None:
    """The custom messages among ``sent`` (what the widget sent its views) arriving in the page."""
    for msg, _ in sent:
        if msg.get("method") == "custom":
            page.evaluate("(c) => window.__sw.kernelSend(c)", msg["content"])
    page.evaluate("new Promise(requestAnimationFrame)")


def saves(page):
    return [e["changes"] for e in page.evaluate("window.__sw.log") if e["type"] == "save_changes"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_models_exception_is_shown_as_the_models_and_clears_after_a_later_success(show_in, artifacts, tmp_path, scheme):
    model = FlakyModel()
    w = SaliencyMap(model, batch(2, 8), target=0, labels=["cat", "dog", "car", "ship", "frog"],
                    method="integrated_gradients", method_kwargs={"integrated_gradients": {"steps": 4}})
    page = show_in(w, scheme)
    assert page.is_hidden(ERROR)
    model.failing = True
    page.click('[data-sw-output="2"]')
    with record_messages(w) as sent, pytest.raises(RuntimeError, match="CUDA out of memory"):
        w.set_state(saves(page)[-1])  # the kernel gets the click; the model raises
    kernel_answers(page, w, "target", "_attribution")
    forward(page, sent)
    banner = page.locator(ERROR)
    assert banner.is_visible()
    assert banner.inner_text().startswith(f"the model raised RuntimeError: {FlakyModel.MESSAGE}")
    assert "shape" not in banner.inner_text()
    assert page.text_content(".sw-title") == "Saliency of “cat”"  # the previous map stays
    assert_readable(page)
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"colour-scales-error-banner-{scheme}.png"))
    model.failing = False
    offline = w.to_html(tmp_path / "offline.html")  # while the banner is up: the page never carries it
    assert FlakyModel.MESSAGE not in offline.read_text(encoding="utf-8")
    page.click('[data-sw-output="3"]')
    with record_messages(w) as sent:
        w.set_state(saves(page)[-1])
    kernel_answers(page, w, "_attribution")
    forward(page, sent)
    assert banner.is_hidden()
    assert page.text_content(".sw-title") == "Saliency of “ship”"
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"colour-scales-error-cleared-{scheme}.png"))
    page.goto(offline.as_uri())
    page.wait_for_function("window.__sw && window.__sw.ready", timeout=30_000)
    assert page.is_hidden(ERROR)
