"""Matplotlib figures of what the widgets show (their ``to_figure`` / ``savefig``).

Colours come from :mod:`.colors` exactly as the browser computes them: the
same lookup table, scale ``m`` and index rule, drawn as precomputed RGBA pixels
with ``imshow(..., interpolation="nearest")`` (never a matplotlib colormap and
norm, which could round differently). Image maps are composited over the grey
input as on screen (:func:`colors.overlay`). Layouts follow the screen:
vectors as a 1 × N strip (plus one bar per feature), sequences as features ×
time, images as H × W. Every map has a colour bar with its value range and the
``sign`` / ``outlier_perc`` in use — except a map that is zero up to float
rounding (:mod:`.zero`): it is drawn neutral, with the reason in place of the
colour bar (``note=``), as on screen.

Figures are ``matplotlib.figure.Figure`` objects, independent of pyplot's
global state.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from . import colors
from .zero import zero_sentence

#: Suffixes ``savefig`` writes.
FORMATS = ("png", "svg", "pdf")

METHOD_TEXT = {
    "gradient": "gradient",
    "input_x_gradient": "gradient × input",
    "smoothgrad": "SmoothGrad",
    "integrated_gradients": "integrated gradients",
    "gradcam": "Grad-CAM",
    "gradcam_plus_plus": "Grad-CAM++",
    "occlusion": "occlusion",
}

_SIGN_TEXT = {
    "all": "signed (red +, blue −)",
    "positive": "positive part",
    "negative": "negative part",
    "absolute_value": "absolute value",
}
#: The caption of a map drawn one-sided because it is ≥ 0 by construction (``Scale.nonnegative``).
_NONNEGATIVE_TEXT = "one-sided: ≥ 0 by construction"
#: Most features with a bar in a vector figure (the strongest ones beyond it; ``FEATURE_ORDERED`` in mapview.ts).
MAX_BARS = 48
#: ``gid`` of colour bar images (every other image of a figure is a map, one pixel per cell).
COLORBAR_GID = "sw-colorbar"
#: Most tick labels along an axis.
MAX_TICKS = 40
_SUBTITLE = {"fontsize": 9, "color": "#5f6673"}
#: Colours of a check's status mark and of the deletion / insertion curves (``STATUS_COLORS`` in checks_strip.ts).
STATUS_COLORS = {"ok": "#2e9d4f", "warn": "#e08a00", "computing": "#8a94a6"}
CURVE_COLORS = {"deletion": "#d1495b", "insertion": "#2f63c9"}
#: Check names as the strip shows them, in its order.
CHECK_NAMES = {"completeness": "completeness", "random_logit": "random logit",
               "deletion_insertion": "deletion / insertion", "randomization": "randomization test"}


def format_value(v: float) -> str:
    """4 significant digits, exponent for tiny/huge values (``js/src/format.ts``)."""
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        mantissa, exp = f"{v:.3e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exp):+d}"
    return f"{float(f'{v:.4g}'):g}"


@dataclass(frozen=True)
class Scale:
    """One colour scale: the ``sign`` shown, saturation magnitude ``m`` and how it was chosen.
    ``nonnegative``: the map is ≥ 0 by construction and drawn one-sided for it (``sign`` is then
    :func:`colors.shown_sign`'s ``"positive"``), which the caption says."""

    sign: str
    m: float
    outlier_perc: float = 0.0
    locked: bool = False
    nonnegative: bool = False

    def rgba(self, values: np.ndarray) -> np.ndarray:
        """LUT colours (uint8 RGBA) of ``values``, as the browser paints them."""
        return colors.sign_lut(self.sign)[colors.to_index(values, self.sign, self.m)]

    def caption(self) -> str:
        """E.g. ``"signed (red +, blue −) · top 2% clipped"`` (the widget's colour bar caption)."""
        if self.locked:
            clip = "scale locked"
        elif self.outlier_perc > 0:
            clip = f"top {format_value(self.outlier_perc)}% clipped"
        else:
            clip = "no clipping"
        return f"{_NONNEGATIVE_TEXT if self.nonnegative else _SIGN_TEXT[self.sign]} · {clip}"

    def ticks(self) -> list[tuple[float, str]]:
        """(fraction along the bar, label) in the attribution's own units."""
        lo, hi = colors.value_range(self.m, self.sign)
        if self.sign == "all":
            return [(0.0, format_value(lo)), (0.5, "0"), (1.0, format_value(hi))]
        return [(0.0, "0"), (1.0, format_value(-hi if self.sign == "negative" else hi))]


def screen_grid(display: np.ndarray, kind: str) -> np.ndarray:
    """A display map as the rows × cols grid drawn on screen (sequences: features × time)."""
    d = np.asarray(display)
    if kind == "vector":
        return d.reshape(1, -1)
    if kind == "sequence":
        return d.T
    return d


def map_pixels(
    display: np.ndarray, kind: str, scale: Scale, *, image: Optional[np.ndarray] = None, opacity: float = 1.0,
    backdrop: Optional[np.ndarray] = None,
) -> np.ndarray:
    """The screen's pixels of a display map: LUT RGBA, or over ``image`` (H, W, 3 uint8) opaque RGB
    (its :func:`colors.greyscale` backdrop, or the (H, W) uint8 greys ``backdrop`` when given)."""
    grid = screen_grid(display, kind)
    rgba = scale.rgba(grid)
    if image is None and backdrop is None:
        return rgba
    rgba = rgba.copy()
    rgba[..., 3] = colors.overlay_alpha(colors.to_index(grid, scale.sign, scale.m), scale.sign)
    return colors.overlay(rgba, colors.greyscale(image) if backdrop is None else backdrop, opacity)


def draw_colorbar(ax: Any, scale: Scale, label: str = "") -> None:
    """The LUT as a horizontal bar with the value range and the scale's caption."""
    ax.imshow(colors.sign_lut(scale.sign)[None], aspect="auto", interpolation="nearest", extent=(0, 1, 0, 1), gid=COLORBAR_GID)
    ticks = scale.ticks()
    ax.set_xticks([t for t, _ in ticks], [text for _, text in ticks], fontsize=8)
    ax.set_yticks([])
    ax.set_xlabel(" · ".join(p for p in (label, scale.caption()) if p), fontsize=8)


def _label_axis(ax: Any, axis: str, names: Sequence[str], *, rotate: bool = False) -> None:
    """Name every cell along ``axis`` (``"x"`` or ``"y"``), or a few evenly spaced ticks when there are many."""
    n = len(names)
    if n == 0:
        return
    step = max(1, math.ceil(n / MAX_TICKS))
    pos = list(range(0, n, step))
    labels = [names[i] for i in pos]
    if axis == "x":
        ax.set_xticks(pos, labels, fontsize=8, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    else:
        ax.set_yticks(pos, labels, fontsize=8)


def _new_figure(size: tuple[float, float], into: Any = None, **kw: Any) -> Any:
    """A constrained-layout Figure of ``size`` inches unless ``kw`` give a ``figsize``;
    ``into``: draw into this (sub)figure instead."""
    from matplotlib.figure import Figure

    if into is not None:
        return into
    kw.setdefault("figsize", size)
    kw.setdefault("layout", "constrained")
    return Figure(**kw)


def _titles(fig: Any, ax: Any, title: str, subtitle: str) -> None:
    """The title, and the subtitle wrapped to the figure's width (a small image's figure is narrow)."""
    fig.suptitle(title, fontsize=12)
    ax.set_title(_wrap(subtitle, 0.95 * fig.bbox.width / fig.dpi, points=9, min_chars=20), **_SUBTITLE)


#: Colours of the note that replaces the colour bar of a map that is zero up to rounding
#: (``.sw-zero`` in ``js/src/style.ts``, light theme).
NOTE_COLORS = {"text": "#1f2430", "fill": "#f2f4f7", "edge": "#8a94a6"}


def draw_legend(ax: Any, scale: Scale, label: str = "", note: str = "") -> None:
    """The colour bar, or — for a map that is zero up to rounding — ``note`` in its place."""
    if not note:
        draw_colorbar(ax, scale, label)
        fit_colorbar_caption(ax, ax.figure.bbox.width / ax.figure.dpi)  # a figure's or a subfigure's width
        return
    ax.set_axis_off()
    width = ax.figure.get_size_inches()[0] * ax.get_position().width
    ax.text(0.0, 0.5, _wrap(zero_sentence(note), max(width, 3.0) * 0.95),
            transform=ax.transAxes, va="center", ha="left", fontsize=8.5, color=NOTE_COLORS["text"], wrap=True,
            bbox={"boxstyle": "round,pad=0.45", "facecolor": NOTE_COLORS["fill"], "edgecolor": NOTE_COLORS["edge"],
                  "linewidth": 0.6})


def saliency_figure(
    display: np.ndarray,
    *,
    kind: str,
    scale: Scale,
    title: str,
    subtitle: str = "",
    feature_names: Sequence[str] = (),
    image: Optional[np.ndarray] = None,
    opacity: float = 0.75,
    note: str = "",
    legend: str = "attribution",
    words: Sequence[str] = (),
    **fig_kw: Any,
) -> Any:
    """One attribution map (a display map, channels already summed) as the SaliencyMap draws it.
    ``note``: why the map is zero up to float rounding (:func:`.zero.zero_reason`); the map is then
    drawn neutral (every cell the colour of 0) with the sentence in place of the colour bar.
    ``legend`` names what the colour bar reads (:func:`target_legend`); ``words`` (vector and text
    maps: :func:`pushes_text`) are drawn under the map."""
    if note:
        display = np.zeros(np.shape(display), dtype=np.float32)
    if kind == "text":
        return _text_figure(display, scale, title, subtitle, feature_names, note=note, legend=legend, words=words,
                            **fig_kw)
    grid = screen_grid(display, kind)
    rows, cols = grid.shape
    if kind == "vector":
        return _vector_figure(grid[0], scale, title, subtitle, feature_names, note=note, legend=legend, words=words,
                              **fig_kw)
    if kind == "image":
        size = min(6.0, max(3.5, 0.3 * max(rows, cols)))
        fig = _new_figure((size, size * rows / cols + 1.3), **fig_kw)
        ax, bar = fig.subplots(2, 1, height_ratios=[12, 1])
        ax.imshow(map_pixels(display, kind, scale, image=image, opacity=opacity), interpolation="nearest")
        ax.set_xlabel("column", fontsize=8)
        ax.set_ylabel("row", fontsize=8)
        _cell_ticks(ax)
    else:
        fig = _new_figure((min(10.0, max(5.0, 0.3 * cols + 2)), min(8.0, 0.35 * rows + 2.2)), **fig_kw)
        ax, bar = fig.subplots(2, 1, height_ratios=[max(3, rows), 1.2])
        ax.imshow(map_pixels(display, kind, scale), interpolation="nearest", aspect="auto")
        ax.set_xlabel("time step", fontsize=8)
        _cell_ticks(ax)
        _label_axis(ax, "y", list(feature_names) or [f"feature {i}" for i in range(rows)])
    _titles(fig, ax, title, subtitle)
    draw_legend(bar, scale, legend, note)
    return fig


def _text_figure(values: np.ndarray, scale: Scale, title: str, subtitle: str, tokens: Sequence[str], *, note: str = "",
                 legend: str = "", words: Sequence[str] = (), **fig_kw: Any) -> Any:
    """Token chips in reading order, each filled with the colour of its attribution (summed over
    the embedding axis), wrapped into lines; the colour bar says how the value was made."""
    tokens = list(tokens) or [f"#{i}" for i in range(len(values))]
    fills = scale.rgba(np.asarray(values, dtype=np.float32)[None])[0, :, :3] / 255.0
    char = 1.0 / 64  # axes width per character of the monospace chips
    lines, x = [[]], 0.0
    for token, fill in zip(tokens, fills):
        width = (len(token) + 1.5) * char
        if x + width > 1.0 and lines[-1]:
            lines.append([])
            x = 0.0
        lines[-1].append((x, token, fill))
        x += width + 0.3 * char
    words = _word_lines(words, 7.0)
    fig = _new_figure((7.0, 1.6 + 0.32 * len(lines) + 0.2 * len(words)), **fig_kw)
    ax, said, bar = fig.subplots(3, 1, height_ratios=[max(1, len(lines)), 0.01 + 0.6 * len(words), 0.8])
    _draw_words(said, words)
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(len(lines), 0)
    for row, line in enumerate(lines):
        for x, token, fill in line:
            ink = "white" if float(np.dot(fill, [0.299, 0.587, 0.114])) < 0.5 else "#1f2430"
            ax.text(x, row + 0.5, token, va="center", ha="left", fontsize=9, family="monospace", color=ink,
                    bbox={"boxstyle": "round,pad=0.25", "facecolor": fill, "edgecolor": "#9aa1ad", "linewidth": 0.4})
    _titles(fig, ax, title, subtitle)
    draw_legend(bar, scale, " · ".join(p for p in (legend, "summed over the embedding axis") if p), note)
    return fig


def _vector_figure(values: np.ndarray, scale: Scale, title: str, subtitle: str, names: Sequence[str], *, note: str = "",
                   legend: str = "", words: Sequence[str] = (), **fig_kw: Any) -> Any:
    """A strip of all features, then one bar per feature (the strongest ``MAX_BARS``) in its colour;
    bars follow the sign mode: signed for ``"all"``, else the magnitude the colour scale shows."""
    n = len(values)
    names = list(names) or [f"feature {i}" for i in range(n)]
    shown = values if scale.sign == "all" else colors.sign_transform(values, scale.sign)
    keys = list(range(n)) if n <= MAX_BARS else sorted(np.argsort(-np.abs(shown), kind="stable")[:MAX_BARS].tolist())
    words = _word_lines(words, 7.0)
    fig = _new_figure((7.0, 2.4 + 0.28 * len(keys) + 0.2 * len(words)), **fig_kw)
    strip, bars, said, bar = fig.subplots(4, 1, height_ratios=[1.3, max(2.0, 0.5 * len(keys)), 0.01 + 0.45 * len(words), 0.7])
    _draw_words(said, words)
    strip.imshow(scale.rgba(values[None]), interpolation="nearest", aspect="auto")
    _cell_ticks(strip)
    strip.set_yticks([])
    strip.set_xlabel("feature index", fontsize=8)
    _titles(fig, strip, title, subtitle)
    y = np.arange(len(keys))
    bars.barh(y, shown[keys], color=scale.rgba(values[keys])[:, :3] / 255.0, edgecolor="#5f6673", linewidth=0.4)
    bars.axvline(0, color="#5f6673", linewidth=0.8)
    bars.set_yticks(y, [names[k] for k in keys], fontsize=8)
    bars.invert_yaxis()
    bars.tick_params(axis="x", labelsize=7)
    what = "attribution" if scale.sign == "all" else _SIGN_TEXT[scale.sign] + " of the attribution"
    bars.set_xlabel(what + ("" if n <= MAX_BARS else f" ({MAX_BARS} strongest of {n} features)"), fontsize=8)
    draw_legend(bar, scale, legend, note)
    return fig


def _word_lines(words: Sequence[str], width_in: float) -> list[str]:
    """``words`` (:func:`pushes_text`) wrapped to a figure ``width_in`` inches wide, continuation lines indented."""
    return [("" if i == 0 else "    ") + part for line in words
            for i, part in enumerate(_wrap(line, 0.92 * width_in, points=8.5, min_chars=30).splitlines())]


def _cut(text: str, chars: int) -> str:
    """``text`` cut to ``chars`` characters with an ellipsis."""
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _draw_words(ax: Any, words: Sequence[str]) -> None:
    """Lines of text (:func:`_word_lines`) in an axes of their own, left-aligned."""
    ax.set_axis_off()
    if words:  # one text of several lines lays out faster than one per line
        ax.text(0.0, 0.5, "\n".join(words), transform=ax.transAxes, va="center", ha="left", fontsize=8.5, linespacing=1.45)


#: What the colour bar of a map reads for the output it explains, by sign (``TARGET_LEGEND`` in words.ts).
_TARGET_LEGEND = {"all": "red raises it, blue lowers it", "positive": "what raises it", "negative": "what lowers it",
                  "absolute_value": "what moves it either way"}


def target_legend(sign: str, explained: str) -> str:
    """The colour bar's naming of what it explains, e.g. ``"“cat”: red raises it, blue lowers it"`` or, with
    a contrast, ``"“cat” − “dog”: …"`` (``targetLegend`` in words.ts)."""
    return f"{explained}: {_TARGET_LEGEND[sign]}"


#: Entries named on each side of a top-k list.
TOP_K = 5


def signed_value(v: float) -> str:
    """``+0.84`` or ``−0.52`` (a true minus sign; ``signedValue`` in words.ts)."""
    return ("−" if v < 0 else "+") + format_value(abs(v))


def pushes(values: np.ndarray, k: int = TOP_K) -> tuple[list[int], list[int]]:
    """The indices of the ``k`` largest positive values, largest first, and of the ``k`` most negative ones,
    most negative first (ties in index order; ``pushes`` in words.ts)."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64).ravel())
    up = [int(i) for i in np.argsort(-v, kind="stable") if v[i] > 0][:k]
    down = [int(i) for i in np.argsort(v, kind="stable") if v[i] < 0][:k]
    return up, down


def pushes_text(values: np.ndarray, names: Sequence[str], explained: str, k: int = TOP_K) -> list[str]:
    """Two lines naming what pushes the explained score most: ``pushes “cat” up: proline +0.84, …`` and
    ``down: hue −0.52, …`` (``…`` when more entries push that way; ``pushesText`` in words.ts)."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64).ravel())
    up, down = pushes(v, k)

    def listed(keys: list[int], more: int) -> str:
        named = ", ".join(f"{names[i]} {signed_value(v[i])}" for i in keys) or "nothing"
        return named + (", …" if more > len(keys) else "")

    return [f"pushes {explained} up: {listed(up, int(np.sum(v > 0)))}", f"down: {listed(down, int(np.sum(v < 0)))}"]


def scale_range(scale: Scale) -> str:
    """A map's own colour range in a caption: ``±0.52``, or ``0 … 0.52`` one-sided (``scaleRange`` in words.ts)."""
    if scale.sign == "all":
        return f"±{format_value(scale.m)}"
    return f"0 … {format_value(-scale.m if scale.sign == 'negative' else scale.m)}"


#: The colour bar of maps each on its own scale: its ticks and what it says (``RELATIVE_*`` in words.ts).
RELATIVE_TICKS = {"all": ["−max", "0", "max"], "positive": ["0", "max"], "negative": ["0", "−max"],
                  "absolute_value": ["0", "max"]}
RELATIVE_TEXT = "each map on its own scale (its range in its caption)"


@dataclass(frozen=True)
class Panel:
    """One picture of a side-by-side or methods figure, under its ``caption``: the input ``picture``
    ((H, W, 3) uint8) alone, or a display map ``values`` on ``scale`` — over ``picture`` in grey when one is
    given (the overlay). ``note``: the map is zero up to rounding (drawn neutral). ``selected`` is framed."""

    caption: str
    values: Optional[np.ndarray] = None
    scale: Optional[Scale] = None
    picture: Optional[np.ndarray] = None
    selected: bool = False
    note: str = ""

    def pixels(self, kind: str, opacity: float) -> np.ndarray:
        """RGB(A) pixels as the screen draws this panel."""
        if self.values is None:
            return self.picture
        values = np.zeros_like(self.values) if self.note else self.values
        return map_pixels(values, kind, self.scale, image=self.picture, opacity=opacity)


def panels_figure(
    panels: Sequence[Panel],
    *,
    kind: str,
    scale: Scale,
    title: str,
    subtitle: str = "",
    legend: str = "",
    note: str = "",
    feature_names: Sequence[str] = (),
    signal: Optional[np.ndarray] = None,
    words: Sequence[str] = (),
    relative: bool = False,
    opacity: float = 0.75,
    into: Any = None,
    **fig_kw: Any,
) -> Any:
    """The SaliencyMap's side-by-side and methods layouts, as on screen: image panels in a row (input,
    map, overlay; or one map per method), sequence maps stacked under the input ``signal`` ((T, F)
    values, drawn as lines), vector and text maps as stacked strips; then ``words`` and the colour bar of
    ``scale`` naming ``legend``. ``relative``: each map has its own scale (its range in its caption), so
    the colour bar reads “−max … max” (:data:`RELATIVE_TICKS`)."""
    image = kind == "image"
    n = len(panels)
    grid = "vector" if kind == "text" else kind  # a text map is drawn as a strip of its tokens
    first = panels[0].values if panels[0].values is not None else panels[0].picture[..., 0]
    rows, cols = screen_grid(first, grid).shape
    if image:
        tile = max(1.7, min(3.2, 9.0 / n))
        width, body = max(6.5, tile * n + 0.6), [tile * rows / cols + 0.3]
    else:
        width = 7.5 if kind != "sequence" else min(10.0, max(6.5, 0.3 * cols + 2.5))
        per = 0.6 if kind in ("vector", "text") else min(2.4, 0.3 * rows + 0.8)
        body = [1.3] * (signal is not None) + [per] * n
    words = _word_lines(words, 0.85 * width)
    heights = [0.01, *body, 0.01 + 0.22 * len(words), 0.45]
    fig = _new_figure((width, sum(heights) + 0.9 + (0.3 if kind in ("vector", "text") else 0)), into, **fig_kw)
    spec = fig.add_gridspec(len(heights), n if image else 1, height_ratios=heights)
    head = fig.add_subplot(spec[0, :])
    head.set_axis_off()
    head.set_title(_wrap(subtitle, width, points=9), **_SUBTITLE)
    fig.suptitle(title, fontsize=12)
    axes = [fig.add_subplot(spec[1, i]) for i in range(n)] if image else []
    if not image and signal is not None:
        _draw_signal(fig.add_subplot(spec[1, 0]), signal, feature_names)
    if not image:
        first = 1 + (signal is not None)
        axes = [fig.add_subplot(spec[first + i, 0]) for i in range(n)]
    for i, (ax, panel) in enumerate(zip(axes, panels)):
        ax.imshow(panel.pixels(grid, opacity), interpolation="nearest", aspect="equal" if image else "auto")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(panel.caption, fontsize=8, fontweight="bold" if panel.selected else "normal",
                     loc="center" if image else "left")
        if kind == "sequence":
            _label_axis(ax, "y", list(feature_names) or [f"feature {j}" for j in range(rows)])
        for spine in ax.spines.values():
            spine.set_linewidth(2.0 if panel.selected else 0.5)
    last = axes[-1]
    if kind == "sequence":
        last.set_xticks(range(0, cols, max(1, math.ceil(cols / 12))))
        last.tick_params(axis="x", labelsize=7)
        last.set_xlabel("time step", fontsize=8)
    elif kind in ("vector", "text"):
        names = [_cut(str(n), 18) for n in feature_names] or [str(j) for j in range(cols)]
        _label_axis(last, "x", names, rotate=kind == "text" or 7 * max(map(len, names)) > 72 * width / cols)
    _draw_words(fig.add_subplot(spec[-2, :]), words)
    bar = fig.add_subplot(spec[-1, :])
    draw_legend(bar, scale, " · ".join(p for p in (legend, RELATIVE_TEXT if relative else "") if p), note)
    if relative and not note:
        bar.set_xticks([t for t, _ in scale.ticks()], RELATIVE_TICKS[scale.sign], fontsize=8)
    fit_colorbar_caption(bar, width)
    return fig


#: Most features drawn as lines in a sequence's signal panel; beyond, the signal is drawn as a grey map.
SIGNAL_LINES = 8
#: Colours of the signal's lines (``SIGNAL_COLORS`` in mapview.ts).
SIGNAL_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


def _draw_signal(ax: Any, signal: np.ndarray, names: Sequence[str]) -> None:
    """A sequence's input (T, F) above its map: one line per feature over the time steps (a legend names
    them), or for many features a grey features × time map stretched min–max."""
    values = np.asarray(signal, dtype=np.float64)
    steps, features = values.shape
    names = list(names) or [f"feature {j}" for j in range(features)]
    if features > SIGNAL_LINES:
        lo, hi = float(values.min()), float(values.max())
        grey = np.clip((values.T - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
        ax.imshow(np.round(grey * 255).astype(np.uint8), cmap="gray", vmin=0, vmax=255, interpolation="nearest",
                  aspect="auto")
        ax.set_yticks([])
    else:
        for j in range(features):
            ax.plot(np.arange(steps), values[:, j], color=SIGNAL_COLORS[j % len(SIGNAL_COLORS)], linewidth=1.2,
                    label=names[j])
        ax.set_xlim(-0.5, steps - 0.5)
        lo, hi = ax.get_ylim()
        ax.set_yticks([t for t in ax.get_yticks() if lo <= t <= hi])  # no label of a tick outside the plot
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax.tick_params(labelsize=7)
    ax.set_xticks([])
    ax.set_title("input", fontsize=8)


def jacobian_figure(
    rows_display: np.ndarray,
    *,
    kind: str,
    scale: Scale,
    row_labels: Sequence[str],
    selected: int,
    title: str,
    subtitle: str = "",
    feature_names: Sequence[str] = (),
    image: Optional[np.ndarray] = None,
    **fig_kw: Any,
) -> Any:
    """A Jacobian (rows, *display_shape) on one shared scale: an outputs × inputs matrix
    for vector inputs (outputs × tokens for text, ``feature_names`` the tokens), else one
    small map per output; row ``selected`` is framed. ``image`` (an (H, W, 3) uint8 picture
    of the input) puts a faint copy of it under every tile (:func:`faint_underlay`), as on
    screen. The colour bar keeps its height however many outputs there are; titles and
    captions wrap to the figure's width."""
    from matplotlib.patches import Rectangle

    n_rows = len(rows_display)
    if kind in ("vector", "text"):
        n = rows_display.shape[1]
        width = min(11.0, max(4.5, 0.32 * n + 2.5))
        height = min(10.0, max(2.8, 0.3 * n_rows + 2.2))
        fig = _new_figure((width, height), **fig_kw)
        ax, bar = fig.subplots(2, 1, height_ratios=[max(1.0, height - 2.4), JACOBIAN_BAR_IN])
        ax.imshow(scale.rgba(rows_display), interpolation="nearest", aspect="auto")
        _label_axis(ax, "y", list(row_labels))
        _label_axis(ax, "x", list(feature_names) or [str(j) for j in range(n)], rotate=bool(feature_names))
        ax.set_xlabel("token" if kind == "text" else "input", fontsize=8)
        ax.set_ylabel("output", fontsize=8)
        ax.add_patch(Rectangle((-0.5, selected - 0.5), n, 1, fill=False, edgecolor="#1f2430", linewidth=1.5))
        fig.suptitle(title, fontsize=12)
        ax.set_title(_wrap(subtitle, 0.75 * width, points=9), **_SUBTITLE)
        label = "∂output / ∂embedding, summed per token" if kind == "text" else "∂output / ∂input"
        draw_colorbar(bar, scale, label)
        fit_colorbar_caption(bar, fig.get_size_inches()[0])
        return fig
    ncols = grid_columns(n_rows)
    nrows = math.ceil(n_rows / ncols)
    first = screen_grid(rows_display[0], kind)
    tile = 1.6 if kind == "image" else 2.2
    width = max(tile * ncols + 0.4, 4.2)  # room for the colour bar's caption
    head = _wrap(f"{title}\n{subtitle}" if subtitle else title, width, points=11)
    captions = [_wrap(label, tile, points=7.5, min_chars=8) for label in row_labels]
    lines = max((c.count("\n") + 1 for c in captions), default=1)
    tile_h = tile * first.shape[0] / first.shape[1] + 0.14 * lines
    fig = _new_figure((width, tile_h * nrows + 0.3 * head.count("\n") + 1.3), **fig_kw)
    spec = fig.add_gridspec(nrows + 1, ncols, height_ratios=[tile_h] * nrows + [JACOBIAN_BAR_IN])
    backdrop = None if image is None or kind != "image" else faint_underlay(image)
    for i in range(n_rows):
        ax = fig.add_subplot(spec[i // ncols, i % ncols])
        ax.imshow(map_pixels(rows_display[i], kind, scale, backdrop=backdrop), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(captions[i], fontsize=7.5, fontweight="bold" if i == selected else "normal")
        for spine in ax.spines.values():
            spine.set_linewidth(2.0 if i == selected else 0.5)
    fig.suptitle(head, fontsize=11)
    bar = fig.add_subplot(spec[nrows, :])
    draw_colorbar(bar, scale, "∂output / ∂input")
    fit_colorbar_caption(bar, fig.get_size_inches()[0])
    return fig


def fit_colorbar_caption(ax: Any, width_in: float) -> None:
    """Wraps the caption under a colour bar (:func:`draw_colorbar`) to a figure ``width_in`` inches wide."""
    ax.set_xlabel(_wrap(ax.get_xlabel(), 0.9 * width_in, points=8, min_chars=20), fontsize=8)


#: Height (inches) of a Jacobian figure's colour bar, whatever the number of outputs.
JACOBIAN_BAR_IN = 0.3
#: The faint input under Jacobian tiles spans these greys (``UNDERLAY`` in ``js/src/grid_views.ts``):
#: pale, so the map's colours stay what the colour bar says and the input only shows where the map is ~0.
UNDERLAY = (200, 250)


def faint_underlay(image: np.ndarray) -> np.ndarray:
    """The pale grey (H, W) uint8 copy of an (H, W, 3|4) uint8 picture drawn under Jacobian tiles:
    :func:`colors.greyscale` stretched from its backdrop range onto ``UNDERLAY``, rounded half up."""
    grey = colors.greyscale(image).astype(np.float64)
    lo, hi = UNDERLAY
    gain = (hi - lo) / (colors.BACKDROP_WHITE - colors.BACKDROP_BLACK)
    return np.floor(lo + gain * (grey - colors.BACKDROP_BLACK) + 0.5).astype(np.uint8)


def grid_columns(n: int, max_cols: int = 10) -> int:
    """Columns of a roughly square grid of ``n`` tiles (``gridColumns`` in ``js/src/layout.ts``)."""
    return max(1, min(n, max_cols, math.ceil(math.sqrt(n * 1.6))))


def _wrap(text: str, width_in: float, *, points: float = 10.0, min_chars: int = 40) -> str:
    """``text`` with each line wrapped to fit ``width_in`` inches at a ``points`` font (DejaVu Sans
    averages about 0.55 em a character; at least ``min_chars`` a line; long words are broken)."""
    chars = max(min_chars, int(width_in * 72 / (0.55 * points)))
    return "\n".join(textwrap.fill(line, chars) for line in text.splitlines())


def _cell_ticks(ax: Any) -> None:
    """Integer (cell index) ticks in a small font."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=7)


def with_checks(draw_map: Any, checks: dict[str, dict[str, Any]], original: np.ndarray,
                randomization_maps: Optional[np.ndarray], *, kind: str, scale: Scale, **fig_kw: Any) -> Any:
    """The figure ``draw_map(**kw)`` makes, with the SaliencyMap's checks strip under it: one
    line per check with its status colour, then the deletion / insertion curves and the
    randomization row (the ``original`` display map, then one per randomized layer with its
    Spearman ρ under it). An item's ``explain`` text goes under its line; the curves' axes read
    the item's ``x_label`` and ``y_label`` where it has them."""
    width, height = draw_map().get_size_inches()
    width = max(width, 6.5)
    text_width = fig_kw.get("figsize", (width,))[0] - 0.8  # inches for a line of the strip
    lines = 0.3 + 0.28 * len(_check_lines(checks, text_width))
    below = 0.0
    if randomization_maps is not None:
        below = 1.0 if kind in ("vector", "text") else 1.9
    elif "fractions" in checks.get("deletion_insertion", {}):
        below = 1.5
    fig = _new_figure((width, height + lines + below), **fig_kw)
    top, bottom = fig.subfigures(2, 1, height_ratios=[height, lines + below])
    draw_map(into=top)
    _draw_checks(bottom, checks, original, randomization_maps, kind, scale, lines, below, text_width)
    return fig


def _draw_checks(sub: Any, checks: dict[str, dict[str, Any]], original: np.ndarray, maps: Optional[np.ndarray],
                 kind: str, scale: Scale, lines: float, below: float, text_width: float) -> None:
    curves = checks.get("deletion_insertion", {})
    sparkline = "fractions" in curves
    grid = sub.add_gridspec(2 if below else 1, 2, height_ratios=[lines, below] if below else None,
                            width_ratios=[1, 4 if maps is not None else 1.5])
    text = sub.add_subplot(grid[0, :])
    text.axis("off")
    text.set_title("checks", fontsize=9, loc="left")
    rows = _check_lines(checks, text_width)
    for i, (status, line) in enumerate(rows):
        y = 1 - (i + 0.5) / max(len(rows), 1)
        if status is not None:
            text.scatter([0.01], [y], s=40, color=STATUS_COLORS[status], transform=text.transAxes)
        text.text(0.03, y, line, fontsize=8 if status else 7.5, color=None if status else "#545b67", va="center",
                  transform=text.transAxes)
    if sparkline:
        ax = sub.add_subplot(grid[1, 0])
        for what in ("deletion", "insertion"):
            ax.plot(curves["fractions"], curves[what], color=CURVE_COLORS[what], linewidth=1.2)
        ax.set_title("deletion (red) · insertion (blue)", fontsize=7)
        ax.set_xlabel(curves.get("x_label", "fraction of elements"), fontsize=7)
        ax.set_ylabel(curves.get("y_label", ""), fontsize=7)
        ax.tick_params(labelsize=6)
    if maps is not None:
        _randomization_row(grid[1, 1], checks["randomization"], original, maps, kind, scale)


def _check_lines(checks: dict[str, dict[str, Any]], width_in: float) -> list[tuple[Optional[str], str]]:
    """The strip's lines: ``(status, text)`` per check, then its ``explain`` text wrapped to ``width_in``
    inches (status None)."""
    lines: list[tuple[Optional[str], str]] = []
    for name in (n for n in CHECK_NAMES if n in checks):
        item = checks[name]
        lines.append((item["status"], f"{CHECK_NAMES[name]} ({item['status']}): {item['text']}"))
        lines += [(None, line) for line in _wrap(item.get("explain", ""), width_in, points=7.5).splitlines()]
    return lines


def _randomization_row(cell: Any, item: dict[str, Any], original: np.ndarray, maps: np.ndarray, kind: str,
                       scale: Scale) -> None:
    """The original map, then one per randomization step, each on its own scale, layer above and ρ below."""
    axes = np.atleast_1d(cell.subgridspec(1, len(maps) + 1).subplots())
    titles = ["original", *item["layers"]]
    rhos = [None, *item["spearman"]]
    for ax, shown, layer, rho in zip(axes, [original, *maps], titles, rhos):
        own = Scale(scale.sign, colors.scale_max(shown, scale.sign, scale.outlier_perc))
        grid = np.asarray(shown).reshape(1, -1) if kind in ("vector", "text") else screen_grid(shown, kind)
        ax.imshow(own.rgba(grid), interpolation="nearest", aspect="auto" if kind != "image" else "equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(layer, fontsize=6.5)
        ax.set_xlabel("" if rho is None else f"ρ = {format_value(rho)}", fontsize=7)
