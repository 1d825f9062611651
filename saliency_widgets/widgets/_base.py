"""State shared by the widgets that show one sample of a batch.

Heavy work is delegated to the functional core; this module only keeps
traitlets in sync with it. Wire arrays are built with :mod:`..transport`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional, Sequence

import numpy as np
import traitlets as t

from .. import colors
from ..attribution import OUTPUTS, layer_output, predict
from ..errors import SaliencyError
from ..export import Scale
from ..inputs import Layout, infer_layout, layer_kind
from ..structure import InputSpec, flatten, select
from ..transport import ARRAY_TRAIT, to_wire
from ._guarded import GuardedWidget



def output_labels(out_shape: tuple[int, ...], labels: Optional[Sequence[Any]]) -> list[str]:
    """One display label per flat output index (user labels as plain text)."""
    count = int(np.prod(out_shape, dtype=np.int64))
    if labels is None:
        if len(out_shape) <= 1:
            return [str(i) for i in range(count)]
        return [str(tuple(int(j) for j in np.unravel_index(i, out_shape))) for i in range(count)]
    names = [str(label) for label in labels]
    if len(names) != count:
        raise SaliencyError(f"labels= has {len(names)} entries but the model has {count} outputs")
    return names


def feature_labels(layout: Layout, feature_names: Optional[Sequence[Any]]) -> list[str]:
    """Names of the vector entries or of the sequence features (empty for images)."""
    if feature_names is None:
        return []
    names = [str(n) for n in feature_names]
    expected = {"vector": layout.display_shape[0], "sequence": layout.display_shape[-1]}.get(layout.kind)
    if expected is None:
        raise SaliencyError("feature_names= applies to vector and sequence inputs, not images")
    if len(names) != expected:
        raise SaliencyError(f"feature_names= has {len(names)} entries but the input has {expected} features")
    return names


def token_texts(tokens: Any, spec: InputSpec, entries: list[np.ndarray], shape: tuple[int, ...]
                ) -> tuple[list[list[str]], list[list[bool]]]:
    """``(token strings, hidden flags)`` per sample for the text view.

    ``tokens``: one list of strings per sample, a tokenizer (anything with
    ``convert_ids_to_tokens``; the ids come from ``x["input_ids"]``), or None
    (positions are numbered). Positions whose ``x["attention_mask"]`` is 0 are hidden.
    """
    batch, length = shape
    named = dict(zip(spec.keys, entries)) if spec.kind == "dict" else {}
    if tokens is None:
        text = [[f"#{i}" for i in range(length)] for _ in range(batch)]
    elif hasattr(tokens, "convert_ids_to_tokens"):
        if "input_ids" not in named:
            raise SaliencyError("tokens= a tokenizer needs x['input_ids'] to read the tokens from")
        text = [list(tokens.convert_ids_to_tokens([int(i) for i in row])) for row in named["input_ids"]]
    else:
        text = [[str(t) for t in row] for row in tokens]
    if len(text) != batch or any(len(row) != length for row in text):
        raise SaliencyError(f"tokens= must give {length} tokens for each of the {batch} samples")
    mask = named.get("attention_mask")
    hidden = [[False] * length for _ in range(batch)] if mask is None else (np.asarray(mask) == 0).tolist()
    return text, hidden


def layout_wire(layout: Layout) -> dict[str, Any]:
    """A layout as the browser reads it (``_layout``): a sequence's samples arrive time first
    (``Layout.time_first``), so the browser's sample shape is its display shape."""
    return {
        "kind": layout.kind,
        "sample_shape": list(layout.display_shape if layout.kind == "sequence" else layout.sample_shape),
        "display_shape": list(layout.display_shape),
        "channel_axis": layout.channel_axis,
    }


class SampleWidget(GuardedWidget):
    """Base of the widgets: one model, one batch ``x``, one displayed sample ``index``."""

    #: Which sample of the batch is shown.
    index = t.Int(0).tag(sync=True)
    #: The entry of a tuple/list/dict ``x`` that is drawn (a key of ``x``, one of ``entries``); None for
    #: one array or with ``layer=``.
    entry = t.Union([t.Int(), t.Unicode()], allow_none=True, default_value=None).tag(sync=True)
    #: ``"logits"`` or ``"probabilities"`` (see ``sw.saliency``).
    output = t.Unicode("logits").tag(sync=True)
    #: Colour scale: ``"all"``, ``"positive"``, ``"negative"`` or ``"absolute_value"``.
    sign = t.Unicode("all").tag(sync=True)
    #: Percent of the largest magnitudes that saturate the colour scale.
    outlier_perc = t.Float(2.0).tag(sync=True)
    #: Keep the colour scale fixed at ``scale_max`` across targets, samples and methods.
    lock_scale = t.Bool(False).tag(sync=True)
    #: Magnitude where colours saturate while ``lock_scale`` is on (set on locking).
    scale_max = t.Float(0.0).tag(sync=True)

    _n_samples = t.Int(1).tag(sync=True)
    _layout = t.Dict().tag(sync=True)
    _luts = t.Dict().tag(**ARRAY_TRAIT)
    _labels = t.List(t.Unicode()).tag(sync=True)
    _out_shape = t.List(t.Int()).tag(sync=True)
    _feature_names = t.List(t.Unicode()).tag(sync=True)
    _scores = t.Dict().tag(**ARRAY_TRAIT)

    def __init__(
        self,
        model: Any,
        x: Any,
        *,
        kind: Optional[str],
        labels: Optional[Sequence[Any]],
        feature_names: Optional[Sequence[Any]],
        head: Any = None,
        layer: Any = None,
        fixed: Any = None,
        tokens: Any = None,
        entry: Any = None,
        **state: Any,
    ) -> None:
        from ..backends import get_backend

        self._model = model
        self._backend = get_backend(model)
        self._spec, self._entries = flatten(x, self._backend.to_numpy, fixed)
        self._engine_kw = {"head": head, "layer": layer, "fixed": fixed}
        self._kind, self._feature_names_arg = kind, feature_names
        if kind is None and layer is not None:
            kind = layer_kind(self._backend.find_layer(layer).obj)
        entry = self._first_entry(entry)
        batch = self._drawn_batch(entry)
        self._x = batch
        self._layout_info = infer_layout(batch.shape[1:], self._backend.framework, kind)
        self._token_text = token_texts(tokens, self._spec, self._entries, batch.shape[:2]) if self._layout_info.kind == "text" else None
        self._score_cache: dict[str, np.ndarray] = {}
        state.setdefault("output", "logits")
        out_shape = self._all_scores(state["output"]).shape[1:]
        super().__init__(
            _n_samples=len(batch),
            _layout=layout_wire(self._layout_info),
            _luts={s: to_wire(colors.sign_lut(s), "uint8") for s in colors.SIGNS},
            _labels=output_labels(out_shape, labels),
            _out_shape=list(out_shape),
            _feature_names=feature_labels(self._layout_info, feature_names),
            entry=entry,
            **state,
        )

    @property
    def entries(self) -> list[Any]:
        """The entries of a tuple/list/dict ``x`` that ``entry`` can draw (its attributed ones); [] for
        one array or with ``layer=``."""
        if self._engine_kw["layer"] is not None or not self._spec.structured:
            return []
        return [self._spec.keys[i] for i in self._spec.attributed]

    def _first_entry(self, entry: Any) -> Any:
        """``entry=`` checked, or the first attributed entry of a structured ``x`` (None: nothing to pick)."""
        if self._engine_kw["layer"] is None and not self._spec.attributed:
            raise SaliencyError(
                "no entry of x is floating-point, so there is nothing to draw; for token ids pass layer= the "
                "embedding layer, or name the entries to keep as they are with fixed="
            )
        if entry is None:
            return self.entries[0] if self.entries else None
        if entry not in self.entries:
            offered = ", ".join(map(repr, self.entries)) or "none (x is one array, or layer= is given)"
            raise SaliencyError(f"entry= must be one of the attributed entries of x: {offered}; got {entry!r}")
        return entry

    def _drawn_batch(self, entry: Any) -> np.ndarray:
        """What the widget shows for every sample: ``x`` itself, its entry ``entry``, or the output of
        ``layer=`` (computed with ``head=``, which a model with several outputs needs to run)."""
        if self._engine_kw["layer"] is not None:
            batch = layer_output(self._model, self._spec.pack(self._entries), self._engine_kw["layer"],
                                 head=self._engine_kw["head"], fixed=self._engine_kw["fixed"])
        else:
            batch = self._entries[0 if entry is None else self._spec.keys.index(entry)]
        if batch.ndim < 2:
            raise SaliencyError(
                f"x needs a leading batch axis; got shape {batch.shape} (for one sample use x[None])"
            )
        return batch

    def _sample_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """A method's options for one sample: a ``baseline`` with one row per sample gives sample
        ``index``'s row (entry by entry for a structured baseline)."""
        if options.get("baseline") is None:
            return options
        baseline = options["baseline"]
        named = dict(zip(self._spec.keys, self._entries))
        if isinstance(baseline, Mapping):
            rows = {k: self._baseline_row(v, named.get(k)) for k, v in baseline.items()}
        elif isinstance(baseline, (tuple, list)) and self._spec.structured and len(baseline) == len(self._entries):
            rows = type(baseline)(self._baseline_row(v, e) for v, e in zip(baseline, self._entries))
        else:
            attributed = self._spec.attributed
            rows = self._baseline_row(baseline, self._entries[attributed[0] if attributed else 0])
        return {**options, "baseline": rows}

    def _baseline_row(self, value: Any, entry: Optional[np.ndarray]) -> Any:
        """``value``'s row for sample ``index`` when it has ``entry``'s batch axis, else ``value``."""
        if value is None or entry is None:
            return value
        array = np.asarray(self._backend.to_numpy(value))
        if array.ndim != entry.ndim or len(array) == 1:
            return value
        if len(array) != len(entry):
            self._invalid(f"baseline of shape {array.shape} has {len(array)} rows but x has {len(entry)} samples; "
                          "pass one row per sample, one row for all, or one sample's shape")
        return array[self.index:self.index + 1]

    def _sample_x(self, index: int) -> Any:
        """Sample ``index`` of ``x`` as a batch of one, in ``x``'s structure."""
        return self._spec.pack(select(self._entries, slice(index, index + 1)))

    def _shown_part(self, result: Any) -> np.ndarray:
        """The part of an engine result (``x``'s structure, or one array with ``layer=``) the widget shows."""
        if self.entry is None:
            return np.asarray(result)
        return np.asarray(result[self.entry])

    def _tokens_wire(self) -> dict[str, Any]:
        """The current sample's token strings and which positions are hidden (padding)."""
        if self._token_text is None:
            return {}
        text, hidden = self._token_text
        return {"index": self.index, "tokens": text[self.index], "hidden": hidden[self.index]}

    def _computes_unseen(self) -> bool:
        """Maps may be computed in a worker thread when the backend changes nothing the user sees meanwhile."""
        return self._backend.computes_unseen()

    # ------------------------------------------------------------- helpers
    @property
    def n_outputs(self) -> int:
        """Number of output neurons of one sample (flat)."""
        return len(self._labels)

    def _all_scores(self, output: str) -> np.ndarray:
        if output not in self._score_cache:
            self._score_cache[output] = predict(self._model, self._spec.pack(self._entries), output=output,
                                                head=self._engine_kw["head"], fixed=self._engine_kw["fixed"])
        return self._score_cache[output]

    def _scores_wire(self) -> dict[str, Any]:
        return to_wire(self._all_scores(self.output)[self.index].reshape(-1), index=self.index, output=self.output)

    def _unravel(self, flat: int) -> Any:
        """A flat output index as the engine's per-sample target (int or index tuple)."""
        if len(self._out_shape) <= 1:
            return int(flat)
        return tuple(int(i) for i in np.unravel_index(flat, tuple(self._out_shape)))

    def _display_values(self) -> np.ndarray:
        """The values currently drawn (for locking the colour scale)."""
        raise NotImplementedError

    def _nonnegative(self) -> bool:
        """Whether the drawn map is ≥ 0 by construction (decided by its method): then a signed view of it
        is drawn one-sided (:func:`colors.shown_sign`)."""
        return False

    def _scale(self) -> Scale:
        """The colour scale on screen: locked at ``scale_max``, or the rule applied to the drawn values;
        one-sided for a map that is ≥ 0 by construction."""
        locked = self.lock_scale and self.scale_max > 0
        sign = colors.shown_sign(self.sign, self._nonnegative())
        m = self.scale_max if locked else colors.scale_max(self._display_values(), sign, self.outlier_perc)
        return Scale(sign, m, self.outlier_perc, locked, nonnegative=sign != self.sign)

    def _sample_text(self) -> str:
        """`` · sample i / n`` for batches of more than one sample."""
        return f" · sample {self.index + 1} / {self._n_samples}" if self._n_samples > 1 else ""

    # ---------------------------------------------------------- validation
    @t.validate("index")
    def _check_index(self, proposal: Any) -> int:
        i = int(proposal["value"])
        if not 0 <= i < len(self._x):
            self._invalid(f"index must be in 0..{len(self._x) - 1} (the batch has {len(self._x)} samples); got {i}")
        return i

    @t.validate("output")
    def _check_output(self, proposal: Any) -> str:
        if proposal["value"] not in OUTPUTS:
            self._invalid(f"output must be one of {', '.join(map(repr, OUTPUTS))}; got {proposal['value']!r}")
        return proposal["value"]

    @t.validate("sign")
    def _check_sign(self, proposal: Any) -> str:
        if proposal["value"] not in colors.SIGNS:
            self._invalid(f"sign must be one of {', '.join(map(repr, colors.SIGNS))}; got {proposal['value']!r}")
        return proposal["value"]

    @t.validate("outlier_perc")
    def _check_outlier_perc(self, proposal: Any) -> float:
        p = float(proposal["value"])
        if not 0 <= p < 100:
            self._invalid(f"outlier_perc must be in [0, 100); got {p}")
        return p

    @t.validate("scale_max")
    def _check_scale_max(self, proposal: Any) -> float:
        m = float(proposal["value"])
        if not (np.isfinite(m) and m >= 0):
            self._invalid(f"scale_max must be a finite magnitude ≥ 0 (where colours saturate; 0 unlocks); got {m}")
        return m

    @t.validate("entry")
    def _check_entry(self, proposal: Any) -> Any:
        value = proposal["value"]
        if value not in (self.entries or [None]):
            offered = ", ".join(map(repr, self.entries)) or "None (x is one array, or layer= is given)"
            self._invalid(f"entry must be one of {offered}; got {value!r}")
        return value

    @t.observe("entry")
    def _on_entry(self, change: dict[str, Any]) -> None:
        def update() -> None:
            try:
                self._use_entry(change["new"])
                self._show_entry()
            except Exception:
                self._use_entry(change["old"])
                raise

        self._guarded(change, update)

    def _use_entry(self, entry: Any) -> None:
        """Draws ``entry`` of ``x``: its batch and layout; ``feature_names=`` are kept where they fit it."""
        batch = self._drawn_batch(entry)
        layout = infer_layout(batch.shape[1:], self._backend.framework, self._kind)
        try:
            names = feature_labels(layout, self._feature_names_arg)
        except SaliencyError:  # the names given describe another entry
            names = []
        self._x, self._layout_info = batch, layout
        self._layout = layout_wire(layout)
        self._feature_names = names

    def _show_entry(self) -> None:
        """Sends what the newly drawn entry shows (the subclass' views)."""

    @t.observe("lock_scale")
    def _on_lock(self, change: dict[str, Any]) -> None:
        if not self._ready:
            return
        if change["new"] and self.scale_max <= 0:
            self.scale_max = colors.scale_max(self._display_values(), self.sign, self.outlier_perc)
        elif not change["new"]:
            self.scale_max = 0.0

    @t.observe("sign", "outlier_perc")
    def _on_scale(self, change: dict[str, Any]) -> None:
        if self._ready and self.lock_scale and not self._reverting:
            self.scale_max = colors.scale_max(self._display_values(), self.sign, self.outlier_perc)
