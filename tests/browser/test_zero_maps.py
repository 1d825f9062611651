"""Tier B: maps that are zero up to float rounding are drawn neutral, with the reason in place of the
colour bar (DESIGN §7), in light and dark hosts — never as noise stretched to full colour."""

import re

import numpy as np
import pytest
from _widget_models import batch, clipping_cnn, tiny_bert
from kernel import kernel_answers
from contrast import assert_readable
from pixels import canvas_rgba

from saliency_widgets import colors
from saliency_widgets.config import config
from saliency_widgets.errors import SaliencyWarning
from saliency_widgets.widgets import SaliencyMap
from saliency_widgets.zero import zero_sentence

pytestmark = pytest.mark.browser
torch = pytest.importorskip("torch")
NOTE = '[data-sw-role="note"]'
COLORBAR = '[data-sw-role="colorbar"]'
ZERO_RGB = colors.sign_lut("all")[128][:3]  # the colour of 0 on the signed scale


@pytest.fixture
def show_in(show_in):
    """conftest's ``show_in`` with the Jacobian prefetched first, as the page would ask for it."""
    def _show(widget, scheme):
        widget.prefetch()
        return show_in(widget, scheme)

    return _show


def saves(page):
    return [e["changes"] for e in page.evaluate("window.__sw.log") if e["type"] == "save_changes"]


def chip_colours(page):
    styles = page.eval_on_selector_all('[data-sw-token]:not([hidden])', "els => els.map(e => getComputedStyle(e).backgroundColor)")
    return np.array([[int(v) for v in re.findall(r"\d+", s)[:3]] for s in styles])


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("where", ["page", "kernel"])
def test_a_layernormed_embeddings_signed_gradient_is_shown_as_zero_with_its_reason(
        show_in, artifacts, tmp_path, monkeypatch, where, scheme):
    """Tiny BERT, layer= its word embeddings, method="gradient": the per-token sum is ±1e-9 noise. Derived
    in the page from the Jacobian (``where="page"``) or sent by the kernel (no Jacobian prefetched)."""
    pytest.importorskip("transformers")
    if where == "kernel":
        monkeypatch.setattr(config, "prefetch_budget_bytes", 0)
    bert, tokenizer, x = tiny_bert(tmp_path)
    with pytest.warns(SaliencyWarning, match="embedding axis is 0 up to rounding"):
        w = SaliencyMap(bert, x, layer=bert.bert.embeddings.word_embeddings, tokens=tokenizer, method="gradient",
                        labels=["negative", "neutral", "positive"], target=2)
    page = show_in(w, scheme)
    assert page.evaluate("window.__sw.STATE._jacobian !== null") == (where == "page")
    note = page.locator(NOTE)
    assert note.is_visible() and note.inner_text() == zero_sentence(w.note)
    assert page.locator(COLORBAR).is_hidden()  # no ±noise colour scale
    chips = chip_colours(page)
    assert chips.shape == (6, 3) and (chips == ZERO_RGB).all()  # [PAD] hidden, every chip neutral
    assert "zero map" in page.get_attribute(".sw-tokens", "aria-label")
    assert_readable(page)
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"zero-text-{where}-{scheme}.png"))

    page.select_option('[data-sw-action="method"]', "input_x_gradient")  # the method whose sum means something
    w.set_state(saves(page)[-1])  # the kernel follows (and answers, when the page cannot derive the map)
    if where == "kernel":
        kernel_answers(page, w, "_attribution")
    assert w.note == "" and note.is_hidden() and page.locator(COLORBAR).is_visible()
    np.testing.assert_array_equal(chip_colours(page), colors.colorize(w.attribution.sum(-1), "all", 2.0)[:6, :3])


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_grad_cam_whose_relu_clips_every_pixel_is_shown_as_zero(show_in, artifacts, scheme):
    net, xi = clipping_cnn(), batch(1, 3, 8, 8, seed=4)
    w = SaliencyMap(net, xi, target=0, method="gradcam", labels=["up", "down"])
    page = show_in(w, scheme)
    assert page.locator(NOTE).is_hidden()
    assert canvas_rgba(page, '[data-sw-role="heatmap"]')[..., 3].any()
    with pytest.warns(SaliencyWarning, match="ReLU clipped every pixel"):
        page.click('[data-sw-output="1"]')
        w.set_state(saves(page)[-1])
    kernel_answers(page, w, "_attribution")
    note = page.locator(NOTE)
    assert note.is_visible() and note.inner_text() == zero_sentence(
        "Grad-CAM's ReLU clipped every pixel: no location raises this score; try relu=False or another layer")
    assert page.locator(COLORBAR).is_hidden()
    zero_alpha = colors.overlay_alpha(colors.to_index(np.zeros(1), "positive", 1.0), "positive")[0]  # one-sided: 0
    assert (canvas_rgba(page, '[data-sw-role="heatmap"]')[..., 3] == zero_alpha).all()  # nothing over the grey input
    assert page.text_content(".sw-title") == "Saliency of “down”"
    assert "zero map" in page.get_attribute('[data-sw-role="heatmap"]', "aria-label")
    assert_readable(page)
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"zero-gradcam-{scheme}.png"))


def test_an_offline_export_of_a_zero_map_draws_the_sentence_not_a_colour_bar(page, tmp_path, artifacts):
    import xml.etree.ElementTree as ET

    net, xi = clipping_cnn(), batch(1, 3, 8, 8, seed=4)
    with pytest.warns(SaliencyWarning):
        w = SaliencyMap(net, xi, target=1, method="gradcam", labels=["up", "down"])
    page.goto(w.to_html(tmp_path / "zero.html").as_uri())
    page.wait_for_function("window.__sw && window.__sw.ready", timeout=30_000)
    with page.expect_download() as info:
        page.click('[data-sw-action="export-svg"]')
    svg = tmp_path / "zero.svg"
    info.value.save_as(svg)
    texts = " ".join("".join(t.itertext()) for t in ET.parse(svg).iter("{http://www.w3.org/2000/svg}text"))
    assert zero_sentence(w.note) in texts and "clipped ·" not in texts and "top 2%" not in texts
    with page.expect_download() as info:
        page.click('[data-sw-action="export-png"]')
    info.value.save_as(artifacts / "zero-gradcam-export-offline.png")
