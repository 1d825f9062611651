"""Widget transport and drawing budgets, measured in one run.

- bytes sent per map update vs. the raw float32 payload (budget ≤ 1.05×);
- browser redraw of a 224×224 map (≤ 16 ms) and of a 100-tile 28×28 grid
  (≤ 100 ms), timed with performance.now() in headless Chromium;
- click-to-redraw with a prefetched Jacobian (≤ 50 ms), checking that the only
  message to the kernel is the target change;
- first paint of a 1000-output × 64-input JacobianGrid (≤ 100 ms): render() to the
  next animation frame, rows virtualized;
- start-up, Shift+Enter → first painted map (≤ 1.0 s) for an MLP, a small CNN and a
  tiny BERT text view, each a fresh model: the kernel's part (``SaliencyMap(...)``, its
  display bundle with the static PNG, the synced state) plus the page's (load, bundle,
  render, the frame the map is painted in); beside it the old start-up that computed
  the Jacobian before the first paint;
- the same for the first widget of a fresh kernel (≤ 1.0 s), MLP and CNN: a new Python
  process that has imported torch and saliency_widgets (and IPython, as a kernel has)
  builds ``sw.SaliencyMap(model, x)`` and its display bundle; the widget classes,
  matplotlib and torch's lazy imports load inside the measured time, as in a notebook.

Run: ``.venv/bin/python benchmarks/widgets_bench.py`` (needs /usr/bin/chromium).
"""

from __future__ import annotations

import json
import pathlib
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

from saliency_widgets.transport import wire_nbytes
from saliency_widgets.widgets import JacobianGrid, SaliencyMap
from saliency_widgets.widgets.standalone import record_messages, standalone_html

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
REPEATS = 25
STARTUP_REPEATS = 5
COLD_REPEATS = 3

# Times a redraw caused by a kernel-side change (the widget redraws in a microtask).
TIME_REDRAW = """async (n) => {
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    window.__sw.kernelSet("outlier_perc", 2 + (i % 2) * 0.5);
    await Promise.resolve();
    times.push(performance.now() - t0);
  }
  return times;
}"""

# Times click → redrawn canvas, and returns what the page sent to the kernel.
TIME_CLICKS = """async (targets) => {
  const times = [];
  for (const k of targets) {
    const bar = document.querySelector(`[data-sw-output="${k}"]`);
    const t0 = performance.now();
    bar.click();
    await Promise.resolve();
    times.push(performance.now() - t0);
  }
  const busy = document.querySelector('[data-sw-role="status"]').dataset.busy;
  return { times, log: window.__sw.log.map((e) => ({ type: e.type, changes: e.changes })), busy };
}"""


def report(name: str, value: float, budget: float, unit: str) -> bool:
    ok = value <= budget
    print(f"  {name:<48} {value:10.3f} {unit:<3} (budget ≤ {budget:g} {unit}) {'PASS' if ok else 'FAIL'}")
    return ok


def bytes_per_update() -> bool:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 4, stride=4), torch.nn.Flatten(), torch.nn.Linear(4 * 56 * 56, 1000)).eval()
    x = np.random.default_rng(0).uniform(size=(1, 3, 224, 224)).astype(np.float32)
    w = SaliencyMap(model, x, target=0)
    assert w._jacobian is None  # 1000 × 3×224×224 does not fit the prefetch budget
    with record_messages(w) as sent:
        w.target = 7
    total = sum(len(json.dumps(m)) + sum(map(len, b)) for m, b in sent)
    payload = wire_nbytes(w._attribution)
    print(f"  one retarget sent {total} bytes in {len(sent)} messages for a {payload}-byte float32 map (224×224)")
    return report("bytes sent / raw float32 payload", total / payload, 1.05, "×")


def in_browser(browser, widget, script: str, arg):
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "bench.html"
        path.write_text(standalone_html(widget), encoding="utf-8")
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(path.as_uri())
        page.wait_for_function("window.__sw && window.__sw.ready", timeout=60_000)
        result = page.evaluate(script, arg)
        page.close()
        return result


def main() -> int:
    warnings.filterwarnings("ignore")
    from playwright.sync_api import sync_playwright

    ok = [bytes_per_update()]
    torch.manual_seed(0)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        big = SaliencyMap(
            torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(224 * 224, 3)).eval(),
            np.random.default_rng(1).normal(size=(1, 1, 224, 224)).astype(np.float32),
        )
        times = in_browser(browser, big, TIME_REDRAW, REPEATS)
        ok.append(report("redraw 224×224 map, median", statistics.median(times), 16, "ms"))

        grid = JacobianGrid(
            torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 100)).eval(),
            np.random.default_rng(2).normal(size=(1, 1, 28, 28)).astype(np.float32),
        )
        times = in_browser(browser, grid, TIME_REDRAW, REPEATS)
        ok.append(report("redraw 100-tile 28×28 grid, median", statistics.median(times), 100, "ms"))

        mnist_like = SaliencyMap(
            torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)).eval(),
            np.random.default_rng(3).normal(size=(1, 1, 28, 28)).astype(np.float32),
            target=0,
        )
        mnist_like.prefetch()
        assert mnist_like._jacobian is not None
        targets = [1 + i % 9 for i in range(REPEATS)]
        res = in_browser(browser, mnist_like, TIME_CLICKS, targets)
        ok.append(report("click → redraw, prefetched Jacobian, max", max(res["times"]), 50, "ms"))
        print(f"  (median {statistics.median(res['times']):.3f} ms over {len(targets)} clicks)")
        # each click: the new target and the number of the map request it makes (stale replies are dropped)
        expected = [{"type": "save_changes", "changes": {"target": k, "_request": i + 1}} for i, k in enumerate(targets)]
        no_extra = res["log"] == expected and res["busy"] == "false"
        print(f"  messages to the kernel: {len(res['log'])} (only target changes: {'PASS' if no_extra else 'FAIL'})")
        ok.append(no_extra)
        ok.append(grid_first_paint(browser))
        ok.append(inspector_first_paint(browser))
        ok.append(startup(browser))
        browser.close()
    print("all budgets met" if all(ok) else "SOME BUDGETS MISSED")
    return 0 if all(ok) else 1


# Renders the inspector bundle into fresh elements: render() → layout → next animation frame.
TIME_FIRST_PAINT = """async ([bundle, n]) => {
  const url = URL.createObjectURL(new Blob([bundle], { type: "text/javascript" }));
  const mod = await import(url);
  const times = [];
  for (let i = 0; i < n; i++) {
    const el = document.createElement("div");
    document.body.append(el);
    const t0 = performance.now();
    const stop = mod.default.render({ model: window.__sw.model, el });
    void el.offsetHeight;
    await new Promise((resolve) => requestAnimationFrame(resolve));
    times.push(performance.now() - t0);
    stop();
    el.remove();
  }
  return { times, blocks: document.querySelectorAll("[data-sw-block]").length };
}"""


def grid_first_paint(browser) -> bool:
    """JacobianGrid of Linear(64 → 1000): render to first painted frame (TIME_FIRST_PAINT)."""
    grid = JacobianGrid(torch.nn.Linear(64, 1000).eval(), np.random.default_rng(4).normal(size=(1, 64)).astype(np.float32))
    res = in_browser(browser, grid, TIME_FIRST_PAINT, [grid._esm, REPEATS])
    print(f"  (grid first paint: first render {res['times'][0]:.1f} ms, max {max(res['times']):.1f} ms over {REPEATS})")
    return report("1000×64 JacobianGrid first paint, median", statistics.median(res["times"]), 100, "ms")


def inspector_first_paint(browser) -> bool:
    """WeightInspector of an LSTM(64) (16 gate blocks, 18,944 weights): render to first painted frame."""
    from saliency_widgets.widgets import WeightInspector

    lstm = torch.nn.Sequential(torch.nn.LSTM(8, 64))
    widget = WeightInspector(lstm, input_shape=(5, 8))
    res = in_browser(browser, widget, TIME_FIRST_PAINT, [widget._esm, REPEATS])
    print(f"  (inspector first paint: first render {res['times'][0]:.1f} ms, max {max(res['times']):.1f} ms over {REPEATS})")
    return report("LSTM(64) inspector first paint, median", statistics.median(res["times"]), 200, "ms")


# Records the time (ms since navigation) of the first animation frame in which the map is drawn.
WATCH_FIRST_PAINT = """(() => {
  const tick = () => {
    const status = document.querySelector('[data-sw-role="status"]');
    if (window.__sw && window.__sw.ready && status && status.dataset.busy === "false") window.__firstPaint = performance.now();
    else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();"""


def startup_models() -> dict[str, tuple]:
    """Fresh (model, x, SaliencyMap kwargs) per case; built before the clock starts."""
    from transformers import BertConfig, BertForSequenceClassification

    rng = np.random.default_rng(5)
    mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)).eval()
    cnn = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 10),
    ).eval()
    bert = BertForSequenceClassification(BertConfig(
        vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=16, num_labels=3)).eval()
    ids = rng.integers(4, 30, size=(2, 12))
    return {
        "MLP 784-64-10": (mlp, rng.normal(size=(4, 1, 28, 28)).astype(np.float32), {}),
        "CNN 3×32×32": (cnn, rng.normal(size=(4, 3, 32, 32)).astype(np.float32), {}),
        "tiny BERT text": (bert, {"input_ids": ids, "attention_mask": np.ones_like(ids)}, {"layer": bert.bert.embeddings}),
    }


def first_paint(browser, build, prefetch: bool) -> tuple[float, float]:
    """(kernel seconds, page seconds) from ``SaliencyMap(...)`` to the first painted map."""
    model, x, kw = build
    t0 = time.perf_counter()
    widget = SaliencyMap(model, x, **kw)
    if prefetch:
        widget.prefetch()
    widget._repr_mimebundle_()
    html = standalone_html(widget)
    kernel = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "startup.html"
        path.write_text(html, encoding="utf-8")
        return kernel, page_seconds(browser, path)


def page_seconds(browser, path: pathlib.Path) -> float:
    """Seconds from navigating to the widget page at ``path`` to the frame its map is painted in."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.add_init_script(WATCH_FIRST_PAINT)
    page.goto(path.as_uri())
    page.wait_for_function("window.__firstPaint !== undefined", timeout=60_000)
    browser_ms = page.evaluate("window.__firstPaint")
    page.close()
    return browser_ms / 1000


# The first widget of a fresh kernel: argv[1] holds the pickled (model, x, kwargs), argv[2] is where
# the page goes. The clock starts after importing torch and saliency_widgets (IPython too: a kernel
# has it loaded); ``sw.SaliencyMap`` loads the widget classes on first use, as in a notebook.
COLD_KERNEL = """
import pickle, sys, time, warnings
warnings.filterwarnings("ignore")
import IPython, torch, saliency_widgets as sw
with open(sys.argv[1], "rb") as f:
    model, x, kw = pickle.load(f)
t0 = time.perf_counter()
widget = sw.SaliencyMap(model, x, **kw)
t1 = time.perf_counter()
png_seconds = []
static_png = widget._static_png
def timed_png():
    start = time.perf_counter()
    png = static_png()
    png_seconds.append(time.perf_counter() - start)
    return png
widget._static_png = timed_png
widget._repr_mimebundle_()
t2 = time.perf_counter()
from saliency_widgets.widgets.standalone import standalone_html
with open(sys.argv[2], "w", encoding="utf-8") as f:
    f.write(standalone_html(widget))
print(t1 - t0, t2 - t1, png_seconds[0])
"""
COLD_MODELS = ("MLP 784-64-10", "CNN 3×32×32")


def cold_first_paint(browser, name: str) -> tuple[float, float, float, float]:
    """(construction, display bundle, page, static PNG) seconds of the first widget of a fresh Python
    process; the static PNG is part of the display bundle."""
    with tempfile.TemporaryDirectory() as tmp:
        model_path, page_path = pathlib.Path(tmp) / "model.pkl", pathlib.Path(tmp) / "startup.html"
        model_path.write_bytes(pickle.dumps(startup_models()[name]))
        run = subprocess.run([sys.executable, "-c", COLD_KERNEL, str(model_path), str(page_path)],
                             capture_output=True, text=True, check=True)
        construct, bundle, png = map(float, run.stdout.split()[-3:])
        return construct, bundle, page_seconds(browser, page_path), png


def cold_startup(browser) -> bool:
    """Shift+Enter → first paint for the first widget of a fresh kernel (median of ``COLD_REPEATS``)."""
    ok = True
    for name in COLD_MODELS:
        runs = [cold_first_paint(browser, name) for _ in range(COLD_REPEATS)]
        construct, bundle, page, png = (statistics.median(v) for v in zip(*runs))
        print(f"  ({name}, fresh kernel: construction {construct * 1000:.0f} ms + display bundle {bundle * 1000:.0f} ms "
              f"+ page {page * 1000:.0f} ms, medians of {COLD_REPEATS}; the bundle's static PNG for nbconvert/GitHub, "
              f"matplotlib's first import and draw, took {png * 1000:.0f} ms of it)")
        ok &= report(f"{name} fresh kernel → first paint, median", statistics.median([c + b + p for c, b, p, _ in runs]),
                     1.0, "s")
    return ok


def startup(browser) -> bool:
    """Shift+Enter → first paint: the first widget of a fresh kernel, then later widgets with the lazy
    Jacobian (now) against computing it first (before)."""
    ok = cold_startup(browser)
    for name in startup_models():
        first_paint(browser, startup_models()[name], False)  # warm the page machinery and matplotlib once
        now, before = [], []
        for _ in range(STARTUP_REPEATS):  # interleaved, so both see the same machine load
            now.append(first_paint(browser, startup_models()[name], False))
            before.append(first_paint(browser, startup_models()[name], True))
        k, b = (statistics.median(v) for v in zip(*now))
        total_before = statistics.median(sum(t) for t in before)
        print(f"  ({name}: kernel {k * 1000:.0f} ms + page {b * 1000:.0f} ms; with the Jacobian first "
              f"{total_before * 1000:.0f} ms, {total_before / (k + b):.2f}× longer)")
        ok &= report(f"{name} Shift+Enter → first paint, median", k + b, 1.0, "s")
    return ok


if __name__ == "__main__":
    sys.exit(main())
