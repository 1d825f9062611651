"""Checks of the public functions' arguments.

A bad value gets a :class:`~saliency_widgets.errors.SaliencyError` naming the
argument, the value given and what to pass instead, before any model runs: never a
numpy or framework exception from deep inside, and never a value silently taken
for another (``True`` is not the integer 1 here). Framework-free: arrays and
tensors are turned into numpy by the ``to_numpy`` the caller passes.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Union

import numpy as np

from .errors import SaliencyError

#: The most SmoothGrad samples: the mean of 10,000 noisy gradients has a standard error of 1 % of
#: one gradient's spread; more only costs time (each sample is a forward and backward pass of a copy
#: of the batch).
MAX_SAMPLES = 10_000
#: The most integrated-gradients steps: Gauss–Legendre quadrature with 2,048 nodes is exact for
#: polynomials of degree 4,095, and computing its nodes (an eigenvalue problem of steps × steps)
#: takes time growing as steps³ (here 0.07 s for 1,024 steps, 1.2 s for 2,048, 23 s for 4,096).
MAX_STEPS = 2_048

#: The largest SmoothGrad noise, as a fraction of the input range (the paper uses 0.1 to 0.2).
MAX_NOISE = 10.0

#: An index into one sample's output: a flat int, or one int per axis.
Index = Union[int, tuple[int, ...]]


def shown(value: Any) -> str:
    """``value`` for a message: its repr (shortened) and, when that does not say it, its type."""
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    kind = type(value).__name__
    return text if isinstance(value, (int, float, str)) and not isinstance(value, bool) else f"{text} ({kind})"


def is_integer(value: Any) -> bool:
    """An ``int`` or numpy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def positive_int(name: str, value: Any, maximum: Optional[int] = None, why: str = "") -> int:
    """``value`` as an int ≥ 1 (and ≤ ``maximum``, refused with ``why``)."""
    if not is_integer(value) or value < 1:
        raise SaliencyError(f"{name} must be a positive integer, got {shown(value)}")
    if maximum is not None and value > maximum:
        raise SaliencyError(f"{name}={int(value):,} is more than the cap of {maximum:,}: {why}")
    return int(value)


def fraction(name: str, value: Any) -> float:
    """``value`` as a finite, non-negative fraction of the input range, at most :data:`MAX_NOISE`."""
    if not (is_integer(value) or isinstance(value, (float, np.floating))) or not (
            math.isfinite(value) and value >= 0):
        raise SaliencyError(f"{name} must be a finite, non-negative fraction of the input range (e.g. 0.15), "
                            f"got {shown(value)}")
    if value > MAX_NOISE:
        raise SaliencyError(f"{name}={value:g} is more than {MAX_NOISE:g} times the input range: the noise would "
                            "drown the input (SmoothGrad uses 0.1 to 0.2); pass a fraction such as 0.15")
    return float(value)


def flag(name: str, value: Any) -> bool:
    """``value``, which must be True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise SaliencyError(f"{name} must be True or False, got {shown(value)}")
    return bool(value)


def seed(value: Any) -> Union[None, int, np.random.Generator]:
    """A SmoothGrad seed: None (fresh noise), a non-negative int, or a numpy ``Generator``."""
    if value is None or isinstance(value, np.random.Generator):
        return value
    if is_integer(value) and value >= 0:
        return int(value)
    raise SaliencyError(f"seed must be None, a non-negative int or a numpy Generator, got {shown(value)}")


def sizes(name: str, value: Any) -> Union[None, int, tuple[int, ...]]:
    """An occlusion ``window``/``stride``: None, a positive int, or a non-empty sequence of them."""
    if value is None:
        return None
    if is_integer(value) and value >= 1:
        return int(value)
    if isinstance(value, (tuple, list)) and value and all(is_integer(v) and v >= 1 for v in value):
        return tuple(int(v) for v in value)
    raise SaliencyError(f"{name} must be a positive int (every spatial axis) or a tuple of positive ints (one per "
                        f"axis), got {shown(value)}")


def numeric(name: str, array: np.ndarray) -> np.ndarray:
    """``array``, refused unless it holds finite numbers (bool, int or float)."""
    if array.dtype.kind not in "biuf":
        raise SaliencyError(f"{name} must be a number or a numeric array, got an array of dtype {array.dtype}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        bad = int(array.size - np.count_nonzero(np.isfinite(array)))
        raise SaliencyError(f"{name} must be finite, got {bad} NaN or infinite values; pass finite numbers")
    return array


def plain_target(target: Any, to_numpy: Callable[[Any], np.ndarray], what: str = "target"
                 ) -> Union[None, Index, list[Index]]:
    """``target`` (or a ``contrast``, named ``what`` in messages) with arrays and tensors made plain:
    None, an int, an index tuple, or a list with one of those per sample. A 0-d array or tensor is the
    int it holds; a 1-d one gives one int per sample, a 2-d one one index tuple per sample."""
    if target is None or isinstance(target, tuple):
        return target if target is None else _index(target, what)
    if isinstance(target, list):
        return [_index(tuple(t) if isinstance(t, list) else t, what) for t in target]
    if is_integer(target):
        return int(target)
    if hasattr(target, "shape") and hasattr(target, "dtype"):  # an array or a tensor
        array = np.asarray(to_numpy(target))
        if array.dtype.kind in "iu" and array.ndim <= 2:
            listed = array.tolist()
            return listed if array.ndim < 2 else [tuple(t) for t in listed]
    raise SaliencyError(
        f"{what} must be None, an int, one int per sample (a list or 1-d integer array), or a tuple "
        f"index into one sample's output; got {shown(target)}"
    )


def plain_outputs(outputs: Any, to_numpy: Callable[[Any], np.ndarray]) -> Optional[list[Index]]:
    """``jacobian``'s ``outputs=``: None (every output) or a non-empty list of flat ints / index tuples."""
    if outputs is None:
        return None
    listed = None
    if isinstance(outputs, (list, tuple)):
        listed = list(outputs)
    elif hasattr(outputs, "shape") and hasattr(outputs, "dtype"):
        array = np.asarray(to_numpy(outputs))
        listed = array.tolist() if array.ndim >= 1 and array.dtype.kind in "iu" else None
    if listed is None:
        raise SaliencyError(f"outputs must be None or a list of output indices (e.g. outputs=[0, 2]), "
                            f"got {shown(outputs)}")
    if not listed:
        raise SaliencyError("outputs=[] selects no output; pass at least one output index, or None for all")
    return [_index(tuple(o) if isinstance(o, list) else o, "outputs") for o in listed]


def _index(index: Any, what: str) -> Index:
    """One output index, an int or a tuple of ints (numpy ints and 0-d integer arrays made plain)."""
    if is_integer(index):
        return int(index)
    if isinstance(index, np.ndarray) and index.ndim == 0 and index.dtype.kind in "iu":
        return int(index)
    if isinstance(index, tuple) and all(is_integer(i) for i in index):
        return tuple(int(i) for i in index)
    raise SaliencyError(
        f"{what} must be None, an int, one int per sample, or a tuple index into one sample's output; "
        f"got {shown(index)}"
    )
