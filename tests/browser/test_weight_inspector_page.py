"""Tier B: the bundled WeightInspector in headless Chromium, in the offline page of
``widgets/standalone.py`` (every layer's state embedded, so clicks switch layers).

Checked for a Keras and a torch LSTM, a GRU, a SimpleRNN, a Conv2d, a
``Linear(784 → 10)`` and an MLP with ReLU: no element of the card lies outside
the card, the page stays compact (heights printed and bounded), the canvases
hold the exact colours of the framework's own weight slices, zoom shows the
full-resolution region, and weightless layers cannot be selected. Screenshots go
to ``test-artifacts/weight_inspector_<model>.png``.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from pixels import canvas_rgba  # noqa: E402
from viewports import SCHEMES, WIDTHS, at_width  # noqa: E402, F401 (a fixture)
from saliency_widgets import colors  # noqa: E402
from saliency_widgets.widgets.standalone import standalone_html  # noqa: E402
from saliency_widgets.widgets.weight_inspector import WeightInspector  # noqa: E402

pytestmark = pytest.mark.browser

CARD = '[data-sw-widget="weight-inspector"]'

#: Every rendered element's box inside the card's (0.5 px tolerance for sub-pixel rounding).
OVERFLOW = """(sel) => {
  const card = document.querySelector(sel);
  const c = card.getBoundingClientRect();
  const out = [];
  for (const e of card.querySelectorAll("*")) {
    const r = e.getBoundingClientRect();
    if ((r.width === 0 && r.height === 0) || !e.checkVisibility()) continue;
    if (r.left < c.left - 0.5 || r.right > c.right + 0.5 || r.top < c.top - 0.5 || r.bottom > c.bottom + 0.5
        || e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX === "visible") {
      out.push(`${e.tagName}.${e.className} ${e.getAttribute("data-sw-block") ?? ""}`);
    }
  }
  return { height: c.height, out };
}"""


class TorchLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 64, batch_first=True)
        self.head = nn.Linear(64, 3)

    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1])


def _keras(*layers, shape):
    keras = pytest.importorskip("keras")
    return keras.Sequential([keras.Input(shape), *layers])


def _models():
    """name → (factory, page height bound in px)."""

    def keras_lstm():
        keras = pytest.importorskip("keras")
        return WeightInspector(_keras(keras.layers.LSTM(64, name="lstm"), keras.layers.Dense(3, name="out"), shape=(5, 8)))

    def simple_rnn():
        keras = pytest.importorskip("keras")
        return WeightInspector(_keras(keras.layers.SimpleRNN(8, name="rnn"), keras.layers.Dense(2, name="out"), shape=(5, 1)))

    return {
        "keras_lstm": (keras_lstm, 1000),
        "torch_lstm": (lambda: WeightInspector(TorchLSTM(), x=np.zeros((1, 5, 8), np.float32)), 1000),
        "gru": (lambda: WeightInspector(nn.Sequential(nn.GRU(3, 16)), input_shape=(4, 3)), 1000),
        "simple_rnn": (simple_rnn, 600),
        "conv2d": (lambda: WeightInspector(nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.MaxPool2d(2)),
                                           x=np.zeros((1, 3, 12, 12), np.float32)), 800),
        "linear784": (lambda: WeightInspector(nn.Sequential(nn.Flatten(), nn.Linear(784, 10))), 400),
        "mlp": (lambda: WeightInspector(nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 10))), 800),
        "stacked_bilstm": (lambda: WeightInspector(nn.Sequential(nn.LSTM(8, 64, num_layers=2, bidirectional=True))), 1000),
    }


@pytest.fixture
def offline(page, tmp_path):
    """The widget's offline page (all layers embedded); returns the page."""

    def _open(widget):
        path = tmp_path / "inspector.html"
        path.write_text(standalone_html(widget, variants=widget._html_variants()), encoding="utf-8")
        page.goto(path.as_uri())
        page.wait_for_function("window.__sw && window.__sw.ready", timeout=30_000)
        return page

    return _open


@pytest.fixture(scope="module")
def heights():
    found: dict[str, float] = {}
    yield found
    print("\nWeightInspector page heights (px):", ", ".join(f"{k} {v:.0f}" for k, v in found.items()))


@pytest.mark.parametrize("name", list(_models()))
def test_card_is_compact_and_nothing_overflows(name, offline, artifacts, heights):
    torch.manual_seed(0)
    make, bound = _models()[name]
    page = offline(make())
    got = page.evaluate(OVERFLOW, CARD)
    heights[name] = got["height"]
    page.screenshot(path=str(artifacts / f"weight_inspector_{name}.png"), full_page=True)
    assert got["out"] == []
    assert got["height"] <= bound


def test_torch_lstm_is_one_gate_matrix_with_exact_colours(offline):
    torch.manual_seed(0)
    model = TorchLSTM()
    w = WeightInspector(model, x=np.zeros((1, 5, 8), np.float32))
    page = offline(w)
    assert page.locator("[data-sw-block]").count() == 16
    assert page.locator('[data-sw-layer="lstm"]').get_attribute("aria-pressed") == "true"
    assert "out 5×64" in page.text_content('[data-sw-layer="lstm"]')
    lstm = model.lstm
    m = max(float(lstm.weight_ih_l0.detach().abs().max()), float(lstm.weight_hh_l0.detach().abs().max()))
    forget_hh = lstm.weight_hh_l0.detach().numpy()[64:128]
    got = canvas_rgba(page, '[data-sw-block="recurrent kernel · forget gate"]')
    np.testing.assert_array_equal(got, colors.colorize(forget_hh, m=m))
    bias = lstm.bias_ih_l0.detach().numpy()[192:256, None]
    np.testing.assert_array_equal(canvas_rgba(page, '[data-sw-block="bias (input-hidden) · output gate"]'), colors.colorize(bias, m=m))
    # the four gate rows of one column line up: same left edge, same width
    boxes = [page.locator(f'[data-sw-block="input kernel · {g} gate"]').bounding_box() for g in ("input", "forget", "cell", "output")]
    assert len({(round(b["x"]), round(b["width"])) for b in boxes}) == 1
    assert all(b2["y"] > b1["y"] + b1["height"] for b1, b2 in zip(boxes, boxes[1:]))


def test_equations_are_typeset_mathml_one_line_each(offline):
    torch.manual_seed(0)
    page = offline(WeightInspector(TorchLSTM(), x=np.zeros((1, 5, 8), np.float32)))
    lines = page.evaluate(
        """() => Array.from(document.querySelectorAll('[data-sw-role="equation"] > math'),
               (m) => ({ label: m.getAttribute("aria-label"), h: m.getBoundingClientRect().height,
                         ns: m.namespaceURI, subs: m.querySelectorAll("msub").length }))"""
    )
    assert [x["label"] for x in lines][4] == "c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t"
    assert len(lines) == 6 and all(x["ns"] == "http://www.w3.org/1998/Math/MathML" for x in lines)
    assert all(x["h"] < 28 for x in lines), lines  # typeset on one line each, never wrapped
    assert lines[0]["subs"] == 7  # i_t, W_ii, x_t, b_ii, W_hi, h_{t−1}, b_hi
    assert page.locator('[data-sw-action="split-gates"]').is_visible()


def test_downsampled_linear_zooms_into_the_exact_region(offline):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    page = offline(WeightInspector(model))
    note = page.locator('[data-sw-role="downsample-note"]')
    assert note.is_visible() and note.inner_text() == "1 cell = 1×3 weights, max |w|"
    weight = model[1].weight.detach().numpy()
    m = float(np.abs(weight).max())
    shown = canvas_rgba(page, '[data-sw-block="kernel"]')
    assert shown.shape[:2] == (10, 262)
    windows = np.pad(weight, ((0, 0), (0, 2)))[:, : 262 * 3].reshape(10, 262, 3)
    picked = np.take_along_axis(windows, np.abs(windows).argmax(-1)[..., None], -1)[..., 0]
    np.testing.assert_array_equal(shown, colors.colorize(picked, m=m))

    page.locator('[data-sw-block="kernel"]').hover(position={"x": 200, "y": 30})
    page.wait_for_selector(".sw-tooltip", state="visible")
    assert "largest |w| of a 1×3 window" in page.text_content(".sw-tooltip")
    page.locator('[data-sw-block="kernel"]').click(position={"x": 200, "y": 30})
    zoom = page.locator('[data-sw-role="zoom-map"]')
    zoom.wait_for(state="visible")
    r0, c0, nr, nc = map(int, zoom.get_attribute("data-sw-region").split(","))
    clicked = int(200 / (page.locator('[data-sw-block="kernel"]').bounding_box()["width"] / 262)) * 3
    assert (r0, nr) == (0, 10) and nc >= 40 and c0 <= clicked < c0 + nc
    np.testing.assert_array_equal(canvas_rgba(page, '[data-sw-role="zoom-map"]'), colors.colorize(weight[:, c0: c0 + nc], m=m))
    cell = zoom.bounding_box()["width"] / nc
    assert cell >= 14 and cell == zoom.bounding_box()["height"] / nr  # every weight in a square of ≥ 14 px
    page.click('[data-sw-action="zoom-close"]')
    assert not zoom.is_visible()


def test_conv_filters_grid_zooms_to_readable_tiles(offline, artifacts):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 16, 3)
    page = offline(WeightInspector(nn.Sequential(conv, nn.ReLU()), x=np.zeros((1, 3, 8, 8), np.float32)))
    assert "16 filters × 3 channels · 3×3 tiles" in page.text_content(".sw-wi-colhead")
    kernel = page.locator('[data-sw-block="kernel"]')
    box = kernel.bounding_box()
    assert box["width"] / 11 >= 6  # tiles readable: at least 6 px per weight
    kernel.click(position={"x": 5, "y": 5})
    page.wait_for_selector('[data-sw-role="zoom-map"]', state="visible")
    r0, c0, nr, nc = map(int, page.get_attribute('[data-sw-role="zoom-map"]', "data-sw-region").split(","))
    got = canvas_rgba(page, '[data-sw-role="zoom-map"]')
    w = conv.weight.detach().numpy()
    m = float(np.abs(w).max())
    # picture row 4f + i, column 4ch + j holds weight[f, ch, i, j]; gaps are transparent
    assert (r0, c0) == (0, 0) and got[3, 0, 3] == 0 and got[0, 3, 3] == 0
    assert page.locator('[data-sw-role="zoom-map"]').bounding_box()["width"] / nc >= 2 * box["width"] / 11  # twice as large
    np.testing.assert_array_equal(got[4 + 1, 4 * 2 + 2], colors.colorize(w[1, 2, 1, 2], m=m))
    page.screenshot(path=str(artifacts / "weight_inspector_conv2d_zoom.png"), full_page=True)


def test_weightless_layers_are_greyed_and_cannot_be_selected(offline):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 10))
    page = offline(WeightInspector(model))
    relu = page.locator('[data-sw-layer="1"]')
    assert relu.get_attribute("aria-disabled") == "true" and relu.get_attribute("tabindex") == "-1"
    assert float(page.evaluate("getComputedStyle(document.querySelector('[data-sw-layer=\"1\"]')).opacity")) < 1
    relu.click(force=True)
    page.wait_for_timeout(50)
    assert page.evaluate("window.__sw.log") == []
    assert page.get_attribute('[data-sw-layer="0"]', "aria-pressed") == "true"
    assert not page.locator('[data-sw-action="split-gates"]').is_visible()

    page.click('[data-sw-layer="2"]')
    page.wait_for_selector('[data-sw-layer="2"][aria-pressed="true"]')
    page.wait_for_function("document.querySelector('[data-sw-block=\"kernel\"]').height === 10")
    kernel = model[2].weight.detach().numpy()
    np.testing.assert_array_equal(canvas_rgba(page, '[data-sw-block="kernel"]'), colors.colorize(kernel, m=float(np.abs(kernel).max())))
    assert [e["changes"] for e in page.evaluate("window.__sw.log")] == [{"layer": "2"}]


#: Contrast ratio (WCAG) of two computed CSS colours, "rgb(r, g, b)" (0–255) or "color(srgb r g b)" (0–1).
CONTRAST = """([fg, bg]) => {
  const lum = (c) => { const unit = c.startsWith("color(") ? 1 : 255;
                       const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map((v) => { v /= unit; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
                       return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""


def test_dark_theme_equations_and_labels_stay_readable(offline, artifacts):
    torch.manual_seed(0)
    page = offline(WeightInspector(TorchLSTM(), x=np.zeros((1, 5, 8), np.float32)))
    page.emulate_media(color_scheme="dark")
    colours = page.evaluate(
        """() => { const s = (sel, p) => getComputedStyle(document.querySelector(sel))[p];
           return { card: s('.sw-root', 'backgroundColor'), eqText: s('[data-sw-role="equation"] math', 'color'),
                    eqBack: s('[data-sw-role="equation"]', 'backgroundColor'), head: s('.sw-wi-rowhead', 'color') }; }"""
    )
    assert page.evaluate(CONTRAST, ["rgb(255, 255, 255)", colours["card"]]) > 10  # a dark card
    assert page.evaluate(CONTRAST, [colours["eqText"], colours["eqBack"]]) >= 4.5
    assert page.evaluate(CONTRAST, [colours["head"], colours["card"]]) >= 4.5
    page.locator('[data-sw-block="recurrent kernel · cell gate"]').click(position={"x": 40, "y": 40})
    page.wait_for_selector('[data-sw-role="zoom-map"]', state="visible")
    page.screenshot(path=str(artifacts / "weight_inspector_torch_lstm_dark.png"), full_page=True)


def test_block_downsampled_by_the_kernel_zooms_with_a_region_from_the_kernel(offline):
    """A 600×1000 kernel arrives 2×2-downsampled; a click asks the kernel (``zoom``) and draws its answer."""
    import base64

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1000, 600))
    w = WeightInspector(model)
    page = offline(w)
    page.locator('[data-sw-block="kernel"]').click(position={"x": 30, "y": 30})
    page.wait_for_function("window.__sw.log.length === 1")
    request = page.evaluate("window.__sw.log[0].changes.zoom")
    assert "from the kernel" in page.text_content('[data-sw-role="zoom"]')
    w.zoom = request  # what the kernel does with the message
    answer = {k: v for k, v in w._zoom.items() if k not in ("values", "index")}
    wires = [{**{k: v for k, v in w._zoom[key].items() if k != "data"}, "b64": base64.b64encode(bytes(w._zoom[key]["data"])).decode()}
             for key in ("values", "index")]
    page.evaluate(
        """([z, [v, i]]) => window.__sw.kernelSet("_zoom", { ...z,
             values: { shape: v.shape, dtype: v.dtype, data: window.__sw.view(v.b64) },
             index: { shape: i.shape, dtype: i.dtype, data: window.__sw.view(i.b64) } })""",
        [answer, wires],
    )
    page.wait_for_selector('[data-sw-role="zoom-map"]', state="visible")
    r0, c0, nr, nc = map(int, page.get_attribute('[data-sw-role="zoom-map"]', "data-sw-region").split(","))
    assert [r0, r0 + nr] == request["rows"] and [c0, c0 + nc] == request["cols"]
    full = model[0].weight.detach().numpy()
    want = colors.colorize(full[r0: r0 + nr, c0: c0 + nc], m=float(np.abs(full).max()))
    np.testing.assert_array_equal(canvas_rgba(page, '[data-sw-role="zoom-map"]'), want)


def test_table_refits_when_the_card_is_resized(offline):
    torch.manual_seed(0)
    page = offline(WeightInspector(TorchLSTM(), x=np.zeros((1, 5, 8), np.float32)))
    block = '[data-sw-block="recurrent kernel · input gate"]'
    before = page.locator(block).bounding_box()["width"]
    page.set_viewport_size({"width": 560, "height": 800})  # the layer list wraps above the table
    page.wait_for_function(f"(w) => document.querySelector('{block}').getBoundingClientRect().width !== w", arg=before)
    assert page.evaluate(OVERFLOW, CARD)["out"] == []
    page.set_viewport_size({"width": 1400, "height": 800})  # wider: cells are capped by the height budget
    page.wait_for_timeout(100)
    assert page.evaluate(OVERFLOW, CARD)["out"] == []
    assert page.locator(block).bounding_box()["width"] == pytest.approx(before, abs=1)


def test_keyboard_moves_over_selectable_layers_and_enter_selects(offline):
    torch.manual_seed(0)
    page = offline(WeightInspector(nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 10))))
    page.focus('[data-sw-layer="0"]')
    page.keyboard.press("ArrowDown")  # skips the ReLU (no weights)
    assert page.evaluate("document.activeElement.dataset.swLayer") == "2"
    page.keyboard.press("Enter")
    page.wait_for_selector('[data-sw-layer="2"][aria-pressed="true"]')
    assert page.evaluate("document.activeElement.dataset.swLayer") == "2"  # focus survives the redraw
    page.keyboard.press("Home")
    assert page.evaluate("document.activeElement.dataset.swLayer") == "0"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def test_offline_page_exports_an_svg_with_the_title_and_the_table(page, tmp_path):
    import xml.etree.ElementTree as ET

    torch.manual_seed(0)
    path = WeightInspector(TorchLSTM(), x=np.zeros((1, 5, 8), np.float32)).to_html(tmp_path / "w.html")
    page.goto(path.as_uri())
    page.wait_for_function("window.__sw && window.__sw.ready", timeout=30_000)
    with page.expect_download() as info:
        page.click('[data-sw-action="export-svg"]')
    assert info.value.suggested_filename == "weights-lstm.svg"
    root = ET.parse(info.value.path()).getroot()
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "Weights of “lstm”" in texts and "c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t" in texts


# ------------------------------------------------------------- issue 24, item 9
RING_JS = """(sel) => { const e = document.querySelector(sel), s = getComputedStyle(e);
  return { focused: e === document.activeElement && e.matches(':focus-visible'), outline: s.outlineStyle,
           outlineColor: s.outlineColor, border: s.borderTopColor, text: s.color, pressed: e.getAttribute('aria-pressed') }; }"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_focus_ring_is_not_the_selection_and_a_new_layer_is_announced(at_width, artifacts, scheme, width):
    torch.manual_seed(0)
    w = WeightInspector(nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 10)))
    page = at_width(w, scheme, width, variants=w._html_variants())
    live = '[data-sw-role="announce"]'
    assert page.get_attribute(live, "aria-live") == "polite" and page.text_content(live) == ""
    page.focus('[data-sw-action="export-png"]')
    while page.evaluate("document.activeElement.dataset.swLayer") != "0":  # Tab into the layer list
        page.keyboard.press("Tab")
    selected = page.evaluate(RING_JS, '[data-sw-layer="0"]')
    assert selected["focused"] and selected["pressed"] == "true" and selected["outline"] == "dashed"
    assert selected["outlineColor"] == selected["text"] != selected["border"]  # the ring: text colour; the selection: accent
    page.keyboard.press("ArrowDown")  # focus moves, the selection stays
    ring = page.evaluate(RING_JS, '[data-sw-layer="2"]')
    assert ring["focused"] and ring["pressed"] == "false" and ring["outline"] == "dashed"
    assert page.evaluate(RING_JS, '[data-sw-layer="0"]')["outline"] == "none"
    page.locator(CARD).screenshot(path=str(artifacts / f"weight_inspector_focus-{scheme}-{width}.png"))
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.querySelector('{live}').textContent === 'selected layer 2 (Linear)'")
    assert page.evaluate(OVERFLOW, CARD)["out"] == []


# Every <text> of an SVG shown in the page: its right edge against the SVG's width.
SVG_TEXT_JS = """() => { const svg = document.querySelector('svg'); const w = svg.viewBox.baseVal.width;
  return { width: w, texts: [...svg.querySelectorAll('text')].map((t) => { const b = t.getBBox();
    return { text: t.textContent, left: b.x, right: b.x + b.width }; }) }; }"""


def test_offline_export_wraps_the_subtitle_and_equations_to_its_width(page, tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.LSTM(8, 64, num_layers=2, bidirectional=True))
    path = WeightInspector(model, input_shape=(5, 8)).to_html(tmp_path / "w.html")
    page.goto(path.as_uri())
    page.wait_for_function("window.__sw && window.__sw.ready", timeout=30_000)
    with page.expect_download() as info:
        page.click('[data-sw-action="export-svg"]')
    page.set_content(pathlib.Path(info.value.path()).read_text(encoding="utf-8"))  # the SVG inline, to measure its text
    got = page.evaluate(SVG_TEXT_JS)
    assert len(got["texts"]) > 10
    assert all(t["left"] >= 0 and t["right"] <= got["width"] for t in got["texts"]), [t["text"] for t in got["texts"] if t["right"] > got["width"]]
    assert any(t["text"].startswith("layer l ≥ 1 reads") for t in got["texts"])  # the notes are there, wrapped
