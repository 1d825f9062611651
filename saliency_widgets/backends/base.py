"""The protocol every framework backend implements.

Everything framework-specific lives behind this interface; ``attribution.py``
and the widgets only call these methods and only see numpy arrays.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
import types
import weakref
from typing import Any, Callable, Optional

import numpy as np

from ..weights import LayerInfo, WeightBlock


class Backend(ABC):
    """Computes forward passes and gradients of one model in its own framework.

    ``logits=True`` asks for the scores before a final softmax/sigmoid when the
    model ends with one (see :attr:`final_activation`), the raw output otherwise.
    All array arguments and results are numpy, on the CPU; the backend moves
    them to and from the model's device.
    """

    #: "torch" or "keras"
    framework: str = ""

    def __init__(self, model: Any) -> None:
        #: Per-sample output shape by (per-sample input shape, logits), filled by attribution.py.
        self.output_shapes: dict[tuple, tuple[int, ...]] = {}
        # A weak reference where possible: backends are cached per model, and the
        # cache must not keep a model alive that the user has dropped.
        # Bound methods are created on access and would die at once: hold those.
        self._model_ref: Callable[[], Any] = lambda: model
        if not isinstance(model, types.MethodType):
            try:
                self._model_ref = weakref.ref(model)
            except TypeError:
                pass

    @property
    def model(self) -> Any:
        model = self._model_ref()
        if model is None:
            raise ReferenceError("the model of this backend no longer exists")
        return model

    # ----------------------------------------------------------------- inputs
    def to_numpy(self, x: Any) -> np.ndarray:
        """The user's input (numpy, torch or tf tensor) as a numpy array, dtype kept."""
        return to_numpy(x)

    @abstractmethod
    def describe_expected_input(self) -> Optional[str]:
        """What input the model expects, e.g. ``"(batch, 3, 32, 32)"``, if it can be told."""

    @property
    @abstractmethod
    def is_training(self) -> bool:
        """Whether the model is in training mode (attributions are computed in inference mode anyway)."""

    @property
    @abstractmethod
    def final_activation(self) -> Optional[str]:
        """``"softmax"``, ``"sigmoid"`` (or ``"log_softmax"``) when the model ends with one, else None."""

    # ---------------------------------------------------------------- compute
    @abstractmethod
    def forward(self, x: np.ndarray, *, logits: bool) -> np.ndarray:
        """Outputs for a batch, in inference mode, without recording gradients."""

    @abstractmethod
    def vjp(self, x: np.ndarray, cotangent: np.ndarray, *, logits: bool) -> tuple[np.ndarray, np.ndarray]:
        """``(outputs, d sum(outputs * cotangent) / d x)`` for a batch; ``cotangent`` has the
        outputs' size and is reshaped to their shape."""

    @abstractmethod
    def jacobian_rows(self, x: np.ndarray, rows: np.ndarray, *, logits: bool) -> np.ndarray:
        """Per-sample Jacobian of the flat outputs ``rows`` w.r.t. the input.

        Returns ``(batch, len(rows), *x.shape[1:])``: one vectorized pass,
        not a loop over rows. The caller chunks ``rows`` under the memory budget.
        """

    # ---------------------------------------------------------------- weights
    @abstractmethod
    def layers(self, example: Optional[np.ndarray] = None) -> list[LayerInfo]:
        """Every layer with its per-sample output shape and parameter count."""

    @abstractmethod
    def layer_weights(self, layer: Any, *, split_gates: bool = True) -> list[WeightBlock]:
        """The named weight blocks of one layer (a name, an index or the layer object)."""


def to_numpy(x: Any) -> np.ndarray:
    """A numpy view of ``x`` (numpy, torch tensor, tf tensor or nested lists), dtype kept.

    Duck-typed so that this module imports no framework.
    """
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor
        return x.detach().cpu().numpy()
    if hasattr(x, "numpy") and callable(x.numpy):  # tf.Tensor / tf.Variable
        return np.asarray(x.numpy())
    return np.asarray(x)
