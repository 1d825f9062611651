"""One call of the model inside a traced function: a private copy of an NNX module, in inference
mode, whose chosen submodules are tapped — their output recorded, replaced by an argument, or
shifted by an argument (a zero, whose gradient is the gradient with respect to that output).

``nnx.merge(graphdef, state, copy=True)`` inside the trace builds the copy, with variables of its
own; only the copy is ever changed
(its train / eval flags, and the class of a tapped submodule, swapped for a subclass whose
``__call__`` hands the call to this thread's handler). The user's module is read by
``nnx.split`` and never written.
"""

from __future__ import annotations

import threading
import types
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

import jax
from jax._src import core as jax_core

from ...errors import SaliencyError
from ..base import attributes_call
from ...structure import InputSpec

Path = tuple
#: How a call treats the attribution layer's output: recorded only, replaced by the argument
#: (``"replace"``), or the argument added to it (``"add"``: a zero whose gradient is the layer's).
Mode = Optional[str]

_TAPPED: dict[type, type] = {}
_TAPPED_LOCK = threading.Lock()
_LOCAL = threading.local()

_IN_TRANSFORM = ("runs inside a JAX transform of the model (jax.vmap, lax.scan, nnx.scan, nnx.vmap, nnx.remat ...; "
                 "e.g. a recurrent cell run once per time step), where its output for the whole batch cannot be "
                 "reached: choose the module that applies the transform (e.g. the nnx.RNN)")


@dataclass(frozen=True)
class Call:
    """What one model call taps: the static part of a jitted function, compared by equality."""

    #: The module's graph definition (None for a plain or jitted function).
    graphdef: Any
    #: Paths of the attribution layer's submodules (``LayerRef.objects``), empty without ``layer=``.
    layer: tuple = ()
    #: ``LayerRef.calls``: which of the layer's calls count.
    calls: str = "once"
    #: The layer's name, for messages.
    layer_name: str = ""
    #: Path of the submodule whose output is explained (``head=`` a layer), else None.
    head: Optional[Path] = None


@dataclass
class Record:
    """What one tapped call saw."""

    #: The attribution layer's outputs, one per counted call.
    leaves: list = field(default_factory=list)
    #: The head layer's output (its first call), or None.
    head: Any = None
    head_ran: bool = False
    calls: int = 0
    offset: int = 0


class LayerDidNotRun(Exception):
    """A tapped layer (``layer=`` or a layer head) never ran in the call."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.path = path


def run(function: Any, call: Call, state: Any, spec: InputSpec, tensors: list, *, mode: Mode = None,
        value: Any = None) -> tuple[Any, Record]:
    """``(raw output, record)`` of the model on ``tensors`` (in ``spec``'s structure): ``function``
    itself without a graph definition, else a private copy of the module merged from ``state``."""
    if call.graphdef is None:
        return invoke(function, spec, tensors), Record()
    from flax import nnx

    model = nnx.merge(call.graphdef, state, copy=True)
    _inference_mode(model)
    record = Record()
    handlers: dict[Path, Callable] = {}
    for path in call.layer:
        handlers[path] = _layer_handler(call, record, mode, value)
    if call.head is not None:
        handlers[call.head] = _head_handler(record, handlers.get(call.head))
    modules = dict(nnx.iter_modules(model)) if handlers else {}
    with tapping({id(_tap(modules[p])): h for p, h in handlers.items()}, strict=True):
        raw = invoke(model, spec, tensors)
    if call.layer and not record.calls:
        raise LayerDidNotRun(call.layer[0])
    if call.head is not None and not record.head_ran:
        raise LayerDidNotRun(call.head)
    return raw, record


def first_calls(graphdef: Any, state: Any, spec: InputSpec, tensors: list, paths: list[Path]) -> dict[Path, Any]:
    """The output (its first array) of each submodule at ``paths`` that runs, at its first call
    (outside any transform inside the model), in a private copy of the module."""
    from flax import nnx

    model = nnx.merge(graphdef, state, copy=True)
    _inference_mode(model)
    modules = dict(nnx.iter_modules(model))
    seen: dict[Path, Any] = {}
    outer = _current_trace()

    def recorder(path: Path) -> Callable:
        def handler(call: Callable, *args: Any, **kwargs: Any) -> Any:
            out = call(*args, **kwargs)
            if _current_trace() is outer:  # not one element of a transform inside the model
                seen.setdefault(path, first_array(out))
            return out

        return handler

    with tapping({id(_tap(modules[p])): recorder(p) for p in paths if p in modules}, strict=False):
        invoke(model, spec, tensors)
    return seen


def _inference_mode(model: Any) -> None:
    """The private copy in inference mode (dropout off, batch norm with its running statistics), as
    ``Module.eval`` sets it (called on the base class: a model's own ``eval`` may mean something else)."""
    from flax import nnx

    nnx.Module.set_attributes(model, deterministic=True, use_running_average=True, raise_if_not_found=False)


def invoke(model: Any, spec: InputSpec, tensors: list) -> Any:
    """``model(x)``, ``model(*x)`` for a tuple / list ``x``, ``model(**x)`` for a dict."""
    packed = spec.pack(tensors)
    if spec.kind == "dict":
        return model(**packed)
    if spec.kind in ("tuple", "list"):
        return model(*packed)
    return model(packed)


def first_array(output: Any) -> Any:
    """A module's output array; for tuples such as a recurrent cell's ``(carry, output)``, the first."""
    while isinstance(output, (tuple, list)) and output:
        output = output[0]
    return output


def _with_first(output: Any, new: Any) -> Any:
    """``output`` with its first array (as :func:`first_array` finds it) replaced by ``new``."""
    if isinstance(output, (tuple, list)) and output:
        return type(output)((_with_first(output[0], new), *output[1:]))
    return new


def _layer_handler(call: Call, record: Record, mode: Mode, value: Any) -> Callable:
    """The attribution layer's tap: counts its calls (refusing a second unless ``call.calls`` says
    which count), records its output, and replaces it (``"replace"``) or adds to it (``"add"``) the
    slice of ``value`` for this call (along axis 1 with ``calls="all"``, else all of it)."""
    outer = _current_trace()

    def handler(module_call: Callable, *args: Any, **kwargs: Any) -> Any:
        if _current_trace() is not outer:
            raise SaliencyError(f"layer {call.layer_name!r} {_IN_TRANSFORM}")
        record.calls += 1
        out = module_call(*args, **kwargs)
        if not attributes_call(call.layer_name, call.calls, record.calls):
            return out
        first = first_array(out)
        if not isinstance(first, jax.Array):
            raise SaliencyError(f"layer {call.layer_name!r} returned {type(first).__name__}, not an array")
        record.leaves.append(first)
        if mode is None:
            return out
        if call.calls == "all":
            piece = value[:, record.offset:record.offset + first.shape[1]]
            record.offset += first.shape[1]
        else:
            piece = value
        if piece.shape != first.shape:
            raise SaliencyError(f"layer {call.layer_name!r} outputs shape {first.shape}, but the activation given "
                                f"has shape {piece.shape}")
        piece = piece.astype(first.dtype)
        return _with_first(out, piece if mode == "replace" else first + piece)

    return handler


def _head_handler(record: Record, inner: Optional[Callable]) -> Callable:
    """The head layer's tap: records its (first) output at its first call, after ``inner``'s tap."""
    outer = _current_trace()

    def handler(module_call: Callable, *args: Any, **kwargs: Any) -> Any:
        if _current_trace() is not outer:
            raise SaliencyError(f"the layer given as head= {_IN_TRANSFORM}")
        out = inner(module_call, *args, **kwargs) if inner else module_call(*args, **kwargs)
        if not record.head_ran:
            record.head_ran, record.head = True, first_array(out)
        return out

    return handler


@contextmanager
def tapping(handlers: dict[int, Callable], *, strict: bool) -> Iterator[None]:
    """The handlers (by ``id`` of a tapped copy's submodule) of this thread, for one call.
    ``strict``: a tapped module reached without its handler (a copy that a transform inside the
    model made of it) is refused, else it runs untapped."""
    before = getattr(_LOCAL, "handlers", {}), getattr(_LOCAL, "strict", True)
    _LOCAL.handlers, _LOCAL.strict = {**before[0], **handlers}, strict
    try:
        yield
    finally:
        _LOCAL.handlers, _LOCAL.strict = before


def _current_trace() -> Any:
    """JAX's current trace (read only): a module called inside a transform of the model (``jax.vmap``,
    ``lax.scan`` …) runs under another trace than the model's call, and sees one element of the batch."""
    context = getattr(jax_core, "trace_ctx", None)
    return getattr(context, "trace", None)


def _tap(module: Any) -> Any:
    """``module`` (a private copy's submodule) with its class swapped for the tapped subclass."""
    object.__setattr__(module, "__class__", _tapped_class(type(module)))
    return module


def _tapped_class(cls: type) -> type:
    """One subclass per class (NNX registers every class it sees, so they are made once), whose
    ``__call__`` hands each call to the handler this thread holds for the instance."""
    if cls in _TAPPED.values():
        return cls
    with _TAPPED_LOCK:
        if cls not in _TAPPED:
            def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
                handler = getattr(_LOCAL, "handlers", {}).get(id(self))
                call = super(tapped, self).__call__
                if handler is not None:
                    return handler(call, *args, **kwargs)
                if getattr(_LOCAL, "strict", True):  # a copy of the copy, made by a transform inside the model
                    raise SaliencyError(f"the {cls.__name__} chosen as layer= or head= {_IN_TRANSFORM}")
                return call(*args, **kwargs)

            namespace = {"__call__": __call__, "__module__": cls.__module__, "__qualname__": cls.__qualname__}
            tapped = types.new_class(cls.__name__, (cls,), {"pytree": cls._pytree__is_pytree},
                                     lambda ns: ns.update(namespace))
            _TAPPED[cls] = tapped
    return _TAPPED[cls]

