"""The model zoo: sw against hand-written framework code, captum and the analytic bound,
ratios measured in one interleaved run per model (issue: speed at the hardware's limit).

Run: ``make bench`` (or ``cd benchmarks && ../.venv/bin/python zoo_bench.py [--markdown]``).
Prints model × method × ratio with the goal beside each; exits non-zero on a missed goal.
``--markdown`` prints the table as the README's Speed section shows it.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import torch
from torch import nn

import saliency_widgets as sw
from _timing import Report, best_seconds, calls_per_block


@dataclass
class Entry:
    """One zoo model: how to build it, its input batch, and its logits as a plain function."""

    name: str
    model: nn.Module
    x: Any
    logits: Callable[[torch.Tensor], torch.Tensor]
    kw: dict
    image: bool = False


def mlp() -> Entry:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3072, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 100)).eval()
    return Entry("MLP 3072-512-512-100", model, _normal(16, 3072), model, {})


def small_cnn() -> Entry:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64 * 16, 10),
    ).eval()
    return Entry("small CNN 3x64x64", model, _normal(4, 3, 64, 64), model, {}, image=True)


def resnet() -> Entry:
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=32, hidden_sizes=[32, 64, 128, 256], depths=[2, 2, 2, 2],
                          layer_type="basic", num_labels=10)
    model = ResNetForImageClassification(config).eval()
    return Entry("ResNet-18-style 3x112x112", model, _normal(2, 3, 112, 112), lambda t: model(t).logits, {}, image=True)


def vit() -> Entry:
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    config = ViTConfig(image_size=64, patch_size=8, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                       intermediate_size=128, num_labels=10)
    model = ViTForImageClassification(config).eval()
    return Entry("ViT-style 3x64x64", model, _normal(4, 3, 64, 64), lambda t: model(t).logits, {}, image=True)


def bert() -> Entry:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=64, num_labels=2)
    model = BertForSequenceClassification(config).eval()
    ids = torch.randint(1, 100, (8, 32))
    mask = torch.ones_like(ids)
    words = model.bert.embeddings.word_embeddings

    def logits(embedded: torch.Tensor) -> torch.Tensor:
        return model(inputs_embeds=embedded, attention_mask=mask).logits

    entry = Entry("BERT-style, 32 tokens (layer=word embeddings)", model, {"input_ids": ids, "attention_mask": mask},
                  logits, {"layer": words})
    entry.embedded = lambda: words(ids)  # what the hand-written code differentiates
    return entry


def lstm() -> Entry:
    torch.manual_seed(0)

    class LSTMHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(32, 64, batch_first=True)
            self.fc = nn.Linear(64, 5)

        def forward(self, x):
            return self.fc(self.lstm(x)[0][:, -1])

    model = LSTMHead().eval()
    return Entry("LSTM 50x32 -> 64", model, _normal(16, 50, 32), model, {})


def _normal(*shape: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).normal(size=shape).astype(np.float32))


def _differentiated(entry: Entry) -> torch.Tensor:
    """The tensor the hand-written code differentiates: the input, or the embedding output."""
    return entry.embedded().detach() if hasattr(entry, "embedded") else entry.x


def hand_gradient(entry: Entry, target: int) -> np.ndarray:
    """One forward, one ``autograd.grad``: the cheapest correct gradient, written by hand."""
    leaf = _differentiated(entry).clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(entry.logits(leaf)[:, target].sum(), leaf)
    return grad.numpy()


def bench_gradients(report: Report, entry: Entry) -> None:
    """One gradient vs hand-written autograd and captum; target=None vs an explicit target."""
    from captum.attr import Saliency

    saliency = Saliency(entry.logits)
    leaf = _differentiated(entry)
    t = best_seconds(
        repeat=15 if entry.name.startswith(("MLP", "LSTM")) else 7,
        number=calls_per_block(lambda: hand_gradient(entry, 1)),
        sw=lambda: sw.saliency(entry.model, entry.x, 1, **entry.kw),
        sw_argmax=lambda: sw.saliency(entry.model, entry.x, **entry.kw),
        by_hand=lambda: hand_gradient(entry, 1),
        captum=lambda: saliency.attribute(leaf, target=1, abs=False),
    )
    report.at_most(f"{entry.name}: gradient / hand-written autograd.grad", t["sw"] / t["by_hand"], 1.15)
    report.at_most(f"{entry.name}: gradient / captum Saliency", t["sw"] / t["captum"], 1.0)
    report.at_most(f"{entry.name}: target=None / explicit target", t["sw_argmax"] / t["sw"], 1.1)


def bench_paths(report: Report, entry: Entry, steps: int) -> None:
    """Integrated gradients and SmoothGrad against captum at its best internal batch size."""
    from captum.attr import IntegratedGradients, NoiseTunnel, Saliency

    x = entry.x
    ig, tunnel = IntegratedGradients(entry.logits), NoiseTunnel(Saliency(entry.logits))
    sigma = 0.15 * float(x.max() - x.min())
    sizes = (steps * len(x), max(1, steps * len(x) // 4))
    captum_ig = {f"captum_ig_{n}": (lambda n=n: ig.attribute(x, target=1, n_steps=steps, internal_batch_size=n,
                                                             method="gausslegendre")) for n in sizes}
    captum_sg = {f"captum_sg_{n}": (lambda n=n: tunnel.attribute(x, target=1, nt_type="smoothgrad", nt_samples=steps,
                                                                 stdevs=sigma, nt_samples_batch_size=max(1, n // len(x)),
                                                                 abs=False)) for n in sizes}
    by_hand = {f"hand_{n}_{layout}": (lambda n=n, layout=layout: hand_passes(entry, steps, n, layout))
               for n in (steps, max(1, steps // 2), max(1, steps // 4)) for layout in ("contiguous", "channels_last")}
    t = best_seconds(
        repeat=5, warmup=8,  # the first calls measure pass sizes and layouts (passes.py)
        sw_ig=lambda: sw.saliency(entry.model, x, 1, method="integrated_gradients", steps=steps),
        sw_sg=lambda: sw.saliency(entry.model, x, 1, method="smoothgrad", n_samples=steps, seed=0),
        **captum_ig, **captum_sg, **by_hand,
    )
    best_ig = min(t[k] for k in captum_ig)
    best_sg = min(t[k] for k in captum_sg)
    best_hand = min(t[k] for k in by_hand)
    goal = 1.3 if entry.image else 1.0
    report.at_least(f"{entry.name}: captum IG (best batch) / IG, {steps} steps", best_ig / t["sw_ig"], goal)
    report.at_least(f"{entry.name}: captum SmoothGrad (best batch) / SmoothGrad, {steps} samples", best_sg / t["sw_sg"], goal)
    # The bounds: the same gradients by hand, at the best pass size and layout, with nothing else.
    report.note(f"{entry.name}: captum IG (best batch) / hand-written passes (bound of the IG row)", best_ig / best_hand)
    report.note(f"{entry.name}: captum SmoothGrad (best batch) / hand-written passes (bound of the SmoothGrad row)",
                best_sg / best_hand)


def hand_passes(entry: Entry, copies: int, per_pass: int, layout: str) -> None:
    """The gradients of ``copies`` copies of the batch in passes of ``per_pass`` copies, by hand:
    what any IG or SmoothGrad must compute, without building points or summing."""
    for start in range(0, copies, per_pass):
        n = min(per_pass, copies - start)
        batch = entry.x.repeat(n, *[1] * (entry.x.ndim - 1))
        if layout == "channels_last":
            batch = batch.contiguous(memory_format=torch.channels_last)
        leaf = batch.requires_grad_(True)
        torch.autograd.grad(entry.logits(leaf)[:, 1].sum(), leaf)


def bench_mlp_jacobian(report: Report, entry: Entry) -> None:
    """The full Jacobian against the analytic product W3·D2·W2·D1·W1 for one sample."""
    lin = [m for m in entry.model if isinstance(m, nn.Linear)]
    x = entry.x[:1]
    weights = [m.weight.detach() for m in lin]

    def analytic() -> torch.Tensor:
        h1 = lin[0](x)
        d1 = (h1 > 0).float()
        d2 = (lin[1](torch.relu(h1)) > 0).float()
        return weights[2] @ (d2.T * weights[1]) @ (d1.T * weights[0])

    t = best_seconds(repeat=15, number=calls_per_block(analytic), sw=lambda: sw.jacobian(entry.model, x.numpy()),
                     analytic=analytic)
    report.at_most(f"{entry.name}: Jacobian (1 sample) / analytic product", t["sw"] / t["analytic"], 1.2)


def bench_keras(report: Report) -> None:
    """First and later calls on Keras applications against eager and compiled GradientTape."""
    import keras
    import tensorflow as tf

    for name, build in (("MobileNetV2", keras.applications.MobileNetV2),
                        ("EfficientNetB0", keras.applications.EfficientNetB0)):
        x = np.random.default_rng(0).uniform(0, 1, size=(2, 96, 96, 3)).astype(np.float32)
        xt = tf.constant(x)

        def fresh() -> Any:
            keras.utils.set_random_seed(0)
            return build(input_shape=(96, 96, 3), weights=None, classes=10)

        def eager(model: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(xt)
                out = model(xt, training=False)[:, 1]
            return tape.gradient(out, xt)

        def sw_call(model: Any) -> Any:
            return sw.saliency(model, x, 1, output="probabilities")

        # A first call happens once per model: three fresh models each, in alternating order, medians
        # (the first eager call of the process also pays TensorFlow's own set-up). sw's background
        # traces are waited for between calls, so that none runs inside the next measurement.
        firsts: dict[Any, list[float]] = {eager: [], sw_call: []}
        for round_ in range(3):
            for call in (eager, sw_call) if round_ % 2 == 0 else (sw_call, eager):
                model = fresh()
                start = time.perf_counter()
                call(model)
                firsts[call].append(time.perf_counter() - start)
                keras_traces_done()
                if call is eager:
                    first_eager = model
                else:
                    first_sw = model
        report.at_most(f"Keras {name} 96x96: first sw.saliency / first eager GradientTape (medians of 3)",
                       statistics.median(firsts[sw_call]) / statistics.median(firsts[eager]), 1.5)

        compiled = tf.function(eager, reduce_retracing=True)
        t = best_seconds(repeat=5, warmup=2, sw=lambda: sw.saliency(first_sw, x, 1, output="probabilities"),
                         eager=lambda: eager(first_eager), compiled=lambda: compiled(first_eager))
        report.at_most(f"Keras {name} 96x96: later sw.saliency / eager GradientTape", t["sw"] / t["eager"], 0.7)
        report.at_most(f"Keras {name} 96x96: later sw.saliency / compiled GradientTape", t["sw"] / t["compiled"], 1.15)


def keras_traces_done() -> None:
    """Waits for the Keras backend's background traces (each starts at the call that needs it)."""
    from saliency_widgets.backends import keras_backend

    keras_backend._join_traces()


def main() -> int:
    torch.set_num_threads(os.cpu_count() or 1)
    report = Report()
    zoo = [mlp(), small_cnn(), resnet(), vit(), bert(), lstm()]
    for entry in zoo:
        sw.saliency(entry.model, entry.x, 1, **entry.kw)  # first call per shape: output shape, mixing check
        bench_gradients(report, entry)
    bench_mlp_jacobian(report, zoo[0])
    for entry, steps in ((zoo[1], 50), (zoo[2], 16)):
        bench_paths(report, entry, steps)
    if "--no-keras" not in sys.argv:
        bench_keras(report)
    ok = report.print_markdown() if "--markdown" in sys.argv else report.print()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
