"""What every widget can export: a matplotlib figure, an image file, an offline HTML page,
and a static PNG in its MIME bundle (for nbconvert and GitHub)."""

from __future__ import annotations

import base64
import io
import pathlib
import warnings
from typing import Any, Union

from ..errors import SaliencyError, SaliencyWarning
from ..export import FORMATS
from .standalone import standalone_html

#: Resolution of the PNG placed in the MIME bundle (kept small: it is computed on every display).
REPR_DPI = 72


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
        self.to_figure(**kw).savefig(path, format=fmt, dpi=dpi)
        return path

    def to_html(self, path: Union[str, pathlib.Path], *, title: str = "saliency_widgets") -> pathlib.Path:
        """Writes a self-contained page (bundle inlined, arrays embedded) that shows the widget
        offline, with hover and the interactions its embedded data can answer."""
        path = pathlib.Path(path)
        path.write_text(standalone_html(self, title=title, variants=self._html_variants()), encoding="utf-8")
        return path

    def _html_variants(self) -> dict[str, dict[Any, dict[str, Any]]]:
        """State patches the offline page applies when the browser sets a trait (see ``standalone``)."""
        return {}

    def _static_png(self) -> str:
        """:meth:`to_figure` as a base64 PNG."""
        buf = io.BytesIO()
        self.to_figure().savefig(buf, format="png", dpi=REPR_DPI)
        return base64.b64encode(buf.getvalue()).decode("ascii")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live widget view plus an ``image/png`` rendering for front ends without widgets."""
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if data is None:
            return bundle
        try:
            data["image/png"] = self._static_png()
        except Exception as exc:  # the live view must still display
            warnings.warn(f"no static PNG for this widget: {exc}", SaliencyWarning, stacklevel=2)
        return bundle
