"""The notebook widgets (anywidget): ``SaliencyMap``, ``JacobianGrid``, ``WeightInspector`` and
``GenerationMap``, and ``DatasetMap`` (a dataset's attributions as a gallery)."""

from .dataset_map import DatasetMap
from .generation_map import GenerationMap
from .jacobian_grid import JacobianGrid
from .saliency_map import SaliencyMap
from .weight_inspector import WeightInspector

__all__ = ["SaliencyMap", "JacobianGrid", "WeightInspector", "GenerationMap", "DatasetMap"]
