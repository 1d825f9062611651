"""Keras 3 backend, on TensorFlow, torch or JAX: Sequential, functional and subclassed
``keras.Model``. The Keras code is here once; gradients come from the engine of the backend
Keras runs on (:mod:`.engine`)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Callable, Optional

import keras
import numpy as np

from ...errors import NotAModelError, SaliencyError
from ...heads import select_output
from ...structure import signature
from ...weights import LayerInfo, RecurrentCell, WeightBlock, did_not_run_error, resolve_layer
from . import graph as keras_graph
from ..base import Backend, LayerRef, Query, Targets, sum_of_copies, target_array
from .engine import Engine, LayerDidNotRun, recorded, recording, replacing
from .graph import is_graph_model

_FINAL_ACTIVATIONS = ("softmax", "sigmoid", "log_softmax")

# Keras colours its error messages for terminals.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


#: The gradient engine of each Keras backend: (module, class) in this package.
_ENGINES = {"tensorflow": ("tensorflow_engine", "TensorFlowEngine"), "torch": ("torch_engine", "TorchEngine"),
            "jax": ("jax_engine", "JaxEngine")}


def _engine(backend: "KerasBackend") -> Engine:
    """The gradient engine for the backend Keras runs on (imported only now: Keras on JAX never
    imports TensorFlow)."""
    name = keras.backend.backend()
    if name not in _ENGINES:
        raise NotAModelError(
            f"Keras runs on the {name!r} backend, which has no gradients; saliency_widgets supports Keras 3 on "
            f"{', '.join(_ENGINES)} (set KERAS_BACKEND before importing keras)"
        )
    module, cls = _ENGINES[name]
    return getattr(import_module(f"{__package__}.{module}"), cls)(backend)


class KerasBackend(Backend):
    """Runs a Keras model with ``training=False`` and differentiates it with the engine of the
    backend Keras runs on (compiled ``tf.GradientTape`` functions, ``torch.autograd``, or jit-compiled
    ``jax.vjp`` over the model's variables passed in a stateless scope).

    Nothing is changed on the model: no variable is written, ``trainable`` flags are
    left alone, and batch norm uses its moving statistics. Logits, head and attribution
    layers are intercepted by :mod:`.graph`, which swaps nothing another thread can see.
    """

    framework = "keras"

    def __init__(self, model: Any) -> None:
        if not callable(model):
            raise NotAModelError(f"{type(model).__qualname__} is not a callable Keras model")
        super().__init__(model)
        self._plans: dict[tuple, _Plan] = {}
        self._engine = _engine(self)
        #: Input signatures found to fit the inputs the model declares.
        self._fitting_inputs: set[tuple] = set()
        #: A stateful layer of the model (refused by every computation), or None.
        self._stateful = _stateful_layer(model)
        self._lock = threading.RLock()

    # ----------------------------------------------------------------- inputs
    def describe_expected_input(self) -> Optional[str]:
        try:
            inputs = list(self.model.inputs)
        except (AttributeError, ValueError, TypeError):
            return None
        shapes = [str(("batch",) + tuple(t.shape)[1:]).replace("'", "") for t in inputs]
        if len(inputs) == 1:
            return shapes[0]
        names = [getattr(t, "name", f"input {i}") for i, t in enumerate(inputs)]
        return "a list or dict of " + ", ".join(f"{n} {s}" for n, s in zip(names, shapes))

    def input_names(self, count: int) -> Optional[list[str]]:
        """The names of the inputs the model declares (``model.inputs``); None where it declares none."""
        try:
            return [t.name for t in self.model.inputs]
        except (AttributeError, ValueError, TypeError):
            return None

    def computes_unseen(self) -> bool:
        """True for a graph model (Sequential, functional) whose every layer the graph walk reaches:
        no query then needs a thread-local ``call``, which only the caller's thread may install
        (:mod:`.keras_graph`). Traces already run in background threads (:meth:`_trace_in_background`)."""
        model = self.model
        if not keras_graph.is_graph_model(model, keras):
            return False
        reachable = keras_graph.graph_operations(model, keras)
        return all(id(layer) in reachable or isinstance(layer, keras.layers.InputLayer)
                   for layer in model._flatten_layers(include_self=False, recursive=True))

    @property
    def is_training(self) -> bool:
        return False  # Keras has no model-wide mode: every call here passes training=False

    def is_layer(self, obj: Any) -> bool:
        return isinstance(obj, keras.layers.Layer)

    def find_layer(self, layer: Any) -> LayerRef:
        from .weights import listed_layers

        name, obj = resolve_layer(listed_layers(self.model), layer)
        return LayerRef(name, obj)

    def skipped_activation(self, query: Query) -> Optional[str]:
        plan = self._plans.get(query.key)
        return None if plan is None else plan.skipped

    def per_sample_output_shape(self, query: Query, entries: list[np.ndarray]) -> Optional[tuple[int, ...]]:
        from .samples import declared_output_shape

        return declared_output_shape(self.model, self._plan(query).head, self._output_names(), query.spec, entries,
                                     keras)

    def _output_names(self) -> list[str]:
        names = getattr(self.model, "output_names", None)
        return list(names) if names else []

    def _plan(self, query: Query) -> "_Plan":
        """The resolved head and the activations to skip for logits, from the functional graph."""
        if query.key in self._plans:
            return self._plans[query.key]
        head = query.head
        names = self._output_names()
        n_outputs = len(_graph_outputs(self.model, keras) or names) or 1
        if isinstance(head, int) and n_outputs == 1 or isinstance(head, str) and head not in names:
            head = self.find_layer(head)
        if isinstance(head, LayerRef):
            final = _final_activation(head.obj, 0, keras)
        else:
            producer = _output_producer(self.model, head, names, keras)
            final = None if producer is None else _final_activation(*producer, keras)
        plan = _Plan(head, *(final or (None, None)))
        self._plans[query.key] = plan
        return plan

    # ---------------------------------------------------------------- compute
    def _handlers(self, query: Query, plan: "_Plan", state: dict[str, Any]) -> keras_graph.Handlers:
        """How one model call is intercepted (see :mod:`.keras_graph`): the final activation
        skipped for logits, the head layer's output recorded, ``query.layer``'s output recorded
        (watched by ``state["tape"]``) or replaced by ``state["activation"]``."""
        handlers: keras_graph.Handlers = {}
        if query.logits and plan.skip is not None:
            skipping = keras_graph.pre_activation(plan.skip, keras)
            handlers[id(plan.skip)] = (plan.skip, lambda call, *args, **kwargs: skipping(*args, **kwargs))
        if isinstance(plan.head, LayerRef):
            handlers[id(plan.head.obj)] = (plan.head.obj, recording(state, "head", handlers.get(id(plan.head.obj))))
        if query.layer is not None:
            for layer in query.layer.objects:
                handlers[id(layer)] = (layer, replacing(query.layer, state, handlers.get(id(layer))))
        return handlers

    def explained(self, query: Query, tensors: list[Any], state: dict[str, Any]) -> Any:
        """The explained output (logits if asked) of one model call."""
        plan = self._plan(query)
        raw = keras_graph.run(self.model, query.spec.pack(tensors), self._handlers(query, plan, state), keras)
        if isinstance(plan.head, LayerRef):
            return recorded(state, "head", plan.head)
        return select_output(raw, plan.head, keras.ops.is_tensor, self._output_names())

    def thread_local(self, query: Query) -> bool:
        """Whether this query's calls intercept a layer outside the graph walk, which only the
        caller's thread may do (so its function is traced there, not in the background)."""
        plan = self._plan(query)
        if plan.thread_local is None:
            plan.thread_local = keras_graph.needs_thread_local_calls(
                self.model, [layer for layer, _ in self._handlers(query, plan, {}).values()], keras)
        return plan.thread_local

    def _run(self, kind: str, query: Query, entries: list[np.ndarray], *args: np.ndarray,
             activation: Optional[np.ndarray] = None) -> Any:
        """Runs one call in the engine, holding the model's lock (calls on one model are serialised),
        after refusing a model a call would change and entries the model's inputs contradict."""
        with self._lock:
            self._require_runnable()
            self._require_fitting_input(query, entries)
            try:
                return self._engine.run(kind, query, entries, list(args), activation)
            except LayerDidNotRun as err:
                from .weights import type_name

                tensors = [keras.ops.convert_to_tensor(e) for e in entries]
                raise did_not_run_error(err.layer.name, type_name(err.layer.obj),
                                        self._layers_that_run(query, tensors)) from None

    def _require_runnable(self) -> None:
        """Refuses, before any call, a model that a call would change: an unbuilt one (calling it
        builds it) or one holding a stateful layer (calling it moves its state on)."""
        from .weights import require_built, type_name

        require_built(self.model)
        stateful = self._stateful
        if stateful is not None:
            raise SaliencyError(
                f"layer {stateful.name!r} ({type_name(stateful)}) is stateful: stateful RNNs carry state between "
                "calls; rebuild with stateful=False (and the same weights) to explain it (every call here would "
                "move its state on, and the attribution would depend on the calls before)"
            )

    def _require_fitting_input(self, query: Query, entries: list[np.ndarray]) -> None:
        """Refuses entries that contradict the inputs the model declares, before it runs: an error
        raised while it runs then comes from the model's own code and reaches the user unchanged."""
        from .samples import input_mismatch

        key = (query.spec.kind, query.spec.keys, signature(entries))
        if key in self._fitting_inputs:
            return
        mismatch = input_mismatch(self.model, query.spec, entries, keras)
        if mismatch is not None:
            raise self._input_error(query, entries, mismatch)
        self._fitting_inputs.add(key)

    def _input_error(self, query: Query, entries: list[np.ndarray], mismatch: str) -> SaliencyError:
        expected = self.describe_expected_input()
        said = " ".join(_ANSI_ESCAPE.sub("", mismatch).split())
        given = query.spec.describe([e.shape for e in entries], [e.dtype for e in entries])
        hint = f"; the model expects {expected}" if expected else ""
        return SaliencyError(f"the model could not run on {given}{hint}. ({said[:300]})")

    def _layers_that_run(self, query: Query, tensors: list[Any]) -> list[tuple[str, str]]:
        """``(name, type)`` of the listed layers that run when the model is called on ``tensors``."""
        from .weights import listed_layers, type_name

        listed = listed_layers(self.model)
        ran: set[int] = set()

        def recorder(obj: Any) -> Callable:
            def handler(call: Callable, *args: Any, **kwargs: Any) -> Any:
                ran.add(id(obj))
                return call(*args, **kwargs)

            return handler

        handlers = {id(obj): (obj, recorder(obj)) for _, obj in listed}
        keras_graph.run(self.model, query.spec.pack(tensors), handlers, keras)
        return [(name, type_name(obj)) for name, obj in listed if id(obj) in ran]

    def forward(self, query: Query, entries: list[np.ndarray], activation: Optional[np.ndarray] = None) -> np.ndarray:
        return self._run("forward", query, entries, activation=activation)

    def activation(self, query: Query, entries: list[np.ndarray]) -> np.ndarray:
        return self._run("activation", query, entries)

    def vjp(self, query: Query, entries: list[np.ndarray], targets: Targets,
            activation: Optional[np.ndarray] = None, *, layout: Any = None,
            copy_weights: Optional[np.ndarray] = None) -> tuple[np.ndarray, list[np.ndarray]]:
        y, grads = self._run("vjp", query, entries, target_array(targets, len(entries[0])), activation=activation)
        if copy_weights is not None:
            grads = [sum_of_copies(g, copy_weights) for g in grads]
        return y, list(grads)

    def layer_vjp(self, query: Query, entries: list[np.ndarray], targets: Targets
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y, leaf, grad = self._run("layer_vjp", query, entries, target_array(targets, len(entries[0])))
        return y, leaf, grad

    def jacobian_rows(self, query: Query, entries: list[np.ndarray], rows: np.ndarray) -> list[np.ndarray]:
        return list(self._run("jacobian", query, entries, rows.astype(np.int32)))

    def output_rows(self, query: Query, entries: list[np.ndarray], positions: np.ndarray, tokens: np.ndarray, *,
                    minus: Optional[np.ndarray] = None, normalize: Optional[str] = None,
                    activation: Optional[Any] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        kind = f"rows/{normalize}/{'minus' if minus is not None else 'plain'}"
        args = [np.asarray(a, dtype=np.int64) for a in (positions, tokens, minus) if a is not None]
        scores, layer_output, grads = self._run(kind, query, entries, *args, activation=activation)
        return scores, layer_output, grads

    # ---------------------------------------------------------------- weights
    def layers(self, example: Optional[np.ndarray] = None) -> list[LayerInfo]:
        from .weights import keras_layers, require_built

        require_built(self.model)
        return keras_layers(self.model, example)

    def layer_cell(self, layer: Any) -> Optional[RecurrentCell]:
        from .weights import keras_layer_cell

        return keras_layer_cell(self.model, layer)

    def layer_weights(self, layer: Any, *, split_gates: bool = True) -> list[WeightBlock]:
        from .weights import keras_layer_weights, require_built

        require_built(self.model)
        return keras_layer_weights(self.model, layer, split_gates)

    def architecture(self) -> Optional[tuple]:
        """The model's class and its weights' paths, shapes and dtypes."""
        model = self.model
        return (type(model).__module__, type(model).__qualname__,
                tuple((w.path, tuple(w.shape), str(w.dtype)) for w in model.weights))

    def named_weights(self) -> Optional[list[tuple[str, np.ndarray]]]:
        """``model.weights``, trainable or not, by position: their paths hold generated names
        (``dense_3/kernel``) that a rebuilt model changes."""
        return [(str(i), keras.ops.convert_to_numpy(w.value)) for i, w in enumerate(self.model.weights)]


@dataclass
class _Plan:
    """What a query resolved to on this model."""

    #: None / int / str / callable (an entry of the outputs) or a LayerRef.
    head: Any
    #: The layer whose call is replaced by its pre-activation for logits (see ``keras_graph.pre_activation``).
    skip: Any
    #: The name of the activation skipped, if any.
    skipped: Optional[str]
    #: Whether a call intercepts a layer outside the graph walk (known after the first call).
    thread_local: Optional[bool] = None


def _stateful_layer(model: Any) -> Optional[Any]:
    """The first layer of ``model`` (itself, or nested at any depth) built with ``stateful=True``."""
    layers = model._flatten_layers() if hasattr(model, "_flatten_layers") else []
    return next((layer for layer in layers if getattr(layer, "stateful", False) is True), None)


def _graph_outputs(model: Any, keras: Any) -> Optional[list[Any]]:
    """The symbolic outputs of a Sequential / functional model, or None."""
    if not is_graph_model(model, keras):
        return None
    try:
        return list(model.outputs)
    except (AttributeError, ValueError):
        return None


def _output_producer(model: Any, head: Any, names: list[str], keras: Any) -> Optional[tuple[Any, int]]:
    """``(layer, output index)`` producing the explained output of a graph model, if it can be told."""
    outputs = _graph_outputs(model, keras)
    if not outputs:
        if isinstance(model, keras.Sequential) and model.layers and head is None:
            return model.layers[-1], 0
        return None
    if head is None:
        index = names.index("logits") if len(outputs) > 1 and "logits" in names else 0
    elif isinstance(head, int):
        index = head
    elif isinstance(head, str) and head in names:
        index = names.index(head)
    else:
        return None
    if not -len(outputs) <= index < len(outputs):
        return None
    history = getattr(outputs[index], "_keras_history", None)
    return None if history is None else (history.operation, history.tensor_index)


def _final_activation(layer: Any, tensor_index: int, keras: Any) -> Optional[tuple[Any, str]]:
    """``(layer whose call is replaced, activation name)``: the softmax / sigmoid / log-softmax
    producing ``layer``'s output — its own ``activation=``, a ``Softmax`` / ``Activation`` layer,
    inside ``TimeDistributed`` / ``Bidirectional`` wrappers (the wrapper is replaced) and nested
    graph models (their inner layer is); None when there is none."""
    if is_graph_model(layer, keras):
        producer = _output_producer(layer, tensor_index, [], keras)
        return None if producer is None else _final_activation(*producer, keras)
    if isinstance(layer, keras.layers.Softmax):
        return layer, "softmax"
    if isinstance(layer, keras.layers.Bidirectional):
        inner = _final_activation(layer.forward_layer, 0, keras)
        return None if inner is None else (layer, inner[1])
    if isinstance(layer, keras.layers.Wrapper):
        inner = _final_activation(layer.layer, 0, keras)
        return None if inner is None else (layer, inner[1])
    name = getattr(getattr(layer, "activation", None), "__name__", None)
    return (layer, name) if name in _FINAL_ACTIVATIONS else None
