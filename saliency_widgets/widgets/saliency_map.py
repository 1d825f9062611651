"""``SaliencyMap``: the model's outputs, and the attribution of the selected one."""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any, Callable, Mapping, NamedTuple, Optional, Sequence, Union

import numpy as np
import traitlets as t

from .. import checks, colors
from ..attribution import METHODS, METHOD_OPTIONS
from ..config import config
from ..errors import SaliencyError, SaliencyWarning, describe
from ..export import (
    METHOD_TEXT, Panel, Scale, format_value, panels_figure, pushes_text, saliency_figure, scale_range, target_legend,
    with_checks,
)
from ..gradcam import CAM_METHODS, nonnegative
from ..inputs import background_image, picture_caption
from ..transport import ARRAY_TRAIT, to_wire
from ..weights import LayerInfo
from ..zero import zero_reason
from . import _checks
from ._base import SampleWidget
from ._guarded import Step, bundle, kept
from ._collection import collection_deferred
from ._export import slug
from ..frameworks import accepts_framework

#: Methods the browser can compute from a prefetched Jacobian without the kernel.
LOCAL_METHODS = ("gradient", "input_x_gradient")
#: Values of ``view`` (the constructor's ``layout=``).
VIEWS = ("overlay", "side_by_side")
_CACHE_SIZE = 64
_CHECKS_KEPT = 16


class _Map(NamedTuple):
    """One computed map: the values (the sample's shape, or a Grad-CAM map's display shape), IG's
    completeness error, and why it is zero up to rounding (:mod:`..zero`; None when it is not)."""

    values: np.ndarray
    error: Optional[float]
    note: Optional[str]


class SaliencyMap(SampleWidget):
    """Click an output neuron, see which inputs made it fire.

    ``sw.SaliencyMap(model, x, target=None, method="gradient", output="logits",
    labels=None, feature_names=None, kind=None, image=None)`` shows sample
    ``index`` of the batch ``x``: every output as a clickable bar, and the
    attribution of output ``target`` (a flat index; None = the sample's arg-max)
    drawn for the input ``kind`` (see :mod:`saliency_widgets.inputs`: vectors as
    a strip, images as a heatmap over ``image`` or the input itself with the
    channels summed, sequences as a time × feature grid). ``image`` is one picture,
    or one per sample: an array whose first axis is the batch size and whose
    other axes are a picture, e.g. ``(n, H, W)`` or ``(n, H, W, 3)``; the map is
    drawn over the picture of sample ``index``. Image maps are drawn over the
    input in a darkened grey, so both the pale middle and the dark ends of the
    diverging map stay visible on white strokes and on black background.
    ``y`` (one true class per sample: a flat output index or a label) is shown
    beside the predicted class.

    Structured models: ``x`` may be a tuple/list/dict of arrays (a tokenizer's
    ``BatchEncoding``), with ``head=``, ``layer=`` and ``fixed=`` as in
    ``sw.saliency``. With an embedding layer as ``layer=`` (or ``kind="text"``)
    the map is **text**: one chip per token, coloured by the attribution summed
    over the embedding axis; ``tokens=`` gives the token strings (one list per
    sample, or a tokenizer reading ``x["input_ids"]``), and positions whose
    ``x["attention_mask"]`` is 0 are hidden. A text view starts on ``method="input_x_gradient"``
    when ``method=`` is not given: the signed gradient summed over the embedding axis is 0 by
    construction whenever the embeddings feed a normalisation layer (every BERT-family model).
    ``head=``, ``layer=`` and ``fixed=`` hold for every computation: the map, the Jacobian, the
    checks and the exports. A ``baseline`` in ``method_kwargs`` with one row per sample (e.g.
    ``{"input_ids": pad_ids}`` shaped like ``x``) gives sample ``index`` its own row. When ``x``
    has several attributed entries (two float arrays), ``entry`` (a key of ``x``, one of
    ``entries``; default the first) is the one drawn; set it to switch.

    A map that is zero up to float rounding (see :mod:`saliency_widgets.zero`: such a summed
    gradient, or a Grad-CAM whose ReLU clipped every pixel) is never stretched to full colour: the
    widget draws it neutral with the reason in place of the colour bar (``data-sw-role="note"``),
    ``note`` holds that sentence ("" otherwise), computing it raises a ``SaliencyWarning``, and
    ``to_figure`` draws the sentence too.

    ``contrast`` (None, or a flat output index other than ``target``) asks "why ``target`` and not
    ``contrast``": the map explains score(target) − score(contrast), as ``sw.saliency(...,
    contrast=)`` (the title says “a” vs “b”; every check and export follows). The browser sets it
    with the "versus" control (``data-sw-role="contrast"``) or an alt-click on an output (again to
    clear it); with the prefetched Jacobian it draws the difference of two rows itself, with no
    kernel round trip.

    Every map the kernel sends is tagged with the request it answers: ``target``, ``contrast``,
    ``index``, ``method``, ``output``, ``cam_layer`` and ``request`` (the browser numbers its requests in
    ``_request``); the browser draws only the answer to its latest request, so a slow reply that
    arrives after the user moved on is never shown. ``attribution`` is always the map of the
    current ``(index, target, contrast, method, output, cam_layer)``.

    Set ``target``, ``contrast``, ``method``, ``index``, ``sign``, ``outlier_perc``,
    ``lock_scale``, ``opacity`` or ``entry`` from Python or in the browser (a refused value, e.g.
    ``opacity`` outside [0, 1] or NaN, raises ``SaliencyError`` and leaves the previous one); read the current
    map as ``attribution`` (numpy, one sample, the input's shape).
    ``method_kwargs`` passes options per method, e.g.
    ``{"smoothgrad": {"n_samples": 20}}``. When one sample's Jacobian fits
    ``sw.config.prefetch_budget_bytes`` it is sent once, and the browser switches
    targets for gradient and input×gradient without a kernel round trip. The
    Jacobian is computed after the first map is drawn (the browser asks for it),
    so the widget appears after one gradient.

    Image models with a spatial layer also offer ``"gradcam"`` and
    ``"gradcam_plus_plus"`` (at ``cam_layer``, default the last spatial layer). Their maps are ≥ 0
    by construction (with ``relu=True``, the default), so with ``sign="all"`` they are drawn on a
    one-sided scale, 0 → max (``Reds``: red raises the score, as on the signed scale), on screen, in
    the colour bar and in exports; ``relu=False`` maps are signed and stay on the diverging scale.
    Under the map a strip of checks (``checks`` holds them; ``run_check(name)``
    runs the on-demand ones): IG completeness, random logit (from the
    prefetched Jacobian), deletion / insertion and the randomization test.
    ``to_figure(checks=True)`` draws them under the map. Each check carries a one-line reading (what its
    number is, which value is good); the deletion / insertion curves are drawn on labelled axes.

    ``layout="side_by_side"`` (trait ``view``; ``layout`` itself is ipywidgets' CSS layout) draws an image's
    input, map and overlay next to each other — the input in its own colours when it is an RGB picture in
    [0, 1] or [0, 255] (``image=``, or ``x`` itself; else stretched, as the caption says) — and a sequence's
    input signal above its time × feature map. Maps grow with the card's width (nearest-neighbour, so an
    8×8 digit stays crisp). ``methods=["gradient", "integrated_gradients", ...]`` draws one map per method in
    a row (``data-sw-method``), each on its own colour scale or, with ``shared_scale``, on one; a click on an
    output retargets all of them in one request, a click on a map makes its method ``method`` (the checks,
    the feature list and the colour bar follow it). ``attributions`` is ``{method: map}`` of the shown
    sample (the one ``method`` without ``methods=``). Vector and text maps list the features or tokens that
    push the explained score up and down most (``pushes``). ``to_figure`` and the export buttons draw the
    same layout as the screen.
    """

    _esm = bundle("saliency_map.js")

    #: Flat index of the selected output neuron.
    target = t.Int(0).tag(sync=True)
    #: Flat index of the output the target is contrasted with (the map explains their score difference), or None.
    contrast = t.Int(None, allow_none=True).tag(sync=True)
    #: One of ``saliency_widgets.attribution.METHODS``.
    method = t.Unicode("gradient").tag(sync=True)
    #: Opacity of the heatmap over an image (0..1).
    opacity = t.Float(0.75).tag(sync=True)
    #: ``"overlay"`` (the map over the input) or ``"side_by_side"`` (input, map and overlay next to each other;
    #: a sequence's signal above its map): the constructor's ``layout=``.
    view = t.Unicode("overlay").tag(sync=True)
    #: The methods drawn in a row, one map each (the constructor's ``methods=``); [] draws the map of ``method`` alone.
    methods = t.List(t.Unicode()).tag(sync=True)
    #: The methods row shares one colour scale (True) or draws each map on its own (False).
    shared_scale = t.Bool(False).tag(sync=True)
    #: The layer Grad-CAM maps from ("" = the last layer with a spatial output).
    cam_layer = t.Unicode("").tag(sync=True)
    #: Number of the browser's latest map request (it sets it with target/method/cam_layer/index);
    #: every ``_attribution`` carries the number it answers as ``request``.
    _request = t.Int(0).tag(sync=True)

    _methods = t.List(t.Unicode()).tag(sync=True)
    _local_methods = t.List(t.Unicode(), list(LOCAL_METHODS)).tag(sync=True)
    _input = t.Dict().tag(**ARRAY_TRAIT)
    _image = t.Dict(allow_none=True, default_value=None).tag(**ARRAY_TRAIT)
    _truth = t.List(t.Unicode()).tag(sync=True)
    _tokens = t.Dict().tag(sync=True)
    _jacobian = t.Dict(allow_none=True, default_value=None).tag(**ARRAY_TRAIT)
    _attribution = t.Dict(allow_none=True, default_value=None).tag(**ARRAY_TRAIT)
    #: The methods row's maps the browser cannot derive itself, stacked ``(k, *display_shape)``, tagged with
    #: their ``methods`` and the key they answer (like ``_attribution``, without ``method``).
    _method_maps = t.Dict(allow_none=True, default_value=None).tag(**ARRAY_TRAIT)
    _cam_layers = t.List(t.Unicode()).tag(sync=True)
    #: What the Grad-CAM layer picker shows for each of ``_cam_layers``: "name · type · output shape".
    _cam_layer_labels = t.List(t.Unicode()).tag(sync=True)
    _prefetchable = t.Bool(False).tag(sync=True)
    _want_jacobian = t.Bool(False).tag(sync=True)
    _checks = t.Dict().tag(sync=True)
    _on_demand = t.List(t.Unicode()).tag(sync=True)
    _check_request = t.Dict().tag(sync=True)
    _randomization_maps = t.Dict(allow_none=True, default_value=None).tag(**ARRAY_TRAIT)

    @collection_deferred
    @accepts_framework
    def __init__(
        self,
        model: Any,
        x: Any,
        *,
        target: Optional[int] = None,
        contrast: Optional[int] = None,
        method: Optional[str] = None,
        output: str = "logits",
        labels: Optional[Sequence[Any]] = None,
        feature_names: Optional[Sequence[Any]] = None,
        kind: Optional[str] = None,
        image: Any = None,
        y: Any = None,
        head: Any = None,
        layer: Any = None,
        fixed: Any = None,
        tokens: Any = None,
        entry: Any = None,
        index: int = 0,
        sign: str = "all",
        outlier_perc: float = 2.0,
        opacity: float = 0.75,
        method_kwargs: Optional[Mapping[str, Mapping[str, Any]]] = None,
        layout: str = "overlay",
        methods: Optional[Sequence[str]] = None,
        shared_scale: bool = False,
    ) -> None:
        self._user_image = None if image is None else np.asarray(image)
        self._method_kwargs = {k: dict(v) for k, v in (method_kwargs or {}).items()}
        self._cache: OrderedDict[tuple, _Map] = OrderedDict()
        self._jacobians: dict[tuple, Optional[np.ndarray]] = {}
        self._check_items: OrderedDict[tuple, dict[str, dict[str, Any]]] = OrderedDict()
        self._check_raw: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
        self._method_maps_key: Optional[tuple] = None  # what _method_maps holds (see _send_method_maps)
        super().__init__(
            model, x, kind=kind, labels=labels, feature_names=feature_names,
            head=head, layer=layer, fixed=fixed, tokens=tokens, entry=entry, output=output, index=index, sign=sign,
            outlier_perc=outlier_perc, opacity=opacity, view=layout, shared_scale=shared_scale,
            method=method or (methods[0] if methods else "gradient"),
        )
        if method is None and not methods and self._layout_info.kind == "text":
            self.method = "input_x_gradient"  # a per-token sum that means something (DESIGN §7)
        self._check_image()
        plain = layer is None and head is None and not self._spec.structured
        spatial = self._spatial_layers() if plain and self._layout_info.kind == "image" else []
        self._cam_layers = [info.name for info in spatial]
        self._cam_layer_labels = [_layer_label(info) for info in spatial]
        self._methods = [m for m in METHODS if m not in CAM_METHODS or self._cam_layers]
        if methods:
            self.methods = list(methods)
            if self.method not in self.methods:
                raise SaliencyError(f"method={self.method!r} is not one of methods={list(methods)!r}; leave it out "
                                    "(the first of methods is shown first) or pick one of them")
        self._on_demand = list(_checks.ON_DEMAND)
        self._pad_id = int(getattr(tokens, "pad_token_id", None) or 0)
        self._prefetchable = self._jacobian_fits()
        self._truth = self._true_labels(y)
        first = int(np.argmax(self._all_scores(self.output)[self.index])) if target is None else target
        with self.hold_sync():
            self.target = first
            self.contrast = contrast
            self._send_sample()
            self._send_attribution()
        self._ready = True

    # -------------------------------------------------------------- checks
    @property
    def checks(self) -> dict[str, dict[str, Any]]:
        """The checks of the map on screen, by name: ``{"status": "ok" | "warn" | "computing",
        "text": ..., numbers}`` (see docs/widget-protocol.md)."""
        return {k: v for k, v in self._checks.items() if k != "key"}

    def run_check(self, name: str) -> dict[str, Any]:
        """Runs an on-demand check (``"deletion_insertion"`` or ``"randomization"``) for the map
        on screen, in the kernel, and returns its item (also shown in the strip); a check listed in
        ``checks`` (computed with the map) returns its item as it is."""
        if name in self.checks and name not in self._on_demand:
            return self.checks[name]
        if name not in self._on_demand:
            offered = ", ".join(map(repr, [*self._on_demand, *self.checks]))
            hint = (" (completeness checks integrated gradients: set method='integrated_gradients')"
                    if name == "completeness" else "")
            self._invalid(f"run_check takes one of {offered} for this map; got {name!r}{hint}")
        key = self._key()
        items = self._check_items.setdefault(key, {})
        for recent in (self._check_items, self._check_raw):  # results of the last _CHECKS_KEPT maps
            while len(recent) > _CHECKS_KEPT:
                recent.popitem(last=False)
        items[name] = _checks.computing()
        self._refresh_checks()
        try:
            raw = self._deletion_insertion() if name == "deletion_insertion" else self._randomization()
        except Exception:
            del items[name]
            self._refresh_checks()
            raise
        self._check_raw.setdefault(key, {})[name] = raw
        items[name] = (_checks.deletion_insertion_item if name == "deletion_insertion" else _checks.randomization_item)(raw)
        with self.hold_sync():
            if name == "randomization":
                self._send_randomization_maps()
            self._refresh_checks()
        return self.checks[name]

    def _key(self, method: Optional[str] = None) -> tuple:
        """What one map depends on: the current sample, target, contrast, output, layer and entry, and
        ``method`` (default the current one)."""
        return (self.index, self.target, self.contrast, method or self.method, self.output, self.cam_layer, self.entry)

    def _contrast_index(self) -> Any:
        """``contrast=`` for the functional core: the contrast as an index into one sample's output, or None."""
        return None if self.contrast is None else self._unravel(self.contrast)

    def _method_kw(self, method: Optional[str] = None) -> dict[str, Any]:
        """``method``'s (default the current one's) options for sample ``index`` (``method_kwargs``, a
        per-sample baseline's row), with ``head=``, ``layer=``/``cam_layer`` and ``fixed=``."""
        method = method or self.method
        kw = {**self._engine_kw, **self._sample_options(dict(self._options(method)))}
        if method in CAM_METHODS and self.cam_layer:
            kw["layer"] = self.cam_layer
        return kw

    def _deletion_insertion(self) -> checks.DeletionInsertion:
        """Deletion / insertion of the drawn entry's elements (the other entries as they are); at an
        embedding layer, of whole tokens, replaced by the tokenizer's ``[PAD]`` id (``tokens=``) or 0."""
        ranking = self._values
        if ranking.shape != self._x.shape[1:]:  # a Grad-CAM map ranks whole pixels
            ranking = np.expand_dims(ranking, self._layout_info.channel_axis)
        kw = dict(self._engine_kw)
        if len(self.entries) > 1:
            kw["fixed"] = [k for k in self._spec.keys if k != self.entry]
        return checks.deletion_insertion(
            self._model, self._sample_x(self.index), ranking[None], self._unravel(self.target),
            contrast=self._contrast_index(), steps=_checks.DELETION_STEPS, output=self.output,
            baseline=self._pad_id, **kw,
        )

    def _randomization(self) -> checks.Randomization:
        return checks.randomization(
            self._model, self._sample_x(self.index), self._unravel(self.target), contrast=self._contrast_index(),
            method=self.method, seed=_checks.RANDOMIZATION_SEED, output=self.output, **self._method_kw(),
        )

    def _randomization_rows(self) -> Optional[np.ndarray]:
        """``(steps, *display_shape)``: the randomization test's maps of the map on screen, if run."""
        raw = self._check_raw.get(self._key(), {}).get("randomization")
        return None if raw is None else np.stack([self._shown(self._drawn_part(m)[0]) for m in raw.maps])

    def _drawn_part(self, maps: np.ndarray) -> np.ndarray:
        """The drawn entry's part of ``checks.randomization`` maps, which hold several entries flat."""
        if maps.shape[1:] == self._x.shape[1:] or len(self.entries) < 2:
            return maps
        sizes = [self._entries[i][0].size for i in self._spec.attributed]
        k = self.entries.index(self.entry)
        start = sum(sizes[:k])
        return maps[:, start:start + sizes[k]].reshape(len(maps), *self._x.shape[1:])

    def _send_randomization_maps(self) -> None:
        rows = self._randomization_rows()
        self._randomization_maps = None if rows is None else to_wire(
            rows, index=self.index, target=self.target, contrast=self.contrast, method=self.method,
            output=self.output, cam_layer=self.cam_layer,
        )

    def _refresh_checks(self) -> None:
        """``_checks`` for the map on screen: the cheap checks, then any on-demand results."""
        key = self._key()
        items: dict[str, Any] = {"key": {"index": self.index, "target": self.target, "contrast": self.contrast,
                                         "method": self.method, "output": self.output, "cam_layer": self.cam_layer,
                                         "entry": self.entry}}
        err = self._lookup()[1]
        if err is not None:
            steps = self._options().get("steps", METHOD_OPTIONS[self.method]["steps"])
            items["completeness"] = _checks.completeness_item(self._values, err, steps)
        jac = self._jacobians.get((self.index, self.output, self.entry))
        if jac is not None and self.method in LOCAL_METHODS and self.n_outputs > 1 + (self.contrast is not None):
            maps = _local_maps(jac, self.method, self._x[self.index], self.contrast)
            items["random_logit"] = _checks.random_logit_item(maps, self.target, self.contrast)
        items.update(self._check_items.get(key, {}))
        kind = self._layout_info.kind
        self._checks = {k: v if k == "key" else _checks.with_reading(k, v, kind) for k, v in items.items()}

    # -------------------------------------------------------------- results
    @property
    def attribution(self) -> np.ndarray:
        """The attribution of ``target`` (minus ``contrast``'s) for sample ``index`` (the sample's shape,
        float32): always the map of the current ``(index, target, contrast, method, output, cam_layer)``."""
        return self._lookup().values

    @property
    def attributions(self) -> dict[str, np.ndarray]:
        """``{method: map}`` of the shown sample: one entry per method of the row (``methods``), or the one of
        ``method``; each is ``attribution`` with that method."""
        return {m: self._lookup(m).values for m in (self.methods or [self.method])}

    def _scale(self, method: Optional[str] = None) -> Scale:
        """The colour scale of ``method``'s map (default the current one's) on screen: locked at ``scale_max``;
        in a methods row with ``shared_scale``, the largest of the row's own scales (maps that are zero up to
        rounding left out); else the rule over the map. One-sided for a map that is ≥ 0 by construction."""
        method = method or self.method
        sign = colors.shown_sign(self.sign, self._nonnegative(method))
        if self.lock_scale and self.scale_max > 0:
            return Scale(sign, self.scale_max, self.outlier_perc, True, nonnegative=sign != self.sign)
        row = self.methods if self.shared_scale and method in self.methods else [method]
        own = [self._own_scale(m) for m in row if m == method or not self._lookup(m).note]
        return Scale(sign, max(own), self.outlier_perc, False, nonnegative=sign != self.sign)

    def _own_scale(self, method: str) -> float:
        """The normalization rule's magnitude for ``method``'s map alone."""
        sign = colors.shown_sign(self.sign, self._nonnegative(method))
        return colors.scale_max(self._shown(self._lookup(method).values), sign, self.outlier_perc)

    @property
    def _values(self) -> np.ndarray:
        return self._lookup().values

    @property
    def note(self) -> str:
        """Why the map on screen is zero up to float rounding (then drawn neutral, with this sentence
        instead of a colour bar), or "" (see :mod:`saliency_widgets.zero`)."""
        return self._lookup().note or ""

    @property
    def completeness_error(self) -> Optional[float]:
        """Integrated gradients' ``|sum(attribution) - (f(x) - f(baseline))|`` (else None)."""
        return self._lookup().error

    def to_figure(self, *, checks: bool = False, **kw: Any) -> Any:
        """The map on screen as a matplotlib Figure: same colours, scale, labels and colour bar
        (``kw`` go to ``matplotlib.figure.Figure``, e.g. ``figsize``). ``checks=True`` adds the
        checks strip under the map (the checks run so far, as on screen)."""
        info = self._layout_info
        err = self.completeness_error
        scores = self._all_scores(self.output)[self.index].reshape(-1)
        score = format_value(scores[self.target]) if self.contrast is None else (
            f"“{self._labels[self.target]}” − “{self._labels[self.contrast]}” "
            f"{format_value(scores[self.target] - scores[self.contrast])}")
        subtitle = (
            f"{METHOD_TEXT.get(self.method, self.method)} · {self.output} {score}{self._sample_text()}"
            + f" · predicted “{self._labels[int(np.argmax(scores))]}”"
            + (f" · true “{self._truth[self.index]}”" if self._truth else "")
            + ("" if err is None else f" · completeness error {format_value(err)}")
        )
        image = self._picture(self.index) if info.kind == "image" else None
        values, names = self._drawn(self._display_values()), self._drawn_names()
        note, scale, title = self.note, self._scale(), f"Saliency of {self._explained()}"
        legend = target_legend(scale.sign, self._explained())
        words = self.pushes if info.kind in ("vector", "text") else []
        panels = bool(self.methods) or (self.view == "side_by_side" and info.kind in ("image", "sequence"))
        signal = self._layout_info.time_first(self._x[self.index]) if info.kind == "sequence" and self.view == "side_by_side" else None

        def draw(**more: Any) -> Any:
            if panels:
                return panels_figure(
                    self._panels(), kind=info.kind, scale=scale, title=title, subtitle=subtitle, legend=legend,
                    note=note, feature_names=names, signal=signal, words=words, relative=self._relative(),
                    opacity=self.opacity, **more,
                )
            return saliency_figure(
                values, kind=info.kind, scale=scale, title=title, subtitle=subtitle, feature_names=names, image=image,
                opacity=self.opacity, note=note, legend=legend, words=words, **more,
            )

        if not checks:
            return draw(**kw)
        original = self._display_values()  # the randomization row's first map, neutral too when zero up to rounding
        return with_checks(draw, self.checks, np.zeros_like(original) if note else original, self._randomization_rows(),
                           kind=info.kind, scale=self._scale(), **kw)

    def _panels(self) -> list[Panel]:
        """The pictures of the side-by-side and methods layouts, in the screen's order: the input (side by side,
        images), then the map and its overlay — or one map per method (over the input unless side by side)."""
        info = self._layout_info
        picture = self._picture(self.index) if info.kind == "image" else None
        side = self.view == "side_by_side"
        panels = [Panel(f"input · {self._picture_caption(self.index)}", picture=picture)] if side and picture is not None else []
        if not self.methods:
            values, scale, note = self._drawn(self._display_values()), self._scale(), self.note
            panels.append(Panel("map", values, scale, note=note))
            return panels + ([Panel("overlay", values, scale, picture=picture, note=note)] if picture is not None else [])
        for method in self.methods:
            found, scale = self._lookup(method), self._scale(method)
            caption = METHOD_TEXT.get(method, method) + (f" · {scale_range(scale)}" if self._relative() else "")
            panels.append(Panel(caption, self._drawn(self._shown(found.values)), scale, None if side else picture,
                                selected=method == self.method, note=found.note or ""))
        return panels

    def _relative(self) -> bool:
        """Whether the methods row draws each map on its own scale (not shared, not locked)."""
        return bool(self.methods) and not self.shared_scale and not (self.lock_scale and self.scale_max > 0)

    def _drawn(self, values: np.ndarray) -> np.ndarray:
        """A display map as drawn: a text map without its hidden (padding) tokens."""
        if self._layout_info.kind != "text":
            return values
        return values[[i for i, hidden in enumerate(self._tokens["hidden"]) if not hidden]]

    def _drawn_names(self) -> list[str]:
        """The names of the drawn entries: feature names, or a text map's shown tokens."""
        if self._layout_info.kind != "text":
            return list(self._feature_names)
        return [tok for tok, hidden in zip(self._tokens["tokens"], self._tokens["hidden"]) if not hidden]

    @property
    def pushes(self) -> list[str]:
        """What pushes the explained score most, as listed under a vector or text map: ``["pushes “cat” up:
        proline +0.84, …", "down: hue −0.52, …"]`` (the largest positive and most negative entries of
        ``attribution``, channels summed; [] for images and sequences, and for a map that is zero up to rounding)."""
        if self._layout_info.kind not in ("vector", "text") or self.note:
            return []
        names = self._drawn_names()
        values = self._drawn(self._display_values())
        names = names or [f"feature {i}" for i in range(len(values))]
        return pushes_text(values, names, self._explained())

    def export_name(self) -> str:
        """``saliency-<target label>[-vs-<contrast label>]-<method>``, the name of the browser's downloads."""
        versus = "" if self.contrast is None else f"-vs-{slug(self._labels[self.contrast])}"
        return f"saliency-{slug(self._labels[self.target])}{versus}-{self.method}"

    def _explained(self) -> str:
        """What the map explains, as titles say it: “cat”, or “cat” vs “dog” with a contrast."""
        target = f"“{self._labels[self.target]}”"
        return target if self.contrast is None else f"{target} vs “{self._labels[self.contrast]}”"

    # ------------------------------------------------------------- inputs
    def _image_is_batch(self) -> bool:
        """True when ``image=`` holds one picture per sample (first axis = batch size)."""
        img = self._user_image
        if img is None:
            return False
        h, w = self._layout_info.display_shape
        return img.ndim == 4 or (img.ndim == 3 and img.shape[0] == len(self._x) and img.shape[1:] == (h, w))

    def _check_image(self) -> None:
        img = self._user_image
        if img is None:
            return
        if self._layout_info.kind != "image":
            raise SaliencyError("image= applies to image inputs; this input is drawn as a " + self._layout_info.kind)
        if img.ndim == 4 and len(img) != len(self._x):
            raise SaliencyError(f"image= holds {len(img)} pictures but x has {len(self._x)} samples; pass one per sample")
        self._picture(0)

    def _picture(self, index: int) -> np.ndarray:
        """The (H, W, 3) uint8 picture under sample ``index``'s map."""
        return background_image(self._x[index], self._layout_info, self._image_of(index))

    def _picture_caption(self, index: int) -> str:
        """How sample ``index``'s picture is drawn (:func:`..inputs.picture_caption`)."""
        return picture_caption(self._x[index], self._layout_info, self._image_of(index))

    def _image_of(self, index: int) -> Any:
        """``image=`` for sample ``index`` (its own picture of a batch), or None."""
        return self._user_image[index] if self._image_is_batch() else self._user_image

    def _true_labels(self, y: Any) -> list[str]:
        """One display label per sample from ``y=`` (flat output indices or labels), or []."""
        if y is None:
            return []
        values = np.asarray(y).reshape(-1)
        if len(values) != len(self._x):
            raise SaliencyError(f"y= has {len(values)} entries but x has {len(self._x)} samples; pass one true class per sample")
        if np.issubdtype(values.dtype, np.integer):
            bad = [int(v) for v in values if not 0 <= int(v) < self.n_outputs]
            if bad:
                raise SaliencyError(f"y= holds class {bad[0]}, outside the model's outputs 0..{self.n_outputs - 1}")
            return [self._labels[int(v)] for v in values]
        return [str(v) for v in values]

    # ------------------------------------------------------------ computing
    def _spatial_layers(self) -> list[LayerInfo]:
        """The layers Grad-CAM can map from (a spatial output), first to last."""
        channel_axis = 0 if self._backend.framework == "torch" else -1
        found = []
        for info in self._backend.layers(self._x[:1] if self._backend.framework == "torch" else None):
            shape = tuple(info.output_shape or ())
            spatial = [n for i, n in enumerate(shape) if i != channel_axis % max(len(shape), 1)]
            if len(shape) >= 3 and any(n is None or n > 1 for n in spatial):
                found.append(info)
        return found

    def _jacobian_fits(self) -> bool:
        sample_size = int(np.prod(self._x.shape[1:], dtype=np.int64))
        return self.n_outputs * sample_size * 4 <= config.prefetch_budget_bytes

    def _jacobian_of(self, index: int, output: str) -> Optional[np.ndarray]:
        """One sample's Jacobian ``(n_outputs, *sample_shape)`` if it fits the prefetch budget."""
        key = (index, output, self.entry)
        if key not in self._jacobians:
            self._jacobians[key] = self._jacobian_job(index, output)()
        return self._jacobians[key]

    def _jacobian_job(self, index: int, output: str) -> Callable[[], Optional[np.ndarray]]:
        """:meth:`_jacobian_of`'s computation as a function that reads no trait (a worker may run it)."""
        if not self._jacobian_fits():
            return lambda: None
        from ..attribution import jacobian

        x, entry, shape = self._sample_x(index), self.entry, (self.n_outputs,) + self._x.shape[1:]

        def compute() -> np.ndarray:
            jac = jacobian(self._model, x, output=output, **self._engine_kw)
            return np.asarray(jac if entry is None else jac[entry], dtype=np.float32).reshape(shape)

        return compute

    def _lookup(self, method: Optional[str] = None) -> _Map:
        """The map of the current key with ``method`` (default the current one): from the cache, or
        computed (a map that is zero up to rounding warns once, when it is computed)."""
        method = method or self.method
        key = self._key(method)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        return self._remember(method, *self._map_job(method)())

    def _map_job(self, method: str) -> Callable[[], tuple[np.ndarray, Optional[float]]]:
        """The computation of ``method``'s map of the current key as a function that reads no trait (a
        worker may run it while they change): ``() -> (values, completeness error)``."""
        jac = self._jacobians.get((self.index, self.output, self.entry)) if method in LOCAL_METHODS else None
        if jac is not None:
            local = _local_maps(jac, method, self._x[self.index], self.contrast, self.target)
            return lambda: (local, None)
        from ..attribution import attribute

        x, target, contrast = self._sample_x(self.index), self._unravel(self.target), self._contrast_index()
        output, kw, entry = self.output, self._method_kw(method), self.entry

        def compute() -> tuple[np.ndarray, Optional[float]]:
            res = attribute(self._model, x, target, contrast=contrast, method=method, output=output, **kw)
            err = None if res.completeness_error is None else float(np.asarray(res.completeness_error)[0])
            return np.asarray((res.values if entry is None else res.values[entry])[0], dtype=np.float32), err

        return compute

    def _remember(self, method: str, values: np.ndarray, err: Optional[float]) -> _Map:
        """Caches ``method``'s map of the current key (a map that is zero up to rounding warns once, here)."""
        key = self._key(method)
        result = _Map(values, err, self._zero_note(values, method))
        if result.note:
            warnings.warn(f"the {METHOD_TEXT.get(method, method)} map of {self._explained()} "
                          f"is drawn without colours: {result.note}", SaliencyWarning, stacklevel=3)
        self._cache[key] = result
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return result

    def _background_work(self) -> list[Step]:
        """The Jacobian the browser asked for and the maps on screen (``method``, the ``methods`` row)
        not computed yet, as steps a worker may run (see ``GuardedWidget``); a gradient or input ×
        gradient map that the Jacobian gives is left to the update."""
        steps = []
        jac_key = (self.index, self.output, self.entry)
        if self._want_jacobian and jac_key not in self._jacobians:
            steps.append(kept(self._jacobian_job(self.index, self.output),
                               lambda jac: self._jacobians.__setitem__(jac_key, jac)))
        by_jacobian = self._jacobians.get(jac_key) is not None or (self._want_jacobian and self._jacobian_fits())
        for method in dict.fromkeys([self.method, *self.methods]):
            if self._key(method) in self._cache or (method in LOCAL_METHODS and by_jacobian):
                continue
            key = self._key(method)
            steps.append(kept(self._map_job(method),
                               lambda found, m=method, k=key: self._key(m) == k and self._remember(m, *found)))
        return steps

    def _zero_note(self, values: np.ndarray, method: Optional[str] = None) -> Optional[str]:
        """Why ``values`` (one sample's map by ``method``, default the current one) is zero up to rounding on
        screen, or None (:mod:`..zero`)."""
        method = method or self.method
        info = self._layout_info
        reduced = info.channel_axis is not None and values.shape == info.sample_shape
        shown = None
        if info.kind == "text" and self._token_text is not None:
            shown = ~np.asarray(self._token_text[1][self.index], dtype=bool)
        relu = bool(self._options(method).get("relu", True))
        return zero_reason(values, method=method, summed_axis=info.channel_axis if reduced else None,
                           axis_name="embedding" if info.kind == "text" else "channel", relu=relu, shown=shown)

    def _options(self, method: Optional[str] = None) -> dict[str, Any]:
        """``method``'s (default the current one's) options as ``method_kwargs`` gives them."""
        return self._method_kwargs.get(method or self.method, {})

    def _nonnegative(self, method: Optional[str] = None) -> bool:
        """Whether ``method``'s (default the current one's) maps are ≥ 0 by construction (Grad-CAM with its ReLU)."""
        method = method or self.method
        return nonnegative(method, self._options(method))

    def _shown(self, values: np.ndarray) -> np.ndarray:
        """One sample's map as displayed (channels summed; a Grad-CAM map already is)."""
        if values.shape == self._layout_info.display_shape:
            return np.asarray(values, dtype=np.float32)
        return self._layout_info.reduce(values)

    def _display_values(self) -> np.ndarray:
        return self._shown(self._values)

    # ------------------------------------------------------------- syncing
    def _send_sample(self) -> None:
        """Scores, input, background image and (once the browser asked for it) the Jacobian of
        sample ``index``."""
        sample = self._x[self.index]
        self._tokens = self._tokens_wire()
        self._scores = self._scores_wire()
        self._input = to_wire(self._layout_info.time_first(sample), index=self.index)
        if self._layout_info.kind == "image":
            self._image = to_wire(self._picture(self.index), "uint8", index=self.index,
                                  caption=self._picture_caption(self.index))
        self._send_jacobian()

    def _send_jacobian(self) -> None:
        jac = self._jacobian_of(self.index, self.output) if self._want_jacobian else None
        self._jacobian = None if jac is None else to_wire(self._layout_info.time_first(jac), index=self.index,
                                                          output=self.output)

    def prefetch(self) -> None:
        """Computes and sends the current sample's Jacobian now (the browser asks for it after
        the first map is drawn), so gradient and input×gradient switch targets in the browser."""
        self._want_jacobian = True

    def _send_attribution(self) -> None:
        """Compute the current map; send it unless the browser derives it from the Jacobian. The wire
        map is tagged with the request it answers (the key and the browser's ``_request``)."""
        values, err, note = self._lookup()
        local = self.method in LOCAL_METHODS and self._jacobian is not None
        if not local:
            self._attribution = to_wire(
                self._shown(values), target=self.target, contrast=self.contrast, index=self.index, method=self.method,
                output=self.output, cam_layer=self.cam_layer, request=self._request,
                completeness_error=err, note=note or "", nonnegative=self._nonnegative(),
            )
        self._send_method_maps()
        self._send_randomization_maps()
        self._refresh_checks()

    def _send_method_maps(self) -> None:
        """The methods row's maps the browser cannot derive from the Jacobian, in one update tagged with the
        key they answer (``_method_maps``); not sent again while that key and the row are unchanged."""
        local = self._jacobian is not None
        sent = [m for m in self.methods if not (local and m in LOCAL_METHODS)]
        key = (self._key()[:3], self.output, self.cam_layer, self.entry, tuple(sent))
        if not sent or key == self._method_maps_key:
            return
        found = [self._lookup(m) for m in sent]
        self._method_maps = to_wire(
            np.stack([self._shown(f.values) for f in found]), methods=sent, target=self.target,
            contrast=self.contrast, index=self.index, output=self.output, cam_layer=self.cam_layer,
            notes=[f.note or "" for f in found], nonnegative=[self._nonnegative(m) for m in sent],
            completeness_error=[f.error for f in found],
        )
        self._method_maps_key = key

    def _show_entry(self) -> None:
        self._send_sample()
        self._send_attribution()

    def _after_revert(self) -> None:
        """After a failed request was undone: the map of the restored key answers the browser's
        latest request (else a browser waiting for the failed one would wait for ever)."""
        self._send_attribution()

    # ----------------------------------------------------------- observers
    @t.validate("target")
    def _check_target(self, proposal: Any) -> int:
        i = int(proposal["value"])
        if not 0 <= i < self.n_outputs:
            self._invalid(f"target must be a flat output index in 0..{self.n_outputs - 1}; got {i}")
        if i == self.contrast:
            self._invalid(f"target {i} is the contrast: score(target) − score(contrast) would be 0 and the map zero; "
                          "set contrast to another output (or None) first")
        return i

    @t.validate("contrast")
    def _check_contrast(self, proposal: Any) -> Optional[int]:
        c = proposal["value"]
        if c is None:
            return None
        if not 0 <= c < self.n_outputs:
            self._invalid(f"contrast must be None or a flat output index in 0..{self.n_outputs - 1}; got {c}")
        if c == self.target:
            self._invalid(f"contrast {c} is the target: score(target) − score(contrast) would be 0 and the map zero; "
                          "contrast with another output, or None")
        return int(c)

    @t.validate("method")
    def _check_method(self, proposal: Any) -> str:
        if proposal["value"] not in METHODS:
            self._invalid(f"method must be one of {', '.join(map(repr, METHODS))}; got {proposal['value']!r}")
        if self.methods and proposal["value"] not in self.methods:
            self._invalid(f"method must be one of the methods row, {', '.join(map(repr, self.methods))}; got "
                          f"{proposal['value']!r} (set methods to change the row)")
        return proposal["value"]

    @t.validate("methods")
    def _check_methods(self, proposal: Any) -> list[str]:
        methods = list(proposal["value"])
        bad = [m for m in methods if m not in self._methods]
        if bad:
            self._invalid(f"methods must be a list of {', '.join(map(repr, self._methods))}; got {bad[0]!r}")
        if len(set(methods)) < len(methods):
            self._invalid(f"methods lists a method twice: {methods!r}")
        return methods

    @t.validate("view")
    def _check_view(self, proposal: Any) -> str:
        if proposal["value"] not in VIEWS:
            self._invalid(f"layout (view) must be one of {', '.join(map(repr, VIEWS))}; got {proposal['value']!r}")
        return proposal["value"]

    @t.observe("methods")
    def _on_methods(self, change: dict[str, Any]) -> None:
        def update() -> None:
            if self.methods and self.method not in self.methods:
                self.method = self.methods[0]
            self._send_method_maps()

        self._guarded(change, update)

    @t.validate("opacity")
    def _check_opacity(self, proposal: Any) -> float:
        value = float(proposal["value"])
        if not 0 <= value <= 1:
            self._invalid(f"opacity must be in [0, 1] (0: the image only, 1: the map only); got {value}")
        return value

    @t.validate("cam_layer")
    def _check_cam_layer(self, proposal: Any) -> str:
        if proposal["value"] and proposal["value"] not in self._cam_layers:
            offered = ", ".join(map(repr, self._cam_layers)) or "none (this model has no spatial layer)"
            self._invalid(f"cam_layer must be one of {offered}; got {proposal['value']!r}")
        return proposal["value"]

    @t.observe("target", "contrast", "method", "cam_layer")
    def _on_target(self, change: dict[str, Any]) -> None:
        self._guarded(change, self._send_attribution)

    @t.observe("_want_jacobian")
    def _on_want_jacobian(self, change: dict[str, Any]) -> None:
        def update() -> None:
            self._send_jacobian()
            self._refresh_checks()

        self._guarded(change, update)

    @t.observe("_check_request")
    def _on_check_request(self, change: dict[str, Any]) -> None:
        name = change["new"].get("name")
        if not self._ready or not name:
            return
        try:
            with self._watched():  # the views show its progress
                self.run_check(name)
        except Exception as exc:
            self._show_error(describe(exc))
            raise
        self._show_error("")

    def _html_variants(self) -> dict[str, dict[Any, dict[str, Any]]]:
        """The offline page answers the browser's Jacobian request with the current sample's."""
        jac = self._jacobian_of(self.index, self.output)
        if jac is None:
            return {}
        wire = to_wire(self._layout_info.time_first(jac), index=self.index, output=self.output)
        return {"_want_jacobian": {"true": {"_jacobian": wire}}}

    def _offline_state(self) -> dict[str, Any]:
        """An offline page offers no on-demand check (they run the model); its note names them."""
        removed = ["the deletion / insertion and randomization checks"] if self._on_demand else []
        return {"_on_demand": [], "_page_needs": removed}

    @t.observe("index", "output")
    def _on_sample(self, change: dict[str, Any]) -> None:
        def update() -> None:
            if self._want_jacobian:
                self._jacobian_of(self.index, self.output)
            self._lookup()  # compute before assigning anything, so a failure changes nothing
            self._send_sample()
            self._send_attribution()

        self._guarded(change, update)


def _local_maps(jac: np.ndarray, method: str, sample: np.ndarray, contrast: Optional[int],
                rows: Union[int, slice] = slice(None)) -> np.ndarray:
    """The maps of outputs ``rows`` (default all: ``(n_outputs, *sample_shape)``) from one sample's Jacobian,
    as the browser derives them (float32): each row minus the ``contrast``'s row, times the input for
    input×gradient."""
    maps = jac[rows] if contrast is None else jac[rows] - jac[contrast]
    return maps if method == "gradient" else maps * sample.astype(np.float32)


def _layer_label(info: LayerInfo) -> str:
    """``"3 · Conv2d · 16×4×4"``: a layer as the Grad-CAM picker lists it (per-sample output shape)."""
    shape = "×".join("?" if n is None else str(n) for n in info.output_shape or ())
    return " · ".join(part for part in (info.name, info.type, shape) if part)
