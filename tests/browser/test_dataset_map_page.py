"""Tier B: the DatasetMap gallery on 10,000 digits in headless Chromium — smooth scrolling in bounded
memory, thumbnails asked for page by page, filters and sorts, opening a sample, themes, the offline page.

The kernel's side is played by the test: it answers the page's page requests with the widget's own
``thumbnails`` and applies the page's trait changes to the widget, counting every message."""

import base64
import json
import time

import numpy as np
import pytest
import torch
from contrast import assert_readable
from kernel import kernel_answers
from pixels import canvas_rgba

import saliency_widgets as sw
from saliency_widgets import colors
from saliency_widgets.widgets.dataset_map import PAGE
from saliency_widgets.widgets.standalone import standalone_html

pytestmark = pytest.mark.browser
N = 10_000
GALLERY = '[data-sw-role="gallery"]'

# Scrolls the gallery by `step` pixels per animation frame for `frames` frames, recording each frame's time.
SCROLL = """([step, frames]) => {
  const g = document.querySelector('[data-sw-role="gallery"]');
  const run = window.__scroll = { times: [], done: false };
  let k = 0;
  const tick = (t) => { run.times.push(t); g.scrollTop += step; if (++k < frames) requestAnimationFrame(tick); else run.done = true; };
  requestAnimationFrame(tick);
}"""

# The pixels of sample i's map thumbnail, read from the row canvas under its cell.
THUMB = """(i) => {
  const box = document.querySelector(`[data-sw-sample="${i}"] [data-sw-role="thumb-map"]`).getBoundingClientRect();
  const rows = [...document.querySelectorAll('[data-sw-role="gallery-row"]')].filter((c) => !c.hidden);
  const c = rows.find((c) => Math.abs(c.getBoundingClientRect().top - box.top) < 0.5);
  const r = c.getBoundingClientRect();
  const d = c.getContext("2d").getImageData(Math.round(box.left - r.left), 0, box.width, box.height).data;
  return { w: box.width, h: box.height, px: Array.from(d) };
}"""


def digits_data(n=N, seed=0):
    """sklearn's 1,797 digits repeated and noised to ``n`` samples, with their labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    reps = -(-n // len(d.images))
    rng = np.random.default_rng(seed)
    base = np.concatenate([d.images / 16.0] * reps)[:n]
    x = np.clip(base + rng.normal(0, 0.1, base.shape), 0, 1).astype(np.float32)[:, None]
    return x, np.concatenate([d.target] * reps)[:n]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A small CNN trained a little on the digits (so it makes mistakes) and its gradient maps of all
    10,000 samples, timed."""
    x, y = digits_data()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 64, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(30):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(torch.tensor(x[:1797])), torch.tensor(y[:1797])).backward()
        opt.step()
    model.eval()
    start = time.perf_counter()
    result = sw.attribute_dataset(model, x, labels=y, method="gradient", path=tmp_path_factory.mktemp("digits"),
                                  batch_size=1000, progress=False)
    seconds = time.perf_counter() - start
    assert seconds < 30, f"attributing 10,000 digits took {seconds:.1f} s"
    return model, x, y, result, seconds


class Kernel:
    """The kernel's side of the page: answers page requests, applies trait changes, counts messages."""

    def __init__(self, page, widget):
        self.page, self.widget, self.seen = page, widget, 0
        self.requests: list[list[int]] = []
        self.saves: list[dict] = []

    def serve(self) -> None:
        """Handles the messages the page sent since the last call, as the kernel would."""
        log = self.page.evaluate(f"window.__sw.log.slice({self.seen})")
        self.seen += len(log)
        for entry in log:
            if entry["type"] == "send" and entry["content"].get("type") == "thumbs":
                indices = entry["content"]["indices"]
                self.requests.append(indices)
                meta, buffers = self.widget.thumbnails(indices)
                self.page.evaluate("([m, b]) => window.__sw.kernelSend(m, b)", [
                    {"type": "thumbs", "id": entry["content"]["id"], **meta},
                    [base64.b64encode(b).decode() for b in buffers]])
            elif entry["type"] == "save_changes":
                changes = entry["changes"]
                self.saves.append(changes)
                self.widget.set_state(changes)
                answers = ["_detail"] if "selected" in changes else ["_thumb", "_first_page", "_shown"]
                kernel_answers(self.page, self.widget, *answers)

    def scroll(self, step: int, frames: int) -> np.ndarray:
        """Scrolls ``frames`` frames of ``step`` pixels, answering requests meanwhile; the frame times (ms)."""
        self.page.evaluate(SCROLL, [step, frames])
        while not self.page.evaluate("window.__scroll.done"):
            self.serve()
            time.sleep(0.005)
        return np.array(self.page.evaluate("window.__scroll.times"))

    def settle(self) -> None:
        """Lets the page ask for the pages it still lacks and answers them."""
        for _ in range(4):
            self.page.wait_for_timeout(150)
            self.serve()


def fps(times: np.ndarray) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) * 1000.0


def shown_samples(page) -> list[int]:
    """The samples the gallery draws, in gallery order."""
    return page.evaluate("""() => [...document.querySelectorAll('[data-sw-sample]')].filter((c) => !c.hidden)
      .map((c) => [+c.getAttribute('aria-posinset'), +c.dataset.swSample]).sort((a, b) => a[0] - b[0]).map((p) => p[1])""")


def position(page, widget) -> int:
    """The gallery position of the first sample drawn."""
    return int(np.flatnonzero(widget.shown == shown_samples(page)[0])[0])


def thumb_cells(page, i: int) -> np.ndarray:
    """Sample ``i``'s map thumbnail as drawn, one RGBA value per cell (each cell's centre pixel)."""
    got = page.evaluate(THUMB, i)
    px = np.array(got["px"], dtype=np.uint8).reshape(int(got["h"]), int(got["w"]), 4)
    zoom = px.shape[0] // 8
    return px[zoom // 2::zoom, zoom // 2::zoom]


def test_ten_thousand_samples_scroll_smoothly_in_bounded_memory(show, digits, artifacts):
    model, x, y, result, seconds = digits
    w = result.widget(model, x)
    page = show(w)
    kernel = Kernel(page, w)
    kernel.serve()
    first_page = set(w.shown[:PAGE].tolist())
    assert len(kernel.requests) <= 1 and not first_page & set(sum(kernel.requests, []))  # page 0 came with the state
    visible = len(shown_samples(page))
    assert 0 < visible < 150  # only the rows in view (± a margin) exist

    runs: dict = {"attribute_dataset_s": round(seconds, 2)}
    for name, step, frames in [("slow", 40, 240), ("fling", 600, 240)]:
        before, start = len(kernel.requests), position(page, w)
        rates, span = [], 0
        for attempt in range(3):  # on a loaded machine a run can miss a few frames: up to 3 runs, there and back
            rates.append(round(fps(kernel.scroll(step if attempt % 2 == 0 else -step, frames)), 1))
            span = max(span, abs(position(page, w) - start))
            if rates[-1] >= 50:
                break
        runs[f"{name}_fps"] = rates
        runs[f"{name}_requests"] = len(kernel.requests) - before
        runs[f"{name}_samples_passed"] = span
        # frame rates are recorded (dataset-map-scroll.json, quoted in the closing note), not asserted:
        # a bound on time fails on a loaded shared machine
    kernel.settle()
    heap = page.evaluate("performance.memory.usedJSHeapSize") / 2**20
    runs["heap_mb"] = round(heap, 1)
    runs["requests"] = len(kernel.requests)
    runs["samples_sent"] = sum(map(len, kernel.requests))
    runs["cells"] = len(shown_samples(page))
    (artifacts / "dataset-map-scroll.json").write_text(json.dumps(runs, indent=1))
    assert heap <= 100, runs
    assert all(0 < len(r) <= PAGE for r in kernel.requests), runs
    # slow scrolling asks for about one page per 64 samples passed; a fling asks only where it stops
    assert runs["slow_requests"] <= runs["slow_samples_passed"] / PAGE + 3, runs
    assert runs["samples_sent"] < N / 4, runs
    assert runs["cells"] < 150, runs

    # after scrolling, the thumbnails in view are the stored maps, each on its own scale
    on_screen = shown_samples(page)
    top = page.evaluate(f"document.querySelector('{GALLERY}').scrollTop")
    assert top > 0 and on_screen[0] > 0
    lut = colors.sign_lut("all")
    for i in on_screen[len(on_screen) // 2: len(on_screen) // 2 + 3]:
        display = np.asarray(result.values[i])[0]
        expected = lut[colors.to_index(display, "all", colors.scale_max(display))]
        np.testing.assert_array_equal(thumb_cells(page, i), expected)


def test_filters_and_sort_change_what_is_shown(show, digits):
    model, x, y, result, _ = digits
    w = result.widget(model, x)
    page = show(w)
    kernel = Kernel(page, w)
    pred = np.asarray(result.predictions)
    with torch.no_grad():
        p = torch.softmax(model(torch.tensor(x)), dim=1).numpy()

    page.select_option('[data-sw-action="klass"]', "8")
    kernel.serve()
    assert kernel.saves[-1] == {"klass": 8}
    np.testing.assert_array_equal(w.shown, np.flatnonzero(y == 8))
    assert shown_samples(page) == w.shown[:len(shown_samples(page))].tolist()
    assert page.get_attribute('[data-sw-class="8"]', "aria-pressed") == "true"

    page.click('[data-sw-action="mistakes-only"]')
    kernel.serve()
    page.select_option('[data-sw-action="sort"]', "confidence")
    kernel.serve()
    assert kernel.saves[-2:] == [{"mistakes_only": True}, {"sort": "confidence"}]
    wrong = np.flatnonzero((y == 8) & (pred != 8))
    expected = wrong[np.argsort(-p[wrong].max(axis=1), kind="stable")]
    np.testing.assert_array_equal(w.shown, expected)
    drawn = shown_samples(page)
    assert drawn == expected[:len(drawn)].tolist() and len(drawn) == min(len(expected), len(drawn))
    assert page.text_content('[data-sw-role="count"]').startswith(f"{len(expected)} of 10,000 samples")
    assert page.locator('[data-sw-sample]:not([hidden])[data-mistake="true"]').count() == len(drawn)

    page.click('[data-sw-class="8"]')  # clicking the filtered class's mean clears the class filter
    kernel.serve()
    page.select_option('[data-sw-action="predicted"]', "1")
    kernel.serve()
    page.click('[data-sw-action="ascending"]')
    kernel.serve()
    assert kernel.saves[-3:] == [{"klass": None}, {"predicted": 1}, {"ascending": True}]
    both = np.flatnonzero((pred == 1) & (pred != y))
    np.testing.assert_array_equal(w.shown, both[np.argsort(p[both].max(axis=1), kind="stable")])
    assert shown_samples(page)[:5] == w.shown[:5].tolist()


def test_clicking_a_thumbnail_opens_its_stored_map(show, digits, artifacts):
    model, x, y, result, _ = digits
    w = result.widget(model, x, mistakes_only=True)
    page = show(w)
    kernel = Kernel(page, w)
    i = int(w.shown[2])
    page.click(f'[data-sw-sample="{i}"]')
    kernel.serve()
    assert kernel.saves == [{"selected": i}] and w.selected == i
    page.wait_for_selector(f'[data-sw-sample="{i}"][aria-selected="true"]')
    expected = sw.saliency(model, x[i:i + 1])[0]
    np.testing.assert_allclose(w.attribution, expected, rtol=1e-5, atol=1e-6)
    display = w.attribution[0]
    np.testing.assert_array_equal(canvas_rgba(page, '[data-sw-role="detail-map"]'), colors.colorize(display))
    np.testing.assert_array_equal(thumb_cells(page, i), colors.colorize(display))  # the thumbnail: the same colours
    assert f"Sample #{i}" in page.text_content('[data-sw-role="detail"]')
    assert "mistake" in page.text_content('[data-sw-role="detail"]')
    assert page.get_attribute('[data-sw-role="status"]', "data-busy") == "false"
    page.focus(GALLERY)
    page.keyboard.press("ArrowRight")  # the next sample in the gallery
    kernel.serve()
    assert kernel.saves[-1] == {"selected": int(w.shown[3])}
    page.click('[data-sw-action="close-sample"]')
    kernel.serve()
    assert w.selected is None and w.attribution is None


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_light_and_dark_screenshots(chromium, digits, tmp_path, artifacts, scheme):
    model, x, y, result, _ = digits
    w = result.widget(model, x, sort="margin", ascending=True, selected=7)
    context = chromium.new_context(viewport={"width": 1100, "height": 1300}, color_scheme=scheme)
    try:
        page = context.new_page()
        path = tmp_path / f"{scheme}.html"
        path.write_text(standalone_html(w, background="#1e1e1e" if scheme == "dark" else "#ffffff"), encoding="utf-8")
        page.goto(path.as_uri())
        page.wait_for_function("window.__sw && window.__sw.ready", timeout=30_000)
        kernel = Kernel(page, w)
        kernel.settle()
        style = page.evaluate("getComputedStyle(document.querySelector('.sw-root')).colorScheme")
        assert style == scheme
        assert_readable(page)
        page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"dataset-map-{scheme}.png"))
    finally:
        context.close()


def test_offline_page_shows_the_first_page_and_says_the_rest_needs_a_kernel(chromium, digits, tmp_path):
    model, x, y, result, _ = digits
    w = result.widget(model, x, sort="confidence")
    path = w.to_html(tmp_path / "gallery.html")
    assert path.stat().st_size < 1_500_000
    context = chromium.new_context(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        page.wait_for_function("window.__sw && window.__sw.ready", timeout=30_000)
        note = page.text_content('[data-sw-role="offline-note"]')
        assert page.is_visible('[data-sw-role="offline-note"]') and "need a running kernel" in note
        assert page.is_disabled('[data-sw-action="sort"]') and page.is_disabled('[data-sw-action="klass"]')
        page.evaluate(f"document.querySelector('{GALLERY}').scrollTop = 1e6")
        page.wait_for_timeout(100)
        drawn = shown_samples(page)
        assert set(drawn) <= set(w.shown[:PAGE].tolist()) and w.shown[PAGE - 1] in drawn
        assert page.evaluate("window.__sw.log.filter((e) => e.type === 'send').length") == 0
        i = int(w.shown[PAGE - 1])
        page.click(f'[data-sw-sample="{i}"]')  # an embedded sample opens without a kernel
        page.wait_for_selector('[data-sw-role="detail-map"]', state="visible")
        np.testing.assert_array_equal(canvas_rgba(page, '[data-sw-role="detail-map"]'),
                                      colors.colorize(np.asarray(result.values[i])[0]))
    finally:
        context.close()
    assert not errors, errors
