"""A machine with JAX and neither TensorFlow nor torch runs the whole JAX and Keras-on-JAX path
(DESIGN §3.9): the imports of both are made to fail, as on such a machine, in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import importlib.abc, sys

    class NotInstalled(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "torch"):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, NotInstalled())

    import numpy as np
    import keras
    from flax import nnx
    import saliency_widgets as sw

    assert keras.backend.backend() == "jax"
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(3, 3, activation="relu", name="conv"),
                              keras.layers.Flatten(), keras.layers.Dense(4, activation="softmax")])
    x = rng.standard_normal((2, 6, 6, 2)).astype(np.float32)
    for method in ("gradient", "integrated_gradients", "smoothgrad", "occlusion", "gradcam"):
        assert np.isfinite(sw.saliency(model, x, target=1, method=method)).all(), method
    assert sw.jacobian(model, x[:1]).shape == (1, 4, 6, 6, 2)
    assert [b.name for b in sw.layer_weights(model, "conv")] == ["kernel", "bias"]
    assert sw.checks.completeness(model, x, target=1).shape == (2,)
    sw.SaliencyMap(model, x).target = 2

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.linear = nnx.Linear(5, 3, rngs=rngs)

        def __call__(self, x):
            return self.linear(x)

    net = Net(nnx.Rngs(0))
    xs = rng.standard_normal((2, 5)).astype(np.float32)
    np.testing.assert_allclose(sw.saliency(net, xs, target=1), np.broadcast_to(np.asarray(net.linear.kernel[...])[:, 1], (2, 5)),
                               rtol=1e-5)
    assert "tensorflow" not in sys.modules and "torch" not in sys.modules, sorted(
        m for m in ("tensorflow", "torch") if m in sys.modules)
    print("ok")
''')


def test_keras_on_jax_and_flax_run_without_tensorflow_or_torch() -> None:
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
