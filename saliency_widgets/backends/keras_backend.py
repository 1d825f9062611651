"""Keras 3 backend (TensorFlow): Sequential, functional and subclassed ``keras.Model``."""

from __future__ import annotations

import atexit
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ..errors import NonDifferentiableError, NotAModelError, SaliencyError
from ..heads import select_output
from ..structure import flatten
from ..weights import LayerInfo, WeightBlock, resolve_layer
from .base import Backend, LayerRef, Query, Targets, sum_of_copies

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
    left alone, and batch norm uses its moving statistics. Layer calls and activations
    are swapped only while a function is traced (or run eagerly), and restored after.
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
        self._lock = threading.RLock()
        self._last_call = 0.0

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

    @property
    def is_training(self) -> bool:
        return False  # Keras has no model-wide mode: every call here passes training=False

    def is_layer(self, obj: Any) -> bool:
        return isinstance(obj, self._keras.layers.Layer)

    def find_layer(self, layer: Any) -> LayerRef:
        from .keras_weights import listed_layers

        name, obj = resolve_layer(listed_layers(self.model), layer)
        return LayerRef(name, obj)

    def skipped_activation(self, query: Query) -> Optional[str]:
        plan = self._plans.get(query.key)
        return None if plan is None else plan.skipped

    def per_sample_output_shape(self, query: Query, entries: list[np.ndarray]) -> Optional[tuple[int, ...]]:
        from .keras_samples import declared_output_shape

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
        swaps: list[tuple[Any, str]] = []
        if isinstance(head, LayerRef):
            swaps = _activation_swaps(head.obj, 0, self._keras)
        else:
            producer = _output_producer(self.model, head, names, self._keras)
            if producer is not None:
                swaps = _activation_swaps(*producer, self._keras)
        skipped = next((_swap_name(layer, attr, self._keras) for layer, attr in swaps), None)
        plan = _Plan(head, swaps, skipped)
        self._plans[query.key] = plan
        return plan

    # ---------------------------------------------------------------- compute
    @contextmanager
    def _swapped(self, query: Query, plan: "_Plan", state: dict[str, Any]) -> Iterator[None]:
        """While the model runs: logits activations as the identity, the head layer's output
        recorded, ``query.layer``'s output recorded (watched by ``state["tape"]``) or replaced by
        ``state["activation"]``. Everything restored in ``finally``."""
        keras = self._keras
        patches: list[tuple[Any, str, Any]] = []
        if query.logits:
            for layer, attr in plan.swaps:
                identity = (lambda inputs, *a, **k: inputs) if attr == "call" else keras.activations.linear
                patches.append((layer, attr, identity))
        if isinstance(plan.head, LayerRef):
            patches.append((plan.head.obj, "call", _recording(plan.head.obj, state, "head")))
        if query.layer is not None:
            patches.append((query.layer.obj, "call", _replacing(query.layer, state)))
        saved = [(layer, attr, attr in vars(layer), getattr(layer, attr)) for layer, attr, _ in patches]
        try:
            for layer, attr, value in patches:
                object.__setattr__(layer, attr, value)
            yield
        finally:
            for layer, attr, had_own, original in reversed(saved):
                if had_own:
                    object.__setattr__(layer, attr, original)
                else:
                    object.__delattr__(layer, attr)

    def _explained(self, query: Query, tensors: list[Any], state: dict[str, Any]) -> Any:
        """The explained output (logits if asked) of one model call."""
        plan = self._plan(query)
        with self._swapped(query, plan, state):
            raw = self.model(query.spec.pack(tensors), training=False)
        if isinstance(plan.head, LayerRef):
            return state["head"]
        return select_output(raw, plan.head, self._tf.is_tensor, self._output_names())

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
                return y, ([state["leaf"]] if layer_mode else wrt)

            def forward(tensors: list[Any], activation: Any = None) -> Any:
                state = {"tape": None, "activation": activation, "calls": 0}
                y = explained(query, tensors, state)
                return state["leaf"] if kind == "activation" else y

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

            self._bodies[key] = {"forward": forward, "activation": forward, "vjp": vjp, "layer_vjp": layer_vjp,
                                 "jacobian": jacobian}[kind]
        return self._bodies[key]

    def _run(self, kind: str, query: Query, entries: list[np.ndarray], *args: Any,
             activation: Optional[np.ndarray] = None) -> Any:
        """Runs one call: compiled when its trace is ready, else eagerly while the trace is made in
        the background (a Jacobian, slow when eager, is traced at once). Traces have a
        batch-agnostic signature, so a new batch size, target or method does not retrace."""
        tf = self._tf
        self._ensure_built(query, entries)
        arrays = [tf.convert_to_tensor(e) for e in entries], *(tf.convert_to_tensor(a) for a in args)
        if activation is not None:
            arrays = (*arrays, tf.convert_to_tensor(activation))
        specs = tuple(_batch_agnostic(a) for a in arrays)
        key = (kind, query.key, repr(specs))
        body = self._body(kind, query)
        self._last_call = time.monotonic()
        try:
            with self._lock:
                function = self._compiled.get(key)
                if function is None and kind == "jacobian":
                    function = self._compiled[key] = tf.function(body, input_signature=specs, autograph=False)
                if function is not None:
                    return function(*arrays)
                result = body(*arrays)
                self._last_call = time.monotonic()
        except SaliencyError:
            raise
        except Exception as err:  # Keras/TF raise many types for a wrong input; all mean the same here
            raise self._input_error(query, entries, err) from None
        self._trace_in_background(key, body, specs)
        return result

    def _trace_in_background(self, key: tuple, body: Callable, specs: tuple) -> None:
        """Traces ``body`` once for ``specs`` in a background thread; until it is ready (or if it
        fails) calls stay eager. The lock keeps the layer swaps of a trace and of an eager call apart."""
        if key in self._tracing:
            return
        self._tracing.add(key)
        tf = self._tf

        def trace() -> None:
            while time.monotonic() - self._last_call < _IDLE_BEFORE_TRACE:  # let the engine call finish first
                time.sleep(_IDLE_BEFORE_TRACE / 4)
            with self._lock:
                try:
                    function = tf.function(body, input_signature=specs, autograph=False)
                    function.get_concrete_function(*specs)
                except Exception:  # some models cannot be traced: they stay eager
                    return
                self._compiled[key] = function

        thread = threading.Thread(target=trace, name="saliency-widgets-trace", daemon=True)
        _TRACES.append(thread)
        thread.start()

    def _ensure_built(self, query: Query, entries: list[np.ndarray]) -> None:
        """An unbuilt Sequential creates its weights on its first call: do that eagerly, once."""
        model = self.model
        if not getattr(model, "built", True):
            try:
                model(query.spec.pack([e[:1] for e in entries]), training=False)
            except Exception as err:
                raise self._input_error(query, entries, err) from None

    def _input_error(self, query: Query, entries: list[np.ndarray], err: Exception) -> SaliencyError:
        expected = self.describe_expected_input()
        text = _ANSI_ESCAPE.sub("", str(err))
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        said = next((ln for ln in lines if "shape" in ln.lower() or "incompatible" in ln.lower()
                     or "expect" in ln.lower()), lines[0] if lines else type(err).__name__)
        given = query.spec.describe([e.shape for e in entries], [e.dtype for e in entries])
        hint = f"; the model expects {expected}" if expected else ""
        return SaliencyError(f"the model could not run on {given}{hint}. (Keras said: {said[:300]})")

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

    # ---------------------------------------------------------------- weights
    def layers(self, example: Optional[np.ndarray] = None) -> list[LayerInfo]:
        from .keras_weights import keras_layers

        if example is not None:
            spec, entries = flatten(example, self.to_numpy)
            self._ensure_built(self.query(spec), entries)
        return keras_layers(self.model, example)

    def layer_weights(self, layer: Any, *, split_gates: bool = True) -> list[WeightBlock]:
        from .keras_weights import keras_layer_weights

        return keras_layer_weights(self.model, layer, split_gates)


#: Seconds without a call before a background trace starts: an engine call's passes come back to back.
_IDLE_BEFORE_TRACE = 0.25
#: Background traces still running; joined at exit so that none is cut off mid-trace.
_TRACES: list[threading.Thread] = []


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
    #: ``(layer, attribute)`` pairs swapped for the identity to get logits.
    swaps: list[tuple[Any, str]]
    #: The name of the activation those swaps skip, if any.
    skipped: Optional[str]


def _recording(layer: Any, state: dict[str, Any], key: str) -> Callable:
    """A ``call`` that runs the layer's own and records its (first) output in ``state[key]``."""
    original = layer.call

    def call(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        state[key] = out[0] if isinstance(out, (list, tuple)) else out
        return out

    return call


def _replacing(layer: LayerRef, state: dict[str, Any]) -> Callable:
    """A ``call`` for the attribution layer: its output is ``state["activation"]`` when given,
    else its own output, watched by ``state["tape"]``; recorded in ``state["leaf"]``. Refuses a
    second call in one forward pass."""
    original = layer.obj.call

    def call(*args: Any, **kwargs: Any) -> Any:
        state["calls"] += 1
        if state["calls"] > 1:
            raise SaliencyError(
                f"layer {layer.name!r} runs more than once per forward pass (shared weights?); "
                "attribution to it would mix its calls: choose a layer that runs once"
            )
        out = original(*args, **kwargs)
        first = out[0] if isinstance(out, (list, tuple)) else out
        new = first if state["activation"] is None else state["activation"]
        if state["tape"] is not None:
            state["tape"].watch(new)
        state["leaf"] = new
        return new if not isinstance(out, (list, tuple)) else type(out)((new, *out[1:]))

    return call


def _graph_outputs(model: Any, keras: Any) -> Optional[list[Any]]:
    """The symbolic outputs of a Sequential / functional model, or None."""
    if not _is_graph_model(model, keras):
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


def _activation_swaps(layer: Any, tensor_index: int, keras: Any) -> list[tuple[Any, str]]:
    """The ``(layer, attribute)`` swaps that skip the softmax / sigmoid / log-softmax producing
    ``layer``'s output: its own ``activation=``, a ``Softmax`` / ``Activation`` layer, inside
    ``TimeDistributed`` / ``Bidirectional`` wrappers and nested models."""
    if _is_graph_model(layer, keras):
        producer = _output_producer(layer, tensor_index, [], keras)
        return [] if producer is None else _activation_swaps(*producer, keras)
    if isinstance(layer, keras.layers.Softmax):
        return [(layer, "call")]
    if isinstance(layer, keras.layers.Bidirectional):
        return [s for inner in (layer.forward_layer, layer.backward_layer) for s in _activation_swaps(inner, 0, keras)]
    if isinstance(layer, keras.layers.Wrapper):
        return _activation_swaps(layer.layer, 0, keras)
    name = getattr(getattr(layer, "activation", None), "__name__", None)
    return [(layer, "activation")] if name in _FINAL_ACTIVATIONS else []


def _swap_name(layer: Any, attr: str, keras: Any) -> str:
    return "softmax" if attr == "call" else layer.activation.__name__


def _is_graph_model(obj: Any, keras: Any) -> bool:
    """Sequential or functional: layers run in the listed order, so the last one is final."""
    return isinstance(obj, keras.Sequential) or (
        isinstance(obj, keras.Model) and type(obj).__name__ == "Functional"
    )
