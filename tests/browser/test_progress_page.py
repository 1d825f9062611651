"""Tier B: the progress bar of a slow kernel computation and its cancel button (issue 24, item 5), in a
plain page whose stand-in kernel sends the progress messages saliency_widgets/progress.py sends."""

from __future__ import annotations

import numpy as np
import pytest
from _widget_models import batch, cnn, mlp
from contrast import assert_readable

from saliency_widgets.widgets import JacobianGrid, SaliencyMap

pytestmark = pytest.mark.browser
PROGRESS = '[data-sw-role="progress"]'
CANCEL = '[data-sw-action="cancel"]'


def report(page, id: int, fraction: float, *, done: bool = False, cancellable: bool = True, elapsed: float = 3.14,
           remaining=4.2, label: str = "integrated gradients") -> None:
    page.evaluate("(m) => window.__sw.kernelSend(m)", {
        "type": "progress", "id": id, "fraction": fraction, "elapsed": elapsed, "remaining": remaining,
        "label": label, "done": done, "cancellable": cancellable})


def sent(page) -> list:
    return page.evaluate("window.__sw.log.filter((e) => e.type === 'send').map((e) => e.content)")


def test_the_bar_shows_fraction_elapsed_and_estimate_and_cancel_asks_the_kernel(show):
    page = show(SaliencyMap(mlp(), batch(2, 8), target=0))
    assert page.is_hidden(PROGRESS)  # fast computations show nothing
    report(page, 5, 0.426)
    assert page.is_visible(PROGRESS) and page.is_visible(CANCEL)
    assert page.text_content(f"{PROGRESS} .sw-progress-text") == "integrated gradients · 42 % · 3.1 s · about 4.2 s left"
    assert page.get_attribute(PROGRESS, "aria-valuenow") == "42"
    width = page.evaluate("(s) => document.querySelector(s + ' .sw-progress-fill').style.width", PROGRESS)
    assert width == "42%"
    page.click(CANCEL)
    assert sent(page) == [{"type": "cancel", "id": 5}]
    assert page.is_disabled(CANCEL) and "cancelling" in page.text_content(PROGRESS)
    report(page, 4, 0.9)  # a late report of a superseded computation changes nothing
    assert page.get_attribute(PROGRESS, "data-id") == "5"
    report(page, 5, 0.5, done=True)
    assert page.is_hidden(PROGRESS)


def test_a_newer_computation_replaces_the_bar_and_one_the_kernel_cannot_stop_has_no_cancel(show):
    page = show(SaliencyMap(mlp(), batch(2, 8), target=0))
    report(page, 1, 0.3)
    report(page, 2, 0.1, cancellable=False, remaining=None, label="Jacobian")
    assert page.get_attribute(PROGRESS, "data-id") == "2" and page.is_hidden(CANCEL)
    assert page.text_content(f"{PROGRESS} .sw-progress-text") == "Jacobian · 10 % · 3.1 s"
    report(page, 1, 1.0, done=True)  # the end of the older one: the newer stays
    assert page.is_visible(PROGRESS)


def test_every_widget_frame_shows_it(show):
    page = show(JacobianGrid(mlp(), batch(2, 8)))
    report(page, 3, 0.75, label="Jacobian")
    assert page.is_visible(f'[data-sw-widget="jacobian-grid"] {PROGRESS}')


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshot_of_the_bar_in_light_and_dark(show_in, artifacts, scheme):
    w = SaliencyMap(cnn(), batch(1, 3, 8, 8), target=0, method="integrated_gradients")
    page = show_in(w, scheme)
    report(page, 7, 0.62, elapsed=11.4, remaining=6.9)
    page.evaluate("document.querySelector('[data-sw-role=status]').dataset.busy = 'true'")
    assert_readable(page, f"{PROGRESS} .sw-progress-text")
    page.locator(".sw-root").screenshot(path=str(artifacts / f"progress-{scheme}.png"))
    page.locator(".sw-head").screenshot(path=str(artifacts / f"progress-head-{scheme}.png"))


# ----------------------------------------------------------- tier C: JupyterLab
LAB_CELLS = [
    """\
import numpy as np, torch
from saliency_widgets.widgets import JacobianGrid, SaliencyMap
torch.manual_seed(0)
slow = torch.nn.Sequential(
    torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU(),
    torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(32 * 16, 10)).eval()
xs = np.random.default_rng(0).normal(size=(1, 3, 96, 96)).astype(np.float32)
mlp = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 5)).eval()
x = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)""",
    "w = SaliencyMap(slow, xs, target=0, method='integrated_gradients', "
    "method_kwargs={'integrated_gradients': {'steps': 768}})\nw",
    "SaliencyMap(mlp, x)",
    "JacobianGrid(mlp, x)",
    "print('KERNEL-SEES', w.target, w._job is None)",
]


@pytest.fixture(scope="module")
def progress_lab(tmp_path_factory, monkeypatch_module):
    """The tier-C JupyterLab server (test_tier_c_jupyterlab) with this module's notebook."""
    import test_tier_c_jupyterlab as tier_c

    monkeypatch_module.setattr(tier_c, "CELLS", LAB_CELLS)
    yield from tier_c._server(tmp_path_factory, "lab")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.mark.slow
def test_in_jupyterlab_a_slow_map_shows_progress_cancels_and_leaves_the_kernel_free(progress_lab, chromium, artifacts):
    import test_tier_c_jupyterlab as tier_c

    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    slow = page.locator('[data-sw-widget="saliency-map"]').nth(0)
    try:
        tier_c._open_and_run_all(page, f"{progress_lab['base']}/lab/workspaces/sw-progress/tree/x.ipynb?reset&token={progress_lab['token']}")
        before = tier_c._first_heatmap(page, 0)
        slow.locator('[data-sw-output="4"]').click()
        slow.locator(PROGRESS).wait_for(state="visible", timeout=30_000)
        assert "integrated gradients" in slow.locator(PROGRESS).inner_text()
        out = tier_c._rerun_last_cell_and_read(page)  # the kernel runs a cell while the map computes
        assert "KERNEL-SEES 4 False" in out, out
        slow.screenshot(path=str(artifacts / "tier-c-progress-light.png"))
        slow.locator(CANCEL).click()
        slow.locator(PROGRESS).wait_for(state="hidden", timeout=30_000)
        page.wait_for_function("() => { const w = document.querySelector('[data-sw-widget=\"saliency-map\"]');"
                               " return w.querySelector('[data-sw-output=\"0\"]').getAttribute('aria-pressed') === 'true'"
                               " && w.querySelector('[data-sw-role=\"status\"]').dataset.busy === 'false'; }")
        np.testing.assert_array_equal(tier_c._first_heatmap(page, 0), before)  # the map it had
        assert "KERNEL-SEES 0 True" in tier_c._rerun_last_cell_and_read(page)
        slow.locator('[data-sw-output="5"]').click()
        slow.locator('[data-sw-output="6"]').click()  # supersedes it
        page.wait_for_function("() => { const w = document.querySelector('[data-sw-widget=\"saliency-map\"]');"
                               " return w.querySelector('[data-sw-output=\"6\"]').getAttribute('aria-pressed') === 'true'"
                               " && w.querySelector('[data-sw-role=\"status\"]').dataset.busy === 'false'; }", timeout=180_000)
        assert not np.array_equal(tier_c._first_heatmap(page, 0), before)
        assert slow.locator(PROGRESS).is_hidden() and "KERNEL-SEES 6 True" in tier_c._rerun_last_cell_and_read(page)
        page.click("li.lm-MenuBar-item:has-text('Settings')")
        page.hover("li.lm-Menu-item:has-text('Theme')")
        page.click("li.lm-Menu-item:has-text('JupyterLab Dark')")
        page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=60_000)
        page.wait_for_timeout(1500)
        slow.locator('[data-sw-output="7"]').click()
        slow.locator(PROGRESS).wait_for(state="visible", timeout=30_000)
        assert_readable(page, f'[data-sw-widget="saliency-map"] {PROGRESS}')
        slow.screenshot(path=str(artifacts / "tier-c-progress-dark.png"))
    except Exception:
        page.screenshot(path=str(artifacts / "tier-c-progress-failure.png"), full_page=True)
        raise
    finally:
        context.close()
