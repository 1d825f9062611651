"""Tier B: JacobianGrid with many outputs (issue 10, item 3): search, top-k, virtual rows, hover panel,
tiles and labels that stay inside the card."""

import numpy as np
import pytest
import torch
from _widget_models import batch, cnn
from boxes import overflowing
from pixels import canvas_rgba
from viewports import SCHEMES, WIDTHS, at_width  # noqa: F401 (a fixture)

from saliency_widgets import colors
from saliency_widgets.export import faint_underlay, format_value
from saliency_widgets.transport import from_wire
from saliency_widgets.widgets import JacobianGrid, SaliencyMap

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
    full = page.eval_on_selector_all(".sw-collabels span", "els => els.map((e) => e.dataset.swName)")
    assert full == names
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


# ------------------------------------------------------------- issue 24, items 9 and 10
#: Geometry of the column labels: the slant, each label's anchor (its column end, px in the label band),
#: its line box, and the boxes of the band, the heatmap and the card.
LABELS_JS = """() => { const band = document.querySelector('.sw-collabels');
  const spans = [...band.querySelectorAll('span')];
  const rect = (e) => { const r = e.getBoundingClientRect(); return { left: r.left, right: r.right, top: r.top, bottom: r.bottom }; };
  return { angle: Number(band.dataset.swAngle), band: rect(band), clip: rect(band.parentElement),
    card: rect(document.querySelector('.sw-root')), heat: rect(document.querySelector('[data-sw-role=heatmap]')),
    labels: spans.map((s) => ({ column: Number(s.dataset.swColumn), name: s.dataset.swName, text: s.textContent,
      left: parseFloat(s.style.left), line: s.offsetHeight, box: rect(s) })) }; }"""


def column_names(n: int) -> list[str]:
    return [f"input_feature_{j}" + (" (a long, long description)" if j % 6 == 3 else "") for j in range(n)]


@pytest.fixture(scope="module")
def wide():
    torch.manual_seed(0)
    return JacobianGrid(torch.nn.Linear(64, 1000).eval(), batch(1, 64), labels=[f"class {i:03d}" for i in range(1000)],
                        feature_names=column_names(64))


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_dense_column_labels_slant_thin_out_and_show_full_names_on_hover(at_width, wide, artifacts, scheme, width):
    page = at_width(wide, scheme, width)
    geo = page.evaluate(LABELS_JS)
    labels = geo["labels"]
    assert geo["angle"] == 45 and 8 <= len(labels) < 64  # slanted and thinned out
    slant = np.sin(np.radians(geo["angle"]))
    gaps = np.diff([lab["left"] for lab in labels])
    assert (gaps * slant >= max(lab["line"] for lab in labels) - 0.01).all()  # one line apart across the slant: no overlap
    for lab in labels:
        assert lab["box"]["top"] >= geo["band"]["top"] - 0.5 and lab["box"]["bottom"] <= geo["band"]["bottom"] + 0.5
        assert lab["box"]["left"] >= geo["card"]["left"]
        assert lab["text"] == lab["name"] or lab["text"].endswith("…") and lab["name"].startswith(lab["text"][:-1])
    assert geo["clip"]["right"] <= geo["card"]["right"] + 0.5  # labels beyond a narrow card are cut by their own band
    cut = next(lab for lab in labels if lab["text"].endswith("…"))
    column = cut["column"]
    page.hover(f'.sw-collabels span[data-sw-column="{column}"]')
    page.wait_for_function("document.querySelector('[role=tooltip]').style.display === 'block'")
    assert page.text_content("[role=tooltip]") == cut["name"]
    mark = page.evaluate("(() => { const r = document.querySelector('[data-sw-role=column-mark]').getBoundingClientRect(); return [r.left, r.right]; })()")
    col = (geo["heat"]["right"] - geo["heat"]["left"]) / 64
    assert abs(mark[0] - (geo["heat"]["left"] + column * col)) < 1 and abs(mark[1] - mark[0] - col) < 1
    page.mouse.move(0, 0)
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"grid-column-labels-{scheme}-{width}.png"))


def test_column_labels_follow_the_heatmap_when_it_scrolls_sideways(at_width, wide):
    page = at_width(wide, "light", 500)
    assert page.evaluate("(() => { const s = document.querySelector('.sw-scroller'); return s.scrollWidth > s.clientWidth; })()")
    left = page.evaluate("(() => { const s = document.querySelector('.sw-scroller'); s.scrollLeft = s.scrollWidth; return s.scrollLeft; })()")
    assert left > 40
    page.wait_for_function(f"document.querySelector('.sw-collabels').style.transform === 'translateX({-left}px)'")
    geo = page.evaluate(LABELS_JS)
    col = (geo["heat"]["right"] - geo["heat"]["left"]) / 64
    for lab in geo["labels"]:  # each label still ends at its column
        assert abs(geo["band"]["left"] + lab["left"] - (geo["heat"]["left"] + (lab["column"] + 0.5) * col)) < 1


def digits_grid(labels=None) -> JacobianGrid:
    """An (untrained) CNN on two of scikit-learn's 8×8 digits: tiles over a picture with shapes in it."""
    datasets = pytest.importorskip("sklearn.datasets")
    x = (datasets.load_digits().images[:2] / 16).astype(np.float32)[:, None]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(4 * 64, 10)).eval()
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    return JacobianGrid(model, x, labels=labels or [f"digit {k}: {names[k]}, written by hand" for k in range(10)])


def stage_cells(page, flat: int, rows: int, cols: int) -> np.ndarray:
    """What the screen shows at the centre of each cell of tile ``flat`` (a screenshot, RGB)."""
    import io

    from PIL import Image

    stage = page.locator(f'.sw-tile[data-sw-output="{flat}"] .sw-stage')
    box = stage.bounding_box()
    shot = np.asarray(Image.open(io.BytesIO(stage.screenshot())).convert("RGB"))
    ys = ((np.arange(rows) + 0.5) * box["height"] / rows).astype(int)
    xs = ((np.arange(cols) + 0.5) * box["width"] / cols).astype(int)
    return shot[np.ix_(ys, xs)]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_image_tiles_lie_over_a_faint_input_with_whole_captions(at_width, artifacts, scheme, width):
    g = digits_grid()
    page = at_width(g, scheme, width)
    display = from_wire(g._jacobian)
    m = colors.scale_max(display)
    under = faint_underlay(from_wire(g._image))
    scores = g._all_scores("logits")[0]
    for flat in (0, 3, 9):
        px = canvas_rgba(page, f'.sw-tile[data-sw-output="{flat}"] [data-sw-role="underlay"]')
        np.testing.assert_array_equal(px[..., 0], under)
        assert (px[..., 3] == 255).all()
        heat = canvas_rgba(page, f'canvas[data-sw-output="{flat}"]')  # LUT colours, transparent where the value is 0
        want = colors.colorize(display[flat], m=m)
        want[..., 3] = colors.overlay_alpha(colors.to_index(display[flat], "all", m), "all")
        np.testing.assert_array_equal(heat[..., 3], want[..., 3])
        composite = colors.overlay(want, under, 1.0)  # what the export draws
        np.testing.assert_allclose(colors.overlay(heat, under, 1.0), composite, atol=1)  # (the canvas keeps colours premultiplied)
        np.testing.assert_allclose(stage_cells(page, flat, 8, 8), composite, atol=2)  # and what the screen shows
    captions = page.evaluate("""() => [...document.querySelectorAll('.sw-tile')].map((t) => { const c = t.querySelector('.sw-tile-label');
        const r = c.getBoundingClientRect(), b = t.getBoundingClientRect();
        return { name: c.querySelector('.sw-tile-name').textContent, score: c.querySelector('.sw-tile-score').textContent,
                 fits: c.scrollWidth <= c.clientWidth + 1 && r.left >= b.left - 0.5 && r.right <= b.right + 0.5 && r.bottom <= b.bottom + 0.5,
                 box: [b.left, b.top, b.right, b.bottom] }; })""")
    assert [c["name"] for c in captions] == [g._labels[i] for i in range(10)]
    assert [c["score"] for c in captions] == [format_value(scores[i]) for i in range(10)]
    assert all(c["fits"] for c in captions)
    boxes = [c["box"] for c in captions]
    for i, a in enumerate(boxes):  # tiles never overlap, however long their captions
        assert not any(a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5 for b in boxes[i + 1:])
    assert overflowing(page) == []
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"grid-tiles-underlay-{scheme}-{width}.png"))


FOCUS_JS = """(sel) => { const e = document.querySelector(sel), s = getComputedStyle(e);
  return { focused: e === document.activeElement && e.matches(':focus-visible'), outline: s.outlineStyle, outlineColor: s.outlineColor,
           width: parseFloat(s.outlineWidth), border: s.borderTopColor, text: s.color, pressed: e.getAttribute('aria-pressed'),
           accent: getComputedStyle(document.querySelector('.sw-root')).getPropertyValue('--sw-accent') }; }"""


def focus_by_keyboard(page, selector: str) -> None:
    """Tabs from the search box until ``selector`` has the focus (keyboard focus: :focus-visible applies)."""
    page.focus('[data-sw-role="search"]')
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches('{selector}')"):
            return
    raise AssertionError(f"Tab never reached {selector}")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_keyboard_focus_ring_is_not_the_selection(at_width, artifacts, scheme):
    g = digits_grid()
    page = at_width(g, scheme, 1100)
    selected = f'.sw-tile[data-sw-output="{g.selected}"]'
    focus_by_keyboard(page, selected)  # the roving tab stop is the selected tile
    both = page.evaluate(FOCUS_JS, selected)
    assert both["focused"] and both["pressed"] == "true"
    assert both["outline"] == "dashed" and both["width"] >= 2 and both["outlineColor"] == both["text"]  # the text colour
    assert both["border"] != both["outlineColor"]  # the selection keeps its own (accent) border
    other = (g.selected + 2) % 10
    page.keyboard.press("ArrowRight")  # arrows move focus and selection together: focus one by hand
    page.evaluate(f"document.querySelector('.sw-tile[data-sw-output=\"{other}\"]').focus()")
    ring = page.evaluate(FOCUS_JS, f'.sw-tile[data-sw-output="{other}"]')
    now = page.evaluate("document.querySelector('.sw-tile[aria-pressed=true]').dataset.swOutput")
    pressed = page.evaluate(FOCUS_JS, f'.sw-tile[data-sw-output="{now}"]')
    assert ring["focused"] and ring["pressed"] == "false" and ring["outline"] == "dashed"
    assert pressed["outline"] == "none" and pressed["border"] != ring["outlineColor"]  # selected, not focused: no ring
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"grid-focus-vs-selection-{scheme}.png"))

    rows = JacobianGrid(torch.nn.Linear(6, 4), batch(1, 6), labels=["a", "b", "c", "d"])
    page = at_width(rows, scheme, 1100)
    page.focus('.sw-rowlabels [data-sw-output="0"]')
    page.keyboard.press("ArrowDown")
    page.wait_for_function("document.activeElement.dataset.swOutput === '1'")
    row = page.evaluate(FOCUS_JS, '.sw-rowlabels [data-sw-output="1"]')
    assert row["focused"] and row["outline"] == "dashed" and row["outlineColor"] == row["text"]


def test_the_new_selection_is_announced(show):
    g = digits_grid(labels=[f"class_{k}" for k in range(10)])
    page = show(g)
    live = '[data-sw-role="announce"]'
    assert page.get_attribute(live, "aria-live") == "polite" and page.text_content(live) == ""  # nothing new yet
    page.click('.sw-tile[data-sw-output="3"]')
    page.wait_for_function(f"document.querySelector('{live}').textContent === 'selected output 3: class_3'")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"document.querySelector('{live}').textContent === 'selected output 4: class_4'")
    page.evaluate("window.__sw.kernelSet('selected', 7)")  # set from Python
    page.wait_for_function(f"document.querySelector('{live}').textContent === 'selected output 7: class_7'")
    box = page.locator(live).bounding_box()
    assert box["width"] <= 1 and box["height"] <= 1  # heard, not seen


FIVE_DIGITS_JS = """(sel) => { const box = document.querySelector(sel); const s = getComputedStyle(box);
  const ctx = document.createElement('canvas').getContext('2d'); ctx.font = s.font;
  const room = box.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight) - 16;  // Chromium's spin buttons
  return { room, needed: ctx.measureText('99999').width }; }"""


def test_the_sample_box_holds_five_digits(show, capsys):
    page = show(digits_grid())
    fit = page.evaluate(FIVE_DIGITS_JS, '[data-sw-action="index"]')
    assert fit["room"] >= fit["needed"], fit
    page = show(SaliencyMap(cnn(), batch(2, 3, 8, 8, seed=1)))  # the same box in the SaliencyMap: reported, owned elsewhere
    other = page.evaluate(FIVE_DIGITS_JS, '[data-sw-action="index"]')
    with capsys.disabled():
        print(f"\nSaliencyMap sample box: {other['room']:.0f} px of room for {other['needed']:.0f} px of '99999'")
