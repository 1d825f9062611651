"""What the structured-input path costs: the same model called with ``x`` alone and with
``(x, mask)``, ratios measured in one interleaved run (issue: real models).

Run: ``.venv/bin/python benchmarks/structured_bench.py`` (part of ``make bench``).
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from torch import nn

import saliency_widgets as sw
from _timing import Report, best_seconds


class MaskedEncoder(nn.Module):
    """``forward(x, mask=None)``: a float sequence with an optional integer mask (all ones when
    left out, so both calls do the same arithmetic)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.proj = nn.Linear(64, 256)
        self.out = nn.Linear(256, 10)

    def forward(self, x, mask=None):
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.int64)
        h = torch.relu(self.proj(x)) * mask[..., None]
        return self.out(h.mean(1))


def main() -> int:
    model = MaskedEncoder().eval()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 32, 64)).astype(np.float32)
    mask = np.ones((8, 32), dtype=np.int64)
    report = Report()
    for method, kw in (("gradient", {}), ("integrated_gradients", {"steps": 32})):
        times = best_seconds(
            plain=lambda: sw.saliency(model, x, target=3, method=method, **kw),
            structured=lambda: sw.saliency(model, (x, mask), target=3, method=method, **kw),
            repeat=15,
        )
        report.at_most(f"{method}: (x, mask) / x alone", times["structured"] / times["plain"], 1.10)
    times = best_seconds(plain=lambda: sw.jacobian(model, x), structured=lambda: sw.jacobian(model, (x, mask)))
    report.at_most("jacobian: (x, mask) / x alone", times["structured"] / times["plain"], 1.10)
    return 0 if report.print() else 1


if __name__ == "__main__":
    sys.exit(main())
