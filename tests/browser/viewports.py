"""A widget in a plain page of a given width and OS colour scheme (import the fixture into a test module)."""

from __future__ import annotations

import pytest

#: The page widths the layout checks run at (px).
WIDTHS = (500, 1800)
SCHEMES = ("light", "dark")


@pytest.fixture
def at_width(chromium, tmp_path):
    """``at_width(widget, scheme, width, variants=None)``: the widget's offline page (``variants``: its
    ``_html_variants()``), in a ``width`` px wide window with OS colour scheme ``scheme``; JavaScript errors fail."""
    from saliency_widgets.widgets.standalone import standalone_html

    opened = []

    def _open(widget, scheme: str, width: int, variants=None):
        context = chromium.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        opened.append((context, errors))
        if hasattr(widget, "prefetch"):
            widget.prefetch()
        path = tmp_path / f"{scheme}-{width}.html"
        html = standalone_html(widget, background="#1e1e1e" if scheme == "dark" else "#ffffff",
                               **({"variants": variants} if variants else {}))
        path.write_text(html, encoding="utf-8")
        page.goto(path.as_uri())
        page.wait_for_function("window.__sw && window.__sw.ready", timeout=30_000)
        return page

    yield _open
    for context, errors in opened:
        context.close()
        assert not errors, f"JavaScript errors: {errors}"
