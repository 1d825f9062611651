"""The protocol every framework backend implements.

Everything framework-specific lives behind this interface; ``attribution.py``
and the widgets only call these methods and only see numpy arrays.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Optional, Sequence

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
        self.model = model

    # ----------------------------------------------------------------- inputs
    @abstractmethod
    def to_numpy(self, x: Any) -> np.ndarray:
        """The user's input (numpy, torch or tf tensor) as a numpy array, dtype kept."""

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
        """``(outputs, d sum(outputs * cotangent) / d x)`` for a batch."""

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


def flat_names(names: Sequence[str]) -> str:
    """``"a, b, c"``: for messages that list valid choices."""
    return ", ".join(repr(n) for n in names)
