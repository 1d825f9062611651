"""``sw.attribute_dataset`` against the loop a person writes by hand, measured in one run.

The hand loop calls ``sw.saliency`` batch by batch and keeps every result in
memory; ``attribute_dataset`` does the same work and also streams each batch to
``.npy`` files and a manifest (the price of resuming and bounded memory).

Run: ``.venv/bin/python benchmarks/dataset_bench.py`` (part of ``make bench``).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import torch
from torch import nn

import saliency_widgets as sw
from _timing import Report, best_seconds

BATCH = 256


def torch_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        nn.Linear(32 * 16, 10),
    ).eval()


def torch_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)).eval()


def by_hand(model: nn.Module, x: np.ndarray) -> np.ndarray:
    return np.concatenate([sw.saliency(model, x[s:s + BATCH]) for s in range(0, len(x), BATCH)])


def streamed(model: nn.Module, x: np.ndarray, root: str) -> None:
    path = tempfile.mkdtemp(dir=root)
    sw.attribute_dataset(model, x, batch_size=BATCH, path=path, progress=False)
    shutil.rmtree(path)


def main() -> int:
    # One thread: with two, this shared machine's neighbours make the MLP's time swing 4x
    # from run to run, and the ratio measures the streaming overhead, not torch's threading.
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    report = Report()
    root = tempfile.mkdtemp(prefix="sw-dataset-bench-")
    try:
        # The CNN is a real workload; the tiny MLP (a few ms per batch) shows the fixed cost
        # per batch (three files appended, their headers rewritten) at its most visible.
        for name, model, shape, goal in (("CNN 3×32×32, 2048 samples", torch_cnn(), (2048, 3, 32, 32), 1.15),
                                         ("MLP 64→10, 16384 samples", torch_mlp(), (16384, 64), None)):
            x = rng.normal(size=shape).astype(np.float32)
            times = best_seconds(repeat=5, warmup=1, hand=lambda: by_hand(model, x),
                                 dataset=lambda: streamed(model, x, root))
            ratio = times["dataset"] / times["hand"]
            label = f"{name}: attribute_dataset / hand loop"
            if goal is None:
                report.note(label, ratio)
            else:
                report.at_most(label, ratio, goal)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if report.print() else 1


if __name__ == "__main__":
    sys.exit(main())
