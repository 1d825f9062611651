"""Tier B: light and dark themes (issue 10, item 5): readable text, themed chrome, outlined maps.
JupyterLab's own Light and Dark themes are checked in test_tier_c_jupyterlab.py."""

import pytest
from _widget_models import batch, cnn, mlp
from contrast import assert_readable

from saliency_widgets.widgets import JacobianGrid, SaliencyMap
from saliency_widgets.widgets.standalone import standalone_html

pytestmark = pytest.mark.browser
# A host that defines VS Code's theme variables (a dark editor theme).
VSCODE_DARK = ":root{--vscode-editor-foreground:#cccccc;--vscode-descriptionForeground:#a0a0a0;--vscode-editor-background:#1e1e1e;" \
    "--vscode-widget-border:#444;--vscode-editorWidget-background:#252526;--vscode-focusBorder:#0078d4}body{background:#1e1e1e!important}"


@pytest.fixture
def themed(chromium, tmp_path):
    """Renders a widget in a page with the OS colour scheme `scheme` and extra host CSS."""
    contexts = []

    def _show(widget, scheme, host_css=""):
        context = chromium.new_context(viewport={"width": 1100, "height": 800}, color_scheme=scheme)
        contexts.append(context)
        page = context.new_page()
        html = standalone_html(widget, background="#1e1e1e" if scheme == "dark" else "#ffffff")
        path = tmp_path / f"{scheme}.html"
        path.write_text(html.replace("</head>", f"<style>{host_css}</style></head>"), encoding="utf-8")
        page.goto(path.as_uri())
        page.wait_for_function("window.__sw && window.__sw.ready", timeout=30_000)
        return page

    yield _show
    for c in contexts:
        c.close()


def card(page):
    return page.evaluate("""() => { const s = getComputedStyle(document.querySelector('.sw-root'));
      return { bg: s.backgroundColor, fg: s.color, scheme: s.colorScheme }; }""")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_os_colour_scheme_sets_a_readable_card(themed, artifacts, scheme):
    page = themed(SaliencyMap(mlp(), batch(3, 8), labels=["cat", "dog", "car", "ship", "frog"]), scheme)
    style = card(page)
    assert (style["bg"] == "rgb(255, 255, 255)") == (scheme == "light")
    assert style["scheme"] == scheme
    low = assert_readable(page)
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"theme-os-{scheme}.png"))
    assert low >= 4.5


def test_vscode_variables_win_over_the_fallbacks(themed, artifacts):
    page = themed(JacobianGrid(cnn(), batch(2, 3, 8, 8, seed=1)), "light", VSCODE_DARK)
    style = card(page)
    assert style["bg"] == "rgb(30, 30, 30)" and style["fg"] == "rgb(204, 204, 204)" and style["scheme"] == "dark"
    assert_readable(page)
    outline = page.evaluate("getComputedStyle(document.querySelector('.sw-stage')).boxShadow")
    assert outline.startswith("color(srgb 0.8 0.8 0.8")  # a light outline (the text colour) where a map meets the dark card
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / "theme-vscode-dark.png"))
