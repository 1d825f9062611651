"""JAX backend: Flax NNX modules, ``jax.jit`` functions and plain functions on jax arrays.

Every computation is a pure function compiled with ``jax.jit`` once per kind and query (jit's
own cache handles input shapes). An NNX module is read with ``nnx.split`` on every call (a
model trained further gives new numbers), its state passed as an argument, and the trace calls a
private copy (``nnx.merge``) in inference mode: the user's module, its flags, its random-number
streams and its batch statistics are never written (:mod:`.calls`).
"""

from __future__ import annotations

import functools
import sys
import threading
from pathlib import Path as FilePath
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from ...errors import NonDifferentiableError, NotAModelError, SaliencyError
from ...heads import output_keys, select_output
from ...weights import LayerInfo, RecurrentCell, WeightBlock, did_not_run_error, resolve_layer
from ..base import Backend, LayerRef, Query, Targets, positional_names, sum_of_copies, target_array
from .calls import Call, LayerDidNotRun, first_calls, run

_NO_LAYERS = ("a jax function has no layers: layer= and head=<layer> need a Flax NNX module (its submodules are "
              "the layers); explain the function's output (head=None, an output index or key, or a callable "
              "head(outputs)) with respect to its input")
_CONV_SPATIAL_AXES = {1: "length", 2: "height, width", 3: "depth, height, width"}
#: Graph definitions (train / eval flags, structure) kept compiled per kind and query.
_GRAPHS_KEPT = 4


class JaxBackend(Backend):
    """Differentiates a Flax NNX module or a function on jax arrays with ``jax.vjp``; Jacobian
    rows with ``jax.vmap`` over the pullback. Inputs are channels-last, as Flax takes them."""

    framework = "jax"

    def __init__(self, model: Any) -> None:
        if not callable(model) or isinstance(model, type):
            raise NotAModelError(f"expected a Flax NNX module or a function on jax arrays; got "
                                 f"{type(model).__module__}.{type(model).__qualname__}")
        super().__init__(model)
        self._is_module = _is_nnx_module(model)
        self._lock = threading.Lock()
        #: Jitted functions by (kind, query key): ``(call, function)`` of the last graphs seen.
        self._compiled: dict[tuple, list[tuple[Call, Callable]]] = {}
        #: The head each query resolved to (an int / str head of a one-array output names a layer).
        self._heads: dict[tuple, Any] = {}
        #: Paths of layer objects by id, checked on use.
        self._paths: dict[int, tuple] = {}

    # ----------------------------------------------------------------- inputs
    def to_numpy(self, x: Any) -> np.ndarray:
        """numpy, torch, tf or jax arrays as numpy; jax floats numpy lacks (bfloat16 …) as float32."""
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.floating) and x.dtype not in (
                jnp.float16, jnp.float32, jnp.float64):
            x = x.astype(jnp.float32)
        return super().to_numpy(x)

    def describe_expected_input(self) -> Optional[str]:
        if not self._is_module:
            return None
        from flax import nnx

        from .modules import WHOLE, listed_modules, type_name

        for item in listed_modules(self.model):
            module = item.module
            if isinstance(module, nnx.Linear):
                return f"(batch, ..., {module.in_features}) for its first Linear layer"
            if isinstance(module, nnx.Conv):
                spatial = _CONV_SPATIAL_AXES.get(len(module.kernel_size), "spatial axes")
                return f"(batch, {spatial}, {module.in_features}) for its first Conv layer (channels last)"
            if isinstance(module, nnx.Embed):
                return "integer token ids (an Embed layer comes first)"
            if isinstance(module, WHOLE):
                cell = getattr(module, "cell", module)
                return f"(batch, time, {cell.in_features}) for its first {type_name(module)}"
        return None

    def input_names(self, count: int) -> Optional[list[str]]:
        """The positional parameters of ``__call__`` (a function's own); None where ``*args`` takes
        entries beyond them, or where there is no signature."""
        return positional_names(self.model, count)

    def computes_unseen(self) -> bool:
        """True: a computation reads the module (``nnx.split``) and changes only its private copy."""
        return True

    @property
    def is_training(self) -> bool:
        """True when a submodule is in training mode where that changes its output (dropout with
        ``deterministic=False``, batch norm with ``use_running_average=False``), as the module says."""
        if not self._is_module:
            return False
        from .modules import in_training

        return in_training(self.model)

    def is_layer(self, obj: Any) -> bool:
        return _is_nnx_module(obj)

    def find_layer(self, layer: Any) -> LayerRef:
        """A listed layer (name or index as in ``layers()``), any submodule's path name
        (``"blocks/0/linear"``), or the submodule itself."""
        model = self._require_module()
        from .modules import listed_modules, path_name, submodules

        listed = [(item.name, item.module) for item in listed_modules(model)]
        if isinstance(layer, str) or self.is_layer(layer):
            if all(name != layer and module is not layer for name, module in listed):
                for path, module in submodules(model).items():
                    if path_name(path) == layer or module is layer:
                        self._paths[id(module)] = path
                        return LayerRef(path_name(path), module)
                if self.is_layer(layer):  # named by its class in the refusal: an NNX repr runs for pages
                    layer = f"<the {type(layer).__name__} given, not a submodule of this model>"
        name, module = resolve_layer(listed, layer)
        return LayerRef(name, module)

    def skipped_activation(self, query: Query) -> Optional[str]:
        """None: NNX calls its activations as functions (``jax.nn.softmax``), which cannot be skipped;
        attribution warns where the explained output looks like probabilities."""
        return None

    # ---------------------------------------------------------------- compute
    def forward(self, query: Query, entries: list[np.ndarray], activation: Optional[np.ndarray] = None) -> np.ndarray:
        return _numpy(self._run("forward", query, entries, activation))

    def activation(self, query: Query, entries: list[np.ndarray]) -> np.ndarray:
        if query.layer is None:
            raise SaliencyError("the activation of a layer needs layer=")
        return _numpy(self._run("activation", query, entries))

    def vjp(self, query: Query, entries: list[np.ndarray], targets: Targets,
            activation: Optional[np.ndarray] = None, *, layout: Any = None,
            copy_weights: Optional[np.ndarray] = None) -> tuple[np.ndarray, list[np.ndarray]]:
        y, grads = self._run("vjp", query, entries, target_array(targets, len(entries[0]), np.int32), activation)
        grads = [_numpy(g) for g in grads]
        if copy_weights is not None:
            grads = [sum_of_copies(g, copy_weights) for g in grads]
        return _numpy(y), grads

    def layer_vjp(self, query: Query, entries: list[np.ndarray], targets: Targets
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y, leaf, grad = self._run("layer_vjp", query, entries, target_array(targets, len(entries[0]), np.int32))
        return _numpy(y), _numpy(leaf), _numpy(grad)

    def jacobian_rows(self, query: Query, entries: list[np.ndarray], rows: np.ndarray) -> list[np.ndarray]:
        return [_numpy(j) for j in self._run("jacobian", query, entries, np.asarray(rows, dtype=np.int32))]

    def output_rows(self, query: Query, entries: list[np.ndarray], positions: np.ndarray, tokens: np.ndarray, *,
                    minus: Optional[np.ndarray] = None, normalize: Optional[str] = None,
                    activation: Optional[Any] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if query.layer is None:
            raise SaliencyError("output rows are taken at a layer: pass layer= (e.g. the token embedding)")
        indices = [np.asarray(a, dtype=np.int32) for a in (positions, tokens)]
        if minus is not None:
            indices.append(np.asarray(minus, dtype=np.int32))
        kind = f"rows/{normalize}/{'minus' if minus is not None else 'plain'}"
        scores, layer_output, grads = self._run(kind, query, entries, *indices, activation)
        return _numpy(scores), _numpy(layer_output), _numpy(grads)

    def _run(self, kind: str, query: Query, entries: list[np.ndarray], *args: Any) -> Any:
        """One jitted call; the model's own errors from JAX or Flax on this input become a
        :class:`SaliencyError` that says what the model expects."""
        try:
            call, state = self._prepared(query, entries)
            return self._compiled_body(kind, query, call)(state, list(entries), *args)
        except LayerDidNotRun as err:
            raise self._did_not_run(query, entries, err.path) from None
        except SaliencyError:
            raise
        except (TypeError, ValueError, IndexError) as err:
            if not _raised_by_jax(err):
                raise  # the model's own exception, as the user would see it calling the model
            raise self._input_error(query, entries, err) from None

    def _prepared(self, query: Query, entries: list[np.ndarray]) -> tuple[Call, Any]:
        """``(call, state)``: what this query's call taps, and the module's state read now."""
        if not self._is_module:
            self._resolve_call_head(query, Call(None), None, entries)
            return Call(None), None
        from flax import nnx

        graphdef, state = nnx.split(self.model)
        head = self._resolve_call_head(query, Call(graphdef), state, entries)
        layer = query.layer
        return Call(
            graphdef,
            layer=tuple(self._path(obj) for obj in layer.objects) if layer else (),
            calls=layer.calls if layer else "once",
            layer_name=layer.name if layer else "",
            head=self._path(head.obj) if isinstance(head, LayerRef) else None,
        ), state

    def _resolve_call_head(self, query: Query, plain: Call, state: Any, entries: list[np.ndarray]) -> Any:
        """The query's head, an int / str head of a model that returns one array read as a layer
        (as ``sw.layers`` names it); remembered per query."""
        if query.key not in self._heads:
            head = query.head
            if isinstance(head, (int, np.integer, str)) and not isinstance(head, bool):
                spec, function = query.spec, self.model
                raw = jax.eval_shape(lambda s, t: run(function, plain, s, spec, t)[0], state, list(entries))
                one = isinstance(raw, jax.ShapeDtypeStruct)
                if one and not self._is_module:
                    raise SaliencyError(f"head={head!r} picks an entry of several outputs, but the function "
                                        "returns one array; pass head=None, or a callable head(outputs)")
                if one or isinstance(head, str) and head not in output_keys(raw):
                    head = self.find_layer(head)
            self._heads[query.key] = head
        return self._heads[query.key]

    def _path(self, obj: Any) -> tuple:
        """The path of the submodule ``obj`` in the model now."""
        from .modules import navigate, path_of

        path = self._paths.get(id(obj))
        if path is None or navigate(self.model, path) is not obj:
            path = self._paths[id(obj)] = path_of(self.model, obj)
        return path

    def _compiled_body(self, kind: str, query: Query, call: Call) -> Callable:
        """The jitted function of this kind, query and call (graph definitions are compared, not
        hashed: a module may hold unhashable static attributes, such as a config dict); the last
        few graphs stay compiled (flags switched back and forth)."""
        with self._lock:
            compiled = self._compiled.setdefault((kind, query.key), [])
            for known, function in compiled:
                if known == call:
                    return function
            function = jax.jit(functools.partial(self._body(kind, query), call))
            compiled[:] = [*compiled[-(_GRAPHS_KEPT - 1):], (call, function)]
            return function

    def _body(self, kind: str, query: Query) -> Callable:
        """The pure function of one kind of call: ``(call, state, tensors, *args)``."""
        explained, differentiable = self._explained, self._differentiable

        def forward(call: Call, state: Any, tensors: list, activation: Any) -> Any:
            mode = None if activation is None else "replace"
            return explained(query, call, state, tensors, mode, activation)[0]

        def activation(call: Call, state: Any, tensors: list) -> Any:
            return _joined(explained(query, call, state, tensors)[1].leaves)

        def pullback_of(call: Call, state: Any, tensors: list, activation: Any) -> tuple[Any, Callable, Any]:
            f, wrt = differentiable(query, call, state, tensors, activation)
            return jax.vjp(f, wrt, has_aux=True)

        def vjp(call: Call, state: Any, tensors: list, targets: Any, activation: Any) -> tuple[Any, list]:
            y, pullback, _ = pullback_of(call, state, tensors, activation)
            return y, pullback(_one_hot(y, targets))[0]

        def layer_vjp(call: Call, state: Any, tensors: list, targets: Any) -> tuple[Any, Any, Any]:
            y, pullback, leaf = pullback_of(call, state, tensors, None)
            return y, leaf, pullback(_one_hot(y, targets))[0][0]

        def jacobian(call: Call, state: Any, tensors: list, rows: Any) -> list:
            y, pullback, _ = pullback_of(call, state, tensors, None)
            flat = y.reshape(y.shape[0], -1)
            cotangents = jnp.broadcast_to(jax.nn.one_hot(rows, flat.shape[1], dtype=y.dtype)[:, None, :],
                                          (len(rows), *flat.shape)).reshape(len(rows), *y.shape)
            (grads,) = jax.vmap(pullback)(cotangents)
            return [jnp.moveaxis(g, 0, 1) for g in grads]

        def output_rows(call: Call, state: Any, tensors: list, positions: Any, tokens: Any, *rest: Any) -> tuple:
            normalize, subtracts = kind.split("/")[1:]
            minus, activation = rest if subtracts == "minus" else (None, rest[0])
            f, wrt = differentiable(query, call, state, tensors, activation)

            def scores(w: list) -> tuple[Any, Any]:
                y, leaf = f(w)
                return _row_scores(y, positions, tokens, minus, normalize), leaf

            s, pullback, leaf = jax.vjp(scores, wrt, has_aux=True)
            n = positions.shape[0]
            cotangents = jnp.broadcast_to(jnp.eye(n, dtype=s.dtype)[:, None, :], (n, *s.shape))
            (grads,) = jax.vmap(pullback)(cotangents)
            return s, leaf, jnp.moveaxis(grads[0], 0, 1)

        if kind.startswith("rows/"):
            return output_rows
        return {"forward": forward, "activation": activation, "vjp": vjp, "layer_vjp": layer_vjp,
                "jacobian": jacobian}[kind]

    def _explained(self, query: Query, call: Call, state: Any, tensors: list, mode: Optional[str] = None,
                   value: Any = None) -> tuple[Any, Any]:
        """``(explained output, record)`` of one call of the model (its private copy)."""
        raw, record = run(self.model if call.graphdef is None else None, call, state, query.spec, tensors,
                          mode=mode, value=value)
        head = self._heads[query.key]
        return record.head if isinstance(head, LayerRef) else select_output(raw, head, _is_array), record

    def _differentiable(self, query: Query, call: Call, state: Any, tensors: list,
                        activation: Any) -> tuple[Callable, list]:
        """``(f, wrt)``: ``f(wrt) -> (explained output, layer output)``, ``wrt`` the attributed entries,
        the layer's activation given, or a zero added to the layer's output (its gradient is the
        gradient with respect to that output, computed in the same pass)."""
        explained = self._explained
        if query.layer is None:
            positions = query.spec.attributed

            def at_input(wrt: list) -> tuple[Any, Any]:
                full = list(tensors)
                for position, w in zip(positions, wrt):
                    full[position] = w
                return _floating(explained(query, call, state, full)[0]), None

            return at_input, [tensors[i] for i in positions]
        if activation is not None:
            def replaced(wrt: list) -> tuple[Any, Any]:
                return _floating(explained(query, call, state, tensors, "replace", wrt[0])[0]), wrt[0]

            return replaced, [activation]
        shape = jax.eval_shape(lambda: _joined(explained(query, call, state, tensors)[1].leaves))
        if not jnp.issubdtype(shape.dtype, jnp.inexact):
            raise NonDifferentiableError(f"layer {query.layer.name!r} outputs dtype {shape.dtype}, which has no "
                                         "gradient; choose a layer with a floating-point output")

        def shifted(wrt: list) -> tuple[Any, Any]:
            y, record = explained(query, call, state, tensors, "add", wrt[0])
            return _floating(y), _joined(record.leaves)

        return shifted, [jnp.zeros(shape.shape, shape.dtype)]

    def _did_not_run(self, query: Query, entries: list[np.ndarray], path: tuple) -> SaliencyError:
        """The refusal of a layer that never ran, naming the listed layers that did."""
        from flax import nnx

        from .modules import listed_modules, navigate, path_name

        model = self.model
        listed = listed_modules(model)
        graphdef, state = nnx.split(model)
        ran: set = set()

        def probe(s: Any, t: list) -> Any:
            ran.update(first_calls(graphdef, s, query.spec, t, [item.path for item in listed]))
            return jnp.zeros(())

        jax.eval_shape(probe, state, list(entries))
        names = [(item.name, type(item.module).__name__) for item in listed if item.path in ran]
        return did_not_run_error(path_name(path), type(navigate(model, path)).__name__, names)

    def _input_error(self, query: Query, entries: list[np.ndarray], err: Exception) -> SaliencyError:
        expected = self.describe_expected_input()
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        given = query.spec.describe([e.shape for e in entries], [e.dtype for e in entries])
        hint = f"; the model expects {expected}" if expected else ""
        return SaliencyError(f"the model could not run on {given}{hint}. (JAX said: {first_line})")

    # ---------------------------------------------------------------- weights
    def layers(self, example: Optional[np.ndarray] = None) -> list[LayerInfo]:
        """Every layer of an NNX module (``[]`` for a function: it has none)."""
        if not self._is_module:
            return []
        from .shapes import jax_layers

        return jax_layers(self.model, example, list(self.output_shapes))

    def layer_weights(self, layer: Any, *, split_gates: bool = True) -> list[WeightBlock]:
        from .weights import jax_layer_weights

        ref = self.find_layer(layer)
        return jax_layer_weights(ref.name, self._path(ref.obj), ref.obj, split_gates)

    def layer_cell(self, layer: Any) -> Optional[RecurrentCell]:
        from .weights import jax_layer_cell

        return jax_layer_cell(self.find_layer(layer).obj)

    def architecture(self) -> Optional[tuple]:
        """The module's class, its variables' paths, shapes and dtypes, and JAX's platform."""
        if not self._is_module:
            return None
        from .modules import variables

        model = self.model
        return (type(model).__module__, type(model).__qualname__, jax.default_backend(),
                tuple((p, tuple(v.get_value().shape), str(v.get_value().dtype)) for p, v in variables(model).items()))

    def named_weights(self) -> Optional[list[tuple[str, np.ndarray]]]:
        """Every variable of the module (random-number state aside) by its path in ``nnx.state``;
        None for a function (its weights, if any, are hidden in its closure)."""
        if not self._is_module:
            return None
        from .modules import value, variables

        return [("/".join(map(str, p)), value(v)) for p, v in variables(self.model).items()]

    def _require_module(self) -> Any:
        if not self._is_module:
            raise SaliencyError(_NO_LAYERS)
        return self.model


def _is_nnx_module(obj: Any) -> bool:
    """Whether ``obj`` is a Flax NNX module (without importing Flax for anything else)."""
    if not any(cls.__module__.split(".")[0] == "flax" for cls in type(obj).__mro__):
        return False
    from flax import nnx

    return isinstance(obj, nnx.Module)


def _is_array(obj: Any) -> bool:
    return isinstance(obj, jax.Array)


def _raised_by_jax(err: BaseException) -> bool:
    """Whether ``err`` comes from JAX's or Flax's own code (an operation refusing the input's shape or
    dtype), not from the model's code: the innermost Python frame is in one of their packages."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    where = FilePath(tb.tb_frame.f_code.co_filename)
    return any(where.is_relative_to(FilePath(module.__file__).parent)
               for name in ("jax", "jaxlib", "flax") if (module := sys.modules.get(name)) is not None)


def _floating(y: Any) -> Any:
    """The explained output, refused unless floating-point (it has no gradient otherwise)."""
    if not jnp.issubdtype(y.dtype, jnp.inexact):
        raise NonDifferentiableError(f"the explained output has dtype {y.dtype}, which has no gradient "
                                     "(an argmax or a cast to int inside the model?)")
    return y


def _joined(leaves: list) -> Any:
    """The layer's output: its one call's, or its calls' joined along axis 1 (``calls="all"``)."""
    return jnp.concatenate(leaves, axis=1) if len(leaves) > 1 else leaves[0]


def _one_hot(y: Any, targets: Any) -> Any:
    """The cotangent choosing each sample's target output (``-1``: its arg-max)."""
    flat = y.reshape(y.shape[0], -1)
    index = jnp.where(targets < 0, jnp.argmax(flat, axis=1), targets)
    return jax.nn.one_hot(index, flat.shape[1], dtype=y.dtype).reshape(y.shape)


def _row_scores(y: Any, positions: Any, tokens: Any, minus: Any, normalize: str) -> Any:
    """``(batch, n)``: ``y`` ``(batch, length, vocabulary)`` at ``positions``, entries ``tokens``,
    normalised over the vocabulary at those positions only (see :meth:`Backend.output_rows`),
    minus entries ``minus``."""
    at = y[:, positions]
    if normalize == "log_softmax":
        at = jax.nn.log_softmax(at.astype(jnp.float32), axis=-1)
    elif normalize == "softmax":
        at = jax.nn.softmax(at.astype(jnp.float32), axis=-1)
    k = jnp.arange(positions.shape[0])
    picked = at[:, k, tokens]
    return picked if minus is None else picked - at[:, k, minus]


def _numpy(array: Any) -> np.ndarray:
    return np.asarray(array, dtype=np.float32)
