"""Headless Chromium (Debian's /usr/bin/chromium) for the browser tiers."""

from __future__ import annotations

import os
import pathlib
import shutil
import sys

import pytest

# the shared test models live one level up, in tests/_widget_models.py
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

CHROMIUM = os.environ.get("SW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
ARTIFACTS = pathlib.Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def chromium():
    """A launched Chromium; fails (does not skip) when it is missing."""
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium (`make chromium`) or set SW_CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1100, "height": 800})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def show(page, tmp_path):
    """Renders a widget in a plain page with the stand-in model; returns the page."""
    from saliency_widgets.widgets.standalone import standalone_html

    def _show(widget):
        if hasattr(widget, "prefetch"):  # the kernel's answer to the page's Jacobian request, sent up front
            widget.prefetch()
        path = tmp_path / "widget.html"
        path.write_text(standalone_html(widget), encoding="utf-8")
        page.goto(path.as_uri())
        page.wait_for_function("window.__sw && window.__sw.ready", timeout=30_000)
        return page

    return _show


@pytest.fixture
def show_in(chromium, tmp_path):
    """``show_in(widget, scheme, width=1100, height=800, variants=None)``: the widget's offline page
    (``variants``: its ``_html_variants()``) in a window of that size whose OS colour scheme is
    ``scheme``; fails on JavaScript errors."""
    opened = []

    def _show(widget, scheme, width=1100, height=800, variants=None):
        context = chromium.new_context(viewport={"width": width, "height": height}, color_scheme=scheme)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        opened.append((context, errors))
        path = tmp_path / f"{scheme}-{width}.html"
        from saliency_widgets.widgets.standalone import standalone_html

        path.write_text(standalone_html(widget, background="#1e1e1e" if scheme == "dark" else "#ffffff",
                                        **({"variants": variants} if variants else {})), encoding="utf-8")
        page.goto(path.as_uri())
        page.wait_for_function("window.__sw && window.__sw.ready", timeout=30_000)
        return page

    yield _show
    for context, errors in opened:
        context.close()
        assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture(scope="session")
def artifacts():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

