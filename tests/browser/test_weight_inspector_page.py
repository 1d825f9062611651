"""Tier B: the bundled WeightInspector in headless Chromium with a fake anywidget model.

The fake model plays the kernel: when the page sets ``layer``, it swaps in the
state that the real Python widget produced for that layer.
"""

from __future__ import annotations

import base64
import json
import pathlib
import shutil

import pytest

torch = pytest.importorskip("torch")
sync_api = pytest.importorskip("playwright.sync_api")
from torch import nn  # noqa: E402

from saliency_widgets.widgets.weight_inspector import STATIC, WeightInspector  # noqa: E402

pytestmark = pytest.mark.browser
ROOT = pathlib.Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

FAKE_MODEL = """
async ({ bundle, states, first }) => {
  const fromJson = (v) => v && typeof v === "object"
    ? ("__b64__" in v ? new DataView(Uint8Array.from(atob(v.__b64__), (c) => c.charCodeAt(0)).buffer)
       : Array.isArray(v) ? v.map(fromJson) : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromJson(x)])))
    : v;
  const all = Object.fromEntries(Object.entries(states).map(([k, s]) => [k, fromJson(s)]));
  const handlers = {};
  const fire = (name) => (handlers[name] || []).forEach((cb) => cb());
  window.__saved = [];
  const model = {
    attrs: { ...all[first] },
    get(k) { return this.attrs[k]; },
    set(k, v) { this.attrs[k] = v; fire(`change:${k}`); },
    on(ev, cb) { (handlers[ev] = handlers[ev] || []).push(cb); },
    off(ev, cb) { handlers[ev] = (handlers[ev] || []).filter((f) => cb && f !== cb); },
    save_changes() {
      window.__saved.push(this.attrs.layer);
      const next = all[this.attrs.layer];
      setTimeout(() => { for (const [k, v] of Object.entries(next)) { this.attrs[k] = v; fire(`change:${k}`); } }, 30);
    },
    send() {},
  };
  const url = URL.createObjectURL(new Blob([bundle], { type: "text/javascript" }));
  const mod = await import(url);
  const el = document.createElement("div");
  el.style.width = "1100px";
  document.body.append(el);
  mod.default.render({ model, el });
}
"""


def _jsonable(value):
    if isinstance(value, (bytes, memoryview)):
        return {"__b64__": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class LSTMHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(2, 4, batch_first=True)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1])


@pytest.fixture(scope="module")
def page():
    if not (STATIC / "weight_inspector.js").exists():
        pytest.skip("JS bundle not built (make bundle)")
    torch.manual_seed(0)
    widget = WeightInspector(LSTMHead(), input_shape=(5, 2))
    states = {}
    for name in ("lstm", "head"):
        widget.layer = name
        states[name] = _jsonable(widget.get_state())
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.set_content("<!doctype html><html><body></body></html>")
        pg.evaluate(FAKE_MODEL, {"bundle": (STATIC / "weight_inspector.js").read_text(), "states": states, "first": "lstm"})
        pg.errors = errors
        yield pg
        browser.close()


def _pixels(page, block: str) -> dict:
    return page.evaluate(
        """(name) => { const c = document.querySelector(`[data-sw-block="${name}"]`);
            const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            return { w: c.width, h: c.height, sum: d.reduce((a, b) => a + b, 0) }; }""",
        block,
    )


def test_click_a_layer_redraws_its_blocks(page):
    assert page.locator('[data-sw-widget="weight-inspector"]').count() == 1
    assert page.locator('[data-sw-layer="lstm"]').get_attribute("aria-pressed") == "true"
    assert page.locator("[data-sw-block]").count() == 16
    assert "c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t" in page.locator('[data-sw-role="equation"]').inner_text()
    before = _pixels(page, "input kernel · forget gate")
    assert (before["w"], before["h"]) == (2, 4)

    page.locator('[data-sw-layer="head"]').click()
    page.wait_for_selector('[data-sw-layer="head"][aria-pressed="true"]')
    page.wait_for_selector('[data-sw-block="kernel"]')
    assert page.evaluate("window.__saved") == ["head"]
    assert page.locator("[data-sw-block]").count() == 2
    after = _pixels(page, "kernel")
    assert (after["w"], after["h"]) == (4, 3) and after["sum"] > 0
    assert not page.locator('[data-sw-role="equation"]').is_visible()

    page.locator('[data-sw-block="kernel"]').hover(position={"x": 5, "y": 5})
    tooltip = page.locator(".sw-tooltip")
    tooltip.wait_for(state="visible")
    assert tooltip.inner_text().startswith("kernel [0, 0]")
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator('[data-sw-layer="lstm"]').click()
    page.wait_for_selector('[data-sw-layer="lstm"][aria-pressed="true"]')
    page.wait_for_function("document.querySelectorAll('[data-sw-block]').length === 16")
    page.screenshot(path=str(ARTIFACTS / "weight_inspector.png"), full_page=True)
    assert page.errors == []
