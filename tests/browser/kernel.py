"""The kernel's side of a tier-B page: traits sent to the page as the kernel would send them."""

from __future__ import annotations

from saliency_widgets.widgets.standalone import page_data


def kernel_answers(page, widget, *traits: str) -> None:
    """Sends ``traits`` of ``widget`` to the page as the kernel would (binary buffers as
    DataViews), then waits for the next frame, by which the page has drawn them."""
    doc, buffers = page_data(widget)
    page.evaluate(
        """([state, buffers, traits]) => {
          for (const [path, b64] of buffers) {
            if (path[0] !== "state") continue;
            let obj = state;
            for (const key of path.slice(1, -1)) obj = obj[key];
            obj[path[path.length - 1]] = window.__sw.view(b64);
          }
          for (const t of traits) window.__sw.kernelSet(t, state[t]);
        }""",
        [doc["state"], buffers, list(traits)],
    )
    page.evaluate("new Promise(requestAnimationFrame)")
