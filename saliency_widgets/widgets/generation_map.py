"""``GenerationMap``: click a generated token, see which earlier tokens made it."""

from __future__ import annotations

import pathlib
from typing import Any, Callable, Optional, Union

import numpy as np
import traitlets as t

from .. import colors
from ..errors import SaliencyError, describe
from ..export import METHOD_TEXT, Scale
from ..generation import METHODS, TARGETS, GenerationAttribution
from ..generation.checks import deletion_insertion
from ..generation.figure import (
    VIEWS, causal_limit, explained_row, generation_figure, matrix_scale, row_scale, token_range,
)
from ..transport import ARRAY_TRAIT, to_wire
from . import _checks
from ._collection import collection_deferred
from ._export import slug
from ._guarded import GuardedWidget, Step, bundle, kept
from .standalone import html_budget, standalone_html
from ..frameworks import accepts_framework

#: Groupings the granularity control offers (each sent with the first paint).
GRANULARITIES = ("token", "word", "sentence")
#: How the deletion / insertion chart reads: its axes, and what a faithful map looks like.
CURVE_AXES = {"x_label": "fraction of prompt tokens removed / revealed", "y_label": "score"}
CURVE_READING = ("Good: deletion falls fast (low area) as the top-ranked prompt tokens are replaced by the pad "
                 "token; insertion rises fast (high area) as they are revealed on a prompt of pad tokens.")


class GenerationMap(GuardedWidget):
    """The prompt and the generated text as chips in reading order: click a generated chip and
    every earlier chip takes the colour of its attribution to that token.

    ``sw.GenerationMap(model, prompt, *, tokenizer=None, continuation=None, max_new_tokens=20,
    method="input_x_gradient", target="log_prob", contrast=None, granularity="token", layer=None,
    generate_kwargs=None, **method_kw)`` runs ``sw.attribute_generation`` with these arguments
    (``method_kw`` go with ``method``) and shows its result; ``GenerationMap.from_attribution(result)``
    shows a computed :class:`GenerationAttribution` without a model (method, target and contrast
    then stay as computed).

    Every row (and the word and sentence groupings) arrives with the first paint, so ``selected``,
    ``span`` and ``granularity`` change in the browser alone. ``selected`` and ``span`` count
    generated *tokens* at every granularity (``span=(i, j)``: tokens ``i..j-1``, shift-click or drag
    in the browser); at word or sentence granularity the groups holding them are drawn.
    ``attribution`` is the result shown (aggregated to ``granularity``), ``row`` the row drawn.
    Setting ``method``, ``target`` or ``contrast`` (a token as a string or id, or None) recomputes
    the same continuation in the kernel. Each row is drawn on its own scale: the normalization rule
    of :mod:`saliency_widgets.colors` over the chips that can have caused it (``lock_scale`` keeps one
    scale across rows); the matrix view (``view="matrix"``) shares one scale over every row.

    The "checks" button (``show_checks``) opens a strip under the map: deletion / insertion over the
    prompt's tokens for the explained tokens (:func:`saliency_widgets.generation.checks.deletion_insertion`,
    tokens replaced by the tokenizer's pad / unk id) and, for integrated gradients, the completeness
    error. They run in the kernel, again for each new selection while the strip is open and never
    while it is closed; ``checks`` holds them, ``run_checks()`` computes them, and
    ``to_figure(checks=True)`` draws them under the text.
    """

    _esm = bundle("generation_map.js")

    #: The explained generated token (when ``span`` is None; the span's anchor otherwise).
    selected = t.Int(0).tag(sync=True)
    #: ``(i, j)``: the sum of generated tokens ``i..j-1`` is explained; None for ``selected`` alone.
    span = t.Tuple(t.Int(), t.Int(), allow_none=True, default_value=None).tag(sync=True)
    method = t.Unicode("input_x_gradient").tag(sync=True)
    #: ``"log_prob"``, ``"probability"`` or ``"logit"``.
    target = t.Unicode("log_prob").tag(sync=True)
    #: A token (string or id), one per generated token, or None: explains target − contrast.
    contrast = t.Union([t.Unicode(), t.Int(), t.List()], allow_none=True, default_value=None).tag(sync=True)
    #: ``"token"``, ``"word"`` or ``"sentence"``.
    granularity = t.Unicode("token").tag(sync=True)
    #: ``"text"`` (chips) or ``"matrix"`` (generated × context).
    view = t.Unicode("text").tag(sync=True)
    #: Colour scale: ``"all"``, ``"positive"``, ``"negative"`` or ``"absolute_value"``.
    sign = t.Unicode("all").tag(sync=True)
    #: Percent of the largest magnitudes that saturate the colour scale.
    outlier_perc = t.Float(2.0).tag(sync=True)
    #: Keep the colour scale fixed at ``scale_max`` across rows.
    lock_scale = t.Bool(False).tag(sync=True)
    scale_max = t.Float(0.0).tag(sync=True)

    _luts = t.Dict().tag(**ARRAY_TRAIT)
    #: Per granularity: tokens, prompt_length, matrix, scores, probabilities and groups (token positions).
    _views = t.Dict().tag(**ARRAY_TRAIT)
    #: How the shown result was computed (method, target, contrast and its tokens, layer, notes …).
    _info = t.Dict().tag(sync=True)
    _methods = t.List().tag(sync=True)
    _targets = t.List(t.Unicode(), list(TARGETS)).tag(sync=True)
    #: False without a model (``from_attribution``): method, target and contrast cannot change.
    _live = t.Bool(False).tag(sync=True)
    #: The checks strip is open: its checks follow the selection (computed in the kernel).
    show_checks = t.Bool(False).tag(sync=True)
    #: The strip's items for the selection in ``key`` (``_check_key``), by name.
    _checks = t.Dict().tag(sync=True)

    @collection_deferred
    @accepts_framework
    def __init__(
        self,
        model: Any,
        prompt: Any,
        *,
        tokenizer: Any = None,
        continuation: Any = None,
        max_new_tokens: int = 20,
        method: str = "input_x_gradient",
        target: str = "log_prob",
        contrast: Any = None,
        granularity: str = "token",
        layer: Any = None,
        generate_kwargs: Optional[dict[str, Any]] = None,
        **method_kw: Any,
    ) -> None:
        from ..generation import attribute_generation

        if isinstance(prompt, (list, tuple)) and prompt and isinstance(prompt[0], str):
            raise SaliencyError("GenerationMap shows one prompt; pass one string (or build one map per prompt)")
        self._engine = {"model": model, "prompt": prompt, "tokenizer": tokenizer, "layer": layer}
        self._method_kw = {method: dict(method_kw)}
        result = attribute_generation(
            model, prompt, tokenizer=tokenizer, continuation=continuation, max_new_tokens=max_new_tokens,
            method=method, target=target, contrast=contrast, layer=layer, generate_kwargs=generate_kwargs, **method_kw,
        )
        if isinstance(result, list):
            raise SaliencyError(f"GenerationMap shows one prompt; this prompt holds {len(result)} (build one map per prompt)")
        self._start(result, live=True, contrast=contrast, granularity=granularity)

    @classmethod
    def from_attribution(cls, result: GenerationAttribution, **state: Any) -> "GenerationMap":
        """A map of a computed ``result`` (token level), without a model: clicks, spans,
        granularity, views and exports work; method, target and contrast stay as computed.
        ``state`` sets traits, e.g. ``selected=2``, ``granularity="word"``."""
        if not isinstance(result, GenerationAttribution):
            raise SaliencyError(f"from_attribution takes a GenerationAttribution; got {type(result).__name__}")
        if result.groups is not None:
            raise SaliencyError("from_attribution takes a token-level result: pass it before aggregate() and "
                                f"granularity={result.granularity!r}")
        widget = cls.__new__(cls)
        widget._engine = None
        widget._method_kw = {}
        widget._start(result, live=False, contrast=_contrast_of(result), **state)
        return widget

    def _start(self, result: GenerationAttribution, *, live: bool, **state: Any) -> None:
        """Shows ``result``: the first paint's state, with every granularity."""
        if result.n_generated == 0:
            raise SaliencyError("nothing was generated: no token to explain (raise max_new_tokens or give a continuation)")
        self._use(result)
        state.setdefault("selected", result.n_generated - 1)
        GuardedWidget.__init__(
            self,
            method=result.method,
            target=result.target,
            _live=live,
            _methods=[[m, METHOD_TEXT.get(m, m)] for m in METHODS],
            _luts={s: to_wire(colors.sign_lut(s), "uint8") for s in colors.SIGNS},
            **state,
        )
        self._send_result()
        self._ready = True
        self._follow_checks()

    def _use(self, result: GenerationAttribution) -> None:
        self._result = result
        self._groupings: dict[str, GenerationAttribution] = {"token": result}
        #: The checks of ``result`` by the generated tokens ``(first, end)`` they explain.
        self._check_cache: dict[tuple[int, int], dict[str, dict[str, Any]]] = {}

    # ------------------------------------------------------------ readouts
    @property
    def attribution(self) -> GenerationAttribution:
        """The result shown: token level, or aggregated to ``granularity``."""
        return self._grouping(self.granularity)

    def _grouping(self, granularity: str) -> GenerationAttribution:
        """The result aggregated to ``granularity`` (computed once per result)."""
        if granularity not in self._groupings:
            self._groupings[granularity] = self._result.aggregate(granularity)
        return self._groupings[granularity]

    @property
    def rows(self) -> tuple[int, int]:
        """``(start, stop)``: the rows of ``attribution`` drawn (the groups holding the explained tokens)."""
        first, stop = self.span if self.span is not None else (self.selected, self.selected + 1)
        shown = self.attribution
        if shown.groups is None:
            return first, stop
        p = self._result.prompt_length
        return _group_of(shown, p + first) - shown.prompt_length, _group_of(shown, p + stop - 1) - shown.prompt_length + 1

    @property
    def row(self) -> np.ndarray:
        """The row drawn: the attribution of the explained rows' summed target to every chip."""
        return explained_row(self.attribution, *self.rows)

    # ------------------------------------------------------------ checks
    @property
    def checks(self) -> dict[str, dict[str, Any]]:
        """The strip's checks of the selection on screen, by name (``{"status": "ok" | "warn", "text",
        numbers}``, as the SaliencyMap's); empty while the strip is closed."""
        return {k: v for k, v in self._checks.items() if k != "key"}

    def run_checks(self) -> dict[str, dict[str, Any]]:
        """Computes the checks of the explained tokens (a word's or sentence's whole tokens at those
        granularities), shows them in the strip and returns them: ``deletion_insertion`` needs the
        model (not in a map built ``from_attribution``), ``completeness`` comes with integrated gradients."""
        items = self._selection_checks()
        self._checks = {"key": self._check_key(), **items}
        return dict(items)

    def _selection_checks(self) -> dict[str, dict[str, Any]]:
        """The checks of the explained tokens, computed once per result and tokens."""
        first, end = token_range(self.attribution, *self.rows)
        if (first, end) not in self._check_cache:
            self._check_cache[(first, end)] = self._check_items(first, end)
        return self._check_cache[(first, end)]

    def _check_items(self, first: int, end: int) -> dict[str, dict[str, Any]]:
        """Deletion / insertion of generated tokens ``first..end-1``'s summed score over the prompt's
        tokens (ranked by their row), and the result's completeness error with its notes."""
        result, items = self._result, {}
        if result.completeness_error is not None:
            advice = "pass baseline=<token id>, see below" if result.notes else "raise steps="
            sentences = (*result.notes, "The error is the largest over the generated tokens")
            items["completeness"] = {**_checks.relative_completeness_item(result.completeness_error, advice),
                                     "explain": " ".join(f"{s.rstrip('.')}." for s in sentences)}
        if self._engine is not None:
            raw = deletion_insertion(self._engine["model"], result, span=(first, end), steps=_checks.DELETION_STEPS,
                                     tokenizer=self._engine["tokenizer"])
            items["deletion_insertion"] = {**_checks.deletion_insertion_item(raw), **CURVE_AXES, "explain": CURVE_READING}
        return items

    def _check_key(self) -> dict[str, Any]:
        """What the strip's checks explain, as the browser holds it (``CHECK_KEYS`` in generation_map.ts)."""
        return {"selected": self.selected, "span": None if self.span is None else list(self.span),
                "granularity": self.granularity, "method": self.method, "target": self.target,
                "contrast": self.contrast}

    def _follow_checks(self) -> None:
        """The open strip's checks for the selection on screen (computed unless cached); a closed strip
        is emptied and nothing runs. A failure shows in the strip and the banner; the selection stays."""
        if not self.show_checks:
            self._checks = {}
            return
        try:
            self.run_checks()
        except Exception as exc:
            message = describe(exc)
            self._checks = {"key": self._check_key(),
                            "deletion_insertion": {"status": "warn", "text": f"could not run: {message}"}}
            self._show_error(message)
        else:
            self._show_error("")

    @t.observe("show_checks", "selected", "span", "granularity")
    def _on_checks(self, change: dict[str, Any]) -> None:
        if self._ready and not self._reverting:
            with self._watched():  # the views show its progress
                self._follow_checks()

    # ------------------------------------------------------------ figures
    def to_figure(self, *, checks: bool = False, **kw: Any) -> Any:
        """The view on screen as a matplotlib Figure (:func:`generation_figure`; ``kw`` go to ``Figure``);
        ``checks=True`` draws the checks of the selection under it (computed if the strip has not)."""
        start, stop = self.rows
        shown = self.attribution
        if self.lock_scale and self.scale_max > 0:
            scale = Scale(self.sign, self.scale_max, self.outlier_perc, locked=True)
        elif self.view == "matrix":
            scale = matrix_scale(shown, self.sign, self.outlier_perc)
        else:
            scale = row_scale(self.row, causal_limit(shown, stop), self.sign, self.outlier_perc)
        items = self._selection_checks() if checks else None
        if checks and not items:
            raise SaliencyError("no checks for this map: deletion / insertion runs the model (this map was built from "
                                "a computed GenerationAttribution) and completeness is integrated gradients'")
        return generation_figure(shown, span=(start, stop), view=self.view, scale=scale, checks=items, **kw)

    def export_name(self) -> str:
        """``generation-<explained text>-<method>``, the name of the browser's downloads."""
        start, stop = self.rows
        return f"generation-{slug(''.join(self.attribution.generated_tokens[start:stop]))}-{self.method}"

    def to_html(self, path: Union[str, pathlib.Path, None] = None, *, title: str = "saliency_widgets",
                max_bytes: Optional[int] = None) -> Any:
        """A self-contained page with every row embedded, clickable offline: written to ``path``
        (returned), or returned as text when ``path`` is None (``max_bytes`` as ``SaliencyMap.to_html``)."""
        if path is not None:
            return super().to_html(path, title=title, max_bytes=max_bytes)
        return standalone_html(self, title=title, offline=True, max_bytes=html_budget(max_bytes))

    # ------------------------------------------------------------ computing
    def _recompute(self) -> None:
        """The same continuation explained with the current method, target and contrast (computed by a
        worker already when the browser asked, :meth:`_background_work`)."""
        found, self._precomputed = getattr(self, "_precomputed", None), None
        result = found[1] if found is not None and found[0] == self._request_key() else self._generation_job()()
        self._use(result)
        self._send_result()

    def _generation_job(self) -> Callable[[], GenerationAttribution]:
        """:meth:`_recompute`'s computation as a function that reads no trait (a worker may run it)."""
        from ..generation import attribute_generation

        engine, continuation = self._engine, self._result.generated_ids
        method, target, contrast = self.method, self.target, self.contrast
        return lambda: attribute_generation(
            engine["model"], engine["prompt"], tokenizer=engine["tokenizer"], continuation=continuation,
            method=method, target=target, contrast=contrast, layer=engine["layer"], **self._method_kw.get(method, {}),
        )

    def _request_key(self) -> tuple:
        return (self.method, self.target, repr(self.contrast))

    def _computes_unseen(self) -> bool:
        from ..backends import get_backend

        return self._engine is not None and get_backend(self._engine["model"]).computes_unseen()

    def _background_work(self) -> list[Step]:
        """The result of the current method, target and contrast (a worker computes it)."""
        key = self._request_key()
        return [kept(self._generation_job(), lambda result: setattr(self, "_precomputed", (key, result)))]

    def _send_result(self) -> None:
        """Every granularity's tokens, rows, scores and groups, and how they were computed."""
        result = self._result
        self._views = {g: _view_wire(self._grouping(g)) for g in GRANULARITIES}
        self._info = {
            "method": result.method,
            "target": result.target,
            "contrast": self.contrast,
            "contrast_tokens": list(result.contrast_tokens or []),
            "layer": result.layer,
            "completeness_error": None if result.completeness_error is None else float(result.completeness_error),
            "notes": list(result.notes),
            "encoder_decoder": bool(result.encoder_decoder),
        }

    # ------------------------------------------------------------ validation
    @t.validate("selected")
    def _check_selected(self, proposal: Any) -> int:
        k, n = int(proposal["value"]), self._result.n_generated
        if not 0 <= k < n:
            self._invalid(f"selected must be a generated token in 0..{n - 1} (there are {n}); got {k}")
        return k

    @t.validate("span")
    def _check_span(self, proposal: Any) -> Optional[tuple[int, int]]:
        value, n = proposal["value"], self._result.n_generated
        if value is None:
            return None
        start, stop = (int(v) for v in value)
        if not 0 <= start < stop <= n:
            self._invalid(f"span must be (i, j) with 0 ≤ i < j ≤ {n} (generated tokens i..j-1), or None; got {tuple(value)}")
        return start, stop

    @t.validate("granularity")
    def _check_granularity(self, proposal: Any) -> str:
        return self._choice("granularity", proposal["value"], GRANULARITIES)

    @t.validate("view")
    def _check_view(self, proposal: Any) -> str:
        return self._choice("view", proposal["value"], VIEWS)

    @t.validate("sign")
    def _check_sign(self, proposal: Any) -> str:
        return self._choice("sign", proposal["value"], colors.SIGNS)

    @t.validate("outlier_perc")
    def _check_outlier_perc(self, proposal: Any) -> float:
        value = float(proposal["value"])
        if not 0 <= value < 100:
            self._invalid(f"outlier_perc must be in [0, 100); got {value}")
        return value

    @t.validate("target")
    def _check_target(self, proposal: Any) -> str:
        return self._kernel_choice("target", proposal["value"], tuple(TARGETS))

    @t.validate("method")
    def _check_method(self, proposal: Any) -> str:
        return self._kernel_choice("method", proposal["value"], METHODS)

    @t.validate("contrast")
    def _check_contrast(self, proposal: Any) -> Any:
        value = proposal["value"]
        if self._ready and self._engine is None and value != self.contrast:
            self._invalid(self._offline_message("contrast"))
        return None if value == "" else value

    def _choice(self, name: str, value: Any, choices: tuple[str, ...]) -> str:
        if value not in choices:
            self._invalid(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
        return value

    def _kernel_choice(self, name: str, value: Any, choices: tuple[str, ...]) -> str:
        if self._ready and self._engine is None and value != getattr(self, name):
            self._invalid(self._offline_message(name))
        return self._choice(name, value, choices)

    @staticmethod
    def _offline_message(name: str) -> str:
        return (f"this map was built from a computed GenerationAttribution, so its {name} cannot change; "
                f"recompute with sw.attribute_generation(..., {name}=...) or use sw.GenerationMap(model, prompt, ...)")

    @t.observe("method", "target", "contrast")
    def _on_request(self, change: dict[str, Any]) -> None:
        def update() -> None:
            self._recompute()
            self._follow_checks()

        self._guarded(change, update)


def _contrast_of(result: GenerationAttribution) -> Any:
    """The contrast a result was computed with, as the ``contrast`` trait holds it."""
    names = result.contrast_tokens
    if not names:
        return None
    return names[0] if len(set(names)) == 1 else list(names)


def _group_of(result: GenerationAttribution, position: int) -> int:
    """The group of an aggregated ``result`` that holds token ``position``."""
    return next(g for g, members in enumerate(result.groups or []) if position in members)


def _view_wire(result: GenerationAttribution) -> dict[str, Any]:
    """One granularity as the browser reads it (``groups``: token positions per chip; None per token)."""
    return {
        "tokens": list(result.tokens),
        "prompt_length": int(result.prompt_length),
        "matrix": to_wire(result.matrix),
        "scores": to_wire(result.scores),
        "probabilities": to_wire(result.probabilities),
        "groups": result.groups,
    }
