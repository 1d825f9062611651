"""The class means of a dataset's attributions as one matplotlib figure.

Colours, layouts and the colour bar are the widgets' (:mod:`..colors` through
:mod:`..export`, samples laid out by :mod:`..inputs`): vectors as a
classes × features matrix, images and sequences as one tile per class, all on
one scale so classes compare.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np

from .. import colors
from ..export import METHOD_TEXT, Scale, draw_colorbar, grid_columns, map_pixels
from ..inputs import infer_layout

_GROUPING_TEXT = {"label": "true label", "prediction": "predicted class", "target": "explained output"}


def class_means_figure(means: dict[int, np.ndarray], titles: Sequence[str], *, framework: str, method: str,
                       grouping: str, kind: Optional[str] = None, sign: str = "all", outlier_perc: float = 2.0,
                       **fig_kw: Any) -> Any:
    """One map per class (``means``: class → mean attribution of one sample's shape)."""
    from matplotlib.figure import Figure

    arrays = list(means.values())
    layout = infer_layout(arrays[0].shape, framework, kind)
    display = np.stack([layout.reduce(a) for a in arrays])
    scale = Scale(sign, colors.scale_max(display, sign, outlier_perc), outlier_perc)
    title = f"Mean {METHOD_TEXT.get(method, method)} by {_GROUPING_TEXT[grouping]}"
    fig_kw.setdefault("layout", "constrained")
    if layout.kind == "vector":
        n_classes, n_features = display.shape
        fig_kw.setdefault("figsize", (min(11.0, max(4.5, 0.3 * n_features + 2.5)), min(10.0, 0.35 * n_classes + 2.2)))
        fig = Figure(**fig_kw)
        ax, bar = fig.subplots(2, 1, height_ratios=[max(2, n_classes), 1.0])
        ax.imshow(scale.rgba(display), interpolation="nearest", aspect="auto")
        ax.set_yticks(range(n_classes), titles, fontsize=8)
        ax.set_xlabel("feature index", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(title, fontsize=11)
    else:
        ncols = grid_columns(len(arrays), max_cols=6)
        nrows = math.ceil(len(arrays) / ncols)
        rows, cols = map_pixels(display[0], layout.kind, scale).shape[:2]
        fig_kw.setdefault("figsize", (2.2 * ncols + 0.4, 2.2 * nrows * rows / cols + 1.4))
        fig = Figure(**fig_kw)
        spec = fig.add_gridspec(nrows + 1, ncols, height_ratios=[1.0] * nrows + [0.2])
        for i, (values, name) in enumerate(zip(display, titles)):
            ax = fig.add_subplot(spec[i // ncols, i % ncols])
            ax.imshow(map_pixels(values, layout.kind, scale), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(name, fontsize=8)
            if layout.kind == "sequence":
                ax.set_xlabel("time step →", fontsize=7)
                ax.set_ylabel("feature", fontsize=7)
        fig.suptitle(title, fontsize=11)
        bar = fig.add_subplot(spec[nrows, :])
    draw_colorbar(bar, scale, "mean attribution")
    return fig
