"""Keras 3 backend (TensorFlow): Sequential, functional and subclassed ``keras.Model``."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ..errors import NonDifferentiableError, NotAModelError, SaliencyError
from ..weights import LayerInfo, WeightBlock
from .base import Backend

_FINAL_ACTIVATIONS = ("softmax", "sigmoid", "log_softmax")

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
    ``tf.GradientTape`` functions (one trace per model, output mode and input shape).

    Nothing is changed on the model: no variable is written, ``trainable`` flags are
    left alone, and batch norm uses its moving statistics.
    """

    framework = "keras"

    def __init__(self, model: Any) -> None:
        self._keras, self._tf = _import_frameworks()
        if not callable(model):
            raise NotAModelError(f"{type(model).__qualname__} is not a callable Keras model")
        super().__init__(model)
        self._final_layer, self._final_activation = self._find_final_activation()
        self._compiled: dict[tuple[str, bool], Callable] = {}

    # ----------------------------------------------------------------- inputs
    def describe_expected_input(self) -> Optional[str]:
        try:
            shapes = [tuple(t.shape) for t in self.model.inputs]
        except (AttributeError, ValueError, TypeError):
            return None
        return " and ".join(str(("batch",) + s[1:]).replace("'", "") for s in shapes)

    @property
    def is_training(self) -> bool:
        return False  # Keras has no model-wide mode: every call here passes training=False

    @property
    def final_activation(self) -> Optional[str]:
        return self._final_activation

    def _find_final_activation(self) -> tuple[Any, Optional[str]]:
        """The last layer of a Sequential/functional model, if it applies softmax/sigmoid."""
        model = self.model
        if not _is_graph_model(model, self._keras):
            return None, None
        last = model.layers[-1] if model.layers else None
        while last is not None and _is_graph_model(last, self._keras) and last.layers:
            last = last.layers[-1]
        several_outputs = not isinstance(model, self._keras.Sequential) and len(model.outputs) != 1
        if last is None or several_outputs:
            return None, None
        if isinstance(last, self._keras.layers.Softmax):
            return last, "softmax"
        name = getattr(getattr(last, "activation", None), "__name__", None)
        return (last, name) if name in _FINAL_ACTIVATIONS else (None, None)

    @contextmanager
    def _scores_before_activation(self, logits: bool) -> Iterator[None]:
        """While tracing a compiled function, make the final layer skip its activation.

        Only Python-level attributes are swapped, inside the trace, and restored in
        ``finally``; the compiled graph reads the model's own variables.
        """
        layer = self._final_layer
        if not logits or layer is None:
            yield
            return
        attribute = "call" if isinstance(layer, self._keras.layers.Softmax) else "activation"
        identity = (lambda inputs, *args, **kwargs: inputs) if attribute == "call" else self._keras.activations.linear
        had_own = attribute in vars(layer)
        original = getattr(layer, attribute)
        object.__setattr__(layer, attribute, identity)
        try:
            yield
        finally:
            if had_own:
                object.__setattr__(layer, attribute, original)
            else:
                object.__delattr__(layer, attribute)

    # ---------------------------------------------------------------- compute
    def _outputs(self, x: Any, logits: bool) -> Any:
        with self._scores_before_activation(logits):
            out = self.model(x, training=False)
        if isinstance(out, (list, tuple, dict)):
            raise SaliencyError(
                f"the model returns {type(out).__name__} of several outputs; wrap it in a "
                "keras.Model with the one output to explain"
            )
        return out

    def _function(self, kind: str, logits: bool) -> Callable:
        key = (kind, logits)
        if key not in self._compiled:
            tf = self._tf
            outputs = self._outputs

            def forward(x: Any) -> Any:
                return outputs(x, logits)

            def vjp(x: Any, cotangent: Any) -> tuple[Any, Any]:
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = outputs(x, logits)
                    weighted = tf.reduce_sum(y * tf.reshape(tf.cast(cotangent, y.dtype), tf.shape(y)))
                return y, tape.gradient(weighted, x)

            def jacobian(x: Any, rows: Any) -> Any:
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = outputs(x, logits)
                    selected = tf.gather(tf.reshape(y, (tf.shape(y)[0], -1)), rows, axis=1)
                return tape.batch_jacobian(selected, x)

            body = {"forward": forward, "vjp": vjp, "jacobian": jacobian}[kind]
            self._compiled[key] = tf.function(body, reduce_retracing=True)
        return self._compiled[key]

    def _run(self, kind: str, logits: bool, *args: Any) -> Any:
        self._ensure_built(args[0])
        tf = self._tf
        try:
            return self._function(kind, logits)(*(tf.convert_to_tensor(a) for a in args))
        except (ValueError, TypeError, tf.errors.InvalidArgumentError) as err:
            raise self._shape_error(args[0].shape, err) from None

    def _ensure_built(self, x: np.ndarray) -> None:
        """An unbuilt Sequential creates its weights on its first call: do that eagerly, once."""
        model = self.model
        if not getattr(model, "built", True):
            try:
                model(x[:1], training=False)
            except (ValueError, TypeError) as err:
                raise self._shape_error(x.shape, err) from None

    def _shape_error(self, shape: tuple, err: Exception) -> SaliencyError:
        expected = self.describe_expected_input()
        text = _ANSI_ESCAPE.sub("", str(err))
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        said = next((ln for ln in lines if "shape" in ln.lower() or "incompatible" in ln.lower()),
                    lines[0] if lines else type(err).__name__)
        hint = f"; the model expects {expected}" if expected else ""
        return SaliencyError(f"the model could not run on an input of shape {tuple(shape)}{hint}. "
                             f"(Keras said: {said[:300]})")

    def forward(self, x: np.ndarray, *, logits: bool) -> np.ndarray:
        return np.asarray(self._run("forward", logits, x), dtype=np.float32)

    def vjp(self, x: np.ndarray, cotangent: np.ndarray, *, logits: bool) -> tuple[np.ndarray, np.ndarray]:
        y, grad = self._run("vjp", logits, x, cotangent)
        if grad is None:
            raise NonDifferentiableError(
                "the model's output does not depend differentiably on its input "
                "(an argmax, a cast to int or a stop_gradient inside the model?)"
            )
        return np.asarray(y, dtype=np.float32), np.asarray(grad, dtype=np.float32)

    def jacobian_rows(self, x: np.ndarray, rows: np.ndarray, *, logits: bool) -> np.ndarray:
        jac = self._run("jacobian", logits, x, rows.astype(np.int32))
        if jac is None:
            raise NonDifferentiableError("the model's output does not depend on its input")
        return np.asarray(jac, dtype=np.float32)

    # ---------------------------------------------------------------- weights
    def layers(self, example: Optional[np.ndarray] = None) -> list[LayerInfo]:
        from .keras_weights import keras_layers

        if example is not None:
            self._ensure_built(example)
        return keras_layers(self.model, example)

    def layer_weights(self, layer: Any, *, split_gates: bool = True) -> list[WeightBlock]:
        from .keras_weights import keras_layer_weights

        return keras_layer_weights(self.model, layer, split_gates)


def _is_graph_model(obj: Any, keras: Any) -> bool:
    """Sequential or functional: layers run in the listed order, so the last one is final."""
    return isinstance(obj, keras.Sequential) or (
        isinstance(obj, keras.Model) and type(obj).__name__ == "Functional"
    )
