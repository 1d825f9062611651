"""Attribution engine speed, as ratios against the obvious alternatives measured in the same run.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/engine_bench.py``).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import torch
from torch import nn

import saliency_widgets as sw
from _timing import Report, median_seconds


def torch_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3072, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 100)).eval()


def torch_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        nn.Linear(64 * 16, 10),
    ).eval()


def single_target_gradient(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The cheapest hand-written gradient of one output: one forward, one backward."""
    xt = torch.tensor(x, requires_grad=True)
    (grad,) = torch.autograd.grad(model(xt)[:, 0].sum(), xt)
    return grad.numpy()


def bench_torch(report: Report) -> None:
    from captum.attr import IntegratedGradients, Saliency

    mlp = torch_mlp()
    x = np.random.default_rng(0).normal(size=(1, 3072)).astype(np.float32)
    xt = torch.tensor(x)
    saliency = Saliency(mlp)
    ours = median_seconds(lambda: sw.jacobian(mlp, x))
    loop = median_seconds(lambda: [saliency.attribute(xt, target=t, abs=False) for t in range(100)], repeat=3)
    single = median_seconds(lambda: single_target_gradient(mlp, x), repeat=21)
    print(f"torch MLP 3072-512-512-100, 1 sample: jacobian {ours * 1e3:.1f} ms, "
          f"captum loop {loop * 1e3:.1f} ms, one gradient {single * 1e3:.2f} ms")
    report.at_least("torch MLP jacobian vs captum Saliency per-output loop", loop / ours, 10)
    report.at_most("torch MLP jacobian / one single-target gradient", ours / single, 5)

    cnn = torch_cnn()
    x = np.random.default_rng(0).normal(size=(1, 3, 64, 64)).astype(np.float32)
    xt = torch.tensor(x)
    saliency = Saliency(cnn)
    ours = median_seconds(lambda: sw.jacobian(cnn, x))
    loop = median_seconds(lambda: [saliency.attribute(xt, target=t, abs=False) for t in range(10)])
    print(f"torch CNN 3x64x64 -> 10: jacobian {ours * 1e3:.1f} ms, captum loop {loop * 1e3:.1f} ms")
    report.at_least("torch CNN jacobian vs captum Saliency per-target loop", loop / ours, 3)

    ig = IntegratedGradients(cnn)
    ours = median_seconds(lambda: sw.saliency(cnn, x, 3, method="integrated_gradients", steps=50))
    theirs = median_seconds(lambda: ig.attribute(xt, target=3, n_steps=50))
    print(f"torch CNN integrated gradients, 50 steps: ours {ours * 1e3:.1f} ms, captum {theirs * 1e3:.1f} ms")
    report.at_least("torch CNN integrated gradients vs captum IntegratedGradients", theirs / ours, 1.5)


def bench_keras(report: Report) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3072,)), keras.layers.Dense(512, activation="relu"),
                              keras.layers.Dense(512, activation="relu"), keras.layers.Dense(100)])
    x = np.random.default_rng(0).normal(size=(1, 3072)).astype(np.float32)
    xt = tf.constant(x)

    def tape_loop() -> list:
        grads = []
        for t in range(100):
            with tf.GradientTape() as tape:
                tape.watch(xt)
                out = model(xt, training=False)[:, t]
            grads.append(tape.gradient(out, xt))
        return grads

    ours = median_seconds(lambda: sw.jacobian(model, x))
    loop = median_seconds(tape_loop, repeat=3)
    print(f"Keras MLP 3072-512-512-100: jacobian {ours * 1e3:.1f} ms, GradientTape loop {loop * 1e3:.1f} ms")
    report.at_least("Keras MLP jacobian vs per-output GradientTape loop", loop / ours, 10)


def main() -> int:
    torch.set_num_threads(os.cpu_count() or 1)
    report = Report()
    bench_torch(report)
    bench_keras(report)
    print()
    return 0 if report.print() else 1


if __name__ == "__main__":
    sys.exit(main())
