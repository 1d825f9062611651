"""Keras on TensorFlow: ``tf.GradientTape`` in ``tf.function``-compiled bodies, one trace per
kind of call, query and batch-agnostic input signature."""

from __future__ import annotations

import atexit
import threading
from typing import Any, Callable, Optional

import numpy as np
import tensorflow as tf

from ...errors import NonDifferentiableError, SaliencyError
from ..base import Query
from .engine import NOT_DIFFERENTIABLE, Engine, joined, recorded, row_scores, rows_kind

#: Background traces still running; joined at exit so that none is cut off mid-trace.
_TRACES: list[threading.Thread] = []


class TensorFlowEngine(Engine):
    """Runs each kind of call compiled when its trace is ready, else eagerly. Traces have a
    batch-agnostic signature, so a new batch size, target or method does not retrace. A query run
    by the graph walk alone is traced at once in a background thread, which changes nothing the user
    can see, while calls go on eagerly; one that intercepts layers outside the graph (the graph walk's
    thread-local calls) is traced in the caller's thread, on its second call; a Jacobian, slow when
    eager, is traced on its first."""

    def __init__(self, backend: Any) -> None:
        super().__init__(backend)
        self._bodies: dict[tuple, Callable] = {}
        #: Traced functions by (kind, query key, batch-agnostic input specs), and those being traced.
        self._compiled: dict[tuple, Callable] = {}
        self._tracing: set[tuple] = set()
        #: Keys of calls run eagerly that are traced in the caller's thread when they come again.
        self._eager_calls: set[tuple] = set()

    def run(self, kind: str, query: Query, entries: list[np.ndarray], args: list[np.ndarray],
            activation: Optional[np.ndarray]) -> Any:
        arrays = [tf.convert_to_tensor(e) for e in entries], *(tf.convert_to_tensor(a) for a in args)
        if activation is not None:
            arrays = (*arrays, tf.convert_to_tensor(activation))
        specs = tuple(_batch_agnostic(a) for a in arrays)
        key = (kind, query.key, repr(specs))
        body = self._body(kind, query)
        function = self._compiled.get(key)
        vectorised = kind == "jacobian" or kind.startswith("rows/")  # slow when eager
        if function is None and (vectorised and key not in self._tracing or key in self._eager_calls):
            function = self._traced_here(key, body, specs)
        result = function(*arrays) if function is not None else body(*arrays)
        if function is None:
            if self.backend.thread_local(query):
                if key not in self._tracing:
                    self._eager_calls.add(key)
            else:
                self._trace_in_background(key, body, specs)
        return tf.nest.map_structure(lambda t: np.asarray(t, dtype=np.float32), result)

    def _body(self, kind: str, query: Query) -> Callable:
        """The Python function of one kind of call; run eagerly, or traced by :meth:`run`."""
        key = (kind, query.key)
        if key in self._bodies:
            return self._bodies[key]
        explain = self.explain
        new_state = self.new_state
        layer_mode = query.layer is not None

        def run(tensors: list[Any], activation: Any, tape: Any) -> tuple[Any, list[Any]]:
            state = new_state(activation, lambda t: (tape.watch(t), t)[1])
            if activation is not None:
                tape.watch(activation)
            wrt = [tensors[i] for i in query.spec.attributed] if not layer_mode else []
            for t in wrt:
                tape.watch(t)
            y = explain(query, tensors, state)
            return y, (recorded(state, "leaves", query.layer) if layer_mode else wrt)

        def forward(tensors: list[Any], activation: Any = None) -> Any:
            state = new_state(activation, None)
            y = explain(query, tensors, state)
            return y if kind != "activation" else joined(recorded(state, "leaves", query.layer), 1)

        def target_gradients(tensors: list[Any], targets: Any, activation: Any) -> tuple[Any, list[Any], list[Any]]:
            with tf.GradientTape() as tape:
                y, wrt = run(tensors, activation, tape)
                flat = tf.reshape(y, (tf.shape(y)[0], -1))
                index = tf.where(targets < 0, tf.argmax(flat, axis=1, output_type=tf.int64), targets)
                weighted = tf.reduce_sum(flat * tf.one_hot(index, tf.shape(flat)[1], dtype=flat.dtype))
            grads = tape.gradient(weighted, wrt)
            if all(g is None for g in grads):
                raise NonDifferentiableError(NOT_DIFFERENTIABLE)
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
            normalize, subtracts = rows_kind(kind)
            minus, rest = (rest[0], rest[1:]) if subtracts else (None, rest)
            n, batch = tf.shape(positions)[0], tf.shape(tensors[0])[0]

            def copies(t: Any) -> Any:  # copy c of sample b at c * batch + b
                return tf.tile(t, tf.concat([[n], tf.ones([tf.rank(t) - 1], tf.int32)], 0))

            activation = copies(rest[0]) if rest else None
            with tf.GradientTape() as tape:
                y, wrt = run([copies(t) for t in tensors], activation, tape)
                scores = tf.reshape(row_scores(y, positions, tokens, minus, normalize), (n, batch, n))
                own = tf.linalg.diag_part(tf.transpose(scores, (1, 0, 2)))  # (batch, n): copy k's row k
                total = tf.reduce_sum(own)
            grads = [tf.zeros_like(w) if g is None else g for g, w in zip(tape.gradient(total, wrt), wrt)]

            def per_sample(t: Any) -> Any:  # (n * batch, ...) -> (batch, n, ...)
                t = tf.reshape(t, tf.concat([[n, batch], tf.shape(t)[1:]], 0))
                return tf.transpose(t, tf.concat([[1, 0], tf.range(2, tf.rank(t))], 0))

            return own, joined([w[:batch] for w in wrt], 1), joined([per_sample(g) for g in grads], 2)

        bodies = {"forward": forward, "activation": forward, "vjp": vjp, "layer_vjp": layer_vjp,
                  "jacobian": jacobian}
        self._bodies[key] = output_rows if kind.startswith("rows/") else bodies[kind]
        return self._bodies[key]

    def _traced_here(self, key: tuple, body: Callable, specs: tuple) -> Optional[Callable]:
        """``body`` traced in this thread (with its thread-local calls), or None where it cannot be
        traced (then the key stays eager: a model whose Python code needs eager tensors still runs)."""
        self._eager_calls.discard(key)
        try:
            function = tf.function(body, input_signature=specs, autograph=False)
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
        calls without changing any object of the user's (``graph.py``), so it needs no lock."""
        if key in self._tracing:
            return
        self._tracing.add(key)

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


@atexit.register
def join_traces() -> None:
    """Waits for the background traces still running (at exit, and for tests)."""
    for thread in _TRACES:
        thread.join(timeout=120)


def _batch_agnostic(value: Any) -> Any:
    """A TensorSpec (nested like ``value``) whose leading batch axis is None."""
    if isinstance(value, (list, tuple)):
        return [_batch_agnostic(v) for v in value]
    return tf.TensorSpec((None, *value.shape[1:]), value.dtype)
