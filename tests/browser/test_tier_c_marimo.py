"""Tier C: SaliencyMap inside a marimo app (headless `marimo run`), where anywidgets live in a shadow root."""

from __future__ import annotations

import os
import pathlib
import sys

import pytest
from servers import free_port, running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VENV_BIN = pathlib.Path(sys.executable).parent
APP = '''\
import marimo

app = marimo.App()


@app.cell
def _():
    import marimo as mo
    import numpy as np
    import torch
    from saliency_widgets.widgets import SaliencyMap

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 5)).eval()
    x = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    w = mo.ui.anywidget(SaliencyMap(model, x, target=0, labels=["cat", "dog", "car", "ship", "frog"]))
    w
    return mo, w


@app.cell
def _(mo, w):
    mo.md(f"KERNEL-SEES target={w.widget.target} value={w.value.get('target', '-') if isinstance(w.value, dict) else '-'}")
    return


if __name__ == "__main__":
    app.run()
'''


@pytest.fixture(scope="module")
def marimo_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("marimo")
    (root / "app.py").write_text(APP, encoding="utf-8")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[2]), "HOME": str(root)}
    base = f"http://127.0.0.1:{port}"
    command = [str(VENV_BIN / "marimo"), "run", "app.py", "--headless", "--host", "127.0.0.1", "--port", str(port),
               "--no-token", "--no-sandbox", "--no-check"]
    with running_server(command, health_url=f"{base}/health", log_path=root / "server.log", what="marimo",
                        timeout=120, env=env, cwd=root):
        yield {"base": base, "log": root / "server.log"}


def test_styled_and_clickable_in_marimo(marimo_app, chromium, artifacts):
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(90_000)
    try:
        page.goto(marimo_app["base"])
        widget = page.locator('[data-sw-widget="saliency-map"]')  # Playwright's CSS pierces open shadow roots
        widget.wait_for(timeout=120_000)
        page.wait_for_function("document.body.innerText.includes('KERNEL-SEES target=0')", timeout=120_000)
        in_shadow = widget.evaluate("(el) => el.getRootNode() instanceof ShadowRoot")
        style = widget.evaluate("""(el) => { const s = getComputedStyle(el), c = el.querySelector('[data-sw-role=heatmap]');
            const stage = getComputedStyle(c.parentElement), status = getComputedStyle(el.querySelector('[data-sw-role=status]'));
            return { display: s.display, radius: s.borderTopLeftRadius, pixelated: getComputedStyle(c).imageRendering,
                     stage: stage.position, status: status.display,
                     sheet: !!el.getRootNode().getElementById?.('sw-style') }; }""")
        assert in_shadow
        assert style == {"display": "flex", "radius": "10px", "pixelated": "pixelated", "stage": "relative", "status": "none", "sheet": True}
        widget.locator('[data-sw-output="2"]').click()
        page.wait_for_function("document.body.innerText.includes('KERNEL-SEES target=2')", timeout=60_000)
        assert widget.locator('[data-sw-output="2"]').get_attribute("aria-pressed") == "true"
        widget.screenshot(path=str(artifacts / "tier-c-marimo.png"))
    except Exception:
        page.screenshot(path=str(artifacts / "tier-c-marimo-failure.png"), full_page=True)
        print(marimo_app["log"].read_text()[-3000:])
        raise
    finally:
        context.close()
