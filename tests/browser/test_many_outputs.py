"""Tier B: JacobianGrid with many outputs (issue 10, item 3): search, top-k, virtual rows, hover panel,
tiles and labels that stay inside the card."""

import numpy as np
import pytest
import torch
from _widget_models import batch
from boxes import overflowing

from saliency_widgets import colors
from saliency_widgets.widgets import JacobianGrid

pytestmark = pytest.mark.browser
ROWLABEL = '.sw-rowlabels [data-sw-output="{}"]'

# Pairs of column labels whose boxes overlap, and labels cut by their container.
COLLIDE_JS = """() => { const spans = [...document.querySelectorAll('.sw-collabels span')];
  const box = document.querySelector('.sw-collabels').getBoundingClientRect(); const boxes = spans.map((s) => s.getBoundingClientRect());
  let overlaps = 0, cut = 0;
  for (let i = 0; i < boxes.length; i++) {
    const a = boxes[i];
    if (a.bottom > box.bottom + 0.5 || a.top < box.top - 0.5) cut++;
    for (let j = i + 1; j < boxes.length; j++) { const b = boxes[j];
      const ix = Math.min(a.right, b.right) - Math.max(a.left, b.left), iy = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (ix > 1 && iy > 1 && spans[i].style.transform === spans[j].style.transform && !spans[i].style.transform.includes('rotate')) overlaps++; } }
  return { count: spans.length, overlaps, cut }; }"""


def saves(page):
    return [e["changes"] for e in page.evaluate("window.__sw.log") if e["type"] == "save_changes"]


@pytest.fixture(scope="module")
def big():
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 1000).eval()
    return JacobianGrid(model, batch(1, 64), labels=[f"class {i:03d} (a fairly long label)" for i in range(1000)],
                        feature_names=[f"input_{j}" for j in range(64)])


def test_1000_outputs_are_searchable_clickable_and_virtual(show, big, artifacts):
    page = show(big)
    assert page.locator(".sw-rowlabels [data-sw-output]:visible").count() < 60  # only the rows in view exist
    page.fill('[data-sw-role="search"]', "class 777")
    page.click(ROWLABEL.format(777))
    assert saves(page) == [{"selected": 777}]
    assert page.get_attribute(ROWLABEL.format(777), "aria-pressed") == "true"
    page.fill('[data-sw-role="search"]', "class 12")
    page.press('[data-sw-role="search"]', "Enter")  # the first match
    assert saves(page)[-1] == {"selected": 120}
    page.fill('[data-sw-role="search"]', "")
    assert overflowing(page) == []
    labels = page.evaluate("""() => [...document.querySelectorAll('.sw-rowlabels [data-sw-output]')].filter((e) => e.offsetParent)
        .map((e) => ({ h: e.getBoundingClientRect().height, font: parseFloat(getComputedStyle(e).fontSize), title: e.title }))""")
    assert all(lab["h"] >= 14 and lab["font"] >= 11 for lab in labels)  # readable at 1000 rows
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / "grid-1000-outputs.png"))


def test_scrolling_draws_the_rows_in_view_with_the_lut(show, big):
    page = show(big)
    page.evaluate("document.querySelector('.sw-scroller').scrollTop = 500 * 14")
    page.wait_for_function("[...document.querySelectorAll('.sw-rowlabels [data-sw-output]')].some((e) => e.dataset.swOutput === '500')")
    first = int(page.evaluate("""() => { const c = document.querySelector('[data-sw-role=heatmap]');
        return Math.round(parseFloat(c.style.top) / 14); }"""))
    px = page.evaluate("""() => { const c = document.querySelector('[data-sw-role=heatmap]');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }""")
    rows = len(px) // (64 * 4)
    got = np.array(px, dtype=np.uint8).reshape(rows, 64, 4)
    want = colors.colorize(big.jacobian[first : first + rows], m=colors.scale_max(big.jacobian))
    np.testing.assert_array_equal(got, want)


def test_top_k_by_score_and_hover_panel_centred_on_the_hovered_output(show, big):
    page = show(big)
    page.select_option('[data-sw-action="top"]', "10")
    page.select_option('[data-sw-action="sort"]', "score")
    scores = big._all_scores("logits")[0]
    shown = [int(v) for v in page.eval_on_selector_all(".sw-rowlabels [data-sw-output]", "els => els.filter((e) => e.offsetParent).map((e) => e.dataset.swOutput)")]
    assert shown == [int(i) for i in np.argsort(-scores, kind="stable")[:10]]
    page.select_option('[data-sw-action="top"]', "0")
    page.select_option('[data-sw-action="sort"]', "index")
    page.evaluate("document.querySelector('.sw-scroller').scrollTop = 400 * 14")
    page.wait_for_function("[...document.querySelectorAll('.sw-rowlabels [data-sw-output]')].some((e) => e.dataset.swOutput === '410')")
    label = page.locator(ROWLABEL.format(410)).bounding_box()
    heat = page.locator('[data-sw-role="heatmap"]').bounding_box()
    page.mouse.move(heat["x"] + heat["width"] * (5.5 / 64), label["y"] + label["height"] / 2)
    page.wait_for_function("document.querySelector('.sw-panel .sw-bar[aria-current=true]')")
    keys = [int(k) for k in page.eval_on_selector_all(".sw-panel [data-sw-feature]", "els => els.map((e) => e.dataset.swFeature)")]
    assert keys == list(range(403, 418))  # 15 outputs around the hovered 410
    assert page.get_attribute(".sw-panel .sw-bar[aria-current=true]", "data-sw-feature") == "410"
    values = [float(v) for v in page.locator(".sw-panel .sw-bar-value").all_text_contents()]
    np.testing.assert_allclose(values, big.jacobian[403:418, 5], rtol=1e-3, atol=1e-5)


def test_column_labels_never_collide_or_get_cut(show):
    torch.manual_seed(0)
    names = ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
             "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280/od315_of_diluted_wines", "proline"]
    g = JacobianGrid(torch.nn.Linear(13, 3), batch(1, 13), feature_names=names)
    page = show(g)
    found = page.evaluate(COLLIDE_JS)
    assert found["count"] == 13 and found["overlaps"] == 0 and found["cut"] == 0
    titles = page.eval_on_selector_all(".sw-collabels span", "els => els.map((e) => e.title)")
    assert titles == names
    assert overflowing(page) == []


def test_fifty_tiles_flow_inside_the_card(show, artifacts):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(2 * 8 * 8, 50)).eval()
    g = JacobianGrid(model, batch(1, 3, 8, 8, seed=1))
    page = show(g)
    assert page.locator(".sw-tile[data-sw-output]").count() == 50
    assert overflowing(page) == []
    boxes = [page.locator(f'.sw-tile[data-sw-output="{i}"]').bounding_box() for i in range(50)]
    panel = page.locator(".sw-body > .sw-panel").bounding_box()
    for b in boxes:
        assert b["x"] + b["width"] <= panel["x"] + 0.5 or b["y"] >= panel["y"] + panel["height"]  # never under the side panel
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / "grid-50-tiles.png"))
