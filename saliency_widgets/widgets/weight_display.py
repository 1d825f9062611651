"""How a layer's weight blocks are laid out as one table of 2-D pictures.

Pure numpy, shared by the WeightInspector (what the browser draws) and its
``to_figure`` (the same pictures in matplotlib).

Orientation: output units run down the rows everywhere, so the blocks of a layer
line up: a matrix whose second axis is its units (Keras ``kernel``) is shown
transposed, a 1-D block (a bias) is a column, a convolution kernel is a grid of
filters (one band of rows per filter, one column of tiles per input channel,
each tile the kernel window, tiles separated by blank cells) with the filters'
bias repeated beside each band, and anything else is reshaped to
``(prod(leading axes), last axis)``.

Table: the blocks of a gated RNN form a *gate matrix* — one band of rows per gate
(and per stacked layer / direction), one column per part (input kernel,
recurrent kernel, bias(es)); other layers put their blocks side by side in one
row. A layer has one colour scale: max |w| over its kernels (biases share it and
saturate beyond it, so a large bias such as Keras' forget-gate 1 cannot wash the
kernels out); a layer of biases only uses max |w| over them.

Downsampling rule: a picture of more than ``MAX_PICTURE_CELLS`` cells is cut into
windows of ``fr × fc`` cells and each window shows its entry of largest
magnitude, sign kept. Every displayed value is therefore a real weight, and its
original position travels with it (``index``), so hovering shows exact values
and where they sit. The browser applies the same rule again to fit its width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np

from ..weights import WeightBlock, split_block_name

#: Most cells of a block picture sent to the browser (more are downsampled).
MAX_PICTURE_CELLS = 1 << 18
#: Bins of the value histogram.
HIST_BINS = 24
#: Axis names that mean "one entry per output unit" (these run down the rows).
UNIT_AXES = ("unit", "units", "filter", "channel")


@dataclass(frozen=True)
class Picture:
    """A block as a 2-D picture: values (NaN = blank separator) and each cell's flat index in the block."""

    values: np.ndarray
    index: np.ndarray
    row_label: str
    col_label: str
    layout: str
    factor: tuple[int, int] = (1, 1)
    #: Rows and columns of one tile plus its gap (filter grids), else (1, 1).
    tile: tuple[int, int] = (1, 1)
    #: Rows and columns before downsampling (None: ``values.shape``).
    full_shape: Optional[tuple[int, int]] = None

    @property
    def full(self) -> tuple[int, int]:
        """Rows and columns of the picture at full resolution."""
        return self.full_shape or tuple(self.values.shape)  # type: ignore[return-value]

    @property
    def rule(self) -> str:
        """One sentence on how the picture was made from the block."""
        if self.factor == (1, 1):
            return "every weight shown"
        fr, fc = self.factor
        return f"downsampled: 1 cell = {fr}×{fc} weights, max |w| (hover for its position)"


@dataclass(frozen=True)
class Panel:
    """One block placed in the layer's table at (``row``, ``col``)."""

    block: WeightBlock
    picture: Picture
    row: int
    col: int


@dataclass(frozen=True)
class LayerDisplay:
    """A layer's blocks as one table on one colour scale."""

    panels: list[Panel]
    row_labels: list[str]
    col_labels: list[str]
    scale: float

    @property
    def has_gates(self) -> bool:
        """True for LSTM/GRU layers, split by gate or packed (axes named "4 gates (i f g o) × units")."""
        return any(p.block.gate or any(" gates (" in a for a in p.block.axes) for p in self.panels)


def layer_display(blocks: Sequence[WeightBlock], max_cells: int = MAX_PICTURE_CELLS) -> LayerDisplay:
    """The table of ``blocks`` (see the module docstring), each picture downsampled to ``max_cells``."""
    rows: dict[tuple[str, Optional[str]], int] = {}
    cols: dict[str, int] = {}
    pictures = [_layout(b) for b in blocks]
    grid = next((p for p in pictures if p.layout == "filters"), None)
    panels = []
    for b, pic in zip(blocks, pictures):
        prefix, part = split_block_name(b.name, b.gate)
        if grid is not None and pic.layout == "column" and b.axes == ("filter",):
            pic = _beside_filters(b, grid)
        row = rows.setdefault((prefix, b.gate), len(rows))
        col = cols.setdefault(part, len(cols))
        panels.append(Panel(b, _downsample(pic, max_cells), row, col))
    row_labels = ["\n".join(x for x in (f"{gate} gate" if gate else "", _short(prefix)) if x) for prefix, gate in rows]
    kernels = [b.array for b in blocks if b.role != "bias"] or [b.array for b in blocks]
    return LayerDisplay(panels, row_labels, list(cols), scale(kernels))


_SHORT = (("layer ", "L"), ("forward", "fwd"), ("reverse", "rev"), ("backward", "bwd"))


def _short(prefix: str) -> str:
    """``"layer 1 · reverse · "`` → ``"L1 rev"`` (a row label's second line)."""
    text = prefix.rstrip(" ·").replace(" · ", " ")
    for long, short in _SHORT:
        text = text.replace(long, short)
    return text


def picture(block: WeightBlock, max_cells: int = MAX_PICTURE_CELLS) -> Picture:
    """One block laid out alone (see the module docstring), downsampled to at most ``max_cells``."""
    return _downsample(_layout(block), max_cells)


def _layout(block: WeightBlock) -> Picture:
    array = np.asarray(block.array, dtype=np.float32)
    index = np.arange(array.size, dtype=np.int32).reshape(array.shape)
    axes = block.axes
    if array.ndim <= 1:
        return Picture(array.reshape(-1, 1), index.reshape(-1, 1), axes[0] if axes else "", "", "column")
    if array.ndim == 2:
        if _is_unit_axis(axes[1]) and not _is_unit_axis(axes[0]):
            return Picture(array.T, index.T, axes[1], axes[0], "matrix")
        return Picture(array, index, axes[0], axes[1], "matrix")
    if array.ndim in (3, 4) and "filters" in axes:
        return _filter_grid(array, index, axes)
    rows = " × ".join(axes[:-1])
    return Picture(array.reshape(-1, array.shape[-1]), index.reshape(-1, array.shape[-1]), rows, axes[-1], "matrix")


def _is_unit_axis(name: str) -> bool:
    return name.split(" ")[-1] in UNIT_AXES


def _filter_grid(array: np.ndarray, index: np.ndarray, axes: tuple[str, ...]) -> Picture:
    """(filters, channels, *window) tiles: bands of rows = filters, columns of tiles = channels."""
    f = axes.index("filters")
    c = next(i for i, a in enumerate(axes) if a.startswith("input channels"))
    window = [i for i in range(array.ndim) if i not in (f, c)]
    order = (f, c, *window)
    vals, idx = array.transpose(order), index.transpose(order)
    if vals.ndim == 3:
        vals, idx = vals[:, :, None, :], idx[:, :, None, :]
    n_f, n_c, th, tw = vals.shape
    gap_r = 1 if th > 1 else 0

    def mosaic(x: np.ndarray, blank: float) -> np.ndarray:
        tiles = np.pad(x.transpose(0, 2, 1, 3), ((0, 0), (0, gap_r), (0, 0), (0, 1)), constant_values=blank)
        grid = tiles.reshape(n_f * (th + gap_r), n_c * (tw + 1))
        return grid[: grid.shape[0] - gap_r, :-1]

    cols = f"{axes[c]} (tiles: {' × '.join(axes[i] for i in window)})"
    return Picture(mosaic(vals, np.nan), mosaic(idx, -1).astype(np.int32), "filters", cols, "filters", tile=(th + gap_r, tw + 1))


def _beside_filters(bias: WeightBlock, grid: Picture) -> Picture:
    """A filter bias as a column whose entry k fills filter k's band of the kernel grid."""
    band, _ = grid.tile
    rows = grid.values.shape[0]
    owner = np.arange(rows) // band
    blank = (np.arange(rows) % band == band - 1) & (band > 1)
    index = np.where(blank, -1, owner).astype(np.int32)[:, None]
    values = np.where(index >= 0, np.asarray(bias.array, np.float32)[np.maximum(index, 0)], np.nan)
    return Picture(values.astype(np.float32), index, "filter", "", "column", tile=(band, 1))


def _factors(rows: int, cols: int, max_cells: int) -> tuple[int, int]:
    """Window size (rows, cols) so that the downsampled picture has at most ``max_cells`` cells:
    only the long axis is cut when the other is short (at most √max_cells), else square windows."""
    if rows * cols <= max_cells:
        return 1, 1
    side = math.isqrt(max_cells)
    if cols <= side:
        return math.ceil(rows * cols / max_cells), 1
    if rows <= side:
        return 1, math.ceil(rows * cols / max_cells)
    k = math.ceil(math.sqrt(rows * cols / max_cells))
    return k, k


def _downsample(pic: Picture, max_cells: int) -> Picture:
    rows, cols = pic.values.shape
    fr, fc = _factors(rows, cols, max_cells)
    if fr == 1 and fc == 1:
        return pic
    out_r, out_c = math.ceil(rows / fr), math.ceil(cols / fc)
    pad = ((0, out_r * fr - rows), (0, out_c * fc - cols))

    def windows(x: np.ndarray, blank: float) -> np.ndarray:
        x = np.pad(x, pad, constant_values=blank)
        return x.reshape(out_r, fr, out_c, fc).transpose(0, 2, 1, 3).reshape(out_r, out_c, fr * fc)

    vals = windows(pic.values, np.nan)
    idx = windows(pic.index, -1)
    pick = np.argmax(np.where(np.isnan(vals), -1.0, np.abs(vals)), axis=-1)[..., None]
    return replace(
        pic,
        values=np.take_along_axis(vals, pick, -1)[..., 0],
        index=np.take_along_axis(idx, pick, -1)[..., 0].astype(np.int32),
        factor=(fr, fc),
        full_shape=(rows, cols),
    )


def scale(arrays: Sequence[np.ndarray]) -> float:
    """The colour scale magnitude: max |w| over ``arrays`` (1 when all zero), centred at 0."""
    finite = [np.abs(a[np.isfinite(a)]) for a in arrays]
    m = max((float(a.max()) for a in finite if a.size), default=0.0)
    return m if m > 0 else 1.0


def histogram(arrays: Sequence[np.ndarray], bins: int = HIST_BINS) -> tuple[list[int], tuple[float, float]]:
    """Counts of all the (finite) values of ``arrays`` in ``bins`` equal bins over [min, max]."""
    values = np.concatenate([a[np.isfinite(a)].astype(np.float64).ravel() for a in arrays] or [np.zeros(0)])
    if values.size == 0:
        return [0] * bins, (0.0, 0.0)
    lo, hi = float(values.min()), float(values.max())
    counts, _ = np.histogram(values, bins=bins, range=(lo, hi) if hi > lo else (lo - 0.5, hi + 0.5))
    return [int(c) for c in counts], (lo, hi)


def region(block: WeightBlock, rows: tuple[int, int], cols: tuple[int, int]) -> Picture:
    """The full-resolution cells ``[r0, r1) × [c0, c1)`` of ``block``'s picture (clipped to it)."""
    full = _layout(block)
    r0, r1 = max(0, rows[0]), min(full.values.shape[0], rows[1])
    c0, c1 = max(0, cols[0]), min(full.values.shape[1], cols[1])
    return replace(full, values=full.values[r0:r1, c0:c1], index=full.index[r0:r1, c0:c1])
