"""A run's pass plan: how many copies of a batch one pass of SmoothGrad / integrated gradients
takes, and in which memory layout, fixed for the rest of the run once chosen.

``sw.attribute`` chooses passes by timing (:mod:`saliency_widgets.passes`), and the numbers
depend on them in the last float32 bits (copies are summed in float32 within a pass, and
kernels differ by size and layout). So a run lets the backend's search choose for its first
batches, until the search is done (at most ``SEARCH_BATCHES``), then fixes its choice
(:class:`PassPlan`, kept in the manifest) for every later batch: a resumed run, or the Ray
engine's workers, compute those batches exactly as an uninterrupted local run does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..passes import PassSizes

#: Batches a run attributes at most while the backend's search chooses its passes.
SEARCH_BATCHES = 8


@dataclass(frozen=True)
class PassPlan:
    """Copies per pass and the memory layout (one of ``Backend.layouts``) of every batch from
    row ``from_row`` on."""

    size: int
    layout: Optional[str]
    from_row: int

    @classmethod
    def chosen(cls, sizes: PassSizes, from_row: int) -> "PassPlan":
        """The choice of ``sizes``' search once done; before, its settled size (or the size
        fastest per copy so far) in the layout judged fastest at that size (else the default)."""
        if sizes.done:
            return cls(sizes.size, sizes.layout, from_row)
        if sizes.settled:
            size = sizes.settled_size
        else:
            size = min(sizes.rates, key=sizes.rates.__getitem__) if sizes.rates else sizes.size
        judged = sizes.by_size[size].rates if size in sizes.by_size else {}
        return cls(size, min(judged, key=judged.__getitem__) if judged else sizes.layouts[0], from_row)

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "layout": self.layout, "from_row": self.from_row}

    @classmethod
    def from_json(cls, value: Optional[dict[str, Any]]) -> Optional["PassPlan"]:
        """The plan a manifest recorded (None when it has none yet, or a method without passes)."""
        return None if value is None else cls(value["size"], value["layout"], value["from_row"])


class FixedPassSizes(PassSizes):
    """Passes of one size and layout, whatever they take: nothing is measured."""

    def next(self, remaining: int) -> int:
        self._pending = min(self.size, remaining)
        return self._pending

    def layout_for(self, copies: int) -> Any:
        return self.layouts[0]

    def record(self, seconds: float) -> None:
        pass


class RunPasses:
    """The passes of one batch of a run, for :func:`~saliency_widgets.attribution.attribute_in_passes`:
    the plan's for every input signature, or, without a plan, the backend's own search (the one used
    is kept in :attr:`used`)."""

    def __init__(self, plan: Optional[PassPlan]) -> None:
        self.plan = plan
        self.used: Optional[PassSizes] = None

    def __call__(self, own: PassSizes) -> PassSizes:
        if self.plan is not None:
            return FixedPassSizes(self.plan.size, (self.plan.layout,))
        self.used = own
        return own
