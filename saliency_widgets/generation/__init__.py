"""Generated text explained: ``sw.attribute_generation`` and its result type (DESIGN §3.8)."""

from .attribute import METHODS, TARGETS, attribute_generation
from .result import GenerationAttribution

__all__ = ["METHODS", "TARGETS", "GenerationAttribution", "attribute_generation"]
