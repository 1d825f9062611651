"""``framework=`` (DESIGN §3.9): detection places models by their classes, Keras first; a plain
function is placed by ``framework=``, remembered for every later call; a framework that
contradicts the model's classes is refused. Every public function and widget takes it."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
from flax import nnx  # noqa: E402

import saliency_widgets as sw  # noqa: E402
from saliency_widgets.backends import get_backend  # noqa: E402

PUBLIC = ["saliency", "attribute", "jacobian", "attribute_dataset", "attribute_generation", "layers",
          "layer_weights", "layer_equation"]
CHECKS = ["random_logit", "deletion_insertion", "randomization", "completeness"]
WIDGETS = ["SaliencyMap", "JacobianGrid", "WeightInspector", "GenerationMap", "DatasetMap"]

W = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)


def plain(x):
    return jnp.tanh(x @ W)


@pytest.mark.parametrize("name", PUBLIC + [f"checks.{c}" for c in CHECKS] + [f"{w}.__init__" for w in WIDGETS])
def test_every_entry_point_takes_framework(name: str) -> None:
    target = sw
    for part in name.split("."):
        target = getattr(target, part)
    parameter = inspect.signature(target).parameters["framework"]
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is None
    assert "framework" in target.__doc__


def test_detection_places_each_kind_of_model() -> None:
    class Net(nnx.Module):
        def __init__(self) -> None:
            self.linear = nnx.Linear(5, 3, rngs=nnx.Rngs(0))

        def __call__(self, x):
            return self.linear(x)

    keras_model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    assert get_backend(keras_model).framework == "keras"
    assert get_backend(torch.nn.Linear(5, 3)).framework == "torch"
    assert get_backend(Net()).framework == "jax"
    assert get_backend(jax.jit(plain)).framework == "jax"


def test_a_plain_function_is_placed_by_framework_and_remembered() -> None:
    def f(x):
        return jnp.tanh(x @ W)

    x = np.random.default_rng(1).standard_normal((2, 5)).astype(np.float32)
    got = sw.saliency(f, x, target=1, framework="jax")
    want = jax.grad(lambda v: f(v)[:, 1].sum())(jnp.asarray(x))
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-6)
    jac = sw.jacobian(f, x)  # no framework= now: the choice is remembered
    want = jax.vmap(jax.jacrev(lambda v: f(v[None])[0]))(jnp.asarray(x))
    np.testing.assert_allclose(jac, np.asarray(want), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("framework", ["keras", "jax"])
def test_a_framework_the_model_contradicts_is_refused(framework: str) -> None:
    with pytest.raises(sw.SaliencyError, match=r"is a torch model, not " + framework):
        sw.saliency(torch.nn.Linear(5, 3), np.zeros((1, 5), np.float32), framework=framework)


@pytest.mark.parametrize("value", ["tensorflow", "JAX", 3, ["jax"], np.array(["jax", "torch"])])
def test_an_unknown_framework_is_refused(value) -> None:
    with pytest.raises(sw.SaliencyError, match="framework must be one of 'torch', 'keras', 'jax'"):
        sw.saliency(plain, np.zeros((1, 5), np.float32), framework=value)
