"""saliency_widgets: see inside neural networks from a notebook.

Importing this package imports neither torch nor tensorflow; a backend is
loaded when a model of its framework is first passed in. The widgets (and
anywidget) load on first use of their names.
"""

from typing import Any

from . import checks
from .attribution import METHODS, Attribution, attribute, jacobian, saliency
from .config import config
from .dataset import DatasetAttribution, attribute_dataset
from .generation import GenerationAttribution, attribute_generation
from .errors import MemoryBudgetError, NonDifferentiableError, NotAModelError, SaliencyError, SaliencyWarning
from .model_layers import layer_equation, layer_weights, layers
from .weights import LayerInfo, WeightBlock

__version__ = "0.1.0"

_WIDGETS = ("SaliencyMap", "JacobianGrid", "WeightInspector", "GenerationMap", "DatasetMap")


def __getattr__(name: str) -> Any:
    if name in _WIDGETS:
        from . import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'saliency_widgets' has no attribute {name!r}")


__all__ = [
    "METHODS",
    "Attribution",
    "DatasetAttribution",
    "DatasetMap",
    "GenerationAttribution",
    "GenerationMap",
    "JacobianGrid",
    "LayerInfo",
    "MemoryBudgetError",
    "NonDifferentiableError",
    "NotAModelError",
    "SaliencyError",
    "SaliencyMap",
    "SaliencyWarning",
    "WeightBlock",
    "WeightInspector",
    "attribute",
    "attribute_dataset",
    "attribute_generation",
    "checks",
    "config",
    "jacobian",
    "layer_equation",
    "layer_weights",
    "layers",
    "saliency",
]
