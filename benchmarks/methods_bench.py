"""Occlusion and Grad-CAM speed, as ratios against captum and one gradient, measured in the same run.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/methods_bench.py``). Exits non-zero on a missed goal.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam, Occlusion

import saliency_widgets as sw
from _timing import Report, best_seconds
from engine_bench import ms, torch_cnn

WINDOW, STRIDE = (8, 8), (4, 4)  # 15 × 15 = 225 windows on a 64 × 64 image, channels whole
CAPTUM_PER_EVAL = (4, 16, 64, 256)


def bench_occlusion(report: Report, cnn: torch.nn.Module, x: np.ndarray) -> None:
    xt = torch.from_numpy(x)
    occlusion = Occlusion(cnn)

    def captum(per_eval: int):
        return occlusion.attribute(xt, sliding_window_shapes=(3, *WINDOW), strides=(3, *STRIDE), target=3,
                                   perturbations_per_eval=per_eval)

    ours = sw.saliency(cnn, x, 3, method="occlusion", window=WINDOW, stride=STRIDE)
    np.testing.assert_allclose(ours, captum(64).numpy(), rtol=1e-4, atol=1e-4)
    def ours():
        return sw.saliency(cnn, x, 3, method="occlusion", window=WINDOW, stride=STRIDE)

    t = best_seconds(repeat=9, ours=ours, **{f"captum_{n}": (lambda n=n: captum(n)) for n in CAPTUM_PER_EVAL})
    # one forward per window takes seconds: fewer rounds of its own, ours interleaved again
    slow = best_seconds(repeat=3, warmup=1, ours=ours, captum_1=lambda: captum(1))
    best = min(CAPTUM_PER_EVAL, key=lambda n: t[f"captum_{n}"])
    print("occlusion, torch CNN 3x64x64, 225 windows:", ", ".join(f"{k} {ms(v)}" for k, v in t.items()),
          "| again:", ", ".join(f"{k} {ms(v)}" for k, v in slow.items()))
    report.at_least("occlusion vs captum Occlusion perturbations_per_eval=1", slow["captum_1"] / slow["ours"], 1.5)
    report.at_most(f"occlusion / captum Occlusion at its best (perturbations_per_eval={best})",
                   t["ours"] / t[f"captum_{best}"], 1.2)


def bench_gradcam(report: Report, cnn: torch.nn.Module, x: np.ndarray) -> None:
    xt = torch.from_numpy(x)
    layer = cnn[8]  # AdaptiveAvgPool2d(4): the last layer with a spatial output, sw's default
    gradcam = LayerGradCam(cnn, layer)

    def captum():
        cam = gradcam.attribute(xt, target=3, relu_attributions=True)
        return LayerAttribution.interpolate(cam, x.shape[2:], "bilinear")

    result = sw.attribute(cnn, x, 3, method="gradcam")
    assert result.layer == "8", result.layer
    np.testing.assert_allclose(result.values, captum()[:, 0].detach().numpy(), rtol=1e-4, atol=1e-6)
    t = best_seconds(repeat=30, gradcam=lambda: sw.saliency(cnn, x, 3, method="gradcam"),
                     gradient=lambda: sw.saliency(cnn, x, 3), captum_gradcam=captum)
    print("Grad-CAM, torch CNN 3x64x64:", ", ".join(f"{k} {ms(v)}" for k, v in t.items()))
    report.at_most("Grad-CAM / one sw.saliency gradient", t["gradcam"] / t["gradient"], 1.2)
    report.note("Grad-CAM / captum LayerGradCam + interpolate", t["gradcam"] / t["captum_gradcam"])


def main() -> int:
    torch.set_num_threads(os.cpu_count() or 1)
    report = Report()
    cnn = torch_cnn()
    x = np.random.default_rng(0).normal(size=(1, 3, 64, 64)).astype(np.float32)
    bench_occlusion(report, cnn, x)
    bench_gradcam(report, cnn, x)
    print()
    return 0 if report.print() else 1


if __name__ == "__main__":
    sys.exit(main())
