"""Occlusion (Zeiler & Fergus): how much the target score drops when a window of the
input is replaced by a baseline. Framework-free: the model is a score function.

The windows follow captum's ``Occlusion`` exactly: the first window sits at index
0 of every axis, shifts by ``stride`` until the axis is covered (the last window
of an axis may be cut off at its end), and each element's attribution is the
mean drop over the windows that cover it.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable, Optional, Sequence, Union

import numpy as np

from . import progress
from .arguments import numeric, sizes
from .config import config
from .errors import SaliencyError
from .heads import explained_scores

#: Working memory of one occluded copy in a forward-only pass, as a multiple of its
#: bytes (activations are freed layer by layer when no gradient is recorded).
_FORWARD_FACTOR = 8

Size = Union[None, int, Sequence[int]]
Scores = Callable[[np.ndarray], np.ndarray]


def occlusion(scores: Scores, x: np.ndarray, targets: np.ndarray, *, window: Size = None,
              stride: Size = None, baseline: Union[float, np.ndarray] = 0.0,
              channel_axis: Optional[int] = None, reference: Optional[np.ndarray] = None,
              contrasts: Optional[np.ndarray] = None) -> np.ndarray:
    """Occlusion attribution of the flat output index ``targets[i]`` of each sample (minus output
    ``contrasts[i]`` where given: the drop of the score difference).

    ``scores(batch)`` returns the model's outputs ``(n, *out)`` for a batch of
    inputs. ``window`` / ``stride`` give one size per axis of a sample (channels
    included, as captum's ``sliding_window_shapes``), or one per spatial axis
    (every axis but ``channel_axis``; the channels are occluded whole), or one
    int for every spatial axis. Default window: one element along a single spatial
    axis (a vector's feature; a sequence's time step, its features whole), about 1/8
    of each side of an image; default stride: the window. ``baseline``: a
    scalar or an array that broadcasts to ``x``. ``reference``: the scores of
    ``x`` when already known (saves a forward pass). Returns ``x.shape``, float32.
    """
    x = np.asarray(x)
    sample_shape = x.shape[1:]
    win = window_shape(window, sample_shape, channel_axis, "window")
    step = win if stride is None else window_shape(stride, sample_shape, channel_axis, "stride", win)
    _check_windows(win, step, sample_shape)
    base = _broadcast_baseline(baseline, x)
    starts = [range(0, n - w + s, s) for n, w, s in zip(sample_shape, win, step)]
    windows = [tuple(slice(a, min(a + w, n)) for a, w, n in zip(corner, win, sample_shape))
               for corner in itertools.product(*starts)]

    flat = targets.astype(np.int64)
    ref = scores(x) if reference is None else reference
    initial = explained_scores(ref, flat, contrasts).astype(np.float64)
    total = np.zeros(x.shape, dtype=np.float64)
    count = np.zeros(sample_shape, dtype=np.float64)
    per_pass = max(1, samples_per_pass(x[0].nbytes) // len(x))
    with progress.stage(len(windows), "occlusion"):  # each batch of windows is a pass
        for first in range(0, len(windows), per_pass):
            chunk = windows[first:first + per_pass]
            copies = np.repeat(x[None], len(chunk), axis=0)
            for j, region in enumerate(chunk):
                copies[(j, slice(None), *region)] = base[(slice(None), *region)]
            out = scores(copies.reshape(len(chunk) * len(x), *sample_shape))
            occluded = explained_scores(out, np.tile(flat, len(chunk)),
                                        None if contrasts is None else np.tile(contrasts, len(chunk))).reshape(len(chunk), len(x))
            drops = initial[None] - occluded
            for j, region in enumerate(chunk):
                total[(slice(None), *region)] += drops[j].reshape(-1, *[1] * len(sample_shape))
                count[region] += 1
            progress.step(len(chunk))
    return (total / count).astype(np.float32)


def window_shape(size: Size, sample_shape: tuple, channel_axis: Optional[int], what: str,
                 default: Optional[tuple] = None) -> tuple[int, ...]:
    """One window (or stride) size per axis of a sample, from the user's ``size``.

    ``size`` may name every axis, every spatial axis (the channel axis then takes
    the whole axis, or ``default``'s entry for strides), or be one int for every
    spatial axis. ``None`` gives 1 along a single spatial axis (one feature of a
    vector, one time step of a sequence) and about 1/8 of each side of an image.
    """
    size = sizes(what, size)
    spatial = [i for i in range(len(sample_shape)) if i != channel_axis]
    full = [default[i] if default is not None else n for i, n in enumerate(sample_shape)]
    if size is None:
        values = [1 if len(spatial) == 1 else max(1, round(sample_shape[i] / 8)) for i in spatial]
    elif isinstance(size, int):
        values = [size] * len(spatial)
    else:
        values = list(size)
        if len(values) == len(sample_shape):
            return tuple(values)
        if len(values) != len(spatial):
            raise SaliencyError(
                f"{what}={tuple(size)} has {len(values)} entries; samples of shape {sample_shape} need "
                f"{len(sample_shape)} (one per axis, channels included) or {len(spatial)} (one per spatial axis)"
            )
    for i, v in zip(spatial, values):
        full[i] = v
    return tuple(full)


def _check_windows(win: tuple, step: tuple, sample_shape: tuple) -> None:
    for w, s, n in zip(win, step, sample_shape):
        if w < 1 or s < 1:
            raise SaliencyError(f"window and stride sizes must be positive; got window={win}, stride={step}")
        if w > n:
            raise SaliencyError(f"window {win} is larger than a sample of shape {sample_shape}; pass a smaller window=")
        if s > w and w < n:
            raise SaliencyError(
                f"stride {step} is larger than window {win}: some elements would never be occluded; "
                "pass stride= at most the window"
            )


def _broadcast_baseline(baseline: Union[float, np.ndarray], x: np.ndarray) -> np.ndarray:
    base = np.asarray(numeric("baseline", np.asarray(baseline)), dtype=x.dtype)
    try:
        return np.broadcast_to(base, x.shape)
    except ValueError:
        raise SaliencyError(
            f"baseline of shape {base.shape} does not broadcast to the input's shape {x.shape}; "
            "pass a scalar, one sample's shape or the batch's shape"
        ) from None


def samples_per_pass(sample_bytes: int) -> int:
    """How many inputs of ``sample_bytes`` one forward pass takes under ``config.chunk_budget_bytes``."""
    return max(1, math.floor(config.chunk_budget_bytes / max(1, sample_bytes * _FORWARD_FACTOR)))
