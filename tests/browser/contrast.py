"""WCAG contrast of every piece of text in a widget against the background it is drawn on."""

from __future__ import annotations

# For each visible element with its own text: the text colour and the background behind it
# (ancestors' backgrounds composited up to the page), both resolved to RGBA by painting them on a
# canvas (so rgb(), color(srgb …), color-mix() all work), and the WCAG 2 contrast ratio.
CONTRAST_JS = """(selector) => {
  const ctx = document.createElement('canvas').getContext('2d', { willReadFrequently: true });
  const rgba = (css) => { ctx.clearRect(0, 0, 1, 1); ctx.fillStyle = '#000'; ctx.fillStyle = css; ctx.fillRect(0, 0, 1, 1);
    const [r, g, b, a] = ctx.getImageData(0, 0, 1, 1).data; return [r, g, b, a / 255]; };
  const over = (top, under) => top.slice(0, 3).map((c, i) => c * top[3] + under[i] * (1 - top[3])).concat([1]);
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement || (e.getRootNode() instanceof ShadowRoot ? e.getRootNode().host : null)) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    return layers.reverse().reduce((acc, c) => over(c, acc), [255, 255, 255, 1]);
  };
  const lum = ([r, g, b]) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const out = [];
  for (const root of document.querySelectorAll(selector)) {
    for (const el of [root, ...root.querySelectorAll('*')]) {
      const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      const box = el.getBoundingClientRect();
      if (!own || box.width === 0 || box.height === 0 || el.closest('[role=tooltip]')) continue;
      const style = getComputedStyle(el);
      if (style.visibility === 'hidden' || +style.opacity === 0) continue;
      const bg = background(el);
      const fg = over(rgba(style.color), bg);
      const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      out.push({ text: el.textContent.trim().slice(0, 40), ratio: (hi + 0.05) / (lo + 0.05), fg: fg.slice(0, 3).map(Math.round), bg: bg.slice(0, 3).map(Math.round) });
    }
  }
  return out;
}"""


def text_contrasts(page, selector: str = "[data-sw-widget]") -> list[dict]:
    """``{text, ratio, fg, bg}`` for every visible text element under ``selector``."""
    return page.evaluate(CONTRAST_JS, selector)


def assert_readable(page, selector: str = "[data-sw-widget]", minimum: float = 4.5) -> float:
    """Fails listing the text whose contrast is below ``minimum``; returns the lowest ratio."""
    found = text_contrasts(page, selector)
    assert found, f"no text found under {selector}"
    low = [f for f in found if f["ratio"] < minimum]
    assert not low, f"text below {minimum}:1 contrast: {low[:8]}"
    return min(f["ratio"] for f in found)
