"""What every widget can export: a matplotlib figure, an image file, an offline HTML page,
and a static PNG in its MIME bundle (for nbconvert and GitHub)."""

from __future__ import annotations

import base64
import io
import pathlib
import re
import warnings
from typing import Any, Optional, Union

from ..errors import SaliencyError, SaliencyWarning
from ..export import FORMATS
from ._collection import collection_deferred
from .standalone import html_budget, standalone_html

#: Resolution of the PNG placed in the MIME bundle (kept small: it is computed on every display).
REPR_DPI = 72
#: Resolution of PNG files the browser's export button downloads.
EXPORT_DPI = 150
_MIME = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}


def slug(label: str) -> str:
    """A label as part of a file name (``slug`` in ``js/src/text.ts``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(label).strip()) or "output"


def figure_bytes(fig: Any, fmt: str, dpi: float = EXPORT_DPI) -> bytes:
    """``fig`` as a PNG, SVG or PDF file; SVG text stays ``<text>`` (searchable, editable)."""
    from matplotlib import rc_context

    buf = io.BytesIO()
    with rc_context({"svg.fonttype": "none", "pdf.fonttype": 42}):
        fig.savefig(buf, format=fmt, dpi=dpi)
    return buf.getvalue()


class ExportMixin:
    """``savefig``, ``to_html`` and the static PNG, built on the widget's ``to_figure``."""

    def to_figure(self, **kw: Any) -> Any:
        """The current view as a ``matplotlib.figure.Figure`` (``kw`` go to ``Figure``, e.g. ``figsize``)."""
        raise NotImplementedError

    def savefig(self, path: Union[str, pathlib.Path], *, dpi: float = 150, **kw: Any) -> pathlib.Path:
        """Writes :meth:`to_figure` to ``path``; the format comes from its suffix (png, svg or pdf)."""
        path = pathlib.Path(path)
        fmt = path.suffix.lower().lstrip(".")
        if fmt not in FORMATS:
            raise SaliencyError(f"savefig writes {', '.join('.' + f for f in FORMATS)} files; got {path.name!r}")
        path.write_bytes(figure_bytes(self.to_figure(**kw), fmt, dpi))
        return path

    def export_name(self) -> str:
        """The download's file name without suffix, e.g. ``saliency-class_0-integrated_gradients``."""
        return "figure"

    def _export_reply(self, content: Any) -> tuple[dict[str, Any], list[bytes]]:
        """The answer to the browser's ``{"type": "export", "format", "id"}`` request: the file
        ``to_figure()`` makes, or an ``error`` saying what went wrong."""
        fmt = str(content.get("format", ""))
        reply: dict[str, Any] = {"type": "export", "id": content.get("id")}
        if fmt not in FORMATS:
            return {**reply, "error": f"export format must be one of {', '.join(FORMATS)}; got {fmt!r}"}, []
        try:
            data = figure_bytes(self.to_figure(), fmt)
        except Exception as exc:  # shown in the widget; the kernel keeps running
            return {**reply, "error": f"export failed: {exc}"}, []
        return {**reply, "filename": f"{self.export_name()}.{fmt}", "mime": _MIME[fmt]}, [data]

    def _on_custom_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "export":
            reply, buffers = self._export_reply(content)
            self.send(reply, buffers)  # type: ignore[attr-defined]

    def to_html(self, path: Union[str, pathlib.Path], *, title: str = "saliency_widgets",
                max_bytes: Optional[int] = None) -> pathlib.Path:
        """Writes a self-contained page (bundle inlined, arrays embedded) that shows the widget
        offline, with hover and the interactions its embedded data can answer; the controls that need
        a kernel are disabled, with a note saying so. ``max_bytes`` (default
        ``sw.config.html_budget_bytes``, 3 MB): over it the page stores its maps as 8-bit values, then
        leaves out what only clicks would show; a page that still does not fit is refused."""
        path = pathlib.Path(path)
        page = standalone_html(self, title=title, variants=self._html_variants(), offline=True,
                               max_bytes=html_budget(max_bytes))
        path.write_text(page, encoding="utf-8")
        return path

    def _html_variants(self) -> dict[str, dict[Any, dict[str, Any]]]:
        """State patches the offline page applies when the browser sets a trait (see ``standalone``)."""
        return {}

    def _static_png(self) -> str:
        """:meth:`to_figure` as a base64 PNG."""
        buf = io.BytesIO()
        self.to_figure().savefig(buf, format="png", dpi=REPR_DPI)
        return base64.b64encode(buf.getvalue()).decode("ascii")

    @collection_deferred
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live widget view plus an ``image/png`` rendering for front ends without widgets."""
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if data is None:
            return bundle
        try:
            data["image/png"] = self._static_png()
        except Exception as exc:  # the live view must still display
            warnings.warn(f"no static PNG for this widget: {exc}", SaliencyWarning, stacklevel=3)
        return bundle
