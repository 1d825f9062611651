"""Turning a user's ``data`` into numpy batches of a fixed structure.

``data`` may be an array (or a dict of arrays: a structured ``x``), a map-style
dataset of samples (``len`` + ``[i]``, e.g. a torch ``Dataset``), or an
iterable of batches (a torch ``DataLoader``, a batched ``tf.data.Dataset``, a
generator, a list). A batch is ``x`` or ``(x, y)`` (Keras' convention: a
tuple/list of one or two items; a structured ``x`` inside an iterable is
written ``((a, b), y)`` or ``((a, b),)``). Frameworks are recognised by duck
typing only: tensors have ``shape`` and ``dtype`` and become numpy through
:func:`~saliency_widgets.backends.base.to_numpy`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ..backends.base import to_numpy
from ..errors import SaliencyError
from ..structure import Structure
from .fingerprint import digest


_KINDS = {"f": "floating", "i": "integer", "u": "integer", "b": "boolean"}


@dataclass
class Batch:
    """Rows ``start : start + len(self)`` of the dataset, as numpy."""

    start: int
    #: ``x``'s entries in :class:`Structure` order, each with the batch on axis 0.
    x: list[np.ndarray]
    y: Optional[np.ndarray]
    #: The per-sample targets of these rows when the user gave one per sample.
    target: Any = None
    #: The hash of ``x`` and ``y`` (:func:`~.fingerprint.digest`), set when the batch is read.
    digest: Optional[str] = None

    def __len__(self) -> int:
        return int(self.x[0].shape[0])

    def rows(self, begin: int) -> "Batch":
        """The batch without its first ``begin`` rows."""
        return Batch(self.start + begin, [e[begin:] for e in self.x], None if self.y is None else self.y[begin:])


@dataclass(frozen=True)
class BatchSpec:
    """What every batch must look like: the first batch's structure, per-sample shapes and dtypes."""

    structure: Structure
    #: ``(sample_shape, dtype.kind)`` per entry of ``x``.
    entries: tuple[tuple[tuple[int, ...], str], ...]
    has_y: bool

    @classmethod
    def of(cls, structure: Structure, batch: Batch) -> "BatchSpec":
        return cls(structure, tuple((e.shape[1:], e.dtype.kind) for e in batch.x), batch.y is not None)

    def check(self, batch: Batch, number: int) -> None:
        """A :class:`SaliencyError` naming batch ``number`` if it does not match."""
        for position, (entry, (shape, kind)) in enumerate(zip(batch.x, self.entries)):
            if entry.shape[1:] != shape or entry.dtype.kind != kind:
                found = _KINDS.get(entry.dtype.kind, str(entry.dtype))
                raise SaliencyError(
                    f"batch {number} (rows from {batch.start}): {self.structure.name(position)} has {found} samples "
                    f"of shape {entry.shape[1:]}, but the first batch's were {_KINDS.get(kind, kind)} of shape "
                    f"{shape}; every batch needs the same sample shape and dtype"
                )
        if (batch.y is not None) != self.has_y:
            raise SaliencyError(
                f"batch {number} (rows from {batch.start}) {'has' if batch.y is not None else 'lacks'} labels y, "
                f"but the first batch {'had' if self.has_y else 'did not'}; yield (x, y) for every batch or x alone"
            )

    def fingerprint(self) -> dict[str, Any]:
        """JSON-able description of the data's structure, sample shapes and dtypes (each
        batch's contents are hashed on their own, see :func:`input_digest`)."""
        return {
            "structure": [self.structure.kind, list(self.structure.keys)],
            "entries": [[list(shape), kind] for shape, kind in self.entries],
            "labels": self.has_y,
        }


def input_digest(batch: Batch) -> str:
    """The hash of ``batch``'s inputs: every entry of ``x``, then ``y`` when there is one."""
    return digest([*batch.x, *([] if batch.y is None else [np.asarray(batch.y)])])


class BatchSource:
    """Numpy :class:`Batch` es from any supported ``data``, resumable at a row.

    ``labels`` gives ``y`` for array data (for other data, batches carry it).
    """

    def __init__(self, data: Any, batch_size: int, labels: Any = None) -> None:
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise SaliencyError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self._data = data
        _refuse_whole_arrays(data)
        self._indexed = _is_array(data) or isinstance(data, Mapping)
        self._samples = not self._indexed and _is_map_style(data)
        if labels is not None and not self._indexed:
            raise SaliencyError(
                "labels= goes with array data; a dataset or an iterable yields its labels itself, as (x, y)"
            )
        if self._indexed:
            self.structure = Structure.of(data)
            self._arrays = [to_numpy(e) for e in self.structure.leaves(data)]
            self._labels = None if labels is None else to_numpy(labels)
            self._check_lengths()
        self.total = self._length()

    # ----------------------------------------------------------------- public
    def open(self) -> tuple[Batch, Callable[[int], Iterator[Batch]]]:
        """``(first batch, rest)``: ``rest(skip_rows)`` gives the batches in order without the
        first ``skip_rows`` rows. An iterable is iterated once: ``rest`` goes on from the first batch.
        """
        if self._indexed or self._samples:
            read = self._array_batches if self._indexed else self._dataset_batches
            first = next(read(0), None)
        else:
            batches = self._iterated_batches()
            first = next(batches, None)

            def read(skip_rows: int) -> Iterator[Batch]:
                return _skip(itertools.chain([first], batches), skip_rows)
        if first is None:
            raise SaliencyError("data is empty: it yielded no batch")
        return first, read

    # -------------------------------------------------------------- sources
    def _array_batches(self, skip_rows: int) -> Iterator[Batch]:
        n = len(self._arrays[0])
        for start in range(skip_rows, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            y = None if self._labels is None else self._labels[start:stop]
            yield Batch(start, [a[start:stop] for a in self._arrays], y)

    def _dataset_batches(self, skip_rows: int) -> Iterator[Batch]:
        n = len(self._data)
        for start in range(skip_rows, n, self.batch_size):
            items = [self._data[i] for i in range(start, min(start + self.batch_size, n))]
            yield self._collate(items, start)

    def _iterated_batches(self) -> Iterator[Batch]:
        data = self._data
        if hasattr(data, "as_numpy_iterator") and callable(data.as_numpy_iterator):  # tf.data.Dataset
            data = data.as_numpy_iterator()
        if not isinstance(data, Iterable):
            raise SaliencyError(
                f"cannot read batches from a {type(self._data).__name__}; pass an array, a dataset of "
                "samples (len and [i]), a DataLoader / tf.data.Dataset, or any iterable of batches x or (x, y)"
            )
        start = 0
        for number, item in enumerate(data):
            x, y = _split(item, f"batch {number}")
            batch = self._numpy_batch(x, y, start, f"batch {number}")
            yield batch
            start += len(batch)

    # -------------------------------------------------------------- helpers
    def _numpy_batch(self, x: Any, y: Any, start: int, where: str) -> Batch:
        structure = Structure.of(x)
        if not hasattr(self, "structure"):
            self.structure = structure
        elif structure != self.structure:
            raise SaliencyError(
                f"{where} (rows from {start}): x is {structure.summary()}, but the first batch's x was "
                f"{self.structure.summary()}; every batch needs the same structure"
            )
        entries = [_as_batch_array(e, f"{where}: {structure.name(i)}") for i, e in enumerate(structure.leaves(x))]
        labels = None if y is None else _as_batch_array(y, f"{where}: y")
        sizes = {len(e) for e in entries} | (set() if labels is None else {len(labels)})
        if len(sizes) > 1:
            raise SaliencyError(
                f"{where} (rows from {start}): its entries and labels have different batch sizes "
                f"{sorted(sizes)}; every array of a batch needs the same first axis"
            )
        return Batch(start, entries, labels)

    def _collate(self, items: list[Any], start: int) -> Batch:
        """Samples ``start, start + 1, …`` of a map-style dataset stacked into one batch."""
        pairs = [_split(item, f"sample {start + i}") for i, item in enumerate(items)]
        structure = Structure.of(pairs[0][0])
        try:
            x = [np.stack([to_numpy(structure.leaves(p[0])[k]) for p in pairs]) for k in range(len(structure.keys))]
            y = None if pairs[0][1] is None else np.stack([to_numpy(p[1]) for p in pairs])
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise SaliencyError(
                f"samples {start}–{start + len(items) - 1} cannot be stacked into one batch ({err}); every "
                "sample needs the same structure and shape"
            ) from None
        return self._numpy_batch(structure.pack(x), y, start, f"samples {start}–{start + len(items) - 1}")

    def _check_lengths(self) -> None:
        sizes = {len(a) for a in self._arrays} | (set() if self._labels is None else {len(self._labels)})
        if len(sizes) > 1:
            raise SaliencyError(f"data and labels have different lengths {sorted(sizes)}; give one row per sample")

    def _length(self) -> Optional[int]:
        if self._indexed:
            return len(self._arrays[0])
        if self._samples:
            return len(self._data)
        dataset = getattr(self._data, "dataset", None)  # a torch DataLoader
        if dataset is not None and hasattr(dataset, "__len__"):
            try:
                return len(dataset)
            except TypeError:  # an iterable-style dataset
                return None
        return None


def _is_array(obj: Any) -> bool:
    """numpy arrays and framework tensors (duck-typed: ``shape`` and ``dtype``)."""
    return hasattr(obj, "shape") and hasattr(obj, "dtype")


def _is_map_style(data: Any) -> bool:
    """A dataset of samples (``len`` and ``[i]``), not a list/tuple of batches."""
    return (hasattr(data, "__getitem__") and hasattr(data, "__len__")
            and not isinstance(data, (list, tuple, str, bytes)) and not hasattr(data, "as_numpy_iterator"))


def _refuse_whole_arrays(data: Any) -> None:
    """A :class:`SaliencyError` for whole arrays where batches are expected: a tuple of two
    arrays (or dicts of arrays), or a list of two that cannot be batches of one kind.

    The rule: a tuple of two is ``(x, y)`` (Keras' convention), here the whole ``x`` and its
    labels, which go as ``labels=`` (or it is a two-input ``x``, which goes as a dict); a list
    of two arrays is a list of batches when both have the same sample shapes and dtypes. Items
    of any other kind (``(x, y)`` pairs, generators …) are read as batches as they are.
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        return
    kinds = [_sample_kind(item) for item in data]
    if None in kinds or (isinstance(data, list) and kinds[0] == kinds[1]):
        return
    raise SaliencyError(
        f"data is a {type(data).__name__} of two whole arrays ({' and '.join(map(_shapes, data))}), not "
        "batches. If they are x and its labels y: pass labels=y, or an iterable of (x, y) batches "
        "(e.g. attribute_dataset(model, x, labels=y)). If they are the two inputs of one model: pass a dict "
        "of arrays {name: array}, or batches ((a, b), y). If they are two batches: pass a list [x0, x1]"
    )


def _sample_kind(item: Any) -> Optional[tuple]:
    """Per-sample shapes and dtypes of an array or a dict of arrays; None for anything else."""
    if _is_array(item):
        return tuple(item.shape[1:]), str(item.dtype)
    if isinstance(item, Mapping) and item and all(_is_array(v) for v in item.values()):
        return tuple((k, tuple(v.shape[1:]), str(v.dtype)) for k, v in item.items())
    return None


def _shapes(item: Any) -> str:
    """``(100, 6)``, or ``a dict of 'input_ids' (100, 7), …``, for messages."""
    if isinstance(item, Mapping):
        return "a dict of " + ", ".join(f"{k!r} {tuple(v.shape)}" for k, v in item.items())
    return f"shape {tuple(item.shape)}"


def _split(item: Any, where: str) -> tuple[Any, Any]:
    """``(x, y)`` of one batch or sample: ``x``, ``(x,)`` or ``(x, y)``."""
    if isinstance(item, (tuple, list)):
        if len(item) == 1:
            return item[0], None
        if len(item) == 2:
            return item[0], item[1]
        raise SaliencyError(
            f"{where} is a {type(item).__name__} of {len(item)} items; yield x, (x,) or (x, y) "
            "(a structured x goes inside: ((a, b), y))"
        )
    return item, None


def _as_batch_array(value: Any, where: str) -> np.ndarray:
    if value is None or isinstance(value, (Mapping, tuple, list, str)):
        raise SaliencyError(f"{where} is a {type(value).__name__}, not an array or tensor")
    array = to_numpy(value)
    if array.ndim == 0:
        raise SaliencyError(f"{where} is a scalar; batches need a leading batch axis")
    return array


def _skip(batches: Iterator[Batch], rows: int) -> Iterator[Batch]:
    """``batches`` without the first ``rows`` rows (a batch straddling the cut is sliced)."""
    for batch in batches:
        end = batch.start + len(batch)
        if end <= rows:
            continue
        yield batch.rows(rows - batch.start) if batch.start < rows else batch
