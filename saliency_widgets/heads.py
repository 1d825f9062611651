"""Which of a model's outputs is explained (``head=``), written once for every framework.

A backend runs the model and hands the raw outputs (a tensor, a tuple/list, a
dict, or a dataclass such as a HuggingFace ``ModelOutput``) to
:func:`select_output`; layer heads are captured by the backend itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .errors import SaliencyError


def select_output(outputs: Any, head: Any, is_tensor: Callable[[Any], bool],
                  names: Optional[Sequence[str]] = None) -> Any:
    """The tensor ``head`` picks from ``outputs``.

    ``head``: ``None`` (the output if it is one tensor, else its ``logits``
    entry), an ``int`` or ``str`` (an entry of a tuple/list/dict/dataclass
    output; ``names`` are the names of a list output's entries, as Keras has),
    or a callable ``head(outputs) -> tensor``.
    """
    if callable(head) and not isinstance(head, (str, int)):
        picked = head(outputs)
        if not is_tensor(picked):
            raise SaliencyError(f"head(outputs) returned {type(picked).__name__}; it must return one tensor")
        return picked
    if is_tensor(outputs):
        if head is None:
            return outputs
        raise SaliencyError(
            f"head={head!r} picks an entry of several outputs, but the model returns one tensor; "
            "pass a layer (name, index or object as in sw.layers) to explain a hidden layer"
        )
    entries = _entries(outputs)
    if head is None:
        if "logits" in entries:
            return _tensor(entries["logits"], "logits", is_tensor)
        if len(entries) == 1:
            (key, value), = entries.items()
            return _tensor(value, key, is_tensor)
        raise SaliencyError(
            f"the model returns {len(entries)} outputs and none is called 'logits'; pass head= one of "
            f"{choices(outputs, names)}, or a callable head(outputs) -> tensor"
        )
    if isinstance(head, str) and names is not None and head in names and head not in entries:
        head = list(names).index(head)
    if isinstance(head, (int, np.integer)) and not isinstance(head, bool):
        values = list(entries.values())
        if -len(values) <= head < len(values):
            return _tensor(values[int(head)], head, is_tensor)
    elif head in entries:
        return _tensor(entries[head], head, is_tensor)
    raise SaliencyError(f"the model's outputs have no entry {head!r}; choose head= one of {choices(outputs, names)}")


def output_keys(outputs: Any, names: Optional[Sequence[str]] = None) -> list[Any]:
    """The keys ``head=`` accepts for a structured output (names where there are names)."""
    entries = _entries(outputs)
    keys = list(entries)
    if names is not None and len(names) == len(keys) and all(isinstance(k, int) for k in keys):
        return list(names)
    return keys


def choices(outputs: Any, names: Optional[Sequence[str]] = None) -> str:
    return ", ".join(repr(k) for k in output_keys(outputs, names))


def _entries(outputs: Any) -> dict[Any, Any]:
    if isinstance(outputs, Mapping):
        return {k: v for k, v in outputs.items() if v is not None}
    if isinstance(outputs, (tuple, list)):
        return dict(enumerate(outputs))
    if dataclasses.is_dataclass(outputs):
        return {f.name: getattr(outputs, f.name) for f in dataclasses.fields(outputs)
                if getattr(outputs, f.name) is not None}
    raise SaliencyError(
        f"the model returned {type(outputs).__name__}; pass head= a callable head(outputs) -> tensor "
        "that picks the tensor to explain"
    )


def _tensor(value: Any, key: Any, is_tensor: Callable[[Any], bool]) -> Any:
    if not is_tensor(value):
        raise SaliencyError(
            f"output entry {key!r} is a {type(value).__name__}, not a tensor; pass head= a callable "
            "head(outputs) -> tensor"
        )
    return value


def looks_like_probabilities(scores: np.ndarray) -> bool:
    """Non-negative rows (along the last axis, > 1 wide) that each sum to 1."""
    if scores.ndim < 2 or scores.shape[-1] < 2 or scores.min() < 0:
        return False
    return bool(np.abs(scores.sum(axis=-1, dtype=np.float64) - 1.0).max() <= 1e-3)


def explained_scores(scores: np.ndarray, targets: np.ndarray, contrasts: Optional[np.ndarray] = None) -> np.ndarray:
    """Each sample's explained score, ``(n,)`` in ``scores``' dtype: its output ``targets[i]``
    (flat indices into ``scores`` ``(n, *out)``), minus its output ``contrasts[i]`` where given —
    "why A and not B"."""
    flat = scores.reshape(len(scores), -1)
    rows = np.arange(len(flat))
    picked = flat[rows, targets]
    return picked if contrasts is None else picked - flat[rows, contrasts]
