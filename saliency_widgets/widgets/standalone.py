"""A widget as a self-contained HTML page: the bundle, its state and a stand-in model.

The page needs no kernel: a small in-page model object (``get``, ``set``, ``on``,
``off``, ``save_changes``, ``send``) holds the widget's synced state, with its
binary buffers restored as ``DataView`` objects at a non-zero byte offset (as
ipywidgets delivers them). Everything the front end asks of the kernel is
recorded in ``window.__sw.log``. The browser tests and benchmarks drive widgets
through it, and the widgets' ``to_html`` writes it to a file.

``variants`` stand in for the kernel's answers: ``{trait: {str(value): patch}}``
— when the page saves ``trait = value``, the state keys in ``patch`` are set
as if the kernel had sent them (e.g. every layer's blocks for the
WeightInspector).
"""

from __future__ import annotations

import base64
import html
import json
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Optional

from ipywidgets.widgets.widget import _remove_buffers

_SKIP = {"_esm", "_css", "layout", "comm", "keys"}

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{margin:16px;background:{background};font-family:sans-serif}}</style></head>
<body><div id="sw-host"></div>
<script type="module">
const DOC = {doc};
const BUFFERS = {buffers};
const BUNDLE = {bundle};
const PAD = 8;
function view(b64) {{
  const bin = atob(b64);
  const buf = new ArrayBuffer(bin.length + PAD);
  const bytes = new Uint8Array(buf, PAD, bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new DataView(buf, PAD, bin.length);
}}
for (const [path, b64] of BUFFERS) {{
  let obj = DOC;
  for (const key of path.slice(0, -1)) obj = obj[key];
  obj[path[path.length - 1]] = view(b64);
}}
const STATE = DOC.state;
const VARIANTS = DOC.variants;
const log = [];
const listeners = new Map();
let pending = {{}};
function fire(name, value) {{
  for (const cb of listeners.get("change:" + name) ?? []) cb(model, value);
  for (const cb of listeners.get("change") ?? []) cb(model);
}}
const model = {{
  get: (k) => STATE[k],
  set(k, v) {{ STATE[k] = v; pending[k] = v; fire(k, v); }},
  on(ev, cb) {{ for (const e of ev.split(" ")) {{ if (!listeners.has(e)) listeners.set(e, []); listeners.get(e).push(cb); }} }},
  off(ev, cb) {{ for (const e of (ev ?? "").split(" ")) listeners.set(e, (listeners.get(e) ?? []).filter((f) => cb && f !== cb)); }},
  save_changes() {{
    log.push({{ type: "save_changes", changes: pending, t: performance.now() }});
    for (const [k, v] of Object.entries(pending)) {{
      const patch = VARIANTS[k]?.[String(v)];
      if (patch) setTimeout(() => {{ for (const [pk, pv] of Object.entries(patch)) window.__sw.kernelSet(pk, pv); }}, 0);
    }}
    pending = {{}};
  }},
  send(content) {{ log.push({{ type: "send", content, t: performance.now() }}); }},
}};
window.__sw = {{
  model, log, STATE, view,
  /** A state change coming from the kernel (not logged as a browser message). */
  kernelSet(k, v) {{ STATE[k] = v; fire(k, v); }},
  /** A custom message from the kernel, buffers given as base64. */
  kernelSend(content, buffers = []) {{
    const views = buffers.map(view);
    for (const cb of listeners.get("msg:custom") ?? []) cb(content, views);
  }},
}};
const url = URL.createObjectURL(new Blob([BUNDLE], {{ type: "text/javascript" }}));
const mod = await import(url);
const el = document.getElementById("sw-host");
window.__sw.el = el;
window.__sw.cleanup = mod.default.render({{ model, el }});
window.__sw.ready = true;
</script></body></html>
"""


Variants = Mapping[str, Mapping[Any, Mapping[str, Any]]]


def page_data(widget: Any, variants: Optional[Variants] = None) -> tuple[dict[str, Any], list[tuple[list[Any], str]]]:
    """``{"state": synced state without the bundle, "variants": ...}`` with its binary
    buffers lifted out as ``(path, base64)`` pairs."""
    state = {k: v for k, v in widget.get_state().items() if k not in _SKIP}
    doc = {
        "state": state,
        "variants": {trait: {str(v): dict(patch) for v, patch in by_value.items()} for trait, by_value in (variants or {}).items()},
    }
    stripped, paths, buffers = _remove_buffers(doc)
    return stripped, [(list(p), base64.b64encode(bytes(b)).decode("ascii")) for p, b in zip(paths, buffers)]


def standalone_html(
    widget: Any, *, title: str = "saliency_widgets", background: str = "#ffffff",
    variants: Optional[Variants] = None, offline: bool = False,
) -> str:
    """An HTML page that renders ``widget`` without a kernel (see the module docstring).
    ``offline`` tells the front end that no kernel will answer (``to_html``): exports are drawn
    in the browser. Without it, requests to the kernel are only logged (tests answer them)."""
    doc, buffers = page_data(widget, variants)
    doc["state"]["_offline"] = offline
    return _PAGE.format(
        title=html.escape(title), background=html.escape(background), doc=_script_json(doc),
        buffers=_script_json(buffers), bundle=_script_json(str(widget._esm)),
    )


def _script_json(obj: Any) -> str:
    """JSON that is safe inside a <script> element (no ``<`` can open or close a tag or comment)."""
    return json.dumps(obj).replace("<", "\\u003c")


@contextmanager
def record_messages(widget: Any) -> Iterator[list[tuple[dict[str, Any], list[bytes]]]]:
    """Records ``(message, buffers)`` for each message ``widget`` sends to the front end."""
    sent: list[tuple[dict[str, Any], list[bytes]]] = []
    original = widget._send

    def send(msg: dict[str, Any], buffers: Any = None) -> None:
        sent.append((msg, [bytes(b) for b in buffers or []]))
        original(msg, buffers=buffers)

    widget._send = send
    try:
        yield sent
    finally:
        del widget._send
