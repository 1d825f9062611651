"""The first calls, measured the way a notebook user makes them (issue: speed outside the harness).

A user builds a model and calls integrated gradients or SmoothGrad once or twice per sample: what
counts is the first call on a fresh model, then the first few, not the steady state after
warm-ups. Each round builds fresh models (one for ``sw``, one for each captum batch size) and
times their calls 1 to 6 interleaved call by call, so a slow spell of this shared machine hits
all alike; a row takes the best round of each side's cumulative time over the first 1, 2 and 6
calls. captum runs at its best ``internal_batch_size`` of four (the best in each round).

"New architecture" rounds forget what earlier models of the class settled on (``passes.py``
keeps settled pass sizes per architecture for the process): the very first model of its class a
user builds. "Known architecture" rounds are a second model of the same class and shapes. The
process is warmed first on an unrelated model, so that neither side pays torch's one-time start.

Also here, measured as a user calls (one process, interleaved, 60 rounds): one ``sw.saliency``
gradient against a hand-written ``autograd.grad`` on the zoo's MLP (an explicit target and
``target=None``), and the MLP's Jacobian against the analytic product ``W3·D2·W2·D1·W1``.

Run: ``make bench`` (or ``cd benchmarks && ../.venv/bin/python first_calls_bench.py``). Exits
non-zero on a missed goal.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import torch
from torch import nn

import saliency_widgets as sw
from _timing import Report, best_seconds, calls_per_block
from saliency_widgets import passes
from zoo_bench import mlp, small_cnn

CALLS = (1, 2, 6)
ROUNDS = 3
STEPS = 50
TARGET = 1


def cumulative(times: list[float]) -> dict[int, float]:
    """Seconds of the first k calls, for each k in ``CALLS``."""
    return {k: sum(times[:k]) for k in CALLS}


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def first_calls(method: str, new_architecture: bool) -> tuple[dict[int, float], dict[int, float]]:
    """One round: cumulative seconds of ``sw``'s first calls on a fresh model, and of captum's at
    its best batch size of the round (each batch size on a fresh model of its own)."""
    from captum.attr import IntegratedGradients, NoiseTunnel, Saliency

    x = small_cnn().x
    if new_architecture:
        passes.forget_settled()
    model = small_cnn().model
    sigma = 0.15 * float(x.max() - x.min())
    if method == "integrated_gradients":
        ours = lambda: sw.saliency(model, x.numpy(), TARGET, method=method, steps=STEPS)  # noqa: E731
    else:
        ours = lambda: sw.saliency(model, x.numpy(), TARGET, method=method, n_samples=STEPS, seed=0)  # noqa: E731
    theirs = {}
    for n in (STEPS * len(x), STEPS * len(x) // 2, STEPS * len(x) // 4, STEPS * len(x) // 8):
        fresh = small_cnn().model
        if method == "integrated_gradients":
            ig = IntegratedGradients(fresh)
            theirs[n] = lambda ig=ig, n=n: ig.attribute(x, target=TARGET, n_steps=STEPS, internal_batch_size=n,
                                                        method="gausslegendre")
        else:
            tunnel = NoiseTunnel(Saliency(fresh))
            theirs[n] = lambda tunnel=tunnel, n=n: tunnel.attribute(
                x, target=TARGET, nt_type="smoothgrad", nt_samples=STEPS, stdevs=sigma,
                nt_samples_batch_size=max(1, n // len(x)), abs=False)
    ours_times: list[float] = []
    theirs_times: dict[int, list[float]] = {n: [] for n in theirs}
    for _ in range(max(CALLS)):
        ours_times.append(timed(ours))
        for n, call in theirs.items():
            theirs_times[n].append(timed(call))
    captum = {k: min(cumulative(t)[k] for t in theirs_times.values()) for k in CALLS}
    return cumulative(ours_times), captum


def bench_first_calls(report: Report) -> None:
    for method, name in (("integrated_gradients", f"IG({STEPS})"), ("smoothgrad", f"SmoothGrad({STEPS})")):
        for new_architecture, case in ((True, "new architecture"), (False, "known architecture")):
            rounds = [first_calls(method, new_architecture) for _ in range(ROUNDS)]
            for k in CALLS:
                ours = min(r[0][k] for r in rounds)
                captum = min(r[1][k] for r in rounds)
                row = f"small CNN, {case}: captum {name} (best batch) / sw, first {k} call{'s' * (k > 1)}"
                if k == 1:
                    report.at_least(row, captum / ours, 1.0)
                elif k == max(CALLS):
                    report.at_least(row, captum / ours, 1.3)
                else:
                    report.note(row, captum / ours)


def bench_mlp_gradient(report: Report) -> None:
    entry = mlp()
    model, x = entry.model, entry.x.numpy()

    def hand(argmax: bool) -> np.ndarray:
        leaf = torch.from_numpy(x).requires_grad_(True)
        out = model(leaf)
        index = out.argmax(1, keepdim=True) if argmax else torch.full((len(x), 1), TARGET)
        (grad,) = torch.autograd.grad(out.gather(1, index).sum(), leaf)
        return grad.numpy()

    np.testing.assert_allclose(sw.saliency(model, x, TARGET), hand(False), rtol=1e-4, atol=1e-6)
    t = best_seconds(repeat=60, warmup=3, number=calls_per_block(lambda: hand(False)),
                     hand=lambda: hand(False), sw=lambda: sw.saliency(model, x, TARGET),
                     hand_argmax=lambda: hand(True), sw_none=lambda: sw.saliency(model, x))
    report.at_most(f"{entry.name}: one gradient / autograd.grad by hand", t["sw"] / t["hand"], 1.15)
    report.at_most(f"{entry.name}: one gradient, target=None / autograd.grad of the arg-max by hand",
                   t["sw_none"] / t["hand_argmax"], 1.15)


def bench_mlp_jacobian(report: Report) -> None:
    entry = mlp()
    lin = [m for m in entry.model if isinstance(m, nn.Linear)]
    x = entry.x[:1]
    weights = [m.weight.detach() for m in lin]

    def analytic() -> torch.Tensor:
        with torch.no_grad():
            h1 = lin[0](x)
            d1 = (h1 > 0).float()
            d2 = (lin[1](torch.relu(h1)) > 0).float()
            return weights[2] @ (d2.T * weights[1]) @ (d1.T * weights[0])

    np.testing.assert_allclose(sw.jacobian(entry.model, x.numpy())[0], analytic().numpy(), rtol=1e-4, atol=1e-5)
    t = best_seconds(repeat=60, warmup=3, number=calls_per_block(analytic),
                     sw=lambda: sw.jacobian(entry.model, x.numpy()), analytic=analytic)
    report.at_most(f"{entry.name}: Jacobian (1 sample) / analytic product", t["sw"] / t["analytic"], 1.2)


def warm_the_process() -> None:
    """torch's one-time start (thread pool, autograd engine, convolution dispatch) on an unrelated
    model, through both libraries, so that it is charged to neither side of a row."""
    from captum.attr import IntegratedGradients

    model = nn.Sequential(nn.Conv2d(3, 8, 5), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)).eval()
    x = torch.randn(2, 3, 32, 32)
    sw.saliency(model, x.numpy(), 0, method="integrated_gradients", steps=8)
    IntegratedGradients(model).attribute(x, target=0, n_steps=8)


def main() -> int:
    warm_the_process()
    report = Report()
    bench_first_calls(report)
    bench_mlp_gradient(report)
    bench_mlp_jacobian(report)
    ok = report.print_markdown() if "--markdown" in sys.argv else report.print()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
