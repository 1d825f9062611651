"""Runs a Keras model with some layers' calls intercepted, leaving the model as it is.

Attribution needs to see inside one call of the model: the logits before a final softmax,
the output of a head layer, the output of the layer attributed to (recorded, or replaced by
integrated gradients' points). None of that may show to anyone else calling the model,
from any thread, at any moment (DESIGN §5), so nothing on the user's objects is swapped:

- graph models (Sequential, functional, and graph models nested in them) are run node by
  node through Keras's own graph walk, with the intercepted operations replaced *in the
  walk*; a final activation is skipped by calling a shallow shadow of its layer that shares
  the layer's variables and has ``activation=linear`` (the layer itself is untouched);
- a layer the walk cannot reach (inside a subclassed model's or a custom layer's own
  ``call``) gets, for the length of one synchronous call, a ``call`` that intercepts only in
  the thread that installed it: the model called from any other thread meanwhile runs its
  own ``call``. Only the caller's thread ever installs one (see ``KerasBackend._run``).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

#: ``handler(call, *args, **kwargs) -> outputs``: replaces one layer's call; ``call`` runs the layer.
Handler = Callable[..., Any]
#: Handlers by ``id(layer)``, with the layer.
Handlers = dict[int, tuple[Any, Handler]]

#: Serialises the installing of thread-local calls: two models sharing a layer must not
#: install over each other's.
_INSTALL_LOCK = threading.RLock()


def is_graph_model(obj: Any, keras: Any) -> bool:
    """Keras's own Sequential or functional model, whose call is its graph. Exact types: a
    subclass may override ``call``, and walking its graph would run something else."""
    return type(obj) is keras.Sequential or (isinstance(obj, keras.Model) and type(obj).__name__ == "Functional")


def graph_of(model: Any, keras: Any) -> Any:
    """The functional graph of a graph model (a Sequential's, once built), else None."""
    if type(model) is keras.Sequential:
        return getattr(model, "_functional", None)
    return model if is_graph_model(model, keras) else None


def graph_operations(model: Any, keras: Any) -> set[int]:
    """``id`` of every operation the graph walk of ``model`` reaches, nested graph models included."""
    found: set[int] = set()

    def visit(layer: Any) -> None:
        for op in _operations(layer, keras):
            if id(op) not in found:
                found.add(id(op))
                if is_graph_model(op, keras):
                    visit(op)

    if is_graph_model(model, keras):
        visit(model)
    return found


def needs_thread_local_calls(model: Any, layers: list[Any], keras: Any) -> bool:
    """Whether one of ``layers`` lies outside the graph walk (see :func:`run`)."""
    reachable = graph_operations(model, keras)
    return any(id(layer) not in reachable for layer in layers)


def run(model: Any, inputs: Any, handlers: Handlers, keras: Any) -> Any:
    """``model(inputs, training=False)`` with each handled layer's call replaced by its handler."""
    if not handlers:
        return model(inputs, training=False)
    reachable = graph_operations(model, keras)
    outside = [(layer, handler) for key, (layer, handler) in handlers.items() if key not in reachable]
    with _thread_local_calls(outside):
        if is_graph_model(model, keras):
            return _operation(model, handlers, keras)(inputs)
        return model(inputs, training=False)


def pre_activation(layer: Any, keras: Any) -> Callable[..., Any]:
    """A callable computing ``layer``'s output without its final softmax / sigmoid / log-softmax:
    the identity for a ``Softmax`` layer, else a shadow of the layer (wrappers: with shadows
    of the wrapped layers) whose ``activation`` is linear. The shadows share the layer's
    dictionary entries (its variables) but not the dictionary: the layer is not changed."""
    if isinstance(layer, keras.layers.Softmax):
        return lambda inputs, *args, **kwargs: inputs
    return _shadow_without_activation(layer, keras)


def _shadow_without_activation(layer: Any, keras: Any) -> Any:
    if isinstance(layer, keras.layers.Bidirectional):
        return _shadow(layer, forward_layer=_shadow_without_activation(layer.forward_layer, keras),
                       backward_layer=_shadow_without_activation(layer.backward_layer, keras))
    if isinstance(layer, keras.layers.Wrapper):
        return _shadow(layer, layer=_shadow_without_activation(layer.layer, keras))
    if getattr(getattr(layer, "activation", None), "__name__", None) in ("softmax", "sigmoid", "log_softmax"):
        return _shadow(layer, activation=keras.activations.linear)
    return layer


def _shadow(original: Any, **overrides: Any) -> Any:
    """A new object of ``original``'s class with a copy of its ``__dict__`` and ``overrides``."""
    shadow = object.__new__(type(original))
    shadow.__dict__.update(vars(original))
    shadow.__dict__.update(overrides)
    return shadow


def _operations(model: Any, keras: Any) -> list[Any]:
    """The operations of a graph model's nodes (a Sequential's layers when it has no graph)."""
    graph = graph_of(model, keras)
    if graph is None:
        return list(model.layers)
    return [node.operation for nodes in graph._nodes_by_depth.values() for node in nodes
            if node.operation is not None and not node.is_input]


def _operation(op: Any, handlers: Handlers, keras: Any) -> Callable[..., Any]:
    """How the walk calls ``op``: through its handler, walking into it if it is a graph model
    holding handled layers, or as Keras would (with ``training=False``)."""
    if is_graph_model(op, keras) and handlers.keys() & graph_operations(op, keras):
        call = _walker(op, handlers, keras)
    else:
        call = _plain_call(op)
    entry = handlers.get(id(op))
    if entry is None:
        return call
    handler = entry[1]
    return lambda *args, **kwargs: handler(call, *args, **kwargs)


def _plain_call(op: Any) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        if "training" in getattr(op, "_call_context_args", ()) or getattr(op, "_call_has_training_arg", False):
            kwargs["training"] = False
        return op(*args, **kwargs)

    return call


def _walker(model: Any, handlers: Handlers, keras: Any) -> Callable[..., Any]:
    """Runs a graph model node by node, each operation as :func:`_operation` says."""
    from keras.src.models.functional import unpack_singleton

    graph = graph_of(model, keras)

    def walk(inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if graph is None:  # a Sequential without a graph: its layers in order
            for layer in model.layers:
                inputs = _operation(layer, handlers, keras)(inputs)
            return inputs
        outputs = graph._run_through_graph(graph._standardize_inputs(inputs),
                                           operation_fn=lambda op: _operation(op, handlers, keras))
        return unpack_singleton(outputs)

    return walk


@contextmanager
def _thread_local_calls(entries: list[tuple[Any, Handler]]) -> Iterator[None]:
    """Each layer's ``call`` goes through its handler in this thread only, until the block ends."""
    if not entries:
        yield
        return
    owner = threading.get_ident()
    with _INSTALL_LOCK:
        saved = [(layer, "call" in vars(layer), layer.call) for layer, _ in entries]
        try:
            for (layer, handler), (_, _, original) in zip(entries, saved):
                object.__setattr__(layer, "call", _dispatching(original, handler, owner))
            yield
        finally:
            for layer, had_own, original in reversed(saved):
                if had_own:
                    object.__setattr__(layer, "call", original)
                else:
                    object.__delattr__(layer, "call")


def _dispatching(original: Callable[..., Any], handler: Handler, owner: int) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == owner:
            return handler(original, *args, **kwargs)
        return original(*args, **kwargs)

    return call
