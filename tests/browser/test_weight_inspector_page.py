"""Tier B: the bundled WeightInspector in headless Chromium with a fake anywidget model.

The fake model plays the kernel: when the page sets ``layer``, it swaps in the
state that the real Python widget produced for that layer.
"""

from __future__ import annotations

import base64

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from saliency_widgets.widgets.weight_inspector import STATIC, WeightInspector  # noqa: E402

pytestmark = pytest.mark.browser

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
def inspector_page(chromium):
    """The bundle in a plain page, driven by a fake model that replays the kernel's states."""
    torch.manual_seed(0)
    widget = WeightInspector(LSTMHead(), input_shape=(5, 2))
    states = {}
    for name in ("lstm", "head"):
        widget.layer = name
        states[name] = _jsonable(widget.get_state())
    pg = chromium.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_content("<!doctype html><html><body></body></html>")
    pg.evaluate(FAKE_MODEL, {"bundle": (STATIC / "weight_inspector.js").read_text(), "states": states, "first": "lstm"})
    pg.errors = errors
    yield pg
    pg.close()


def _pixels(page, block: str) -> dict:
    return page.evaluate(
        """(name) => { const c = document.querySelector(`[data-sw-block="${name}"]`);
            const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            return { w: c.width, h: c.height, sum: d.reduce((a, b) => a + b, 0) }; }""",
        block,
    )


def test_click_a_layer_redraws_its_blocks(inspector_page, artifacts):
    page = inspector_page
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
    page.locator('[data-sw-layer="lstm"]').click()
    page.wait_for_selector('[data-sw-layer="lstm"][aria-pressed="true"]')
    page.wait_for_function("document.querySelectorAll('[data-sw-block]').length === 16")
    page.screenshot(path=str(artifacts / "weight_inspector.png"), full_page=True)
    assert page.errors == []
