"""A widget in a plain page of a given width and OS colour scheme (import the fixture into a test module)."""

from __future__ import annotations

import pytest

#: The page widths the layout checks run at (px).
WIDTHS = (500, 1800)
SCHEMES = ("light", "dark")


@pytest.fixture
def at_width(show_in):
    """``at_width(widget, scheme, width, variants=None)``: the widget's offline page (``variants``: its
    ``_html_variants()``), its Jacobian prefetched, in a ``width`` px wide window with OS colour scheme
    ``scheme`` (conftest's ``show_in``); JavaScript errors fail."""

    def _open(widget, scheme: str, width: int, variants=None):
        if hasattr(widget, "prefetch"):
            widget.prefetch()
        return show_in(widget, scheme, width=width, height=900, variants=variants)

    return _open
