"""The WeightInspector's table as a matplotlib Figure: the same blocks, places, cells and colours as the screen."""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np

from ..export import Scale, draw_colorbar
from ..weights import shape_text
from .weight_display import LayerDisplay

#: Largest cell (inches), and the most inches the table may take across / down.
MAX_CELL_IN = 0.28
TABLE_WIDTH_IN = 9.0
TABLE_HEIGHT_IN = 7.0


def layer_figure(display: LayerDisplay, title: str, equation: str = "", **fig_kw: Any) -> Any:
    """One panel per block at its (row, col) of the table, all cells the same size, one colour bar.

    Row bands are labelled with their gate, columns with their part; blank
    separator cells (filter grids) are transparent, as on screen.
    """
    from matplotlib.figure import Figure

    panels = display.panels
    n_rows, n_cols = len(display.row_labels), len(display.col_labels)
    row_cells = [max(p.picture.values.shape[0] for p in panels if p.row == r) for r in range(n_rows)]
    col_cells = [max(p.picture.values.shape[1] for p in panels if p.col == c) for c in range(n_cols)]
    cell = min(MAX_CELL_IN, TABLE_WIDTH_IN / sum(col_cells), TABLE_HEIGHT_IN / sum(row_cells))
    width = max(6.0, sum(col_cells) * cell + 0.6 * n_cols + 1.4)
    head = textwrap.fill(title, 100) + ("\n" + "\n".join(textwrap.fill(line, 110) for line in equation.splitlines()) if equation else "")
    height = sum(row_cells) * cell + 0.45 * n_rows + 1.2 + 0.18 * head.count("\n")
    fig_kw.setdefault("figsize", (width, height))
    fig_kw.setdefault("layout", "constrained")
    fig = Figure(**fig_kw)
    spec = fig.add_gridspec(n_rows + 1, n_cols, width_ratios=col_cells, height_ratios=[*row_cells, max(1.0, 0.06 * sum(row_cells))])
    scale = Scale("all", display.scale)
    for p in panels:
        values = p.picture.values
        rgba = scale.rgba(values)
        rgba[np.isnan(values), 3] = 0
        ax = fig.add_subplot(spec[p.row, p.col])
        ax.imshow(rgba, interpolation="nearest")
        ax.set_xlim(-0.5, col_cells[p.col] - 0.5)
        ax.set_ylim(row_cells[p.row] - 0.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
        if p.row == 0:
            name = textwrap.fill(display.col_labels[p.col], max(6, int(col_cells[p.col] * cell * 13)), break_long_words=False)
            shape = values.shape if p.picture.layout == "matrix" else p.block.shape
            ax.set_title(f"{name}\n{shape_text(shape)}", fontsize=8)
        if p.col == 0 and display.row_labels[p.row]:
            ax.set_ylabel(display.row_labels[p.row], fontsize=8)
    draw_colorbar(fig.add_subplot(spec[n_rows, :]), scale, label="one scale: ±max |w| of the kernels")
    fig.suptitle(head, fontsize=9)
    return fig
