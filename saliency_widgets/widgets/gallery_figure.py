"""``DatasetMap.to_figure``: the class means on one scale, then the first samples listed, as the widget shows them."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from .. import colors
from ..export import Scale, draw_colorbar, map_pixels, screen_grid

#: Thumbnails per row of the samples' part.
SAMPLE_COLUMNS = 6
#: Most class means drawn (the first ones, by class).
MAX_MEANS = 20
MISTAKE = "#c62828"
_MUTED = "#5f6673"


def gallery_figure(means: dict[str, Any], kind: str, samples: Sequence[dict[str, Any]], *, name: Callable[[int], str],
                   sign: str, outlier_perc: float, title: str, subtitle: str, nonnegative: bool = False,
                   **fig_kw: Any) -> Any:
    """``means``: ``{"by", "classes", "counts", "display"}`` (display maps, one per class); ``samples``: the
    views of the samples drawn (``index``, ``display``, ``picture`` or ``input``, ``pred``, ``true``)."""
    from matplotlib.figure import Figure

    n_means = min(len(means["classes"]), MAX_MEANS)
    mean_cols = min(n_means, 10)
    mean_rows = math.ceil(n_means / mean_cols)
    sample_rows = math.ceil(len(samples) / SAMPLE_COLUMNS)
    strip = kind in ("vector", "text")
    mean_h, sample_h = (0.55 if strip else 1.25), (0.8 if strip else 1.35)
    fig_kw.setdefault("figsize", (11.0, 1.3 + mean_rows * mean_h + 0.5 + sample_rows * sample_h))
    fig_kw.setdefault("layout", "constrained")
    fig = Figure(**fig_kw)
    fig.suptitle(title, fontsize=12)
    top, bottom = fig.subfigures(2, 1, height_ratios=[mean_rows * mean_h + 0.75, max(sample_rows, 1) * sample_h + 0.4])
    top.suptitle("Class means · one colour scale", fontsize=9, color=_MUTED)
    bottom.suptitle(f"{subtitle} · each: input | map, on its own colour scale", fontsize=9, color=_MUTED)
    _draw_means(top, means, kind, n_means, mean_cols, name=name, sign=sign, outlier_perc=outlier_perc,
                nonnegative=nonnegative)
    _draw_samples(bottom, samples, kind, name=name, sign=sign, outlier_perc=outlier_perc)
    return fig


def _draw_means(fig: Any, means: dict[str, Any], kind: str, count: int, cols: int, *, name: Callable[[int], str],
                sign: str, outlier_perc: float, nonnegative: bool) -> None:
    display = means["display"][:count]
    scale = Scale(sign, colors.scale_max(display, sign, outlier_perc), outlier_perc, nonnegative=nonnegative)
    rows = math.ceil(count / cols)
    spec = fig.add_gridspec(rows + 1, cols, height_ratios=[1.0] * rows + [0.28])
    by = {"label": "true class", "prediction": "predicted class", "target": "explained output"}[means["by"]]
    for k in range(count):
        ax = fig.add_subplot(spec[k // cols, k % cols])
        ax.imshow(map_pixels(display[k], kind, scale), interpolation="nearest",
                  aspect="equal" if kind == "image" else "auto")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{name(means['classes'][k])} (n={means['counts'][k]:,})", fontsize=8)
    bar = fig.add_subplot(spec[rows, : max(1, cols // 2)])
    more = f" · first {count} of {len(means['classes'])} classes" if count < len(means["classes"]) else ""
    draw_colorbar(bar, scale, f"mean by {by}{more}")


def _draw_samples(fig: Any, samples: Sequence[dict[str, Any]], kind: str, *, name: Callable[[int], str], sign: str,
                  outlier_perc: float) -> None:
    if not samples:
        fig.text(0.5, 0.5, "no sample matches the filters", ha="center", va="center", fontsize=10, color=_MUTED)
        return
    rows = math.ceil(len(samples) / SAMPLE_COLUMNS)
    axes = np.atleast_1d(fig.subplots(rows, SAMPLE_COLUMNS, squeeze=False)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, sample in zip(axes, samples):
        ax.imshow(sample_tile(sample, kind, sign, outlier_perc), interpolation="nearest",
                  aspect="equal" if kind == "image" else "auto")
        wrong = sample["true"] is not None and sample["pred"] != sample["true"]
        text = f"#{sample['index']} · {name(sample['pred'])}"
        if sample["true"] is not None:
            text += f" ✗ true {name(sample['true'])}" if wrong else " ✓"
        ax.set_title(text, fontsize=7.5, color=MISTAKE if wrong else "#1f2430")


def sample_tile(sample: dict[str, Any], kind: str, sign: str, outlier_perc: float) -> np.ndarray:
    """One sample as an RGB picture: its input and its map side by side (images) or stacked (strips)."""
    display = sample["display"]
    m = colors.scale_max(display, sign, outlier_perc)
    coloured = Scale(sign, m).rgba(screen_grid(display, kind))[..., :3]
    if sample["picture"] is not None:
        gap = np.full((coloured.shape[0], max(1, coloured.shape[1] // 8), 3), 255, dtype=np.uint8)
        return np.concatenate([sample["picture"], gap, coloured], axis=1)
    if sample["input"] is None:
        return coloured
    grid = screen_grid(np.asarray(sample["input"], dtype=np.float64), kind)
    lo, hi = float(np.nanmin(grid)), float(np.nanmax(grid))
    grey = np.round((grid - lo) / (hi - lo if hi > lo else 1.0) * 255).astype(np.uint8)
    gap = np.full((max(1, coloured.shape[0] // 4), coloured.shape[1], 3), 255, dtype=np.uint8)
    return np.concatenate([np.repeat(grey[..., None], 3, axis=-1), gap, coloured], axis=0)
