"""saliency_widgets: see inside neural networks from a notebook.

Importing this package imports neither torch nor tensorflow; a backend is
loaded when a model of its framework is first passed in.
"""

from .attribution import METHODS, Attribution, attribute, jacobian, saliency
from .config import config
from .errors import MemoryBudgetError, NonDifferentiableError, NotAModelError, SaliencyError, SaliencyWarning
from .weights import LayerInfo, WeightBlock

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "Attribution",
    "LayerInfo",
    "MemoryBudgetError",
    "NonDifferentiableError",
    "NotAModelError",
    "SaliencyError",
    "SaliencyWarning",
    "WeightBlock",
    "attribute",
    "config",
    "jacobian",
    "saliency",
]
