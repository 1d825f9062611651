"""Keras 3 backend (TensorFlow): Sequential, functional and subclassed ``keras.Model``."""

from __future__ import annotations

import atexit
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ...errors import NonDifferentiableError, NotAModelError, SaliencyError
from ...heads import select_output
from ...structure import signature
from ...weights import LayerInfo, RecurrentCell, WeightBlock, did_not_run_error, resolve_layer
from . import graph as keras_graph
from ..base import Backend, LayerRef, Query, Targets, sum_of_copies
from .graph import is_graph_model

_FINAL_ACTIVATIONS = ("softmax", "sigmoid", "log_softmax")

_NOT_DIFFERENTIABLE = ("the explained output does not depend differentiably on what is attributed "
                       "(an argmax, a cast to int or a stop_gradient inside the model?)")

# Keras colours its error messages for terminals.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def _import_frameworks() -> tuple[Any, Any]:
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise NotAModelError(
            f"Keras runs on the {keras.backend.backend()!r} backend; saliency_widgets supports "
            "Keras 3 on TensorFlow (set KERAS_BACKEND=tensorflow before importing keras), "
            "or pass a PyTorch model"
        )
    return keras, tf


class KerasBackend(Backend):
    """Runs a Keras model with ``training=False`` and differentiates it with compiled
    ``tf.GradientTape`` functions (one trace per model, query and input signature).

    Nothing is changed on the model: no variable is written, ``trainable`` flags are
    left alone, and batch norm uses its moving statistics. Logits, head and attribution
    layers are intercepted by :mod:`.keras_graph`, which swaps nothing another thread can see.
    """

    framework = "keras"

    def __init__(self, model: Any) -> None:
        self._keras, self._tf = _import_frameworks()
        if not callable(model):
            raise NotAModelError(f"{type(model).__qualname__} is not a callable Keras model")
        super().__init__(model)
        self._plans: dict[tuple, _Plan] = {}
        self._bodies: dict[tuple, Callable] = {}
        #: Traced functions by (kind, query key, batch-agnostic input specs), and those being traced.
        self._compiled: dict[tuple, Callable] = {}
        self._tracing: set[tuple] = set()
        #: Keys of calls run eagerly that are traced in the caller's thread when they come again.
        self._eager_calls: set[tuple] = set()
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
        if not keras_graph.is_graph_model(model, self._keras):
            return False
        reachable = keras_graph.graph_operations(model, self._keras)
        return all(id(layer) in reachable or isinstance(layer, self._keras.layers.InputLayer)
                   for layer in model._flatten_layers(include_self=False, recursive=True))

    @property
    def is_training(self) -> bool:
        return False  # Keras has no model-wide mode: every call here passes training=False

    def is_layer(self, obj: Any) -> bool:
        return isinstance(obj, self._keras.layers.Layer)

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
                                     self._keras)

    def _output_names(self) -> list[str]:
        names = getattr(self.model, "output_names", None)
        return list(names) if names else []

    def _plan(self, query: Query) -> "_Plan":
        """The resolved head and the activations to skip for logits, from the functional graph."""
        if query.key in self._plans:
            return self._plans[query.key]
        head = query.head
        names = self._output_names()
        n_outputs = len(_graph_outputs(self.model, self._keras) or names) or 1
        if isinstance(head, int) and n_outputs == 1 or isinstance(head, str) and head not in names:
            head = self.find_layer(head)
        if isinstance(head, LayerRef):
            final = _final_activation(head.obj, 0, self._keras)
        else:
            producer = _output_producer(self.model, head, names, self._keras)
            final = None if producer is None else _final_activation(*producer, self._keras)
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
            skipping = keras_graph.pre_activation(plan.skip, self._keras)
            handlers[id(plan.skip)] = (plan.skip, lambda call, *args, **kwargs: skipping(*args, **kwargs))
        if isinstance(plan.head, LayerRef):
            handlers[id(plan.head.obj)] = (plan.head.obj, _recording(state, "head", handlers.get(id(plan.head.obj))))
        if query.layer is not None:
            for layer in query.layer.objects:
                handlers[id(layer)] = (layer, _replacing(query.layer, state, handlers.get(id(layer))))
        return handlers

    def _explained(self, query: Query, tensors: list[Any], state: dict[str, Any]) -> Any:
        """The explained output (logits if asked) of one model call."""
        plan = self._plan(query)
        raw = keras_graph.run(self.model, query.spec.pack(tensors), self._handlers(query, plan, state), self._keras)
        if isinstance(plan.head, LayerRef):
            return _recorded(state, "head", plan.head)
        return select_output(raw, plan.head, self._tf.is_tensor, self._output_names())

    def _thread_local(self, query: Query) -> bool:
        """Whether this query's calls intercept a layer outside the graph walk, which only the
        caller's thread may do (so its function is traced there, not in the background)."""
        plan = self._plan(query)
        if plan.thread_local is None:
            plan.thread_local = keras_graph.needs_thread_local_calls(
                self.model, [layer for layer, _ in self._handlers(query, plan, {}).values()], self._keras)
        return plan.thread_local

    def _body(self, kind: str, query: Query) -> Callable:
        """The Python function of one kind of call; run eagerly, or traced by :meth:`_run`."""
        key = (kind, query.key)
        if key not in self._bodies:
            tf = self._tf
            explained = self._explained
            layer_mode = query.layer is not None

            def run(tensors: list[Any], activation: Any, tape: Any) -> tuple[Any, list[Any]]:
                state = {"tape": tape, "activation": activation, "calls": 0}
                if activation is not None:
                    tape.watch(activation)
                wrt = [tensors[i] for i in query.spec.attributed] if not layer_mode else []
                for t in wrt:
                    tape.watch(t)
                y = explained(query, tensors, state)
                return y, (_recorded(state, "leaves", query.layer) if layer_mode else wrt)

            def forward(tensors: list[Any], activation: Any = None) -> Any:
                state = {"tape": None, "activation": activation, "calls": 0}
                y = explained(query, tensors, state)
                if kind != "activation":
                    return y
                leaves = _recorded(state, "leaves", query.layer)
                return tf.concat(leaves, axis=1) if len(leaves) > 1 else leaves[0]

            def target_gradients(tensors: list[Any], targets: Any, activation: Any) -> tuple[Any, list[Any], list[Any]]:
                with tf.GradientTape() as tape:
                    y, wrt = run(tensors, activation, tape)
                    flat = tf.reshape(y, (tf.shape(y)[0], -1))
                    index = tf.where(targets < 0, tf.argmax(flat, axis=1, output_type=tf.int64), targets)
                    weighted = tf.reduce_sum(flat * tf.one_hot(index, tf.shape(flat)[1], dtype=flat.dtype))
                grads = tape.gradient(weighted, wrt)
                if all(g is None for g in grads):
                    raise NonDifferentiableError(_NOT_DIFFERENTIABLE)
                return y, wrt, [tf.zeros_like(w) if g is None else g for g, w in zip(grads, wrt)]

            def vjp(tensors: list[Any], targets: Any, activation: Any = None) -> tuple[Any, list[Any]]:
                y, _, grads = target_gradients(tensors, targets, activation)
                return y, grads

            def layer_vjp(tensors: list[Any], targets: Any) -> tuple[Any, Any, Any]:
                y, (leaf,), (grad,) = target_gradients(tensors, targets, None)
                return y, leaf, grad

            def jacobian(tensors: list[Any], rows: Any) -> list[Any]:
                with tf.GradientTape(persistent=True) as tape:
                    y, wrt = run(tensors, None, tape)
                    selected = tf.gather(tf.reshape(y, (tf.shape(y)[0], -1)), rows, axis=1)
                out = []
                for w in wrt:
                    jac = tape.batch_jacobian(selected, w)
                    shape = tf.concat([tf.shape(w)[:1], tf.shape(rows), tf.shape(w)[1:]], axis=0)
                    out.append(tf.zeros(shape, w.dtype) if jac is None else jac)
                return out

            def output_rows(tensors: list[Any], positions: Any, tokens: Any, *rest: Any) -> tuple[Any, Any, Any]:
                # Every row differentiated in its own copy of the batch, in one pass: TensorFlow's
                # vectorised Jacobian (pfor) crashes the process on keras_hub's transformer layers.
                normalize, subtracts = kind.split("/")[1:]
                minus, rest = (rest[0], rest[1:]) if subtracts == "minus" else (None, rest)
                n, batch = tf.shape(positions)[0], tf.shape(tensors[0])[0]

                def copies(t: Any) -> Any:  # copy c of sample b at c * batch + b
                    return tf.tile(t, tf.concat([[n], tf.ones([tf.rank(t) - 1], tf.int32)], 0))

                activation = copies(rest[0]) if rest else None
                with tf.GradientTape() as tape:
                    y, wrt = run([copies(t) for t in tensors], activation, tape)
                    scores = tf.reshape(_row_scores(tf, y, positions, tokens, minus, normalize), (n, batch, n))
                    own = tf.linalg.diag_part(tf.transpose(scores, (1, 0, 2)))  # (batch, n): copy k's row k
                    total = tf.reduce_sum(own)
                grads = [tf.zeros_like(w) if g is None else g for g, w in zip(tape.gradient(total, wrt), wrt)]

                def per_sample(t: Any) -> Any:  # (n * batch, ...) -> (batch, n, ...)
                    t = tf.reshape(t, tf.concat([[n, batch], tf.shape(t)[1:]], 0))
                    return tf.transpose(t, tf.concat([[1, 0], tf.range(2, tf.rank(t))], 0))

                joined = (lambda ts, axis: tf.concat(ts, axis) if len(ts) > 1 else ts[0])
                return own, joined([w[:batch] for w in wrt], 1), joined([per_sample(g) for g in grads], 2)

            if kind.startswith("rows/"):
                self._bodies[key] = output_rows
                return output_rows
            self._bodies[key] = {"forward": forward, "activation": forward, "vjp": vjp, "layer_vjp": layer_vjp,
                                 "jacobian": jacobian}[kind]
        return self._bodies[key]

    def _run(self, kind: str, query: Query, entries: list[np.ndarray], *args: Any,
             activation: Optional[np.ndarray] = None) -> Any:
        """Runs one call, holding the model's lock (calls on one model are serialised): compiled
        when its trace is ready, else eagerly. Traces have a batch-agnostic signature, so a new
        batch size, target or method does not retrace. A query run by the graph walk alone is
        traced at once in a background thread, which changes nothing the user can see, while
        calls go on eagerly; one that intercepts layers outside the graph (``keras_graph``'s
        thread-local calls) is traced in the caller's thread, on its second call; a Jacobian,
        slow when eager, is traced on its first."""
        tf = self._tf
        with self._lock:
            self._require_runnable()
            self._require_fitting_input(query, entries)
            arrays = [tf.convert_to_tensor(e) for e in entries], *(tf.convert_to_tensor(a) for a in args)
            if activation is not None:
                arrays = (*arrays, tf.convert_to_tensor(activation))
            specs = tuple(_batch_agnostic(a) for a in arrays)
            key = (kind, query.key, repr(specs))
            body = self._body(kind, query)
            try:
                function = self._compiled.get(key)
                vectorised = kind == "jacobian" or kind.startswith("rows/")  # slow when eager
                if function is None and (vectorised and key not in self._tracing or key in self._eager_calls):
                    function = self._traced_here(key, body, specs, arrays)
                if function is not None:
                    return function(*arrays)
                result = body(*arrays)
            except _LayerDidNotRun as err:
                from .weights import type_name

                raise did_not_run_error(err.layer.name, type_name(err.layer.obj),
                                        self._layers_that_run(query, arrays[0])) from None
            if self._thread_local(query):
                if key not in self._tracing:
                    self._eager_calls.add(key)
            else:
                self._trace_in_background(key, body, specs)
            return result

    def _traced_here(self, key: tuple, body: Callable, specs: tuple, arrays: tuple) -> Optional[Callable]:
        """``body`` traced in this thread (with its thread-local calls), or None where it cannot be
        traced (then the key stays eager: a model whose Python code needs eager tensors still runs)."""
        self._eager_calls.discard(key)
        try:
            function = self._tf.function(body, input_signature=specs, autograph=False)
            function.get_concrete_function(*specs)
        except SaliencyError:
            raise
        except Exception:
            self._tracing.add(key)  # never again
            return None
        self._compiled[key] = function
        return function

    def _trace_in_background(self, key: tuple, body: Callable, specs: tuple) -> None:
        """Traces ``body`` once for ``specs`` in a background thread, started at once; until it is
        ready (or if it fails) calls stay eager. The trace runs the graph walk, which intercepts
        calls without changing any object of the user's (``keras_graph``), so it needs no lock."""
        if key in self._tracing:
            return
        self._tracing.add(key)
        tf = self._tf

        def trace() -> None:
            try:
                function = tf.function(body, input_signature=specs, autograph=False)
                function.get_concrete_function(*specs)
            except Exception:  # some models cannot be traced: they stay eager
                return
            self._compiled[key] = function

        thread = threading.Thread(target=trace, name="saliency-widgets-trace", daemon=True)
        _TRACES.append(thread)
        thread.start()

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
        mismatch = input_mismatch(self.model, query.spec, entries, self._keras)
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
        keras_graph.run(self.model, query.spec.pack(tensors), handlers, self._keras)
        return [(name, type_name(obj)) for name, obj in listed if id(obj) in ran]

    def forward(self, query: Query, entries: list[np.ndarray], activation: Optional[np.ndarray] = None) -> np.ndarray:
        return np.asarray(self._run("forward", query, entries, activation=activation), dtype=np.float32)

    def activation(self, query: Query, entries: list[np.ndarray]) -> np.ndarray:
        return np.asarray(self._run("activation", query, entries), dtype=np.float32)

    def vjp(self, query: Query, entries: list[np.ndarray], targets: Targets,
            activation: Optional[np.ndarray] = None, *, layout: Any = None,
            copy_weights: Optional[np.ndarray] = None) -> tuple[np.ndarray, list[np.ndarray]]:
        y, grads = self._run("vjp", query, entries, _target_array(targets, len(entries[0])), activation=activation)
        grads = [np.asarray(g, dtype=np.float32) for g in grads]
        if copy_weights is not None:
            grads = [sum_of_copies(g, copy_weights) for g in grads]
        return np.asarray(y, dtype=np.float32), grads

    def layer_vjp(self, query: Query, entries: list[np.ndarray], targets: Targets
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y, leaf, grad = self._run("layer_vjp", query, entries, _target_array(targets, len(entries[0])))
        return tuple(np.asarray(a, dtype=np.float32) for a in (y, leaf, grad))

    def jacobian_rows(self, query: Query, entries: list[np.ndarray], rows: np.ndarray) -> list[np.ndarray]:
        jacs = self._run("jacobian", query, entries, rows.astype(np.int32))
        return [np.asarray(j, dtype=np.float32) for j in jacs]

    def output_rows(self, query: Query, entries: list[np.ndarray], positions: np.ndarray, tokens: np.ndarray, *,
                    minus: Optional[np.ndarray] = None, normalize: Optional[str] = None,
                    activation: Optional[Any] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        kind = f"rows/{normalize}/{'minus' if minus is not None else 'plain'}"
        args = [np.asarray(positions, dtype=np.int64), np.asarray(tokens, dtype=np.int64)] + ([np.asarray(minus, dtype=np.int64)] if minus is not None else [])
        scores, layer_output, grads = self._run(kind, query, entries, *args, activation=activation)
        return tuple(np.asarray(t, dtype=np.float32) for t in (scores, layer_output, grads))

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
        return [(str(i), self._keras.ops.convert_to_numpy(w.value)) for i, w in enumerate(self.model.weights)]


#: Background traces still running; joined at exit so that none is cut off mid-trace.
_TRACES: list[threading.Thread] = []


def _row_scores(tf: Any, y: Any, positions: Any, tokens: Any, minus: Any, normalize: str) -> Any:
    """``(batch, n)``: ``y`` ``(batch, length, vocabulary)`` at ``positions``, entries ``tokens``,
    normalised over the vocabulary at those positions only (see :meth:`Backend.output_rows`),
    minus entries ``minus``."""
    vocabulary = tf.shape(y)[-1]
    at = tf.gather(y, positions, axis=1)
    if normalize == "log_softmax":
        at = tf.nn.log_softmax(at, axis=-1)
    elif normalize == "softmax":
        at = tf.nn.softmax(at, axis=-1)

    def pick(index: Any) -> Any:
        return tf.reduce_sum(at * tf.one_hot(index, vocabulary, dtype=at.dtype), -1)

    return pick(tokens) if minus is None else pick(tokens) - pick(minus)


def _target_array(targets: Targets, batch: int) -> np.ndarray:
    """``Backend.vjp``'s targets as the traced function takes them: one int64 per sample, -1 for
    the arg-max (one argument signature whatever was asked, so nothing is traced again)."""
    if targets is None or isinstance(targets, int):
        return np.full(batch, -1 if targets is None else targets, dtype=np.int64)
    return targets.astype(np.int64)


@atexit.register
def _join_traces() -> None:
    for thread in _TRACES:
        thread.join(timeout=120)


def _batch_agnostic(value: Any) -> Any:
    """A TensorSpec (nested like ``value``) whose leading batch axis is None."""
    import tensorflow as tf

    if isinstance(value, (list, tuple)):
        return [_batch_agnostic(v) for v in value]
    return tf.TensorSpec((None, *value.shape[1:]), value.dtype)


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


class _LayerDidNotRun(Exception):
    """A call's head or attribution layer never ran; :meth:`KerasBackend._run` says which layers do."""

    def __init__(self, layer: LayerRef) -> None:
        super().__init__(layer.name)
        self.layer = layer


def _stateful_layer(model: Any) -> Optional[Any]:
    """The first layer of ``model`` (itself, or nested at any depth) built with ``stateful=True``."""
    layers = model._flatten_layers() if hasattr(model, "_flatten_layers") else []
    return next((layer for layer in layers if getattr(layer, "stateful", False) is True), None)


def _recorded(state: dict[str, Any], key: str, layer: LayerRef) -> Any:
    """What a handler recorded in ``state[key]`` for ``layer``, which must have run."""
    if key not in state:
        raise _LayerDidNotRun(layer)
    return state[key]


def _recording(state: dict[str, Any], key: str, inner: Optional[tuple[Any, Callable]]) -> Callable:
    """A handler that runs the layer (through ``inner``'s handler, if any) and records its
    (first) output in ``state[key]``."""
    def handler(call: Callable, *args: Any, **kwargs: Any) -> Any:
        out = inner[1](call, *args, **kwargs) if inner else call(*args, **kwargs)
        state[key] = out[0] if isinstance(out, (list, tuple)) else out
        return out

    return handler


def _replacing(layer: LayerRef, state: dict[str, Any], inner: Optional[tuple[Any, Callable]]) -> Callable:
    """A handler for the attribution layer: its output is ``state["activation"]`` when given
    (its slice along axis 1 for each call with ``calls="all"``), else its own output, watched by
    ``state["tape"]``; recorded in ``state["leaves"]``. Refuses a second call in one forward pass
    unless ``layer.calls`` says which calls count (:class:`LayerRef`)."""
    def handler(call: Callable, *args: Any, **kwargs: Any) -> Any:
        state["calls"] += 1
        out = inner[1](call, *args, **kwargs) if inner else call(*args, **kwargs)
        if state["calls"] > 1 and layer.calls == "first":
            return out
        if state["calls"] > 1 and layer.calls == "once":
            raise SaliencyError(
                f"layer {layer.name!r} runs more than once per forward pass (shared weights?); "
                "attribution to it would mix its calls: choose a layer that runs once"
            )
        first = out[0] if isinstance(out, (list, tuple)) else out
        activation = state["activation"]
        if activation is None:
            new = first
            state.setdefault("leaves", []).append(new)
        else:
            start = state.setdefault("offset", 0)
            length = first.shape[1] if layer.calls == "all" else None
            new = activation if length is None else activation[:, start:start + length]
            state["offset"] = start + (length or 0)
            state["leaves"] = [activation]
        if state["tape"] is not None:
            state["tape"].watch(new)
        return new if not isinstance(out, (list, tuple)) else type(out)((new, *out[1:]))

    return handler


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
