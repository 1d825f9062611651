"""Layout checks: nothing of a widget sticks out of its card."""

from __future__ import annotations

# Every visible element's box against the first card's (children of scroll boxes are clipped by them
# and skipped), as [class name, overflow in px].
OVERFLOW_JS = """() => { const card = document.querySelector('.sw-root').getBoundingClientRect(); const out = [];
  for (const el of document.querySelectorAll('.sw-root *')) {
    const r = el.getBoundingClientRect(), s = getComputedStyle(el);
    if (!r.width || !r.height || s.display === 'none' || el.closest('[role=tooltip]')) continue;
    if (el.closest('.sw-scroller, .sw-grid, .sw-list') && !el.matches('.sw-scroller, .sw-grid, .sw-list')) continue;
    const over = Math.max(card.left - r.left, r.right - card.right, card.top - r.top, r.bottom - card.bottom);
    if (over > 0.5) out.push([el.className || el.tagName, Math.round(over)]);
  } return out; }"""


def overflowing(page) -> list:
    """The elements of the page's first widget that stick out of its card (empty when none)."""
    return page.evaluate(OVERFLOW_JS)
