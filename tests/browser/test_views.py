"""Tier B: the vector and image views of SaliencyMap (issue 10, items 7 and 8)."""

import numpy as np
import pytest
import torch
from _widget_models import batch
from boxes import overflowing

from saliency_widgets import colors
from saliency_widgets.widgets import SaliencyMap

pytestmark = pytest.mark.browser
WINE = ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
        "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280/od315_of_diluted_wines", "proline"]

FILLS = """() => [...document.querySelectorAll('[data-sw-feature]')].map((row) => {
  const fill = row.querySelector('.sw-bar-fill'), label = row.querySelector('.sw-bar-label');
  return { key: +row.dataset.swFeature, left: parseFloat(fill.style.left), width: parseFloat(fill.style.width),
           title: row.title, clipped: label.scrollWidth > label.clientWidth };
})"""


def wine_map():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(13, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).eval()
    return SaliencyMap(model, batch(2, 13), labels=["class_0", "class_1", "class_2"], feature_names=WINE)


def test_every_feature_is_listed_with_its_full_name(show, artifacts):
    w = wine_map()
    page = show(w)
    rows = page.evaluate(FILLS)
    assert [r["key"] for r in rows] == list(range(13))
    assert [r["title"] for r in rows] == WINE
    assert not any(r["clipped"] for r in rows)
    assert overflowing(page) == []
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / "views-vector-wine.png"))


@pytest.mark.parametrize("sign", ["negative", "absolute_value"])
def test_bars_follow_the_sign_mode(show, sign):
    w = wine_map()
    page = show(w)
    page.evaluate(f"window.__sw.kernelSet('sign', '{sign}')")
    page.evaluate("new Promise(requestAnimationFrame)")
    rows = page.evaluate(FILLS)
    shown = colors.sign_transform(w.attribution, sign)
    assert all(r["left"] == 0 for r in rows)  # every bar grows right from zero
    widths = np.array([r["width"] for r in rows])
    np.testing.assert_allclose(widths, np.maximum(shown / shown.max() * 100, 0.5), rtol=1e-4)


def test_more_than_48_features_scroll_strongest_first(show):
    torch.manual_seed(0)
    w = SaliencyMap(torch.nn.Linear(60, 2), batch(1, 60), feature_names=[f"f{i}" for i in range(60)])
    page = show(w)
    keys = [r["key"] for r in page.evaluate(FILLS)]
    assert sorted(keys) == list(range(60))
    assert keys == sorted(range(60), key=lambda k: (-abs(float(w.attribution[k])), k))
    assert page.evaluate("(() => { const l = document.querySelector('.sw-features'); return l.scrollHeight > l.clientHeight; })()")


def test_image_view_draws_the_samples_own_picture_darkened_and_the_prediction(show, artifacts):
    from _widget_models import cnn
    from pixels import canvas_rgba

    from saliency_widgets.inputs import background_image

    x = batch(3, 3, 8, 8, seed=1)
    yy, xx = np.mgrid[0:8, 0:8]
    strokes = np.stack([(np.abs(xx - 2 - i) < 1).astype(float) for i in range(3)])  # white strokes on black
    w = SaliencyMap(cnn(), x, image=strokes, y=[1, 2, 3], index=2)
    page = show(w)
    grey = canvas_rgba(page, '[data-sw-role="input-image"]')
    want = colors.greyscale(background_image(x[2], w._layout_info, strokes[2]))
    np.testing.assert_array_equal(grey[..., 0], want)
    assert set(np.unique(want)) == {colors.BACKDROP_BLACK, colors.BACKDROP_WHITE}
    predicted = w._labels[int(w._all_scores("logits")[2].argmax())]
    text = page.text_content('[data-sw-role="prediction"]')
    assert text.startswith(f"predicted “{predicted}” · true “3”")
    assert overflowing(page) == []
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / "views-image-strokes.png"))
