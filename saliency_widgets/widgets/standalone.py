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

An offline page (``to_html``) keeps to a size budget, ``max_bytes``: over it, its float
arrays are stored as 8-bit codes (``transport.quantized``), largest first, until it fits;
then the variants are left out; a page that still does not fit is refused, naming the
budget to raise. The page says what it did (``_page_note``), and a widget's
``_offline_state()`` adjusts what it shows without a kernel (the controls it lists in
``_page_needs`` are named in its offline note).
"""

from __future__ import annotations

import base64
import html
import json
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Optional

from ipywidgets.widgets.widget import _remove_buffers

from ..errors import SaliencyError
from ..transport import quantized, wire_nbytes

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
    return _encoded(_document(widget, variants))


def _document(widget: Any, variants: Optional[Variants]) -> dict[str, Any]:
    state = {k: v for k, v in widget.get_state().items() if k not in _SKIP}
    return {
        "state": state,
        "variants": {trait: {str(v): dict(patch) for v, patch in by_value.items()} for trait, by_value in (variants or {}).items()},
    }


def _encoded(doc: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[list[Any], str]]]:
    stripped, paths, buffers = _remove_buffers(doc)
    return stripped, [(list(p), base64.b64encode(bytes(b)).decode("ascii")) for p, b in zip(paths, buffers)]


def standalone_html(
    widget: Any, *, title: str = "saliency_widgets", background: str = "#ffffff",
    variants: Optional[Variants] = None, offline: bool = False, max_bytes: Optional[int] = None,
) -> str:
    """An HTML page that renders ``widget`` without a kernel (see the module docstring).
    ``offline`` tells the front end that no kernel will answer (``to_html``): exports are drawn
    in the browser, and the widget's ``_offline_state()`` applies. Without it, requests to the
    kernel are only logged (tests answer them). ``max_bytes``: the page's size budget (None: none)."""
    doc = _document(widget, variants)
    doc["state"]["_offline"] = offline
    if offline:
        doc["state"].update(getattr(widget, "_offline_state", dict)())
    page = _render(doc, widget, title, background)
    if max_bytes is None or len(page.encode("utf-8")) <= max_bytes:
        return page
    return _fitted(doc, widget, title, background, max_bytes)


def html_budget(max_bytes: Optional[int]) -> int:
    """``to_html``'s ``max_bytes``, checked; None gives ``sw.config.html_budget_bytes``."""
    from ..config import config

    value = config.html_budget_bytes if max_bytes is None else max_bytes
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SaliencyError(f"max_bytes must be a positive number of bytes (the page's size budget); got {value!r}")
    return value


def _render(doc: dict[str, Any], widget: Any, title: str, background: str) -> str:
    stripped, buffers = _encoded(doc)
    return _PAGE.format(
        title=html.escape(title), background=html.escape(background), doc=_script_json(stripped),
        buffers=_script_json(buffers), bundle=_script_json(str(widget._esm)),
    )


def _fitted(doc: dict[str, Any], widget: Any, title: str, background: str, max_bytes: int) -> str:
    """The page within ``max_bytes``: its float arrays as 8-bit codes, largest first, until it fits;
    then without its variants; else a :class:`SaliencyError` naming the budget to raise."""
    doc = _copied(doc)  # its dicts are the widget's traits: change copies
    budget = f"to_html(max_bytes={max_bytes:,})"
    rounded = (f"To fit its size budget ({budget}) this page stores its maps as 8-bit values, each within 1/254 "
               "of its map's largest magnitude (hover values are rounded); raise max_bytes for exact values.")
    for holder, key in sorted(_float_wires(doc), key=lambda found: -wire_nbytes(found[0][found[1]])):
        holder[key] = quantized(holder[key])
        doc["state"]["_page_note"] = rounded
        page = _render(doc, widget, title, background)
        if len(page.encode("utf-8")) <= max_bytes:
            return page
    if doc["variants"]:
        doc["variants"] = {}
        doc["state"]["_page_note"] = (f"{rounded} What the kernel would send on a click (e.g. the Jacobian that "
                                      "switches outputs in the page) is left out to fit too.")
        page = _render(doc, widget, title, background)
        if len(page.encode("utf-8")) <= max_bytes:
            return page
    size = len(page.encode("utf-8"))
    raise SaliencyError(f"this widget's page takes {size:,} bytes even with 8-bit maps, over {budget}; pass a "
                        f"larger max_bytes= (or set sw.config.html_budget_bytes)")


def _copied(node: Any) -> Any:
    """``node`` with its dicts and lists copied (the arrays' bytes shared)."""
    if isinstance(node, dict):
        return {k: _copied(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copied(v) for v in node]
    return node


def _float_wires(node: Any) -> Iterator[tuple[Any, Any]]:
    """``(container, key)`` of every float wire array in a page's document."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if isinstance(value, dict) and {"data", "shape", "dtype"} <= set(value):
            if value["dtype"] in ("float32", "float64"):
                yield node, key
        elif isinstance(value, (dict, list)):
            yield from _float_wires(value)


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
