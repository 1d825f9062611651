"""``JacobianGrid``: every output × every input of one sample at once."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np
import traitlets as t

from ..attribution import output_rows
from ..errors import SaliencyError
from ..export import format_value, jacobian_figure
from ..inputs import background_image
from ..transport import ARRAY_TRAIT, to_wire
from ._base import SampleWidget, output_labels
from ._guarded import Step, bundle, kept
from ._collection import collection_deferred
from ._export import slug
from ..frameworks import accepts_framework

#: The largest display Jacobian sent to the browser; beyond it, ask for ``outputs=``.
MAX_WIRE_BYTES = 64 << 20


class JacobianGrid(SampleWidget):
    """The Jacobian of sample ``index``: how each input moves each output.

    ``sw.JacobianGrid(model, x, outputs=None, labels=None, kind=None)``. Vector
    inputs show one (outputs × inputs) heatmap with row and column labels;
    image and sequence inputs show one small map per output, all on one shared
    colour scale (channels summed, see :mod:`saliency_widgets.inputs`); image tiles
    lie over a faint grey copy of the input, visible where the map is near 0.
    ``outputs=`` restricts the rows to some output indices (flat ints or index
    tuples). Clicking a row or tile sets ``selected`` (a flat output index);
    hovering an input shows how it moves every output. ``jacobian`` is the
    current sample's Jacobian, ``sw.jacobian(model, x, outputs=outputs)[index]``.
    Structured ``x``, ``head=``, ``layer=``, ``fixed=``, ``tokens=`` and ``entry=`` work as
    in :class:`SaliencyMap` (a text layout draws each output's row over the tokens).
    """

    _esm = bundle("jacobian_grid.js")

    #: Flat index of the highlighted output (one of the rows).
    selected = t.Int(0).tag(sync=True)

    _rows = t.List(t.Int()).tag(sync=True)
    _jacobian = t.Dict().tag(**ARRAY_TRAIT)
    #: The shown sample as an (H, W, 3) uint8 picture under the tiles (image inputs only).
    _image = t.Dict(allow_none=True, default_value=None).tag(**ARRAY_TRAIT)

    @collection_deferred
    @accepts_framework
    def __init__(
        self,
        model: Any,
        x: Any,
        *,
        outputs: Optional[Sequence[Any]] = None,
        labels: Optional[Sequence[Any]] = None,
        kind: Optional[str] = None,
        feature_names: Optional[Sequence[Any]] = None,
        output: str = "logits",
        head: Any = None,
        layer: Any = None,
        fixed: Any = None,
        tokens: Any = None,
        entry: Any = None,
        index: int = 0,
        sign: str = "all",
        outlier_perc: float = 2.0,
    ) -> None:
        self._outputs_arg = None if outputs is None else list(outputs)
        self._cache: dict[tuple, np.ndarray] = {}
        super().__init__(
            model, x, kind=kind, labels=None, feature_names=feature_names,
            head=head, layer=layer, fixed=fixed, tokens=tokens, entry=entry, output=output, index=index, sign=sign,
            outlier_perc=outlier_perc,
        )
        rows = self._flat_rows()
        self._labels = self._row_aware_labels(labels, rows)
        scores = self._all_scores(self.output)[self.index].reshape(-1)
        with self.hold_sync():
            self._rows = rows
            self.selected = rows[int(np.argmax(scores[rows]))]
            self._send_jacobian()
        self._ready = True

    @property
    def jacobian(self) -> np.ndarray:
        """``sw.jacobian(model, x, output=output, outputs=outputs)[index]``."""
        return self._jacobian_of(self.index, self.output)

    def to_figure(self, **kw: Any) -> Any:
        """The grid on screen as a matplotlib Figure: one shared colour scale, labels, colour bar
        (``kw`` go to ``matplotlib.figure.Figure``, e.g. ``figsize``)."""
        info = self._layout_info
        channels = " · channels summed" if info.channel_axis is not None else ""
        shape = "×".join(map(str, info.display_shape))
        scores = self._all_scores(self.output)[self.index].reshape(-1)
        tile = info.kind != "vector"
        labels = [f"{self._labels[r]}\n{format_value(scores[r])}" if tile else self._labels[r] for r in self._rows]
        names = self._tokens_wire()["tokens"] if info.kind == "text" else self._feature_names
        return jacobian_figure(
            self._display_values(), kind=info.kind, scale=self._scale(),
            row_labels=labels, selected=self._rows.index(self.selected),
            title="Jacobian", feature_names=names, image=self._picture(),
            subtitle=f"{len(self._rows)} outputs × {shape} inputs · {self.output}{channels}{self._sample_text()}", **kw,
        )

    def export_name(self) -> str:
        """``jacobian-<selected output's label>``, the name of the browser's downloads."""
        return f"jacobian-{slug(self._labels[self.selected])}"

    # ------------------------------------------------------------ helpers
    def _flat_rows(self) -> list[int]:
        if self._outputs_arg is None:
            return list(range(self.n_outputs))
        return output_rows(self._outputs_arg, tuple(self._out_shape)).tolist()

    def _row_aware_labels(self, labels: Optional[Sequence[Any]], rows: list[int]) -> list[str]:
        """Labels for every output; ``labels`` may also name just the ``outputs=`` rows."""
        if labels is not None and len(labels) == len(rows) != self.n_outputs:
            names = list(self._labels)
            for r, label in zip(rows, labels):
                names[r] = str(label)
            return names
        return output_labels(tuple(self._out_shape), labels)

    def _jacobian_of(self, index: int, output: str) -> np.ndarray:
        key = (index, output, self.entry)
        if key not in self._cache:
            self._cache = {key: self._jacobian_job(index, output)()}
        return self._cache[key]

    def _jacobian_job(self, index: int, output: str) -> Callable[[], np.ndarray]:
        """:meth:`_jacobian_of`'s computation as a function that reads no trait (a worker may run it)."""
        from ..attribution import jacobian

        n_rows = len(self._rows or self._flat_rows())
        display = int(np.prod(self._layout_info.display_shape, dtype=np.int64))
        if n_rows * display * 4 > MAX_WIRE_BYTES:
            raise SaliencyError(
                f"the Jacobian has {n_rows} outputs × {display} inputs, too large to draw; "
                "pass outputs=[...] to pick the outputs to show"
            )
        x, entry = self._sample_x(index), self.entry

        def compute() -> np.ndarray:
            jac = jacobian(self._model, x, output=output, outputs=self._outputs_arg, **self._engine_kw)
            return np.asarray((jac if entry is None else jac[entry])[0], dtype=np.float32)

        return compute

    def _background_work(self) -> list[Step]:
        """The shown sample's Jacobian when it is not computed yet (a worker may compute it)."""
        key = (self.index, self.output, self.entry)
        if key in self._cache:
            return []
        return [kept(self._jacobian_job(self.index, self.output), lambda jac: setattr(self, "_cache", {key: jac}))]

    def _rows_matrix(self) -> np.ndarray:
        """The current Jacobian as ``(rows, *sample_shape)``."""
        jac = self._jacobian_of(self.index, self.output)
        return jac.reshape((len(self._rows),) + self._x.shape[1:])

    def _display_values(self) -> np.ndarray:
        return self._layout_info.reduce(self._rows_matrix())

    def _show_entry(self) -> None:
        self._send_jacobian()

    def _picture(self) -> Optional[np.ndarray]:
        """The shown sample as the (H, W, 3) uint8 picture under the tiles; None unless an image."""
        info = self._layout_info
        return background_image(self._x[self.index], info) if info.kind == "image" else None

    def _send_jacobian(self) -> None:
        self._scores = self._scores_wire()
        picture = self._picture()
        self._image = None if picture is None else to_wire(picture, "uint8", index=self.index)
        self._jacobian = to_wire(self._display_values(), index=self.index, output=self.output)

    # ----------------------------------------------------------- observers
    @t.validate("selected")
    def _check_selected(self, proposal: Any) -> int:
        i = int(proposal["value"])
        if self._rows and i not in self._rows:
            self._invalid(f"selected must be one of the shown outputs {self._rows[:10]}{'…' if len(self._rows) > 10 else ''}; got {i}")
        return i

    @t.observe("index", "output")
    def _on_sample(self, change: dict[str, Any]) -> None:
        def update() -> None:
            self._jacobian_of(self.index, self.output)
            self._send_jacobian()

        self._guarded(change, update)
