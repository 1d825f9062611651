"""Framework-free descriptions of layers and their weight arrays.

Backends turn a framework's raw variables into these records; widgets and
``sw.layers`` / ``sw.layer_weights`` only ever see these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

import numpy as np

Role = Literal["kernel", "input", "recurrent", "bias"]


@dataclass(frozen=True)
class LayerInfo:
    """One layer as ``model.summary()`` would list it.

    ``output_shape`` is per sample (no batch axis); ``None`` when it is unknown
    (a torch model for which no example input was given).
    """

    name: str
    type: str
    output_shape: Optional[tuple]
    n_params: int


@dataclass(frozen=True)
class WeightBlock:
    """One named, documented weight array of a layer (DESIGN §3.3)."""

    name: str
    role: Role
    gate: Optional[str]
    source: str
    array: np.ndarray = field(repr=False)
    description: str

    @property
    def shape(self) -> tuple:
        return tuple(self.array.shape)
