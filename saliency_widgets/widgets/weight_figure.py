"""The WeightInspector's table as a matplotlib Figure: the same blocks, places, cells and colours as the screen,
under a header with the layer's title, its subtitle and its update equations typeset (matplotlib mathtext)."""

from __future__ import annotations

import re
import textwrap
from typing import Any, Sequence

import numpy as np

from ..export import Scale, draw_colorbar, fit_colorbar_caption
from ..weights import shape_text
from .weight_display import LayerDisplay

#: Largest cell (inches), and the most inches the table may take across / down.
MAX_CELL_IN = 0.28
TABLE_WIDTH_IN = 9.0
TABLE_HEIGHT_IN = 7.0
#: The header: margin (inches), font sizes (points) and the muted colour of subtitle and notes.
HEAD_PAD_IN = 0.12
TITLE_PT, SUBTITLE_PT, EQUATION_PT, NOTE_PT = 10.5, 8.5, 10.0, 8.0
MUTED = "#5f6673"
#: DejaVu Sans averages about this many em a character (for wrapping to a width).
EM_PER_CHAR = 0.55


def layer_figure(display: LayerDisplay, title: str, subtitle: str = "", math: Sequence[str] = (),
                 notes: Sequence[str] = (), **fig_kw: Any) -> Any:
    """One panel per block at its (row, col) of the table, all cells the same size, one colour bar,
    under a header: ``title``, ``subtitle``, the ``math`` lines typeset one per line and the prose
    ``notes`` with their symbols typeset (see :func:`math_text`). Every header line is wrapped or
    shrunk to the figure's width.

    Row bands are labelled with their gate, columns with their part; blank
    separator cells (filter grids) are transparent, as on screen.
    """
    from matplotlib.figure import Figure

    panels = display.panels
    n_rows, n_cols = len(display.row_labels), len(display.col_labels)
    row_cells = [max(p.picture.values.shape[0] for p in panels if p.row == r) for r in range(n_rows)]
    col_cells = [max(p.picture.values.shape[1] for p in panels if p.col == c) for c in range(n_cols)]
    cell = min(MAX_CELL_IN, TABLE_WIDTH_IN / sum(col_cells), TABLE_HEIGHT_IN / sum(row_cells))
    width = fig_kw["figsize"][0] if "figsize" in fig_kw else max(6.0, sum(col_cells) * cell + 0.6 * n_cols + 1.4)
    head = header_lines(title, subtitle, math, notes, width - 2 * HEAD_PAD_IN)
    head_in = sum(line["height"] for line in head) + 2 * HEAD_PAD_IN
    fig_kw.setdefault("figsize", (width, sum(row_cells) * cell + 0.45 * n_rows + 1.0 + head_in))
    fig_kw.setdefault("layout", "constrained")
    fig = Figure(**fig_kw)
    height = fig.get_size_inches()[1]
    if fig.get_layout_engine() is not None:
        fig.get_layout_engine().set(rect=(0, 0, 1, max(0.05, 1 - head_in / height)))
    y = HEAD_PAD_IN
    for line in head:
        fig.text(HEAD_PAD_IN / width, 1 - y / height, line["text"], va="top", ha="left", fontsize=line["size"],
                 color=line["color"], fontweight=line["weight"])
        y += line["height"]
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
    bar = fig.add_subplot(spec[n_rows, :])
    draw_colorbar(bar, scale, label="one scale: ±max |w| of the kernels")
    fit_colorbar_caption(bar, width)
    return fig


def header_lines(title: str, subtitle: str, math: Sequence[str], notes: Sequence[str], width_in: float) -> list[dict[str, Any]]:
    """The header's lines, top to bottom, each ``{text, size, color, weight, height}`` (height in inches):
    title and subtitle wrapped to ``width_in``, each equation on one line (its font shrunk so the
    longest fits), each note wrapped with its symbols typeset."""
    def lines(text: str, size: float, color: str = "#1f2430", weight: str = "normal", typeset: bool = False) -> list[dict[str, Any]]:
        chars = max(12, int(width_in * 72 / (EM_PER_CHAR * size)))
        wrapped = textwrap.wrap(text, chars, break_long_words=True, break_on_hyphens=False) if text else []
        return [{"text": prose_text(line) if typeset else line, "size": size, "height": 1.45 * size / 72,
                 "color": color, "weight": weight} for line in wrapped]

    out = lines(title, TITLE_PT, weight="bold") + lines(subtitle, SUBTITLE_PT, color=MUTED)
    if math:
        longest = max(len(m) for m in math)
        size = min(EQUATION_PT, width_in * 72 / (EM_PER_CHAR * longest))
        out[-1:] = [{**out[-1], "height": out[-1]["height"] + 0.06}] if out else []
        out += [{"text": math_text(m), "size": size, "height": 2.0 * size / 72, "color": "#1f2430", "weight": "normal"}
                for m in math]
    for note in notes:
        out += lines(note, NOTE_PT, color=MUTED, typeset=True)
    return out


# ----------------------------------------------------------------- mathtext
#: Letters (Latin, Greek) and combining marks, as in ``js/src/inspector/mathml.ts``.
_LETTER = re.compile(r"[A-Za-z\u0370-\u03ff]")
_MARK = re.compile(r"[\u0300-\u036f]")
_SUB_WORD = re.compile(r"[A-Za-z0-9*\u0370-\u03ff]")
#: A symbol inside prose: ``W_i*``, ``h_{t−1}``, ``x_t`` (``proseParts`` in mathml.ts).
_PROSE_SYMBOL = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z\u0370-\u03ff][\u0300-\u036f]?_(\{[^}]*\}|[A-Za-z0-9*]+)")
_TEX = {"σ": r"\sigma", "τ": r"\tau", "φ": r"\phi", "⊙": r"\odot", "−": "-", "·": r"\cdot", "×": r"\times",
        "≥": r"\geq", "≤": r"\leq", "*": r"\ast", "$": r"\$", "%": r"\%", "#": r"\#", "&": r"\&", "{": r"\{", "}": r"\}"}
_ACCENTS = {"\u0303": "tilde", "\u0302": "hat", "\u0304": "bar", "\u0307": "dot"}
#: No thin space before these (the same rule as the screen's MathML).
_NO_SPACE_BEFORE = set("=+−-·⊙×),")


def math_text(line: str) -> str:
    """A plain-text equation (``"i_t = σ(W_ii x_t + h_{t−1})"``) as matplotlib mathtext, parsed as the
    screen parses it (``parseMath`` in ``js/src/inspector/mathml.ts``): one letter is a variable, a longer
    word an upright function name, ``_x`` / ``_{…}`` a subscript, juxtaposed operands a thin space apart."""
    return f"${_math_row(line, 0, None)[0]}$"


def prose_text(line: str) -> str:
    """A prose line with its symbols (``W_i*``, ``h_{t−1}``) typeset and every other ``$`` escaped."""
    out, last = [], 0
    for m in _PROSE_SYMBOL.finditer(line):
        out += [line[last:m.start()].replace("$", r"\$"), math_text(m.group(0))]
        last = m.end()
    return "".join(out) + line[last:].replace("$", r"\$")


def _math_row(text: str, i: int, stop: str | None) -> tuple[str, int]:
    """``text[i:]`` up to ``stop`` as mathtext; returns it and the index of ``stop`` (or the end)."""
    parts: list[tuple[str, bool]] = []  # (mathtext, is an operand)
    while i < len(text) and text[i] != stop:
        ch = text[i]
        if ch == " ":
            i += 1
            if parts and parts[-1][1] and i < len(text) and text[i] not in _NO_SPACE_BEFORE:
                parts.append((r"\;", False))
        elif ch == "_" and parts:
            base, _ = parts.pop()
            sub, i = _subscript(text, i + 1)
            parts.append((f"{{{base}}}_{{{sub}}}", True))
        elif _LETTER.match(ch):
            start = i
            while i < len(text) and (_LETTER.match(text[i]) or _MARK.match(text[i])):
                i += 1
            parts.append((_identifier(text[start:i]), True))
        elif ch.isdigit():
            start = i
            while i < len(text) and (text[i].isdigit() or text[i] == "."):
                i += 1
            parts.append((text[start:i], True))
        else:
            i += 1
            parts.append((_TEX.get(ch, ch), False))
    return "".join(p for p, _ in parts), i


def _subscript(text: str, i: int) -> tuple[str, int]:
    if i < len(text) and text[i] == "{":
        inner, i = _math_row(text, i + 1, "}")
        return inner, i + 1
    start = i
    while i < len(text) and _SUB_WORD.match(text[i]):
        i += 1
    return "".join(_TEX.get(c, c) for c in text[start:i]), i


def _identifier(word: str) -> str:
    """One letter (with its accents) is a variable; a longer word an upright name (tanh, relu)."""
    letters = re.findall(r"[^\u0300-\u036f][\u0300-\u036f]*", word)
    if len(letters) != 1:
        return r"\mathrm{" + _MARK.sub("", word) + "}"
    base = _TEX.get(word[0], word[0])
    for mark in word[1:]:
        base = rf"\{_ACCENTS[mark]}{{{base}}}" if mark in _ACCENTS else base
    return base
