"""``DatasetMap``: a whole dataset's attributions as a gallery to filter, sort and open."""

from __future__ import annotations

import base64
import io
from typing import Any, Optional, Sequence

import numpy as np
import traitlets as t

from .. import colors
from ..attribution import predict
from ..dataset.job import class_ids
from ..dataset.result import DatasetAttribution
from ..errors import SaliencyError, describe
from ..export import METHOD_TEXT
from ..gradcam import nonnegative
from ..inputs import background_image, infer_layout
from ..transport import ARRAY_TRAIT, to_wire, wire_nbytes
from . import _gallery as gallery
from ._base import feature_labels, layout_wire, output_labels
from ._collection import collection_deferred
from ._export import REPR_DPI, slug
from ._guarded import GuardedWidget, bundle
from ..frameworks import accepts_framework

#: Samples per page of thumbnails: the browser asks for pages of this many positions of the gallery.
PAGE = 64
#: Most samples one request may ask for.
MAX_REQUEST = 4 * PAGE
#: Samples in the static PNG of the MIME bundle (nbconvert, GitHub).
STATIC_SAMPLES = 12
#: Most bytes of opened maps a ``to_html`` page embeds (for the samples of its first page).
HTML_BUDGET_BYTES = 2 << 20


class DatasetMap(GuardedWidget):
    """A gallery of a dataset's samples with their attributions, from an ``attribute_dataset`` result.

    ``sw.DatasetMap(result, model, x)`` (or ``result.widget(model, x)``): ``x`` is the data the run
    attributed (an array, a dict of arrays, a dataset of samples or a re-iterable source of batches)
    and is read only for the thumbnails, the opened sample and the model's scores. On top, the
    mean map of every class on one colour scale (``result.mean_by_class``; click one to filter);
    below, every sample as a thumbnail of its input and its map, its predicted class against its
    true class, mistakes marked. The gallery is virtualised: only the thumbnails in view are drawn,
    and the browser asks the kernel for them a page at a time as it scrolls (8-bit pictures and
    colour indices, kept in a bounded cache), so 10,000 samples scroll as smoothly as 100.
    Each thumbnail's map is on its own colour scale (the rule of ``sign`` and ``outlier_perc``).

    Filters: ``klass`` (true class), ``predicted`` (predicted class), ``mistakes_only``; ``sort``:
    ``"index"`` (the data's order), ``"confidence"`` (the top softmax probability of the model's
    scores), ``"margin"`` (top minus second probability) or ``"magnitude"`` (mean |attribution|),
    largest first unless ``ascending``. ``shown`` holds the listed sample indices in order.
    ``selected`` (a sample index, or None) opens that sample's map below the gallery, drawn as
    ``SaliencyMap`` draws it; ``attribution`` is that stored map (what ``sw.saliency`` gives for the
    sample with the run's method and target). ``labels`` names the classes (one per output),
    ``feature_names`` the features of vector and sequence inputs; ``head=``/``fixed=`` are those
    of the run (for the model's scores).
    """

    _esm = bundle("dataset_map.js")

    #: Only samples of this true class (None: all).
    klass = t.Int(None, allow_none=True).tag(sync=True)
    #: Only samples predicted as this class (None: all).
    predicted = t.Int(None, allow_none=True).tag(sync=True)
    #: Only samples whose predicted class is not their true class.
    mistakes_only = t.Bool(False).tag(sync=True)
    #: ``"index"``, ``"confidence"``, ``"margin"`` or ``"magnitude"``.
    sort = t.Unicode("index").tag(sync=True)
    #: Sort smallest first instead of largest first.
    ascending = t.Bool(False).tag(sync=True)
    #: The sample whose map is open below the gallery (an index into the data), or None.
    selected = t.Int(None, allow_none=True).tag(sync=True)
    #: Colour scale: ``"all"``, ``"positive"``, ``"negative"`` or ``"absolute_value"``.
    sign = t.Unicode("all").tag(sync=True)
    #: Percent of the largest magnitudes that saturate the colour scale.
    outlier_perc = t.Float(2.0).tag(sync=True)
    #: Keep the opened map's colour scale at ``scale_max`` from sample to sample.
    lock_scale = t.Bool(False).tag(sync=True)
    #: Magnitude where the opened map's colours saturate while ``lock_scale`` is on.
    scale_max = t.Float(0.0).tag(sync=True)

    _n_total = t.Int(0).tag(sync=True)
    _method = t.Unicode("").tag(sync=True)
    _layout = t.Dict().tag(sync=True)
    _luts = t.Dict().tag(**ARRAY_TRAIT)
    _labels = t.List(t.Unicode()).tag(sync=True)
    _feature_names = t.List(t.Unicode()).tag(sync=True)
    _has_labels = t.Bool(False).tag(sync=True)
    _nonnegative = t.Bool(False).tag(sync=True)
    #: Classes offered by the filters: ``{"true": [...], "predicted": [...]}``.
    _classes = t.Dict().tag(sync=True)
    #: Thumbnail geometry and the colour key their indices were made with: ``{"rows", "cols",
    #: "channels" (0: no input picture), "key", "page"}``.
    _thumb = t.Dict().tag(sync=True)
    _shown = t.Dict().tag(**ARRAY_TRAIT)
    _first_page = t.Dict().tag(**ARRAY_TRAIT)
    _means = t.Dict().tag(**ARRAY_TRAIT)
    _detail = t.Dict(allow_none=True, default_value=None).tag(**ARRAY_TRAIT)

    @collection_deferred
    @accepts_framework
    def __init__(
        self,
        result: DatasetAttribution,
        model: Any,
        x: Any,
        *,
        labels: Optional[Sequence[Any]] = None,
        feature_names: Optional[Sequence[Any]] = None,
        kind: Optional[str] = None,
        entry: Any = None,
        by: Optional[str] = None,
        head: Any = None,
        fixed: Any = None,
        klass: Optional[int] = None,
        predicted: Optional[int] = None,
        mistakes_only: bool = False,
        sort: str = "index",
        ascending: bool = False,
        selected: Optional[int] = None,
        sign: str = "all",
        outlier_perc: float = 2.0,
    ) -> None:
        if not isinstance(result, DatasetAttribution):
            raise SaliencyError(f"DatasetMap shows an attribute_dataset result; got a {type(result).__name__}")
        if len(result) == 0:
            raise SaliencyError("the result holds no finished rows yet: resume the run first")
        self._result, self._model, self._engine_kw = result, model, {"head": head, "fixed": fixed}
        self._entry = self._drawn_entry(entry)
        self._values = result._entry_values(self._entry)
        self._info = infer_layout(self._values.shape[1:], result.framework, kind)
        self._reader = self._open(x)
        #: Whether inputs are drawn: the maps have the shape of the drawn entry (not with ``layer=``).
        self._draws_input = self._reader.rows([0]).shape[1:] == self._values.shape[1:]
        self._predictions = np.asarray(result.predictions)
        self._true = None if result.labels is None else class_ids(result.labels)
        self._keys: dict[str, np.ndarray] = {}
        self._order = np.arange(len(result))
        self._by = by
        out_shape = tuple(result.output_shape)
        rows, cols = gallery.thumb_shape(self._info)
        super().__init__(
            _n_total=len(result),
            _method=result.method,
            _layout=layout_wire(self._info),
            _luts={s: to_wire(colors.sign_lut(s), "uint8") for s in colors.SIGNS},
            _labels=output_labels(out_shape, labels),
            _feature_names=feature_labels(self._info, feature_names),
            _has_labels=self._true is not None,
            _nonnegative=nonnegative(result.method, {}),
            _classes={"true": [] if self._true is None else sorted(int(c) for c in np.unique(self._true)),
                      "predicted": sorted(int(c) for c in np.unique(self._predictions))},
            _thumb={"rows": rows, "cols": cols, "page": PAGE,
                    "channels": gallery.input_channels(self._info) if self._draws_input else 0},
            sign=sign,
            outlier_perc=outlier_perc,
        )
        self._means_data = self._means_display()
        means = dict(self._means_data)
        self._means = to_wire(means.pop("display"), **means)
        with self.hold_sync():
            self.klass, self.predicted, self.mistakes_only = klass, predicted, mistakes_only
            self.sort, self.ascending, self.selected = sort, ascending, selected
            self._refresh_order()
            self._send_detail()
        self._ready = True

    # ------------------------------------------------------------- results
    @property
    def shown(self) -> np.ndarray:
        """The sample indices the gallery lists, in its order (after the filters and the sort)."""
        return self._order.copy()

    @property
    def attribution(self) -> Optional[np.ndarray]:
        """The stored map of sample ``selected`` (float32, one sample's shape), or None."""
        if self.selected is None:
            return None
        return np.asarray(self._values[self.selected], dtype=np.float32)

    @property
    def n_samples(self) -> int:
        """Number of samples in the result (finished rows)."""
        return len(self._result)

    def thumbnails(self, indices: Sequence[int]) -> tuple[dict[str, Any], list[bytes]]:
        """The page of thumbnails of samples ``indices``: ``(metadata, [map indices, input pictures])``
        as the browser receives it (uint8 LUT indices ``(k, rows, cols)`` at the current colour key,
        uint8 pictures ``(k, rows, cols, channels)`` when the input is drawn)."""
        idx = self._checked_indices(indices)
        order = np.argsort(idx, kind="stable")
        ordered = np.empty_like(idx)
        ordered[order] = np.arange(len(idx))
        values = np.asarray(self._values[idx[order]], dtype=np.float32)[ordered]  # memmaps read in index order
        display = self._info.reduce(values) if len(idx) else np.zeros((0,) + self._info.display_shape, np.float32)
        maps = gallery.map_thumbnails(display, self._info.kind, self._thumb_sign(), self.outlier_perc)
        meta: dict[str, Any] = {
            "indices": [int(i) for i in idx], "key": self._thumb_key(),
            "pred": [int(self._predictions[i]) for i in idx],
            "true": None if self._true is None else [int(self._true[i]) for i in idx],
            "maps": {"shape": list(maps.shape), "dtype": "uint8"}, "inputs": None,
        }
        buffers = [maps.tobytes()]
        if self._draws_input and len(idx):
            pictures = gallery.input_thumbnails(self._reader.rows(idx), self._info)
            meta["inputs"] = {"shape": list(pictures.shape), "dtype": "uint8"}
            buffers.append(pictures.tobytes())
        return meta, buffers

    def to_figure(self, n: int = 24, **kw: Any) -> Any:
        """The class means on one colour scale and the first ``n`` samples listed (input and map, each
        map on its own scale, predicted against true class) as a matplotlib Figure."""
        from .gallery_figure import gallery_figure

        shown = self._order[: max(0, int(n))]
        detail = [self._sample_view(int(i)) for i in shown]
        return gallery_figure(
            self._means_data, self._info.kind, detail, name=self._class_name, sign=self._thumb_sign(),
            outlier_perc=self.outlier_perc,
            title=f"{METHOD_TEXT.get(self._result.method, self._result.method).capitalize()} maps of {self.n_samples:,} "
                  "samples",
            subtitle=self._filter_text(), nonnegative=self._nonnegative and self.sign == "all", **kw,
        )

    def _static_png(self) -> str:
        """The PNG of the MIME bundle (made on every display): the figure with its first 12 samples."""
        buf = io.BytesIO()
        self.to_figure(n=STATIC_SAMPLES).savefig(buf, format="png", dpi=REPR_DPI)
        return base64.b64encode(buf.getvalue()).decode("ascii")

    def export_name(self) -> str:
        """``dataset-map-<method>``, the name of the browser's downloads."""
        return f"dataset-map-{slug(self._result.method)}"

    # ------------------------------------------------------------ reading
    def _drawn_entry(self, entry: Any) -> Any:
        """The key of ``x``'s entry the maps belong to (a structured run's first attributed one by default);
        None when the run stored one array (a single-array ``x``, or ``layer=``)."""
        values = self._result.values
        if isinstance(values, np.ndarray):
            return None
        structure = self._result.structure
        return entry if entry is not None else next(k for k, v in zip(structure.keys, structure.leaves(values))
                                                    if v is not None)

    def _open(self, x: Any) -> gallery.SampleReader:
        """A reader of ``x`` at the drawn entry, checked against the result's length."""
        position = 0 if self._entry is None else self._result.structure.keys.index(self._entry)
        reader = gallery.SampleReader(x, position)
        length = reader.length()
        if length is not None and length < self.n_samples:
            raise SaliencyError(f"x has {length} samples but the result holds {self.n_samples}; pass the data "
                                "the run attributed")
        return reader

    def _scores(self) -> np.ndarray:
        """The model's logits of every sample, flat ``(N, outputs)``, computed batch by batch."""
        n, parts, rows = self.n_samples, [], 0
        for xb in self._reader.batches():
            scores = predict(self._model, xb, output="logits", **self._engine_kw)
            parts.append(scores.reshape(len(scores), -1))
            rows += len(scores)
            if rows >= n:
                break
        if rows < n:
            raise SaliencyError(f"x has {rows} samples but the result holds {n}; pass the data the run attributed")
        return np.concatenate(parts)[:n]

    def _sort_key(self, sort: str) -> Optional[np.ndarray]:
        if sort == "index":
            return None
        if sort not in self._keys:
            if sort == "magnitude":
                self._keys[sort] = gallery.magnitudes(self._values)
            else:
                self._keys["confidence"], self._keys["margin"] = gallery.confidence_and_margin(self._scores())
        return self._keys[sort]

    def _checked_indices(self, indices: Sequence[int]) -> np.ndarray:
        idx = np.asarray(list(indices), dtype=np.int64).reshape(-1)
        if len(idx) > MAX_REQUEST:
            raise SaliencyError(f"a page asks for at most {MAX_REQUEST} samples; got {len(idx)}")
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n_samples):
            raise SaliencyError(f"sample indices must be in 0..{self.n_samples - 1}")
        return idx

    # --------------------------------------------------------------- views
    def _thumb_sign(self) -> str:
        return colors.shown_sign(self.sign, self._nonnegative)

    def _thumb_key(self) -> str:
        """What the thumbnails' colour indices depend on (the browser drops its cache when it changes)."""
        return f"{self._thumb_sign()}|{self.outlier_perc:g}"

    def _class_name(self, c: int) -> str:
        """A class as the widget names it (``labels=``, else its index)."""
        return self._labels[c] if 0 <= c < len(self._labels) else str(c)

    def _filter_text(self) -> str:
        """``"130 of 10,000 samples · true “3” · mistakes only · by confidence ↓"``."""
        name = self._class_name
        listed, total = len(self._order), self.n_samples
        parts = [f"{listed:,} of {total:,} samples" if listed < total else f"all {total:,} samples"]
        if self.klass is not None:
            parts.append(f"true “{name(self.klass)}”")
        if self.predicted is not None:
            parts.append(f"predicted “{name(self.predicted)}”")
        if self.mistakes_only:
            parts.append("mistakes only")
        if self.sort != "index":
            parts.append(f"by {self.sort} {'↑' if self.ascending else '↓'}")
        return " · ".join(parts)

    def _means_display(self) -> dict[str, Any]:
        """The class means as displayed, with their classes, counts and grouping (read once: one pass over
        the results in chunks of the memory budget)."""
        by = self._result._grouping(self._by)
        means = self._result.mean_by_class(by, entry=self._entry)
        counts = self._result.class_counts(by)
        display = np.stack([self._info.reduce(m) for m in means.values()]).astype(np.float32)
        return {"by": by, "classes": list(means), "counts": [counts[c] for c in means], "display": display}

    def _sample_view(self, i: int) -> dict[str, Any]:
        """One sample as drawn: its display map, picture or input values, predicted and true class."""
        display = self._info.reduce(np.asarray(self._values[i], dtype=np.float32))
        sample = self._reader.rows([i])[0] if self._draws_input else None
        picture = background_image(sample, self._info) if sample is not None and self._info.kind == "image" else None
        inputs = None
        if sample is not None and self._info.kind in ("vector", "sequence"):
            inputs = self._info.time_first(np.asarray(sample, dtype=np.float32)).reshape(self._info.display_shape)
        return {"index": i, "display": display, "picture": picture, "input": inputs,
                "pred": int(self._predictions[i]), "true": None if self._true is None else int(self._true[i])}

    def _detail_wire(self, i: int) -> dict[str, Any]:
        view = self._sample_view(i)
        return {
            "index": i, "pred": view["pred"], "true": view["true"], "map": to_wire(view["display"]),
            "picture": None if view["picture"] is None else to_wire(view["picture"], "uint8"),
            "input": None if view["input"] is None else to_wire(view["input"]),
        }

    # ------------------------------------------------------------- syncing
    def _refresh_order(self) -> None:
        """Recomputes ``shown`` and sends it with the first page of thumbnails."""
        self._order = gallery.shown_order(
            self._true, self._predictions, self._sort_key(self.sort), klass=self.klass, prediction=self.predicted,
            mistakes_only=self.mistakes_only, ascending=self.ascending,
        )
        self._shown = to_wire(self._order, "int32", text=self._filter_text())
        self._send_first_page()

    def _send_first_page(self) -> None:
        meta, buffers = self.thumbnails(self._order[:PAGE])
        page = dict(meta)
        page["maps"] = {**meta["maps"], "data": memoryview(buffers[0])}
        if meta["inputs"] is not None:
            page["inputs"] = {**meta["inputs"], "data": memoryview(buffers[1])}
        self._thumb = {**self._thumb, "key": self._thumb_key()}
        self._first_page = page

    def _send_detail(self) -> None:
        self._detail = None if self.selected is None else self._detail_wire(self.selected)

    def _on_custom_message(self, widget: Any, content: Any, buffers: Any) -> None:
        """Answers the browser's ``{"type": "thumbs", "id", "indices"}`` with a page of thumbnails
        (``{"type": "thumbs", "id", ...metadata}`` and two buffers), or ``error``; other messages
        (exports) as every widget does."""
        if not (isinstance(content, dict) and content.get("type") == "thumbs"):
            return super()._on_custom_message(widget, content, buffers)
        try:
            meta, data = self.thumbnails(content.get("indices") or [])
        except Exception as exc:  # shown in the widget; the kernel keeps running
            self._show_error(describe(exc))
            self.send({"type": "thumbs", "id": content.get("id"), "error": describe(exc)})
            return
        self.send({"type": "thumbs", "id": content.get("id"), **meta}, data)
        self._show_error("")

    def _html_variants(self) -> dict[str, dict[Any, dict[str, Any]]]:
        """The opened map of every sample of the first page (up to ``HTML_BUDGET_BYTES``), so the offline
        page opens them without a kernel."""
        variants: dict[Any, dict[str, Any]] = {}
        total = 0
        for i in self._order[:PAGE]:
            wire = self._detail_wire(int(i))
            total += sum(wire_nbytes(w) for w in (wire["map"], wire["picture"], wire["input"]) if w)
            if total > HTML_BUDGET_BYTES:
                break
            variants[str(int(i))] = {"_detail": wire}
        return {"selected": variants}

    # ---------------------------------------------------------- validation
    def _check_class(self, name: str, value: Optional[int], offered: list[int]) -> Optional[int]:
        if value is None:
            return None
        if int(value) not in offered:
            self._invalid(f"{name} must be None or one of the classes {offered}; got {value}")
        return int(value)

    @t.validate("klass")
    def _valid_klass(self, proposal: Any) -> Optional[int]:
        if proposal["value"] is not None and self._true is None:
            self._invalid("klass filters by true class, but the run had no labels: give attribute_dataset (x, y) "
                          "batches or labels=; predicted= filters by predicted class")
        return self._check_class("klass", proposal["value"], self._classes["true"])

    @t.validate("predicted")
    def _valid_predicted(self, proposal: Any) -> Optional[int]:
        return self._check_class("predicted", proposal["value"], list(range(len(self._labels))))

    @t.validate("mistakes_only")
    def _valid_mistakes(self, proposal: Any) -> bool:
        if proposal["value"] and self._true is None:
            self._invalid("mistakes_only needs true classes, but the run had no labels: give attribute_dataset "
                          "(x, y) batches or labels=")
        return bool(proposal["value"])

    @t.validate("sort")
    def _valid_sort(self, proposal: Any) -> str:
        if proposal["value"] not in gallery.SORTS:
            self._invalid(f"sort must be one of {', '.join(map(repr, gallery.SORTS))}; got {proposal['value']!r}")
        return proposal["value"]

    @t.validate("selected")
    def _valid_selected(self, proposal: Any) -> Optional[int]:
        i = proposal["value"]
        if i is not None and not 0 <= int(i) < self.n_samples:
            self._invalid(f"selected must be None or a sample index in 0..{self.n_samples - 1}; got {i}")
        return None if i is None else int(i)

    @t.validate("sign")
    def _valid_sign(self, proposal: Any) -> str:
        if proposal["value"] not in colors.SIGNS:
            self._invalid(f"sign must be one of {', '.join(map(repr, colors.SIGNS))}; got {proposal['value']!r}")
        return proposal["value"]

    @t.validate("outlier_perc")
    def _valid_outlier_perc(self, proposal: Any) -> float:
        p = float(proposal["value"])
        if not 0 <= p < 100:
            self._invalid(f"outlier_perc must be in [0, 100); got {p}")
        return p

    @t.validate("scale_max")
    def _valid_scale_max(self, proposal: Any) -> float:
        m = float(proposal["value"])
        if not (np.isfinite(m) and m >= 0):
            self._invalid(f"scale_max must be a finite magnitude ≥ 0 (where colours saturate; 0 unlocks); got {m}")
        return m

    # ----------------------------------------------------------- observers
    @t.observe("klass", "predicted", "mistakes_only", "sort", "ascending")
    def _on_filter(self, change: dict[str, Any]) -> None:
        self._guarded(change, self._refresh_order)

    @t.observe("sign", "outlier_perc")
    def _on_colours(self, change: dict[str, Any]) -> None:
        self._guarded(change, self._send_first_page)

    @t.observe("selected")
    def _on_selected(self, change: dict[str, Any]) -> None:
        self._guarded(change, self._send_detail)

    @t.observe("lock_scale")
    def _on_lock(self, change: dict[str, Any]) -> None:
        if not self._ready:
            return
        if change["new"] and self.scale_max <= 0 and self.selected is not None:
            display = self._info.reduce(self.attribution)
            self.scale_max = colors.scale_max(display, self._thumb_sign(), self.outlier_perc)
        elif not change["new"]:
            self.scale_max = 0.0
