"""``WeightInspector``: every layer of a model, and what each weight array of one layer means."""

from __future__ import annotations

import warnings
from typing import Any, Optional, Sequence

import numpy as np
import traitlets as t

from .. import colors
from ..errors import SaliencyError, SaliencyWarning
from ..transport import to_wire
from ..model_layers import layer_equation_parts, layer_name, layer_weights, layers
from ..weights import LayerInfo, WeightBlock
from ._collection import collection_deferred
from ._export import slug
from ._guarded import GuardedWidget, bundle
from .weight_display import LayerDisplay, Panel, histogram, layer_display, region
from .weight_figure import layer_figure
from ..frameworks import accepts_framework

#: Signed weights: red positive, blue negative, white at 0.
CMAP = "RdBu_r"
#: Most weight bytes ``to_html`` embeds (all layers up to it, so the page can switch layers).
HTML_BUDGET_BYTES = 16 << 20
#: Most rows / columns of a full-resolution region the kernel sends for a zoom.
ZOOM_CELLS = 64


class WeightInspector(GuardedWidget):
    """A layer list and, for the selected layer, its weight blocks as one table of heatmaps.

    ``sw.WeightInspector(model, layer=None, x=None)``: the list shows every layer
    (name, type, per-sample output shape, parameters; layers without weights are
    greyed); click one, or set ``layer`` (its name, an index into the list, or the
    layer object) from Python. A gated RNN is one *gate matrix* (rows = gates,
    columns = input kernel / recurrent kernel / biases) with its update equation;
    a convolution kernel a grid of filters × input channels; all blocks of a
    layer share one diverging colour scale centred at 0 (±max |w|). Large blocks
    are downsampled for display (each cell keeps its window's largest-magnitude
    weight); click a map to zoom into its full-resolution region; hover shows
    exact values. ``blocks`` holds the exact ``WeightBlock`` list. Torch models
    show output shapes when ``x=`` (one batch) or ``input_shape=`` is given; else
    when the model has already been attributed on an input (a SaliencyMap or
    JacobianGrid on it, ``sw.saliency``, ``sw.jacobian``: its backend remembers the
    input shapes it has seen, and the inspector traces zeros of the last one); else
    when their first layer is a ``Linear``.
    """

    _esm = bundle("weight_inspector.js")

    #: Name of the selected layer (as in ``sw.layers``); an index or the layer object is accepted when set.
    layer = t.Any("").tag(sync=True)
    #: Split LSTM/GRU gate matrices into one block per gate.
    split_gates = t.Bool(True).tag(sync=True)
    #: A zoom the browser asks for: ``{"block": name, "rows": [r0, r1], "cols": [c0, c1]}`` in picture cells.
    zoom = t.Dict().tag(sync=True)

    # Kernel → browser only; the arrays are never echoed back (marimo, ipywidgets' echo_update).
    _layers = t.List(t.Dict()).tag(sync=True)
    _blocks = t.List(t.Dict()).tag(sync=True, echo_update=False)
    _table = t.Dict().tag(sync=True)
    _equation = t.Dict().tag(sync=True)
    _zoom = t.Dict().tag(sync=True, echo_update=False)
    _note = t.Unicode("").tag(sync=True)
    _lut = t.Dict().tag(sync=True, echo_update=False)

    @collection_deferred
    @accepts_framework
    def __init__(
        self,
        model: Any,
        *,
        layer: Any = None,
        split_gates: bool = True,
        x: Any = None,
        input_shape: Optional[Sequence[int]] = None,
    ) -> None:
        self._model = model
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SaliencyWarning)
            infos = layers(model, x, input_shape=input_shape)
        self._infos: list[LayerInfo] = infos
        self._display = LayerDisplay([], [], [], 1.0)
        if not infos:
            raise SaliencyError("the model has no layers to inspect")
        first = layer if layer is not None else next((i.name for i in infos if i.n_params > 0), infos[0].name)
        super().__init__(
            split_gates=split_gates,
            _layers=[_layer_row(i) for i in infos],
            _lut=to_wire(colors.lut(CMAP), "uint8"),
            _note="; ".join(str(w.message) for w in caught if issubclass(w.category, SaliencyWarning)),
        )
        with self.hold_sync():
            self.layer = first
            self._load_layer()
        self._ready = True

    # -------------------------------------------------------------- results
    @property
    def blocks(self) -> list[WeightBlock]:
        """The selected layer's weight blocks, exact values (``sw.layer_weights(model, layer)``)."""
        return [p.block for p in self._display.panels]

    @property
    def equation(self) -> Optional[str]:
        """The selected layer's update equation (recurrent layers), else None."""
        lines = [*self._equation.get("math", []), *self._equation.get("notes", [])]
        return "\n".join(lines) or None

    def to_figure(self, **kw: Any) -> Any:
        """The selected layer's block table as a matplotlib Figure: the same places, pictures,
        colours and shared scale as the widget, under its title, subtitle and typeset update
        equations (``kw`` go to ``matplotlib.figure.Figure``)."""
        info = self._info(self.layer)
        shape = "?" if info.output_shape is None else "×".join("?" if n is None else str(n) for n in info.output_shape)
        return layer_figure(self._display, f"Weights of “{info.name}”", f"{info.type} · output {shape} · {info.n_params:,} params",
                            self._equation.get("math", []), self._equation.get("notes", []), **kw)

    def export_name(self) -> str:
        """``weights-<layer>``, the name of the browser's downloads."""
        return f"weights-{slug(self.layer)}"

    def _html_variants(self) -> dict[str, dict[Any, dict[str, Any]]]:
        """Every layer's blocks, so the offline page switches layers (up to ``HTML_BUDGET_BYTES``;
        a layer without weights is not selectable there, as in the live widget)."""
        patches: dict[Any, dict[str, Any]] = {}
        total = 0
        for info in self._infos:
            try:
                state = _layer_state(self._model, info.name, self.split_gates)[1]
            except SaliencyError:
                continue
            total += sum(_wire_bytes(b) for b in state["_blocks"])
            if total > HTML_BUDGET_BYTES:
                break
            patches[info.name] = {"layer": info.name, "_zoom": {}, **state}
        return {"layer": patches}

    # ------------------------------------------------------------ internals
    def _info(self, name: str) -> LayerInfo:
        return next(i for i in self._infos if i.name == name)

    def _load_layer(self) -> None:
        self._display, state = _layer_state(self._model, self.layer, self.split_gates)
        for key, value in {**state, "_zoom": {}}.items():
            setattr(self, key, value)

    @t.validate("layer")
    def _check_layer(self, proposal: Any) -> str:
        value = proposal["value"]
        names = [i.name for i in self._infos]
        if isinstance(value, str):
            if value not in names:
                self._invalid(f"no layer {value!r}; valid layers: {', '.join(map(repr, names))}")
            return value
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if not -len(names) <= value < len(names):
                self._invalid(f"layer index {value} out of range 0..{len(names) - 1}")
            return names[int(value)]
        try:
            return layer_name(self._model, value)
        except SaliencyError:
            pass
        self._invalid(f"this {type(value).__name__} is not a layer of the model; pass a layer name, an index or one of its layers")
        return ""

    @t.observe("layer", "split_gates")
    def _on_change(self, change: dict[str, Any]) -> None:
        self._guarded(change, self._load_layer)

    @t.validate("zoom")
    def _check_zoom(self, proposal: Any) -> dict[str, Any]:
        request = proposal["value"]
        if request and not _is_zoom(request):
            self._invalid('zoom must be {"block": name, "rows": [r0, r1], "cols": [c0, c1]} with finite numbers '
                          f"r0 ≤ r1 and c0 ≤ c1 (picture cells); got {request!r}")
        return request

    @t.observe("zoom")
    def _on_zoom(self, change: dict[str, Any]) -> None:
        """Answers the browser's zoom request with the block's full-resolution region."""
        request = change["new"]
        panel = next((p for p in self._display.panels if p.block.name == request.get("block")), None)
        if panel is None:
            return
        r0, r1 = (max(0, int(v)) for v in request["rows"])
        c0, c1 = (max(0, int(v)) for v in request["cols"])
        pic = region(panel.block, (r0, min(r1, r0 + ZOOM_CELLS)), (c0, min(c1, c0 + ZOOM_CELLS)))
        self._zoom = {
            "block": panel.block.name, "rows": [r0, r0 + pic.values.shape[0]], "cols": [c0, c0 + pic.values.shape[1]],
            "values": to_wire(pic.values), "index": to_wire(pic.index, "int32"),
        }


def _is_zoom(request: dict[str, Any]) -> bool:
    """Whether ``request`` is a zoom the inspector can answer (see ``WeightInspector.zoom``)."""
    try:
        spans = [[float(v) for v in request[axis]] for axis in ("rows", "cols")]
    except (KeyError, TypeError, ValueError):
        return False
    return isinstance(request.get("block"), str) and all(
        len(span) == 2 and all(np.isfinite(span)) and span[0] <= span[1] for span in spans)


def _layer_state(model: Any, layer: str, split_gates: bool) -> tuple[LayerDisplay, dict[str, Any]]:
    """The display of one layer and the traits that carry it to the browser."""
    display = layer_display(layer_weights(model, layer, split_gates=split_gates))
    math, notes = layer_equation_parts(model, layer)
    arrays = [p.block.array for p in display.panels]
    counts, (lo, hi) = histogram(arrays)
    flat = np.concatenate([a.astype(np.float64).ravel() for a in arrays])
    table = {
        "rows": display.row_labels,
        "cols": display.col_labels,
        "m": display.scale,
        "has_gates": display.has_gates,
        "hist": counts,
        "stats": {"min": lo, "max": hi, "mean": float(flat.mean()), "std": float(flat.std())},
    }
    state = {
        "_blocks": [_block_wire(p) for p in display.panels],
        "_table": table,
        "_equation": {"math": math, "notes": notes},
    }
    return display, state


def _layer_row(info: LayerInfo) -> dict[str, Any]:
    shape = None if info.output_shape is None else [None if n is None else int(n) for n in info.output_shape]
    return {"name": info.name, "type": info.type, "output_shape": shape, "n_params": int(info.n_params)}


def _block_wire(panel: Panel) -> dict[str, Any]:
    """What the browser needs to draw one block: its place in the table, picture and index map."""
    block, pic = panel.block, panel.picture
    return {
        "name": block.name,
        "role": block.role,
        "gate": block.gate,
        "source": block.source,
        "shape": list(block.shape),
        "axes": list(block.axes),
        "description": block.description,
        "row": panel.row,
        "col": panel.col,
        "layout": pic.layout,
        "row_label": pic.row_label,
        "col_label": pic.col_label,
        "factor": list(pic.factor),
        "full": list(pic.full),
        "tile": list(pic.tile),
        "rule": pic.rule,
        "values": to_wire(pic.values),
        "index": to_wire(pic.index, "int32"),
    }


def _wire_bytes(wire: dict[str, Any]) -> int:
    return len(wire["values"]["data"]) + len(wire["index"]["data"])
