"""Tier B: the SaliencyMap's checks strip (statuses, on-demand checks, randomization row) and start-up
(first map before the Jacobian, which the page asks for after painting)."""

from __future__ import annotations

import pytest
from _widget_models import batch, cnn, mlp
from kernel import kernel_answers

from saliency_widgets.widgets import SaliencyMap
from saliency_widgets.widgets.standalone import standalone_html

pytestmark = pytest.mark.browser

IG_COARSE = {"integrated_gradients": {"steps": 1}}


def requests(page) -> list:
    return [e["changes"] for e in page.evaluate("window.__sw.log") if e["type"] == "save_changes"]


def test_statuses_follow_the_kernels_checks(show, artifacts):
    model, x = mlp(), 3 * batch(3, 8)
    w = SaliencyMap(model, x, target=1, method="integrated_gradients", method_kwargs=IG_COARSE)
    page = show(w)
    assert w.checks["completeness"]["status"] == "warn"
    item = page.locator('[data-sw-check="completeness"]')
    assert item.get_attribute("data-sw-status") == "warn"
    assert "raise steps" in item.inner_text()
    assert page.locator('[data-sw-check="random_logit"]').count() == 0  # no Jacobian-free random logit for IG
    w.method = "gradient"
    kernel_answers(page, w, "_checks")
    page.evaluate("window.__sw.kernelSet('method', 'gradient')")
    logit = page.locator('[data-sw-check="random_logit"]')
    assert logit.get_attribute("data-sw-status") == w.checks["random_logit"]["status"]
    assert page.locator('[data-sw-check="completeness"]').count() == 0


def test_a_stale_checks_trait_is_not_shown_for_another_map(show):
    w = SaliencyMap(mlp(), batch(3, 8), target=0)
    page = show(w)
    assert page.locator('[data-sw-check="random_logit"]').count() == 1
    page.click('[data-sw-output="3"]')  # the kernel has not answered for target 3 yet
    assert page.locator('[data-sw-check="random_logit"]').count() == 0


def test_deletion_insertion_chart_appears_after_the_click(show):
    """The curves arrive on labelled axes, named deletion and insertion with their AUCs, and a line saying
    which shape is good."""
    w = SaliencyMap(mlp(), batch(3, 8), target=2)
    page = show(w)
    assert page.locator("[data-sw-role=check-chart]").count() == 0
    page.click('[data-sw-action="check-deletion-insertion"]')
    assert requests(page) == [{"_check_request": {"name": "deletion_insertion", "n": 1}}]
    assert page.get_attribute('[data-sw-check="deletion_insertion"]', "data-sw-status") == "computing"
    w.run_check("deletion_insertion")
    kernel_answers(page, w, "_checks")
    item = page.locator('[data-sw-check="deletion_insertion"]')
    assert item.get_attribute("data-sw-status") == w.checks["deletion_insertion"]["status"]
    curves = page.locator("[data-sw-role=check-chart] polyline")
    assert curves.count() == 2
    points = curves.first.get_attribute("points").split()
    assert len(points) == len(w.checks["deletion_insertion"]["fractions"])
    assert item.locator("svg").get_attribute("aria-label").startswith("deletion AUC")
    chart = item.locator("svg").text_content()
    assert "fraction of features removed / revealed" in chart and "score" in chart
    assert "deletion AUC" in chart and "insertion AUC" in chart
    assert item.locator("[data-sw-role=check-explain]").text_content().startswith("Good: deletion falls fast")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_randomization_row_renders_with_similarities(page, tmp_path, artifacts, scheme):
    w = SaliencyMap(cnn(), batch(1, 3, 8, 8), target=3, method="integrated_gradients", method_kwargs=IG_COARSE)
    w.prefetch()
    page.emulate_media(color_scheme=scheme)
    path = tmp_path / "w.html"
    path.write_text(standalone_html(w, background="#111418" if scheme == "dark" else "#ffffff"), encoding="utf-8")
    page.goto(path.as_uri())
    page.wait_for_function("window.__sw && window.__sw.ready")
    page.click('[data-sw-action="check-randomization"]')
    assert page.get_attribute('[data-sw-check="randomization"]', "data-sw-status") == "computing"
    w.run_check("deletion_insertion")
    w.run_check("randomization")
    kernel_answers(page, w, "_randomization_maps", "_checks")
    item = w.checks["randomization"]
    tiles = page.locator(".sw-rand-tile")
    assert tiles.count() == len(item["layers"]) + 1
    rhos = page.locator(".sw-rand-tile .sw-rho").all_inner_texts()
    assert rhos[0] == "as trained"
    assert [float(r.split()[1].replace("−", "-")) for r in rhos[1:]] == pytest.approx(item["spearman"], abs=5e-4)
    assert page.get_attribute('[data-sw-check="randomization"]', "data-sw-status") == item["status"]
    canvases = page.locator("[data-sw-role=randomization-map]")
    assert canvases.count() == len(item["layers"]) + 1
    assert page.evaluate("document.querySelector('[data-sw-role=randomization-map]').width") == 8
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"checks-strip-{scheme}.png"))


def test_gradcam_layer_picker_shows_for_cam_methods(show):
    w = SaliencyMap(cnn(), batch(1, 3, 8, 8), target=3)
    page = show(w)
    picker = page.locator('[data-sw-action="cam-layer"]')
    assert not picker.is_visible()
    assert page.locator('[data-sw-action="method"] option[value="gradcam"]').count() == 1
    w.method = "gradcam"
    kernel_answers(page, w, "_attribution", "_checks")
    page.evaluate("window.__sw.kernelSet('method', 'gradcam')")
    assert picker.is_visible()
    assert picker.locator("option").all_text_contents() == [
        f"last spatial ({w._cam_layer_labels[-1]})", *w._cam_layer_labels]
    assert "Conv2d" in w._cam_layer_labels[0]  # "0 · Conv2d · 4×8×8", not "0"
    page.select_option('[data-sw-action="cam-layer"]', "0")
    assert requests(page) == [{"cam_layer": "0", "_request": 1}]


def test_first_paint_comes_before_the_jacobian_request(page, tmp_path):
    """Start-up: the first map is in the page state; the Jacobian is asked for after it is painted,
    and the offline page (to_html) answers that request so later clicks stay in the browser."""
    w = SaliencyMap(mlp(), batch(3, 8), target=0)
    assert w._jacobian is None and w._attribution is not None
    path = tmp_path / "w.html"
    w.to_html(path)
    page.goto(path.as_uri())
    page.wait_for_function("window.__sw && window.__sw.ready")
    page.wait_for_function("window.__sw.STATE._jacobian !== null")
    assert requests(page) == [{"_want_jacobian": True}]
    page.click('[data-sw-output="3"]')
    assert page.get_attribute('[data-sw-role="status"]', "data-busy") == "false"
    assert page.locator('[data-sw-check="random_logit"]').count() == 0  # the kernel computes it; none offline
