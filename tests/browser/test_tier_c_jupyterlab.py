"""Tier C: the widgets in a real JupyterLab and Notebook 7 (headless, loopback), driven by Playwright."""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import sys
import time

import numpy as np
import pytest
from servers import free_port, running_server
from contrast import assert_readable
from pixels import canvas_rgba

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VENV_BIN = pathlib.Path(sys.executable).parent
SETUP = """\
import numpy as np, torch
from saliency_widgets.widgets import SaliencyMap, JacobianGrid
torch.manual_seed(0)
mlp = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 5)).eval()
cnn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(4 * 12 * 12, 6)).eval()
x = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
yy, xx = np.mgrid[0:12, 0:12] / 11.0
disc = (((yy - 0.5) ** 2 + (xx - 0.45) ** 2) < 0.1).astype(np.float32)
xi = np.stack([np.stack([disc, 0.6 * xx, 1 - 0.5 * disc])] * 2).astype(np.float32)
labels = ["cat", "dog", "car", "ship", "frog"]"""
CELLS = [
    SETUP,
    "w_mlp = SaliencyMap(mlp, x, target=0, labels=labels, feature_names=[f'f{i}' for i in range(8)])\nw_mlp",
    "w_cnn = SaliencyMap(cnn, xi, target=0)\nw_cnn",
    "grid = JacobianGrid(mlp, x, labels=labels, feature_names=[f'f{i}' for i in range(8)])\ngrid",
    "print('KERNEL-SEES', w_mlp.target, w_cnn.target, grid.selected)",
]


def _notebook() -> dict:
    cell = lambda src: {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": src}  # noqa: E731
    return {
        "cells": [cell(c) for c in CELLS],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 with a token, rooted in a temp dir holding x.ipynb."""
    yield from _server(tmp_path_factory, "lab")


@pytest.fixture(scope="module")
def notebook7(tmp_path_factory):
    """A Notebook 7 server, as ``lab``."""
    yield from _server(tmp_path_factory, "notebook")


def _server(tmp_path_factory, app: str):
    root = tmp_path_factory.mktemp(app)
    (root / "x.ipynb").write_text(json.dumps(_notebook()), encoding="utf-8")
    home = tmp_path_factory.mktemp("jupyter-home")
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[2]),
    }
    base = f"http://127.0.0.1:{port}"
    command = [str(VENV_BIN / "jupyter"), app, "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--LabApp.news_url=", *(["--allow-root"] if os.geteuid() == 0 else [])]
    with running_server(command, health_url=f"{base}/api/status?token={token}", log_path=home / "server.log",
                        what=f"jupyter {app}", timeout=180, env=env, cwd=root):
        yield {"base": base, "token": token, "log": home / "server.log"}


def _accept_kernel(page) -> None:
    """Waits for the notebook's kernel to be idle, accepting the kernel dialog if JupyterLab shows one."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        dialog = page.locator(".jp-Dialog button.jp-mod-accept")
        if dialog.count() and dialog.first.is_visible():
            dialog.first.click()
        elif page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle'], .jp-Notebook-ExecutionIndicator[data-status='busy']").count():
            time.sleep(1)
            if not page.locator(".jp-Dialog").count():
                return
        page.wait_for_timeout(500)
    pytest.fail("the notebook's kernel did not start within 180 s")


def _first_heatmap(page, widget_index: int) -> np.ndarray:
    return canvas_rgba(page, '[data-sw-widget="saliency-map"] [data-sw-role="heatmap"]', widget_index)


def _open_and_run_all(page, url: str) -> None:
    """Opens the notebook at ``url``, runs every cell and waits for the three widgets."""
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=180_000)
    _accept_kernel(page)
    for _ in range(3):  # a menu click while the notebook is still settling can be ignored: retry
        page.click("li.lm-MenuBar-item:has-text('Run')")
        page.click("li.lm-Menu-item:has-text('Run All Cells')")
        _accept_kernel(page)
        try:
            page.wait_for_function("[...document.querySelectorAll('.jp-InputPrompt')].some((p) => /[0-9*]/.test(p.innerText))", timeout=30_000)
            break
        except Exception:
            page.keyboard.press("Escape")
    page.wait_for_function("document.querySelectorAll('[data-sw-widget]').length === 3", timeout=240_000)
    page.wait_for_function("document.body.innerText.includes('KERNEL-SEES')", timeout=120_000)
    news = page.locator(".jp-Notification-Toast-Close, .Toastify__close-button")
    if news.count():
        news.first.click()
    page.wait_for_timeout(500)


def _rerun_last_cell_and_read(page) -> str:
    last = page.locator(".jp-Cell").nth(len(CELLS) - 1)
    prompt = last.locator(".jp-InputPrompt").inner_text()
    last.locator(".cm-content").click()
    page.keyboard.press("Control+Enter")  # run in place
    page.wait_for_function(
        "([old, i]) => { const p = document.querySelectorAll('.jp-Cell')[i].querySelector('.jp-InputPrompt').innerText;"
        " return p !== old && !p.includes('*'); }",
        arg=[prompt, len(CELLS) - 1],
        timeout=120_000,
    )
    return last.locator(".jp-OutputArea-output").inner_text()


def test_widgets_in_jupyterlab(lab, chromium, artifacts):
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        _open_and_run_all(page, f"{lab['base']}/lab/workspaces/sw-test/tree/x.ipynb?reset&token={lab['token']}")
        page.screenshot(path=str(artifacts / "tier-c-lab-initial.png"), full_page=True)

        def rerun_last_cell_and_read() -> str:
            return _rerun_last_cell_and_read(page)

        assert "KERNEL-SEES 0 0" in rerun_last_cell_and_read()

        mlp = page.locator('[data-sw-widget="saliency-map"]').nth(0)
        before = _first_heatmap(page, 0)
        mlp.locator('[data-sw-output="3"]').click()
        page.wait_for_function(
            "document.querySelector('[data-sw-widget=\"saliency-map\"] [data-sw-output=\"3\"]').getAttribute('aria-pressed') === 'true'"
        )
        assert not np.array_equal(before, _first_heatmap(page, 0)), "the MLP heatmap did not change"

        cnn = page.locator('[data-sw-widget="saliency-map"]').nth(1)
        cnn_before = _first_heatmap(page, 1)
        cnn.locator('[data-sw-output="4"]').click()
        page.wait_for_function(
            "() => { const w = document.querySelectorAll('[data-sw-widget=\"saliency-map\"]')[1];"
            " return w.querySelector('[data-sw-output=\"4\"]').getAttribute('aria-pressed') === 'true'"
            " && w.querySelector('[data-sw-role=\"status\"]').dataset.busy === 'false'; }"
        )
        assert not np.array_equal(cnn_before, _first_heatmap(page, 1)), "the CNN heatmap did not change"

        page.locator('[data-sw-widget="jacobian-grid"] .sw-rowlabels [data-sw-output="2"]').click()
        page.wait_for_timeout(1000)  # let the kernel apply the three updates
        out = rerun_last_cell_and_read()
        assert "KERNEL-SEES 3 4 2" in out, out

        mlp.screenshot(path=str(artifacts / "tier-c-saliency-mlp.png"))
        cnn.screenshot(path=str(artifacts / "tier-c-saliency-cnn.png"))
        page.locator('[data-sw-widget="jacobian-grid"]').screenshot(path=str(artifacts / "tier-c-jacobian-grid.png"))
    except Exception:
        page.screenshot(path=str(artifacts / "tier-c-failure.png"), full_page=True)
        raise
    finally:
        context.close()


def test_jupyterlab_light_and_dark_themes_are_readable(lab, chromium, artifacts):
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        _open_and_run_all(page, f"{lab['base']}/lab/workspaces/sw-theme/tree/x.ipynb?reset&token={lab['token']}")
        for theme, light in (("JupyterLab Light", "true"), ("JupyterLab Dark", "false")):
            page.click("li.lm-MenuBar-item:has-text('Settings')")
            page.hover("li.lm-Menu-item:has-text('Theme')")
            page.click(f"li.lm-Menu-item:has-text('{theme}')")
            page.wait_for_function(f"document.body.dataset.jpThemeLight === '{light}'", timeout=60_000)
            page.wait_for_timeout(1500)  # the theme's stylesheet swaps in
            cards = page.evaluate("""() => [...document.querySelectorAll('.sw-root')].map((el) => {
                const s = getComputedStyle(el); return [s.backgroundColor, getComputedStyle(document.body).getPropertyValue('--jp-layout-color1').trim()]; })""")
            assert len(cards) == 3
            low = assert_readable(page)
            print(f"{theme}: lowest text contrast {low:.2f}:1, card backgrounds {cards[0]}")
            name = theme.split()[-1].lower()
            page.locator('[data-sw-widget="saliency-map"]').nth(1).screenshot(path=str(artifacts / f"tier-c-lab-{name}-cnn.png"))
            page.locator('[data-sw-widget="saliency-map"]').nth(0).screenshot(path=str(artifacts / f"tier-c-lab-{name}-mlp.png"))
            page.locator('[data-sw-widget="jacobian-grid"]').screenshot(path=str(artifacts / f"tier-c-lab-{name}-grid.png"))
        assert page.evaluate("getComputedStyle(document.querySelector('.sw-root')).colorScheme") == "dark"
    except Exception:
        page.screenshot(path=str(artifacts / "tier-c-theme-failure.png"), full_page=True)
        raise
    finally:
        context.close()


def test_click_reaches_the_kernel_in_notebook7(notebook7, chromium, artifacts):
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        _open_and_run_all(page, f"{notebook7['base']}/notebooks/x.ipynb?token={notebook7['token']}")
        mlp = page.locator('[data-sw-widget="saliency-map"]').nth(0)
        before = _first_heatmap(page, 0)
        mlp.locator('[data-sw-output="3"]').click()
        page.wait_for_function(
            "document.querySelector('[data-sw-widget=\"saliency-map\"] [data-sw-output=\"3\"]').getAttribute('aria-pressed') === 'true'"
        )
        assert not np.array_equal(before, _first_heatmap(page, 0)), "the MLP heatmap did not change"
        page.wait_for_timeout(1000)
        assert "KERNEL-SEES 3 " in _rerun_last_cell_and_read(page)
        mlp.screenshot(path=str(artifacts / "tier-c-notebook7-mlp.png"))
    except Exception:
        page.screenshot(path=str(artifacts / "tier-c-notebook7-failure.png"), full_page=True)
        raise
    finally:
        context.close()
