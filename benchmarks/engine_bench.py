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
from _timing import Report, best_seconds


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


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def bench_torch(report: Report) -> None:
    from captum.attr import IntegratedGradients, Saliency

    mlp = torch_mlp()
    x = np.random.default_rng(0).normal(size=(1, 3072)).astype(np.float32)
    xt = torch.tensor(x)
    saliency = Saliency(mlp)
    t = best_seconds(
        jacobian=lambda: sw.jacobian(mlp, x),
        captum_loop=lambda: [saliency.attribute(xt, target=i, abs=False) for i in range(100)],
    )
    t.update(best_seconds(  # sub-millisecond calls: more rounds, apart from the big ones
        repeat=50,
        one_gradient=lambda: sw.saliency(mlp, x, target=0),
        one_captum=lambda: saliency.attribute(xt, target=0, abs=False),
        one_by_hand=lambda: single_target_gradient(mlp, x),
    ))
    print("torch MLP 3072-512-512-100, 1 sample:", ", ".join(f"{k} {ms(v)}" for k, v in t.items()))
    report.at_least("torch MLP jacobian vs captum Saliency per-output loop", t["captum_loop"] / t["jacobian"], 10)
    # Once a goal (<= 5x); a yardstick that grows as the single gradient gets faster. The goal
    # now is the analytic product's time (zoo_bench.py: Jacobian / analytic product <= 1.2x).
    report.note("torch MLP jacobian / one sw.saliency gradient", t["jacobian"] / t["one_gradient"])
    report.note("torch MLP jacobian / one captum Saliency call", t["jacobian"] / t["one_captum"])
    report.note("torch MLP jacobian / one hand-written autograd.grad", t["jacobian"] / t["one_by_hand"])

    cnn = torch_cnn()
    x = np.random.default_rng(0).normal(size=(1, 3, 64, 64)).astype(np.float32)
    xt = torch.tensor(x)
    saliency, ig = Saliency(cnn), IntegratedGradients(cnn)
    def one_pass_of_ten() -> np.ndarray:
        """The bound of any batched Jacobian: one forward/backward of the input tiled 10 times."""
        tiled = xt.expand(10, -1, -1, -1).clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(cnn(tiled), tiled, torch.eye(10))
        return grad.numpy()

    t = best_seconds(
        repeat=15,
        jacobian=lambda: sw.jacobian(cnn, x),
        captum_loop=lambda: [saliency.attribute(xt, target=i, abs=False) for i in range(10)],
        one_pass_of_ten=one_pass_of_ten,
        ig=lambda: sw.saliency(cnn, x, 3, method="integrated_gradients", steps=50),
        captum_ig=lambda: ig.attribute(xt, target=3, n_steps=50),
    )
    print("torch CNN 3x64x64 -> 10, 1 sample:", ", ".join(f"{k} {ms(v)}" for k, v in t.items()))
    report.at_least("torch CNN jacobian vs captum Saliency per-target loop", t["captum_loop"] / t["jacobian"], 3)
    report.note("torch CNN captum per-target loop / one hand-written pass of 10 (the bound)",
                t["captum_loop"] / t["one_pass_of_ten"])
    report.at_least("torch CNN integrated gradients (50 steps) vs captum", t["captum_ig"] / t["ig"], 1.5)


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
        for i in range(100):
            with tf.GradientTape() as tape:
                tape.watch(xt)
                out = model(xt, training=False)[:, i]
            grads.append(tape.gradient(out, xt))
        return grads

    t = best_seconds(repeat=3, jacobian=lambda: sw.jacobian(model, x), tape_loop=tape_loop)
    print("Keras MLP 3072-512-512-100, 1 sample:", ", ".join(f"{k} {ms(v)}" for k, v in t.items()))
    report.at_least("Keras MLP jacobian vs per-output GradientTape loop", t["tape_loop"] / t["jacobian"], 10)


def main() -> int:
    torch.set_num_threads(os.cpu_count() or 1)
    report = Report()
    bench_torch(report)
    bench_keras(report)
    print()
    return 0 if report.print() else 1


if __name__ == "__main__":
    sys.exit(main())
