"""Matplotlib figures of a :class:`GenerationAttribution`, as ``GenerationMap`` draws it.

``view="text"``: the prompt and the generated text as chips in reading order, each filled with
the colour of the explained row (one generated token's, or a span's sum); the chips that cannot
have caused it (the explained token and everything after it) stay white, the explained chips
are outlined and the generated ones underlined. ``view="matrix"``: generated × context, one
row per generated token (like inseq's), the cells no token can use in grey. ``checks=`` adds the
widget's checks strip under either (deletion / insertion curves, completeness).

Colours follow :mod:`saliency_widgets.colors` exactly as the browser computes them. The helpers
that say which rows are explained, where causality ends and what the colour bar reads are
mirrored in ``js/src/generation.ts``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from .. import colors
from ..errors import SaliencyError
from ..export import METHOD_TEXT, Scale, draw_colorbar, format_value, with_checks

if TYPE_CHECKING:
    from .result import GenerationAttribution

VIEWS = ("text", "matrix")
#: Colours of the figure's chrome (the widget's light theme).
INK = "#1f2430"
MUTED = "#5f6673"
LINE = "#b8bec8"
ACCENT = "#2f63c9"
#: Cells of the matrix no generated token can use (at and after its own position).
MASKED = "#e6e8ec"
_FONT = 9.0
#: Width of one character of the monospace chips (DejaVu Sans Mono: 0.602 em), in inches.
_CHAR = 0.602 * _FONT / 72
_PAD, _GAP, _LINE, _CHIP = 0.05, 0.045, 0.3, 0.215
#: How each target reads in a label.
_FN = {"log_prob": "log p", "probability": "p", "logit": "logit"}


def shown_token(token: str) -> str:
    """A token as a chip shows it: newlines as ``↵`` and tabs as ``⇥`` (spaces kept)."""
    return token.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "↵").replace("\t", "⇥")


def explained_rows(result: "GenerationAttribution", selected: Optional[int] = None,
                   span: Optional[tuple[int, int]] = None) -> tuple[int, int]:
    """The rows ``(start, stop)`` a view explains: ``span`` (slice semantics), else row
    ``selected``, else the last generated token (or group)."""
    n = result.n_generated
    if n == 0:
        raise SaliencyError("this result has no generated tokens to explain")
    if span is not None:
        start, stop, _ = slice(*(int(v) for v in span)).indices(n)
        if start >= stop:
            raise SaliencyError(f"span {tuple(span)} is empty: give (start, stop) with start < stop ≤ {n}")
        return start, stop
    k = n - 1 if selected is None else int(selected)
    if not -n <= k < n:
        raise SaliencyError(f"selected must be a generated position in 0..{n - 1}; got {selected}")
    return k % n, k % n + 1


def causal_limit(result: "GenerationAttribution", stop: int) -> int:
    """The first column that rows ``< stop`` never attribute to: the group of the token just
    before row ``stop - 1``'s last token, plus one (``prompt_length + stop - 1`` per token)."""
    groups = result.groups
    if groups is None:
        return result.prompt_length + stop - 1
    before = groups[result.prompt_length + stop - 1][-1] - 1
    return next(g for g, members in enumerate(groups) if before in members) + 1


def explained_row(result: "GenerationAttribution", start: int, stop: int) -> np.ndarray:
    """The summed row of generated rows ``start..stop-1`` (exact by linearity)."""
    return result.matrix[start:stop].sum(axis=0, dtype=np.float32)


def _quoted(text: str) -> str:
    return f"'{shown_token(text)}'"


def target_label(result: "GenerationAttribution", start: int, stop: int) -> str:
    """What rows ``start..stop-1`` explain, e.g. ``log p(' Paris')``, ``log p(' Paris') − log p(' London')``
    or ``Σ logit over ' Paris is'``: log-probabilities of several tokens add up to the log-probability
    of the text, probabilities and logits only to a sum."""
    text = "".join(result.generated_tokens[start:stop])
    first, end = token_range(result, start, stop)
    fn = _FN.get(result.target, result.target)
    names = list(result.contrast_tokens or [])
    if len(names) > 1:  # one per generated token
        names = names[first:end]
    contrast = None if not names else _quoted(names[0]) if len(set(names)) == 1 else "contrast"
    if end - first == 1 or result.target == "log_prob":
        label = f"{fn}({_quoted(text)})"
        return label if contrast is None else f"{label} − {fn}({contrast})"
    if contrast is None:
        return f"Σ {fn} over {_quoted(text)}"
    return f"Σ [{fn} − {fn}({contrast})] over {_quoted(text)}"


def token_range(result: "GenerationAttribution", start: int, stop: int) -> tuple[int, int]:
    """The generated tokens ``[first, end)`` that rows ``start..stop-1`` hold."""
    if result.groups is None:
        return start, stop
    p = result.prompt_length
    offset = result.groups[p][0]
    return result.groups[p + start][0] - offset, result.groups[p + stop - 1][-1] - offset + 1


def method_text(result: "GenerationAttribution") -> str:
    """``gradient × input, summed over the embedding axis`` (how each number was made)."""
    return f"{METHOD_TEXT.get(result.method, result.method)}, summed over the embedding axis"


def row_scale(row: np.ndarray, limit: int, sign: str = "all", outlier_perc: float = 2.0) -> Scale:
    """The colour scale of one explained row: the normalization rule over the chips that can have
    caused it (``row[:limit]``), so every row spans the whole colour range."""
    return Scale(sign, colors.scale_max(row[:limit], sign, outlier_perc), outlier_perc)


def matrix_mask(result: "GenerationAttribution") -> np.ndarray:
    """``(n_generated, n_context)`` bool: True where row ``k`` can attribute (before its causal limit)."""
    limits = np.array([causal_limit(result, k + 1) for k in range(result.n_generated)])
    return np.arange(len(result.tokens))[None, :] < limits[:, None]


def matrix_scale(result: "GenerationAttribution", sign: str = "all", outlier_perc: float = 2.0) -> Scale:
    """One scale for the whole matrix: the normalization rule over every cell a row can use."""
    return Scale(sign, colors.scale_max(result.matrix[matrix_mask(result)], sign, outlier_perc), outlier_perc)


def subtitle(result: "GenerationAttribution") -> str:
    """Method, target, layer, granularity and completeness, as the widget's header shows them."""
    parts = [METHOD_TEXT.get(result.method, result.method), result.target.replace("_", "-")]
    if result.layer:
        parts.append(f"layer {result.layer}")
    if result.granularity != "token":
        parts.append(f"by {result.granularity}")
    if result.completeness_error is not None:
        parts.append(f"completeness error {format_value(result.completeness_error)}")
    return " · ".join(parts)


def generation_figure(result: "GenerationAttribution", *, selected: Optional[int] = None,
                      span: Optional[tuple[int, int]] = None, view: str = "text",
                      scale: Optional[Scale] = None, sign: str = "all", outlier_perc: float = 2.0,
                      checks: Optional[dict[str, dict[str, Any]]] = None, **fig_kw: Any) -> Any:
    """A ``matplotlib.figure.Figure`` of ``result``: ``view="text"`` colours the text by generated
    row ``selected`` (default the last) or by the sum of rows ``span=(start, stop)``;
    ``view="matrix"`` draws every row, the explained ones framed. ``scale`` fixes the colour scale
    (else ``sign`` / ``outlier_perc`` by the normalization rule); ``checks``: the widget's check items
    (``GenerationMap.checks``), drawn under the view; ``fig_kw`` go to ``Figure``."""
    if view not in VIEWS:
        raise SaliencyError(f"view must be one of {', '.join(map(repr, VIEWS))}; got {view!r}")
    start, stop = explained_rows(result, selected, span)
    if view == "matrix":
        scale = scale or matrix_scale(result, sign, outlier_perc)

        def draw(**kw: Any) -> Any:
            return _matrix_figure(result, start, stop, scale, **kw)
    else:
        row = explained_row(result, start, stop)
        limit = causal_limit(result, stop)
        scale = scale or row_scale(row, limit, sign, outlier_perc)

        def draw(**kw: Any) -> Any:
            return _text_figure(result, start, stop, row, limit, scale, **kw)
    if not checks:
        return draw(**fig_kw)
    return with_checks(draw, checks, np.zeros(0, np.float32), None, kind="text", scale=scale, **fig_kw)


def _title(result: "GenerationAttribution", start: int, stop: int) -> str:
    unit = "token" if result.granularity == "token" else result.granularity
    text = _quoted("".join(result.generated_tokens[start:stop]))
    where = f"{start + 1}" if stop - start == 1 else f"{start + 1}–{stop}"
    plural = "s" if stop - start > 1 else ""
    return f"Explaining {text} (generated {unit}{plural} {where} of {result.n_generated})"


def _layout(tokens: list[str], width: float) -> list[tuple[float, int, float]]:
    """``(x, line, chip width)`` of each chip, in inches: reading order, wrapped at ``width``,
    a new line after every token holding a newline."""
    placed, x, line = [], 0.0, 0
    for token in tokens:
        w = len(shown_token(token)) * _CHAR + 2 * _PAD
        if x > 0 and x + w > width:
            x, line = 0.0, line + 1
        placed.append((x, line, w))
        x += w + _GAP
        if "\n" in token or "\r" in token:
            x, line = 0.0, line + 1
    return placed


def _text_figure(result: "GenerationAttribution", start: int, stop: int, row: np.ndarray, limit: int,
                 scale: Scale, into: Any = None, **fig_kw: Any) -> Any:
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    width = float(fig_kw.pop("figsize", (7.0, 0))[0])
    margin, head, foot = 0.25, 0.62, 1.0
    placed = _layout(result.tokens, width - 2 * margin)
    lines = placed[-1][1] + 1 if placed else 1
    body = lines * _LINE
    height = head + body + foot
    fig = Figure(figsize=(width, height), **fig_kw) if into is None else into
    ax = fig.add_axes((margin / width, foot / height, (width - 2 * margin) / width, body / height))
    ax.set_xlim(0, width - 2 * margin)
    ax.set_ylim(body, 0)
    ax.set_axis_off()
    fills = scale.rgba(row[None])[0, :, :3] / 255.0
    p = result.prompt_length
    explained = range(p + start, p + stop)
    for j, (token, (x, line, w)) in enumerate(zip(result.tokens, placed)):
        y = line * _LINE + (_LINE - _CHIP) / 2
        coloured = j < limit
        fill = fills[j] if coloured else (1.0, 1.0, 1.0)
        marked = j in explained
        ax.add_patch(FancyBboxPatch((x, y), w, _CHIP, boxstyle="round,pad=0,rounding_size=0.035",
                                    facecolor=fill, edgecolor=INK if marked else LINE,
                                    linewidth=1.6 if marked else 0.5, zorder=2 if marked else 1))
        if j >= p:  # generated: a bar along the chip's foot
            ax.plot([x + 0.03, x + w - 0.03], [y + _CHIP - 0.018] * 2, color=ACCENT, linewidth=1.6,
                    solid_capstyle="butt", zorder=3)
        ink = _ink(fill) if coloured else "#8a919c"
        ax.text(x + _PAD, y + _CHIP / 2, shown_token(token), va="center", ha="left", fontsize=_FONT,
                family="DejaVu Sans Mono", color=ink, zorder=4)
    _header(fig, height, margin / width, _title(result, start, stop), subtitle(result))
    _legend(fig, width, height, margin, scale, f"{target_label(result, start, stop)} — {method_text(result)}")
    fig.text(1 - margin / width, 0.45 / height, "outlined: explained · underlined: generated\n"
             "white: at or after it (cannot have caused it)", fontsize=7, color=MUTED, ha="right", va="center",
             linespacing=1.4)
    return fig


def _header(fig: Any, height: float, left: float, title: str, sub: str) -> None:
    """Title and subtitle in the figure's top 0.6 inch, from ``left`` (a figure fraction)."""
    fig.text(left, 1 - 0.24 / height, title, fontsize=11.5, color=INK, va="center", ha="left", fontweight="bold")
    fig.text(left, 1 - 0.47 / height, sub, fontsize=8.5, color=MUTED, va="center", ha="left")


def _legend(fig: Any, width: float, height: float, left: float, scale: Scale, label: str) -> None:
    """The colour bar in the figure's bottom 0.9 inch: ``label`` above it, the scale's caption below."""
    fig.text(left / width, 0.74 / height, label, fontsize=8, color=INK, va="center", ha="left")
    bar = fig.add_axes((left / width, 0.46 / height, min(3.2, width - 2 * left) / width, 0.13 / height))
    draw_colorbar(bar, scale)
    bar.set_xlabel(scale.caption(), fontsize=7.5, color=MUTED, loc="left")


def _ink(fill: Any) -> str:
    """Readable text on ``fill`` (WCAG relative luminance, ``inkFor`` in js/src/textview.ts)."""
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in fill[:3]]
    return "#000000" if 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2] > 0.18 else "#ffffff"


def _matrix_figure(result: "GenerationAttribution", start: int, stop: int, scale: Scale, into: Any = None,
                   **fig_kw: Any) -> Any:
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    rows, cols = result.matrix.shape
    names = [shown_token(t) for t in result.tokens]
    cell = min(0.26, 9.0 / cols, 9.0 / rows)  # inches: at most 9 × 9 of cells
    step = math.ceil(0.11 / cell)  # a tick label every `step` cells (7.5 pt labels need 0.11 inch)
    labels = 0.3 + 0.068 * min(16, max((len(n) for n in names), default=1))  # monospace 7.5 pt, plus the axis label
    margin, head, foot = 0.25, 0.62, 1.0
    width = max(5.2, margin + labels + cols * cell + margin)
    height = head + rows * cell + labels + foot
    fig = Figure(figsize=(width, height), **fig_kw) if into is None else into
    left = margin + labels
    ax = fig.add_axes((left / width, (foot + labels) / height, cols * cell / width, rows * cell / height))
    pixels = scale.rgba(result.matrix).copy()
    pixels[~matrix_mask(result)] = [int(MASKED[i:i + 2], 16) for i in (1, 3, 5)] + [255]
    ax.imshow(pixels, interpolation="nearest", aspect="auto")
    font = {"fontsize": 7.5, "family": "DejaVu Sans Mono"}
    ax.set_xticks(range(0, cols, step), names[::step], rotation=90, **font)
    ax.set_yticks(range(0, rows, step), names[result.prompt_length::step], **font)
    ax.tick_params(length=0 if step == 1 else 2, pad=2)
    ax.axvline(result.prompt_length - 0.5, color=INK, linewidth=0.8)
    ax.add_patch(Rectangle((-0.5, start - 0.5), cols, stop - start, fill=False, edgecolor=INK, linewidth=1.5))
    ax.set_xlabel("context: prompt | generated", fontsize=8, color=MUTED)
    ax.set_ylabel("generated", fontsize=8, color=MUTED)
    for spine in ax.spines.values():
        spine.set_linewidth(0.5)
    _header(fig, height, margin / width, f"Which earlier tokens made each generated {result.granularity}",
            subtitle(result))
    fn = _FN.get(result.target, result.target)
    contrast = " − contrast" if result.contrast_tokens else ""
    _legend(fig, width, height, margin, scale,
            f"row k: {fn}(generated {result.granularity} k){contrast} — {method_text(result)} · grey: cannot have caused it")
    return fig
