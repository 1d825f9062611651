"""The per-batch function: one batch in, the rows of every result column out.

Both engines run exactly this (the local loop calls it; Ray ships it, model
included, to each worker once), so they give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

import numpy as np

from ..attribution import attribute_in_passes
from ..backends import get_backend
from ..errors import SaliencyError
from ..structure import Structure
from .batches import Batch
from .plan import SEARCH_BATCHES, PassPlan, RunPasses

#: ``target=`` value that explains each sample's own label ``y``.
LABEL_TARGET = "label"
#: The column of an attribution that is one array (a single-array ``x``, or any ``x`` with ``layer=``).
VALUES = "values"


@dataclass
class BatchResult:
    """The rows of every result column for the batch that starts at row ``start``."""

    start: int
    columns: dict[str, np.ndarray]
    #: One sample's output shape (``targets`` and ``predictions`` index it flat).
    output_shape: tuple[int, ...]
    #: The hash of the batch's inputs, passed on for the run's journal.
    inputs: Optional[str] = None
    #: The run's pass plan once fixed (:meth:`PassPlan.to_json`), for the manifest.
    passes: Optional[dict[str, Any]] = None

    def __len__(self) -> int:
        return len(self.columns["targets"])


@dataclass
class BatchJob:
    """``sw.attribute`` of one batch, with its options and pass plan fixed for the whole dataset."""

    model: Any
    structure: Structure
    target: Any
    method: str
    options: dict[str, Any] = field(default_factory=dict)
    #: Passes of every batch once the search has chosen them (see :mod:`.plan`).
    passes: Optional[PassPlan] = None
    #: Batches attributed while the backend's search chose the passes.
    searched: int = 0
    #: The model's framework as detected (or given) where the run started: a copy of the model in a
    #: Ray worker is placed the same way (a plain function on jax arrays has no class to tell).
    framework: Optional[str] = None

    @property
    def searching(self) -> bool:
        """Whether the backend's search still chooses the passes (for methods that have passes)."""
        return self.passes is None and self.searched > 0

    def __call__(self, batch: Batch) -> "BatchResult":
        """Result columns for ``batch``: ``values`` (one per attributed entry of a structured
        ``x``, or one array with ``layer=``), ``targets`` and ``predictions`` (flat output
        indices), ``labels``, and for integrated gradients ``completeness_error``."""
        passes = RunPasses(self.passes)
        get_backend(self.model, self.framework)
        result = attribute_in_passes(passes, self.model, self.structure.pack(batch.x), self._target(batch),
                                     method=self.method, **self.options)
        if self.passes is None and passes.used is not None:
            self.searched += 1
            if passes.used.done or self.searched >= SEARCH_BATCHES:
                self.passes = PassPlan.chosen(passes.used, batch.start + len(batch))
        out_shape = result.outputs.shape[1:]
        columns = value_columns(self.structure, result.values)
        columns["targets"] = np.ravel_multi_index(np.array(result.targets).T, out_shape).astype(np.int64)
        columns["predictions"] = result.outputs.reshape(len(batch), -1).argmax(axis=1).astype(np.int64)
        if batch.y is not None:
            columns["labels"] = batch.y
        error = getattr(result, "completeness_error", None)
        if error is not None:
            columns["completeness_error"] = np.asarray(error, dtype=np.float32)
        return BatchResult(batch.start, columns, tuple(int(s) for s in out_shape), batch.digest,
                           None if self.passes is None else self.passes.to_json())

    def by_name(self) -> "BatchJob":
        """This job with the layer objects among its options (``layer=``, ``head=``) given by
        their names as in ``sw.layers``: what a pickled copy finds again in its own model (a
        Keras layer unpickles apart from its model)."""
        backend = get_backend(self.model)
        options = {key: backend.by_name(value) for key, value in self.options.items()}
        return replace(self, options=options)

    def _target(self, batch: Batch) -> Any:
        if batch.target is not None:
            return batch.target
        if isinstance(self.target, str) and self.target == LABEL_TARGET:
            if batch.y is None:
                raise SaliencyError("target='label' needs labels: give data as (x, y) batches or labels=")
            return [int(v) for v in class_ids(batch.y)]
        return self.target


def value_columns(structure: Structure, values: Any) -> dict[str, np.ndarray]:
    """Column name → array of an attribution result: one ``values`` column for a single array
    (a single-array ``x``, or any ``x`` with ``layer=``), else one per attributed entry of ``x``'s
    structure (``None`` for fixed entries)."""
    if isinstance(values, np.ndarray):
        return {VALUES: values.astype(np.float32, copy=False)}
    leaves = structure.leaves(values)
    return {value_name(structure, i): np.asarray(v, dtype=np.float32)
            for i, v in enumerate(leaves) if v is not None}


def value_name(structure: Structure, position: int) -> str:
    """The column (and file) name of entry ``position``'s attribution (``values`` for a single-array ``x``)."""
    if structure.kind == "array":
        return VALUES
    return f"{VALUES}.{position}"


def class_ids(labels: np.ndarray) -> np.ndarray:
    """Integer classes of ``labels``: class ids as they are, one-hot / score rows by arg-max."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:
        return labels.argmax(axis=1)
    flat = labels.reshape(len(labels))
    if not np.all(np.equal(np.mod(flat, 1), 0)):
        raise SaliencyError("labels must be integer class ids (or one-hot rows) to group by class")
    return flat.astype(np.int64)

