"""Speed on the JAX backend and on Keras-on-torch, as ratios against hand-written code of the
same framework measured in the same run (DESIGN §3.9, §4).

Each part runs in its own process (Keras picks its backend at import):
- ``jax``: a Flax NNX MLP; one gradient vs ``jax.jit(jax.grad)`` (goal ≤ 1.15×) and the full Jacobian
  vs ``jax.jit(jax.vmap(jax.jacrev))`` (≤ 1.2×), after compilation; the first calls' times (compile
  included) are printed beside them.
- ``keras-torch``: a Keras MLP on ``KERAS_BACKEND=torch``; one gradient vs ``torch.autograd.grad``
  through the same model (≤ 1.15×).

Run: ``make bench`` (or ``.venv/bin/python benchmarks/backends_bench.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from _timing import Report, best_seconds

WIDTH, HIDDEN, CLASSES, BATCH = 3072, 512, 100, 32


def first_call_seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_jax(report: Report) -> None:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    import saliency_widgets as sw

    class MLP(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.a = nnx.Linear(WIDTH, HIDDEN, rngs=rngs)
            self.b = nnx.Linear(HIDDEN, HIDDEN, rngs=rngs)
            self.c = nnx.Linear(HIDDEN, CLASSES, rngs=rngs)

        def __call__(self, x):
            return self.c(nnx.relu(self.b(nnx.relu(self.a(x)))))

    model = MLP(nnx.Rngs(0))
    x = np.random.default_rng(0).normal(size=(BATCH, WIDTH)).astype(np.float32)
    graphdef, state = nnx.split(model)

    def logits(state, inputs):
        return nnx.merge(graphdef, state)(inputs)

    hand_grad = jax.jit(jax.grad(lambda s, inputs: logits(s, inputs)[:, 0].sum(), argnums=1))
    hand_jac = jax.jit(jax.vmap(jax.jacrev(lambda s, sample: logits(s, sample[None])[0], argnums=1),
                                in_axes=(None, 0)))
    one = x[:1]
    first = {
        "ours: first gradient": first_call_seconds(lambda: sw.saliency(model, x, target=0)),
        "hand: first jit(grad)": first_call_seconds(lambda: hand_grad(state, x).block_until_ready()),
        "ours: first jacobian": first_call_seconds(lambda: sw.jacobian(model, one)),
        "hand: first jit(vmap(jacrev))": first_call_seconds(lambda: hand_jac(state, one).block_until_ready()),
    }
    np.testing.assert_allclose(sw.saliency(model, x, target=0), np.asarray(hand_grad(state, x)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sw.jacobian(model, one), np.asarray(hand_jac(state, one)), rtol=1e-4, atol=1e-6)
    t = best_seconds(
        repeat=15,
        ours_gradient=lambda: sw.saliency(model, x, target=0),
        hand_gradient=lambda: np.asarray(hand_grad(nnx.state(model), x)),
        ours_jacobian=lambda: sw.jacobian(model, one),
        hand_jacobian=lambda: np.asarray(hand_jac(nnx.state(model), one)),
    )
    for name, seconds in first.items():
        print(f"  {name}: {seconds * 1e3:.0f} ms (compilation included)")
    print(f"  after compilation: gradient {t['ours_gradient'] * 1e3:.2f} ms vs {t['hand_gradient'] * 1e3:.2f} ms; "
          f"jacobian {t['ours_jacobian'] * 1e3:.2f} ms vs {t['hand_jacobian'] * 1e3:.2f} ms")
    report.at_most("JAX NNX MLP gradient / hand jax.jit(jax.grad)", t["ours_gradient"] / t["hand_gradient"], 1.15)
    report.at_most("JAX NNX MLP jacobian / hand jax.jit(jax.vmap(jax.jacrev))",
                   t["ours_jacobian"] / t["hand_jacobian"], 1.2)


def bench_keras_torch(report: Report) -> None:
    import keras
    import torch

    import saliency_widgets as sw

    assert keras.backend.backend() == "torch"
    model = keras.Sequential([keras.Input((WIDTH,)), keras.layers.Dense(HIDDEN, activation="relu"),
                              keras.layers.Dense(HIDDEN, activation="relu"), keras.layers.Dense(CLASSES)])
    x = np.random.default_rng(0).normal(size=(BATCH, WIDTH)).astype(np.float32)

    def by_hand() -> np.ndarray:
        xt = torch.tensor(x, requires_grad=True)
        (grad,) = torch.autograd.grad(model(xt, training=False)[:, 0].sum(), xt)
        return grad.numpy()

    first = first_call_seconds(lambda: sw.saliency(model, x, target=0))
    np.testing.assert_allclose(sw.saliency(model, x, target=0), by_hand(), rtol=1e-4, atol=1e-6)
    t = best_seconds(repeat=15, ours=lambda: sw.saliency(model, x, target=0), hand=by_hand)
    print(f"  first sw.saliency call: {first * 1e3:.0f} ms; after: {t['ours'] * 1e3:.2f} ms vs "
          f"{t['hand'] * 1e3:.2f} ms by hand")
    report.at_most("Keras-on-torch MLP gradient / hand torch.autograd.grad", t["ours"] / t["hand"], 1.15)


PARTS = {"jax": ("jax", bench_jax), "keras-torch": ("torch", bench_keras_torch)}


def main() -> int:
    if len(sys.argv) > 1:  # one part, in this process
        report = Report()
        PARTS[sys.argv[1]][1](report)
        return 0 if report.print() else 1
    failed = False
    for part, (keras_backend, _) in PARTS.items():
        print(f"-- {part}", flush=True)
        env = {**os.environ, "KERAS_BACKEND": keras_backend}
        failed |= subprocess.run([sys.executable, __file__, part], env=env).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
