"""``WeightInspector``: every layer of a model, and what each weight array of one layer means."""

from __future__ import annotations

import pathlib
import warnings
from typing import Any, Optional, Sequence

import numpy as np
import traitlets as t

from .. import colors
from ..errors import SaliencyError, SaliencyWarning
from ..export import Scale, weights_figure
from ..transport import to_wire
from ..weights import LayerInfo, WeightBlock, layer_equation, layer_weights, layers, shape_text
from ._guarded import GuardedWidget
from .weight_display import histogram, picture, scale

STATIC = pathlib.Path(__file__).resolve().parent.parent / "static"
#: Signed weights: red positive, blue negative, white at 0.
CMAP = "RdBu_r"
#: Most weight bytes ``to_html`` embeds (all layers up to it, so the page can switch layers).
HTML_BUDGET_BYTES = 16 << 20


class WeightInspector(GuardedWidget):
    """A layer list and, for the selected layer, its weight blocks as heatmaps.

    ``sw.WeightInspector(model, layer=None)``: the list shows every layer (name,
    type, per-sample output shape, parameters); click one, or set ``layer`` (its
    name, or an index into the list) from Python. Each block (``sw.layer_weights``)
    is drawn with a diverging colour scale centred at 0 (±max |w| per block),
    its axis names, description, a value histogram and exact values on hover;
    recurrent layers show their update equation, convolution kernels a grid of
    filters. Blocks larger than ``weight_display.MAX_CELLS`` per side are
    downsampled for display (each cell keeps its window's largest-magnitude
    weight). ``blocks`` holds the exact ``WeightBlock`` list. Torch models need
    ``example=`` or ``input_shape=`` to show output shapes.
    """

    _esm = STATIC / "weight_inspector.js"

    #: Name of the selected layer (as in ``sw.layers``); an int index is accepted when set.
    layer = t.Union([t.Unicode(), t.Int()], default_value="").tag(sync=True)
    #: Split LSTM/GRU gate matrices into one block per gate.
    split_gates = t.Bool(True).tag(sync=True)

    _layers = t.List(t.Dict()).tag(sync=True)
    _blocks = t.List(t.Dict()).tag(sync=True)
    _equation = t.Unicode("").tag(sync=True)
    _note = t.Unicode("").tag(sync=True)
    _lut = t.Dict().tag(sync=True)

    def __init__(
        self,
        model: Any,
        *,
        layer: Any = None,
        split_gates: bool = True,
        example: Any = None,
        input_shape: Optional[Sequence[int]] = None,
    ) -> None:
        self._model = model
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SaliencyWarning)
            infos = layers(model, example, input_shape=input_shape)
        self._infos: list[LayerInfo] = infos
        self._blocks_exact: list[WeightBlock] = []
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
        return list(self._blocks_exact)

    @property
    def equation(self) -> Optional[str]:
        """The selected layer's update equation (recurrent layers), else None."""
        return self._equation or None

    def to_figure(self, **kw: Any) -> Any:
        """The selected layer's blocks as a matplotlib Figure: the same pictures and colours
        as the widget, each with its colour bar (``kw`` go to ``matplotlib.figure.Figure``)."""
        pictures = [picture(b) for b in self._blocks_exact]
        info = self._info(self.layer)
        return weights_figure(
            [p.values for p in pictures],
            [Scale("all", scale(b.array)) for b in self._blocks_exact],
            [f"{b.name}  {shape_text(b.shape)}" for b in self._blocks_exact],
            [(p.row_label, p.col_label) for p in pictures],
            title=f"Weights of “{info.name}” ({info.type})",
            subtitle=self._equation, **kw,
        )

    def _html_variants(self) -> dict[str, dict[Any, dict[str, Any]]]:
        """Every layer's blocks, so the offline page switches layers (up to ``HTML_BUDGET_BYTES``;
        a layer without weights shows the message the live widget would raise)."""
        patches: dict[Any, dict[str, Any]] = {}
        total = 0
        for info in self._infos:
            patch: dict[str, Any] = {"layer": info.name, "_blocks": [], "_equation": "", "_error": ""}
            try:
                blocks = layer_weights(self._model, info.name, split_gates=self.split_gates)
            except SaliencyError as exc:
                patches[info.name] = {**patch, "_error": str(exc)}
                continue
            total += sum(b.array.nbytes for b in blocks)
            if total > HTML_BUDGET_BYTES:
                break
            patch["_blocks"] = [_block_wire(b) for b in blocks]
            patch["_equation"] = layer_equation(self._model, info.name) or ""
            patches[info.name] = patch
        return {"layer": patches}

    # ------------------------------------------------------------ internals
    def _info(self, name: str) -> LayerInfo:
        return next(i for i in self._infos if i.name == name)

    def _load_layer(self) -> None:
        blocks = layer_weights(self._model, self.layer, split_gates=self.split_gates)
        self._blocks_exact = blocks
        self._blocks = [_block_wire(b) for b in blocks]
        self._equation = layer_equation(self._model, self.layer) or ""

    @t.validate("layer")
    def _check_layer(self, proposal: Any) -> str:
        value = proposal["value"]
        names = [i.name for i in self._infos]
        if isinstance(value, int) and not isinstance(value, bool):
            if not -len(names) <= value < len(names):
                self._invalid(f"layer index {value} out of range 0..{len(names) - 1}")
            return names[value]
        if value not in names:
            self._invalid(f"no layer {value!r}; valid layers: {', '.join(map(repr, names))}")
        return value

    @t.observe("layer", "split_gates")
    def _on_change(self, change: dict[str, Any]) -> None:
        self._guarded(change, self._load_layer)


def _layer_row(info: LayerInfo) -> dict[str, Any]:
    shape = None if info.output_shape is None else [None if n is None else int(n) for n in info.output_shape]
    return {"name": info.name, "type": info.type, "output_shape": shape, "n_params": int(info.n_params)}


def _block_wire(block: WeightBlock) -> dict[str, Any]:
    """What the browser needs to draw one block: its picture, index map, scale and histogram."""
    pic = picture(block)
    counts, (lo, hi) = histogram(block.array)
    a = block.array.astype(np.float64)
    return {
        "name": block.name,
        "role": block.role,
        "gate": block.gate,
        "source": block.source,
        "shape": list(block.shape),
        "axes": list(block.axes),
        "description": block.description,
        "layout": pic.layout,
        "row_label": pic.row_label,
        "col_label": pic.col_label,
        "rule": pic.rule,
        "m": scale(block.array),
        "stats": {"min": lo, "max": hi, "mean": float(a.mean()) if a.size else 0.0, "std": float(a.std()) if a.size else 0.0},
        "hist": counts,
        "values": to_wire(pic.values),
        "index": to_wire(pic.index, "int32"),
    }
