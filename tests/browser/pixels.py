"""Reading canvases back from the page (shared by the browser tests and benchmarks)."""

from __future__ import annotations

import numpy as np

READ_CANVAS = """([sel, nth]) => {
  const c = document.querySelectorAll(sel)[nth];
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  return { w: c.width, h: c.height, px: Array.from(d) };
}"""


def canvas_rgba(page, selector: str, nth: int = 0) -> np.ndarray:
    """The pixels of the ``nth`` canvas matching ``selector`` as (h, w, 4) uint8."""
    got = page.evaluate(READ_CANVAS, [selector, nth])
    return np.array(got["px"], dtype=np.uint8).reshape(got["h"], got["w"], 4)
