"""Reading an exported matplotlib figure back as pixels (not a test module)."""

from __future__ import annotations

import numpy as np

from saliency_widgets.export import COLORBAR_GID

DPI = 100


def render(fig, dpi: int = DPI) -> np.ndarray:
    """The figure rasterized by Agg at ``dpi``, as (h, w, 4) uint8."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def heatmaps(fig) -> list:
    """The figure's cell images (``imshow`` of per-cell pixels), in drawing order; colour bars excluded."""
    return [im for ax in fig.axes for im in ax.images if im.get_gid() != COLORBAR_GID]


def cell_pixels(fig, image, pixels: np.ndarray) -> np.ndarray:
    """The rendered colour (h, w, 4) at the centre of each cell of ``image``, read from ``pixels``."""
    rows, cols = image.get_array().shape[:2]
    rr, cc = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    xy = image.axes.transData.transform(np.column_stack([cc.ravel(), rr.ravel()]))
    height = pixels.shape[0]
    x = np.floor(xy[:, 0]).astype(int)
    y = np.floor(height - xy[:, 1]).astype(int)
    return pixels[y, x].reshape(rows, cols, 4)
