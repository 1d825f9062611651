"""How a weight block is laid out as a 2-D picture, and downsampled when it is large.

Pure numpy, shared by the WeightInspector (what the browser draws) and its
``to_figure`` (the same picture in matplotlib).

Layout: a vector is one row; a matrix is shown as stored; a convolution kernel
becomes a grid of filters (one column of tiles per filter, one row of tiles per
input channel, each tile the kernel window, tiles separated by blank cells);
anything else is reshaped to ``(prod(leading axes), last axis)``.

Downsampling rule: when a picture has more than ``MAX_CELLS`` rows or columns,
it is cut into windows of ``ceil(rows / MAX_CELLS) × ceil(cols / MAX_CELLS)``
cells and each window shows its entry of largest magnitude, sign kept. Every
displayed value is therefore a real weight, and its original position travels
with it (``index``), so hovering shows exact values and where they sit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..weights import WeightBlock

#: Most rows or columns of a block picture sent to the browser.
MAX_CELLS = 256
#: Bins of the value histogram.
HIST_BINS = 24


@dataclass(frozen=True)
class Picture:
    """A block as a 2-D picture: values (NaN = blank separator) and each cell's flat index in the block."""

    values: np.ndarray
    index: np.ndarray
    row_label: str
    col_label: str
    layout: str
    factor: tuple[int, int] = (1, 1)

    @property
    def rule(self) -> str:
        """One sentence on how the picture was made from the block."""
        if self.factor == (1, 1):
            return "every weight shown"
        fr, fc = self.factor
        return f"downsampled: each cell shows the largest-magnitude weight of a {fr}×{fc} window (hover for its position)"


def picture(block: WeightBlock, max_cells: int = MAX_CELLS) -> Picture:
    """The block laid out in 2-D (see module docstring), downsampled to at most ``max_cells`` per side."""
    pic = _layout(block)
    return _downsample(pic, max_cells)


def _layout(block: WeightBlock) -> Picture:
    array = np.asarray(block.array, dtype=np.float32)
    index = np.arange(array.size, dtype=np.int32).reshape(array.shape)
    axes = block.axes
    if array.ndim <= 1:
        return Picture(array.reshape(1, -1), index.reshape(1, -1), "", axes[0] if axes else "", "vector")
    if array.ndim == 2:
        return Picture(array, index, axes[0], axes[1], "matrix")
    if array.ndim in (3, 4) and "filters" in axes:
        return _filter_grid(array, index, axes)
    rows = " × ".join(axes[:-1])
    return Picture(array.reshape(-1, array.shape[-1]), index.reshape(-1, array.shape[-1]), rows, axes[-1], "matrix")


def _filter_grid(array: np.ndarray, index: np.ndarray, axes: tuple[str, ...]) -> Picture:
    """(filters, channels, *window) tiles: columns of tiles = filters, rows of tiles = channels."""
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
        tiles = np.pad(x.transpose(1, 2, 0, 3), ((0, 0), (0, gap_r), (0, 0), (0, 1)), constant_values=blank)
        grid = tiles.reshape(n_c * (th + gap_r), n_f * (tw + 1))
        return grid[: grid.shape[0] - gap_r, :-1]

    row = f"{axes[c]} (tiles: {' × '.join(axes[i] for i in window)})"
    return Picture(mosaic(vals, np.nan), mosaic(idx, -1).astype(np.int32), row, "filters", "filters")


def _downsample(pic: Picture, max_cells: int) -> Picture:
    rows, cols = pic.values.shape
    fr, fc = math.ceil(rows / max_cells), math.ceil(cols / max_cells)
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
    return Picture(
        np.take_along_axis(vals, pick, -1)[..., 0],
        np.take_along_axis(idx, pick, -1)[..., 0].astype(np.int32),
        pic.row_label,
        pic.col_label,
        pic.layout,
        (fr, fc),
    )


def scale(array: np.ndarray) -> float:
    """The colour scale magnitude of a block: max |w| (1 when all zero), centred at 0."""
    finite = np.abs(array[np.isfinite(array)])
    m = float(finite.max()) if finite.size else 0.0
    return m if m > 0 else 1.0


def histogram(array: np.ndarray, bins: int = HIST_BINS) -> tuple[list[int], tuple[float, float]]:
    """Counts of all the block's (finite) values in ``bins`` equal bins over [min, max]."""
    values = array[np.isfinite(array)].astype(np.float64)
    if values.size == 0:
        return [0] * bins, (0.0, 0.0)
    lo, hi = float(values.min()), float(values.max())
    counts, _ = np.histogram(values, bins=bins, range=(lo, hi) if hi > lo else (lo - 0.5, hi + 0.5))
    return [int(c) for c in counts], (lo, hi)
