"""The data side of ``DatasetMap``: samples read by index, the order of the gallery, and thumbnails.

Nothing here holds the whole dataset in memory: samples are read from ``x`` a page at a time,
attributions from the result's memmap, and a thumbnail is made when the browser asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Optional, Sequence

import numpy as np

from .. import colors
from ..backends.base import to_numpy
from ..errors import SaliencyError
from ..inputs import Layout, background_image
from ..structure import Structure
from ..dataset.batches import BatchSource
from ..dataset.result import chunk_rows

#: Orders of the gallery: the data's own, then the sort keys (largest first unless ascending).
SORTS = ("index", "confidence", "margin", "magnitude")
#: Most cells a thumbnail has along each axis (larger maps and inputs are averaged in blocks).
THUMB_CELLS = 64
#: Rows read from ``x`` at a time for the model's scores.
SCORE_BATCH = 512


class SampleReader:
    """Samples of ``x`` by index: an array or a dict/tuple of arrays (indexed directly), a dataset
    of samples (``len`` and ``[i]``), or a re-iterable source of batches (a ``DataLoader``,
    a ``tf.data.Dataset``, a list of batches: read from its start up to the rows asked for)."""

    def __init__(self, x: Any, position: int = 0) -> None:
        #: Which entry of ``x``'s structure is drawn (0 for one array).
        self.position = position
        self._x = x
        self._arrays: Optional[list[np.ndarray]] = None
        if _is_array(x) or isinstance(x, Mapping):
            self._arrays = [to_numpy(leaf) for leaf in Structure.of(x).leaves(x)]
        elif not _is_dataset(x) and iter(x) is x:
            raise SaliencyError(
                "x is a one-shot iterator: the gallery reads samples again as it scrolls; pass an array, a dataset "
                "of samples, or a source that can be iterated again (a DataLoader, a tf.data.Dataset, a list)"
            )

    def length(self) -> Optional[int]:
        """Number of samples, where ``x`` tells it without being read (None for a source of batches)."""
        if self._arrays is not None:
            return len(self._arrays[0])
        return len(self._x) if _is_dataset(self._x) else None

    def rows(self, indices: Sequence[int]) -> np.ndarray:
        """The drawn entry of samples ``indices``, stacked in that order (numpy)."""
        wanted = np.asarray(indices, dtype=np.int64)
        if self._arrays is not None:
            return np.asarray(self._arrays[self.position][wanted])
        if _is_dataset(self._x):
            return np.stack([self._leaf(self._x[int(i)]) for i in wanted])
        found: dict[int, np.ndarray] = {}
        need = set(int(i) for i in wanted)
        for batch in self._batches():
            for row in range(len(batch)):
                if batch.start + row in need:
                    found[batch.start + row] = batch.x[self.position][row]
            if len(found) == len(need):
                break
        missing = need - set(found)
        if missing:
            raise SaliencyError(f"x has no sample {min(missing)}: it ended before the rows the results hold")
        return np.stack([found[int(i)] for i in wanted])

    def batches(self, size: int = SCORE_BATCH) -> Iterator[Any]:
        """The whole ``x`` in its own structure, batch by batch, in order (for the model's scores)."""
        source = BatchSource(self._x, size)
        _, read = source.open()
        for batch in read(0):
            yield source.structure.pack(batch.x)

    def _batches(self) -> Iterator[Any]:
        _, read = BatchSource(self._x, SCORE_BATCH).open()
        return read(0)

    def _leaf(self, item: Any) -> np.ndarray:
        """The drawn entry of one sample of a dataset (``x``, ``(x,)`` or ``(x, y)``)."""
        if isinstance(item, (tuple, list)) and len(item) in (1, 2):
            item = item[0]
        return to_numpy(Structure.of(item).leaves(item)[self.position])


def _is_array(obj: Any) -> bool:
    return hasattr(obj, "shape") and hasattr(obj, "dtype")


def _is_dataset(obj: Any) -> bool:
    """A dataset of samples (``len`` and ``[i]``), not a list of batches."""
    return (hasattr(obj, "__getitem__") and hasattr(obj, "__len__") and not isinstance(obj, (list, tuple, str))
            and not _is_array(obj) and not isinstance(obj, Mapping) and not hasattr(obj, "as_numpy_iterator"))


# ------------------------------------------------------------------ ordering
def shown_order(true: Optional[np.ndarray], predicted: np.ndarray, key: Optional[np.ndarray], *,
                klass: Optional[int] = None, prediction: Optional[int] = None, mistakes_only: bool = False,
                ascending: bool = False) -> np.ndarray:
    """The sample indices the gallery lists, in order: those of true class ``klass``, predicted class
    ``prediction`` and (``mistakes_only``) predicted wrongly, sorted by ``key`` (largest first unless
    ``ascending``; ties and ``key=None`` keep the data's order)."""
    keep = np.ones(len(predicted), dtype=bool)
    if klass is not None:
        keep &= true == klass
    if prediction is not None:
        keep &= predicted == prediction
    if mistakes_only:
        keep &= predicted != true
    shown = np.flatnonzero(keep)
    if key is None:
        return shown
    values = np.asarray(key, dtype=np.float64)[shown]
    return shown[np.argsort(values if ascending else -values, kind="stable")]


def confidence_and_margin(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(top probability, top − second probability)`` per row of logits ``(n, outputs)`` (softmax)."""
    z = np.asarray(scores, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    top2 = -np.sort(-p, axis=1)[:, :2]
    second = top2[:, 1] if p.shape[1] > 1 else np.zeros(len(p))
    return top2[:, 0].astype(np.float32), (top2[:, 0] - second).astype(np.float32)


def magnitudes(values: np.ndarray) -> np.ndarray:
    """Mean ``|attribution|`` of every sample, read in chunks of the memory budget."""
    step = chunk_rows(2 * values[:1].nbytes)
    out = np.empty(len(values), dtype=np.float32)
    for start in range(0, len(values), step):
        chunk = np.abs(np.asarray(values[start:start + step], dtype=np.float64))
        out[start:start + len(chunk)] = chunk.reshape(len(chunk), -1).mean(axis=1)
    return out


# ---------------------------------------------------------------- thumbnails
def screen_grids(display: np.ndarray, kind: str) -> np.ndarray:
    """Display maps ``(k, *display_shape)`` as the rows × cols grids drawn on screen (sequences:
    features × time; vectors and text: one row)."""
    d = np.asarray(display)
    if kind in ("vector", "text"):
        return d.reshape(len(d), 1, -1)
    if kind == "sequence":
        return np.swapaxes(d, 1, 2)
    return d


def pooled(grids: np.ndarray) -> np.ndarray:
    """``(k, rows, cols, ...)`` averaged in blocks so that no axis has more than ``THUMB_CELLS`` cells."""
    out = np.asarray(grids, dtype=np.float64)
    for axis in (1, 2):
        n = out.shape[axis]
        step = -(-n // THUMB_CELLS)
        if step > 1:
            starts = np.arange(0, n, step)
            sizes = np.diff(np.append(starts, n)).reshape([-1 if a == axis else 1 for a in range(out.ndim)])
            out = np.add.reduceat(out, starts, axis=axis) / sizes
    return out


def thumb_shape(layout: Layout) -> tuple[int, int]:
    """Rows × cols of a thumbnail of ``layout``'s maps."""
    one = screen_grids(np.zeros((1,) + layout.display_shape, dtype=np.float32), layout.kind)
    return pooled(one).shape[1:3]


def map_thumbnails(display: np.ndarray, kind: str, sign: str, outlier_perc: float) -> np.ndarray:
    """LUT indices (uint8, ``(k, rows, cols)``) of display maps ``(k, *display_shape)``, each on its
    own colour scale: the rule applied to the whole map, as the opened map is drawn."""
    scales = [colors.scale_max(d, sign, outlier_perc) for d in display]
    grids = pooled(screen_grids(display, kind))
    return np.stack([colors.to_index(g, sign, m) for g, m in zip(grids, scales)])


def input_channels(layout: Layout) -> int:
    """3 for a colour image (3 or 4 channels), else 1 (grey)."""
    if layout.kind != "image" or layout.channel_axis is None:
        return 1
    return 3 if layout.sample_shape[layout.channel_axis] in (3, 4) else 1


def input_thumbnails(samples: np.ndarray, layout: Layout) -> np.ndarray:
    """uint8 ``(k, rows, cols, channels)``: each input as drawn under its map (images: min–max scaled
    pictures; vectors and sequences: each sample's values min–max scaled, grey)."""
    if layout.kind == "image":
        pictures = np.stack([background_image(s, layout) for s in samples]).astype(np.float64)
        grids = pictures[..., :1] if input_channels(layout) == 1 else pictures
    else:
        values = np.stack([layout.time_first(np.asarray(s, dtype=np.float64)) for s in samples])
        grids = screen_grids(values.reshape((len(values),) + layout.display_shape), layout.kind)
        flat = np.nan_to_num(grids.reshape(len(grids), -1))
        lo, hi = flat.min(axis=1), flat.max(axis=1)
        span = np.where(hi > lo, hi - lo, 1.0)
        grids = ((grids - lo[:, None, None]) / span[:, None, None] * 255.0)[..., None]
    return np.clip(np.round(pooled(grids)), 0, 255).astype(np.uint8)
