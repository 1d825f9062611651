"""``DatasetAttribution``: a finished (or partly finished) run, read from its folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import numpy as np

from ..config import config
from ..errors import SaliencyError
from ..structure import Structure
from .job import VALUES, class_ids, value_name
from .store import Store

if TYPE_CHECKING:
    from ..widgets.dataset_map import DatasetMap

GROUPINGS = ("label", "prediction", "target")


class DatasetAttribution:
    """Attributions of a whole dataset, memory-mapped from the folder ``path``.

    Arrays are read-only memmaps with one row per sample, in the data's order;
    only the finished rows are visible (``len(self)``), so a run that stopped
    half-way can be inspected before it is resumed.
    """

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        self._store = Store.load(self.path)
        manifest = self._store.manifest
        self.structure = Structure(manifest["structure"][0], tuple(manifest["structure"][1]))
        #: The model's framework (``"torch"`` / ``"keras"``), for the display layout.
        self.framework: str = manifest["framework"]
        self.method: str = manifest["method"]
        #: One sample's output shape; ``targets`` and ``predictions`` are flat indices into it.
        self.output_shape: tuple[int, ...] = tuple(manifest["output_shape"])

    @classmethod
    def load(cls, path: Union[str, Path]) -> "DatasetAttribution":
        """The results saved under ``path`` by :func:`~saliency_widgets.attribute_dataset`."""
        return cls(path)

    def __len__(self) -> int:
        return self._store.rows

    def __repr__(self) -> str:
        state = "complete" if self.complete else "unfinished"
        return f"DatasetAttribution({len(self)} samples, {self.method}, {state}, path={str(self.path)!r})"

    @property
    def complete(self) -> bool:
        """Whether every batch of the data was attributed."""
        return self._store.complete

    # ---------------------------------------------------------------- arrays
    @property
    def values(self) -> Any:
        """Attributions shaped like the data's ``x`` (a memmap; for a structured ``x`` its
        structure with one memmap per attributed entry and None for fixed entries), or with
        ``layer=`` one memmap ``(N, *layer_output_shape)`` whatever ``x`` is."""
        if VALUES in self._store.columns:
            return self._column(VALUES)
        leaves = [self._column(value_name(self.structure, i)) if value_name(self.structure, i) in self._store.columns
                  else None for i in range(len(self.structure.keys))]
        return self.structure.pack(leaves)

    @property
    def targets(self) -> np.ndarray:
        """``(N,)`` flat index of the explained output of each sample (``np.unravel_index`` with
        ``output_shape`` gives the tuple)."""
        return self._column("targets")

    @property
    def predictions(self) -> np.ndarray:
        """``(N,)`` flat index of each sample's arg-max output."""
        return self._column("predictions")

    @property
    def labels(self) -> Optional[np.ndarray]:
        """The data's ``y``, when it had labels."""
        return self._column("labels") if "labels" in self._store.columns else None

    @property
    def completeness_error(self) -> Optional[np.ndarray]:
        """Integrated gradients: ``sum(attribution) − (f(x) − f(baseline))`` per sample."""
        return self._column("completeness_error") if "completeness_error" in self._store.columns else None

    # ------------------------------------------------------------- summaries
    def classes(self, by: Optional[str] = None) -> np.ndarray:
        """The class of every sample: its label (``by="label"``, the default when there are
        labels), its predicted class (``"prediction"``, the default otherwise) or its target."""
        by = self._grouping(by)
        if by == "label":
            return class_ids(self.labels)
        return np.asarray(self.predictions if by == "prediction" else self.targets)

    def mean_by_class(self, by: Optional[str] = None, *, entry: Any = None) -> dict[int, np.ndarray]:
        """Mean attribution of each class (see :meth:`classes` for ``by``), as
        ``{class: array of one sample's shape}``, sorted by class.

        Read in chunks of ``sw.config.chunk_budget_bytes``, so memory stays bounded
        however large the dataset. ``entry`` picks the attributed entry of a structured ``x``.
        """
        values = self._entry_values(entry)
        classes = self.classes(by)
        step = chunk_rows(2 * values[:1].nbytes)  # read as float64
        sums: dict[int, np.ndarray] = {}
        for start in range(0, len(values), step):
            chunk = np.asarray(values[start:start + step], dtype=np.float64)
            chunk_classes = classes[start:start + step]
            for c in np.unique(chunk_classes):
                total = chunk[chunk_classes == c].sum(axis=0)
                sums[int(c)] = sums[int(c)] + total if int(c) in sums else total
        counts = self.class_counts(by)
        return {c: (sums[c] / counts[c]).astype(np.float32) for c in sorted(sums)}

    def class_counts(self, by: Optional[str] = None) -> dict[int, int]:
        """Number of samples per class (``by`` as in :meth:`classes`)."""
        found, counts = np.unique(self.classes(by), return_counts=True)
        return {int(c): int(n) for c, n in zip(found, counts)}

    def to_figure(self, by: Optional[str] = None, *, entry: Any = None, class_names: Optional[Sequence[str]] = None,
                  kind: Optional[str] = None, sign: str = "all", outlier_perc: float = 2.0, **fig_kw: Any) -> Any:
        """The class means (:meth:`mean_by_class`) side by side on one colour scale, drawn as
        the widgets draw a map (same colours, layouts and colour bar); a matplotlib Figure."""
        from .figure import class_means_figure

        means = self.mean_by_class(by, entry=entry)
        counts = self.class_counts(by)
        names = [class_names[c] if class_names is not None and c < len(class_names) else f"class {c}" for c in means]
        return class_means_figure(
            means, [f"{name} (n={counts[c]})" for name, c in zip(names, means)], framework=self.framework,
            method=self.method, grouping=self._grouping(by), kind=kind, sign=sign, outlier_perc=outlier_perc, **fig_kw,
        )

    def widget(self, model: Any, x: Any, **kw: Any) -> "DatasetMap":
        """A :class:`~saliency_widgets.DatasetMap` of these results: a gallery of the samples (input and
        map), filtered and sorted, the class means on top; ``x`` is the data the run attributed (for the
        thumbnails, an opened sample and the model's scores), ``kw`` go to ``DatasetMap``."""
        from ..widgets.dataset_map import DatasetMap

        return DatasetMap(self, model, x, **kw)

    # --------------------------------------------------------------- helpers
    def _column(self, name: str) -> np.ndarray:
        return self._store.columns[name].read(len(self))

    def _entry_values(self, entry: Any) -> np.ndarray:
        values = self.values
        if VALUES in self._store.columns:
            if entry is not None:
                raise SaliencyError(f"entry= picks an attributed entry of a structured x, but this run's attribution "
                                    f"is one array (a single-array x, or layer=); got entry={entry!r}, pass none")
            return values
        leaves = self.structure.leaves(values)
        attributed = [k for k, v in zip(self.structure.keys, leaves) if v is not None]
        if entry is None:
            entry = attributed[0]
        if entry not in attributed:
            raise SaliencyError(f"entry= must be one of the attributed entries {attributed}; got {entry!r}")
        return leaves[self.structure.keys.index(entry)]

    def _grouping(self, by: Optional[str]) -> str:
        if by is None:
            return "label" if "labels" in self._store.columns else "prediction"
        if by not in GROUPINGS:
            raise SaliencyError(f"by= must be one of {', '.join(map(repr, GROUPINGS))}; got {by!r}")
        if by == "label" and "labels" not in self._store.columns:
            raise SaliencyError("by='label' needs labels: give data as (x, y) batches or labels=")
        return by


def chunk_rows(row_bytes: int) -> int:
    """Rows of ``row_bytes`` each that fit ``config.chunk_budget_bytes`` (at least one)."""
    return max(1, config.chunk_budget_bytes // max(1, row_bytes))
