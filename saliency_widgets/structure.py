"""Structured inputs: ``x`` as one array, a tuple/list of arrays or a dict of arrays.

The engine works on a flat list of numpy *entries* plus an :class:`InputSpec`
that knows how to rebuild the user's structure (to call the model, and to shape
results like ``x``). Which entries are attributed is decided here too: by
default every floating-point entry; ``fixed=`` names the ones passed through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .arguments import numeric, shown
from .errors import SaliencyError

#: The model's input names filling a tuple/list ``x`` of so many entries (``Backend.input_names``).
InputNames = Callable[[int], Optional[list[str]]]


@dataclass(frozen=True)
class Structure:
    """The shape of ``x``: one array, or a tuple/list/dict of arrays (DESIGN §3.5)."""

    #: ``"array"``, ``"tuple"``, ``"list"`` or ``"dict"``.
    kind: str
    #: Dict keys, or positions for tuples/lists (``(0,)`` for a single array).
    keys: tuple

    @classmethod
    def of(cls, x: Any) -> "Structure":
        """The structure of ``x``; a plain nested list of numbers is one array, not a list of entries."""
        if isinstance(x, Mapping):
            return cls("dict", tuple(x.keys()))
        if isinstance(x, (tuple, list)) and x and not _is_nested_numbers(x):
            return cls("tuple" if isinstance(x, tuple) else "list", tuple(range(len(x))))
        return cls("array", (0,))

    @property
    def structured(self) -> bool:
        return self.kind != "array"

    def leaves(self, x: Any) -> list[Any]:
        """The entries of ``x`` (which has this structure) in ``keys`` order."""
        return [x] if self.kind == "array" else [x[k] for k in self.keys]

    def summary(self) -> str:
        """``"one array"`` or ``"a dict of 'a', 'b'"``, for messages."""
        return "one array" if self.kind == "array" else f"a {self.kind} of {', '.join(map(repr, self.keys))}"

    def name(self, position: int) -> str:
        """How the entry at ``position`` is called in messages."""
        if self.kind == "array":
            return "x"
        key = self.keys[position]
        return f"x[{key!r}]"

    def pack(self, entries: Sequence[Any]) -> Any:
        """The entries (any array type) in the user's structure."""
        if self.kind == "array":
            return entries[0]
        if self.kind == "dict":
            return dict(zip(self.keys, entries))
        return tuple(entries) if self.kind == "tuple" else list(entries)


@dataclass(frozen=True)
class InputSpec(Structure):
    """A :class:`Structure` plus which of its entries are attributed; maps flat entries back onto ``x``."""

    #: Positions (into the flat entries) of the attributed entries.
    attributed: tuple[int, ...] = ()
    #: The model's names of a tuple/list's entries (its forward parameters, its Keras inputs), for messages.
    labels: tuple[str, ...] = field(default=(), compare=False)

    def name(self, position: int) -> str:
        """How the entry at ``position`` is called in messages, with the model's name for it when known."""
        label = self.labels[position] if position < len(self.labels) else None
        return super().name(position) + (f" (`{label}`)" if label else "")

    def result(self, attributed_values: Sequence[np.ndarray]) -> Any:
        """Results for the attributed entries in ``x``'s structure, ``None`` for fixed entries."""
        if self.kind == "array":
            return attributed_values[0]
        filled: list[Optional[np.ndarray]] = [None] * len(self.keys)
        for position, value in zip(self.attributed, attributed_values):
            filled[position] = value
        return self.pack(filled)

    def describe(self, shapes: Sequence[tuple], dtypes: Sequence[Any]) -> str:
        """What was given, for messages: ``"an input of shape (2, 5)"`` or each entry's shape and dtype."""
        if self.kind == "array":
            return f"an input of shape {tuple(shapes[0])}"
        return ", ".join(f"{self.name(i)} of shape {tuple(s)} ({str(d).replace('torch.', '')})"
                         for i, (s, d) in enumerate(zip(shapes, dtypes)))


def flatten(x: Any, to_numpy: Callable[[Any], np.ndarray], fixed: Any = None,
            input_names: Optional[InputNames] = None) -> tuple[InputSpec, list[np.ndarray]]:
    """``(spec, entries)`` for the user's ``x``: floating entries as float32, others as they are.

    ``fixed``: dict keys or tuple/list positions passed through unchanged and not
    attributed (default: every entry whose dtype is not floating). ``input_names``: the
    model's names for a tuple/list's entries, used in messages; a tuple/list with more
    entries than the model has inputs is refused.
    """
    if isinstance(x, Mapping) and not x:
        raise SaliencyError("x is an empty dict; pass the model's input batch")
    structure = Structure.of(x)
    named = InputSpec(structure.kind, structure.keys, labels=_labels(structure, input_names))
    entries = [_entry(_array(to_numpy, value, named.name(i)), named.name(i))
               for i, value in enumerate(structure.leaves(x))]
    _check_batch(entries, named)
    return replace(named, attributed=_attributed(entries, structure.kind, structure.keys, fixed)), entries


def _is_nested_numbers(x: Sequence[Any]) -> bool:
    """A plain nested list of numbers (one array written as lists), not a tuple of arrays."""
    first = x[0]
    return isinstance(x, list) and (np.isscalar(first) or isinstance(first, list))


def _labels(structure: Structure, input_names: Optional[InputNames]) -> tuple[str, ...]:
    """The model's names for a tuple/list ``x``'s entries (none for a dict: its keys are the names)."""
    if structure.kind not in ("tuple", "list") or input_names is None:
        return ()
    count = len(structure.keys)
    names = input_names(count)
    if names is None:
        return ()
    if len(names) < count:
        takes = f"{len(names)} input{'s' if len(names) != 1 else ''} ({', '.join(map(repr, names))})"
        raise SaliencyError(
            f"x is a {structure.kind} of {count} arrays, but the model takes {takes}; pass one array per input"
            + (" (the array itself, not a list, for a one-input model)" if len(names) == 1 else "")
        )
    return tuple(names[:count])


def _array(to_numpy: Callable[[Any], np.ndarray], value: Any, where: str) -> np.ndarray:
    """``to_numpy(value)``, its refusal (a sparse or meta tensor, ragged lists) naming the entry."""
    try:
        return to_numpy(value)
    except SaliencyError as err:
        raise SaliencyError(f"{where}: {err}") from None


def _entry(array: np.ndarray, where: str) -> np.ndarray:
    if array.ndim == 0:
        raise SaliencyError(f"{where} must be a batch with a leading batch axis, got a scalar")
    if array.shape[0] == 0:
        raise SaliencyError(f"{where} is an empty batch (its first axis has length 0)")
    # Views where possible: entries are never written to, and backends copy them onto the device.
    if array.dtype.kind == "f":
        return array if type(array) is np.ndarray and array.dtype == np.float32 else np.asarray(array, np.float32)
    if array.dtype.kind not in "iub":
        raise SaliencyError(f"{where} has dtype {array.dtype}; entries must be numeric arrays or tensors")
    return np.asarray(array)


def _check_batch(entries: list[np.ndarray], spec: InputSpec) -> None:
    sizes = {int(e.shape[0]) for e in entries}
    if len(sizes) > 1:
        given = ", ".join(f"{spec.name(i)} has batch {e.shape[0]} (shape {tuple(e.shape)})"
                          for i, e in enumerate(entries))
        raise SaliencyError(
            f"every entry of x needs the same leading batch size: {given}; pass the same samples in every entry"
        )


def _attributed(entries: list[np.ndarray], kind: str, keys: tuple, fixed: Any) -> tuple[int, ...]:
    if fixed is None:
        return tuple(i for i, e in enumerate(entries) if e.dtype.kind == "f")
    if isinstance(fixed, (bool, float, np.bool_, np.floating)) or not isinstance(
            fixed, (str, int, np.integer, tuple, list, set, frozenset)):
        raise SaliencyError(f"fixed must be None, a key or position of x, or a list of them; got {shown(fixed)}")
    names = [fixed] if isinstance(fixed, (str, int, np.integer)) else list(fixed)
    if kind == "array":
        raise SaliencyError("fixed= names entries of a tuple, list or dict x; x is a single array")
    unknown = [n for n in names if n not in keys]
    if unknown:
        valid = ", ".join(map(repr, keys))
        raise SaliencyError(f"fixed= names {', '.join(map(repr, unknown))}, which x does not have; x has {valid}")
    return tuple(i for i, k in enumerate(keys) if k not in names)


def tile(entries: Sequence[np.ndarray], count: int, skip: Sequence[int] = ()) -> list[np.ndarray]:
    """Every entry repeated ``count`` times along the batch: row ``k * batch + b`` is sample ``b``.
    Entries at ``skip`` positions are left as they are (the caller replaces them)."""
    if count == 1:
        return list(entries)
    return [e if i in skip else np.concatenate([e] * count) for i, e in enumerate(entries)]


def replaced(entries: Sequence[np.ndarray], positions: Sequence[int], values: Sequence[np.ndarray]) -> list[np.ndarray]:
    """A copy of the entry list with ``values`` at ``positions``."""
    out = list(entries)
    for p, v in zip(positions, values):
        out[p] = v
    return out


def select(entries: Sequence[np.ndarray], rows: Any) -> list[np.ndarray]:
    """The same rows (samples) of every entry."""
    return [e[rows] for e in entries]


def signature(entries: Sequence[np.ndarray]) -> tuple:
    """Per-sample shapes and dtypes: what a traced function or a remembered output shape depends on."""
    return tuple((e.shape[1:], e.dtype.str) for e in entries)


def baseline_entries(spec: InputSpec, entries: list[np.ndarray], baseline: Any,
                     to_numpy: Callable[[Any], np.ndarray]) -> list[np.ndarray]:
    """``baseline=`` as a full entry list: an array for a single-array ``x`` (broadcast),
    or ``x``'s structure; entries it leaves out (dict keys, ``None``) are taken from ``x``."""
    if not spec.structured:
        return [_broadcast(to_numpy(baseline), entries[0], "baseline")]
    if isinstance(baseline, Mapping) and spec.kind == "dict":
        given = {k: baseline[k] for k in baseline}
        unknown = [k for k in given if k not in spec.keys]
        if unknown:
            raise SaliencyError(f"baseline has {', '.join(map(repr, unknown))}, which x does not have")
        values = [given.get(k) for k in spec.keys]
    elif isinstance(baseline, (tuple, list)) and spec.kind in ("tuple", "list") and len(baseline) == len(spec.keys):
        values = list(baseline)
    elif len(spec.attributed) == 1 and not isinstance(baseline, (Mapping, tuple, list)):
        values = [None] * len(spec.keys)
        values[spec.attributed[0]] = baseline
    else:
        raise SaliencyError(
            f"baseline must have x's structure ({spec.kind} of {', '.join(map(repr, spec.keys))}); "
            f"got {type(baseline).__name__}"
        )
    out = []
    for key, value, entry in zip(spec.keys, values, entries):
        if value is None:
            out.append(entry)
            continue
        arr = to_numpy(value)
        out.append(_broadcast(arr, entry, f"baseline[{key!r}]").astype(entry.dtype, copy=False))
    return out


def _broadcast(value: np.ndarray, like: np.ndarray, what: str) -> np.ndarray:
    dtype = np.float32 if np.issubdtype(like.dtype, np.floating) else like.dtype
    with np.errstate(over="ignore", invalid="ignore"):
        cast = np.asarray(numeric(what, np.asarray(value)), dtype=dtype)
    numeric(f"{what} (as {np.dtype(dtype)})", cast)
    try:
        return np.broadcast_to(cast, like.shape).copy()
    except ValueError:
        raise SaliencyError(f"{what} of shape {np.shape(value)} does not broadcast to {like.shape}") from None
