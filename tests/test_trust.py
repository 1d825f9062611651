"""The user's model is theirs (DESIGN §5): concurrency, remembered verdicts, freed models, and
caches that live across calls exercised by calling, changing the model, and calling again."""

from __future__ import annotations

import gc
import threading
import time
import warnings
import weakref

import keras
import numpy as np
import pytest
import torch
from torch import nn

import saliency_widgets as sw
from saliency_widgets.backends import get_backend
from saliency_widgets.backends.keras.tensorflow_engine import join_traces as _join_traces
from saliency_widgets.errors import SaliencyError, SaliencyWarning

from models import keras_mlp, tape_gradient, torch_cnn, torch_mlp


class _Caller(threading.Thread):
    """The user's own thread, calling ``model`` in a loop and keeping every output that is not
    ``expected`` (or that raised)."""

    def __init__(self, call, expected: np.ndarray) -> None:
        super().__init__(daemon=True)
        self.call, self.expected = call, expected
        self.stop = threading.Event()
        self.calls = 0
        self.wrong: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                out = np.asarray(self.call())
            except Exception as err:  # noqa: BLE001 (any error inside the user's call is a failure)
                self.wrong.append(f"{type(err).__name__}: {err}")
                continue
            self.calls += 1
            if not np.allclose(out, self.expected, rtol=1e-5, atol=1e-6):
                self.wrong.append(f"max |Δ| {np.abs(out - self.expected).max():.3g}")

    def __enter__(self) -> "_Caller":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.join()


def _keras_softmax_functional(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="tanh", name="hidden")(inputs)
    outputs = keras.layers.Dense(4, activation="softmax", name="probs")(hidden)
    return keras.Model(inputs, outputs)


class KerasSubclassed(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = keras.layers.Dense(8, activation="tanh")
        self.out = keras.layers.Dense(4, activation="softmax")

    def call(self, x, training=False):
        return self.out(self.hidden(x))


# ------------------------------------------------------------------ concurrency
def test_keras_model_called_by_the_user_during_and_after_maps_gives_its_own_output(rng):
    """Item 1: no swap of a layer's activation or call, from any thread, at any moment
    (the background trace used to swap the final activation ~0.35 s after a call)."""
    model = _keras_softmax_functional()
    x = rng.normal(size=(3, 6)).astype(np.float32)
    expected = np.asarray(model(x))
    activations = [getattr(layer, "activation", None) for layer in model.layers]
    sub = keras.Model(model.inputs, model.get_layer("hidden").output)  # shares the hidden layer
    sub_expected = np.asarray(sub(x))
    with _Caller(lambda: model(x), expected) as user, _Caller(lambda: sub(x), sub_expected) as user_sub:
        for _ in range(3):
            sw.saliency(model, x, 1)
            sw.saliency(model, x, 1, layer="hidden", method="integrated_gradients", steps=8)
            sw.saliency(model, x, 1, head="hidden")
            sw.jacobian(model, x)
        _join_traces()  # the window in which background traces run
    assert user.calls > 10 and user_sub.calls > 10
    assert user.wrong == [] and user_sub.wrong == []
    assert not any("call" in vars(layer) for layer in model.layers)
    assert [getattr(layer, "activation", None) for layer in model.layers] == activations
    logits = keras.Model(model.inputs, model.get_layer("probs").output)  # the same numbers, checked by hand
    np.testing.assert_allclose(sw.saliency(model, x, 1, output="probabilities"), tape_gradient(logits, x, [1] * 3),
                               rtol=1e-4, atol=1e-6)


def test_keras_subclassed_layer_attribution_intercepts_only_the_callers_thread(rng):
    """A layer inside a subclassed model's own call is intercepted in the computing thread only."""
    import tensorflow as tf

    model = KerasSubclassed()
    x = rng.normal(size=(3, 6)).astype(np.float32)
    expected = np.asarray(model(x))
    with _Caller(lambda: model(x), expected) as user:
        for _ in range(4):
            got = sw.saliency(model, x, 2, layer=model.hidden, output="probabilities")
    assert user.calls > 3 and user.wrong == []
    assert "call" not in vars(model.hidden)
    h = tf.constant(model.hidden(x))
    with tf.GradientTape() as tape:
        tape.watch(h)
        score = model.out(h)[:, 2]
    np.testing.assert_allclose(got, tape.gradient(score, h).numpy(), rtol=1e-4, atol=1e-6)


def test_keras_tight_loop_gets_its_traced_function(rng):
    """Back-to-back calls no longer wait for an idle gap before the trace starts."""
    model = keras_mlp()
    x = rng.normal(size=(1, 6)).astype(np.float32)
    backend = get_backend(model)
    deadline = time.monotonic() + 20
    calls = 0
    while not any(key[0] == "vjp" for key in backend._engine._compiled) and time.monotonic() < deadline and calls < 500:
        sw.saliency(model, x, 1)
        calls += 1
    assert any(key[0] == "vjp" for key in backend._engine._compiled), f"still eager after {calls} back-to-back calls"
    np.testing.assert_allclose(sw.saliency(model, x, 1), tape_gradient(model, x, [1]), rtol=1e-4, atol=1e-6)


def test_torch_model_called_by_the_user_during_maps_gives_its_own_output(rng):
    """Hooks act only on the computing thread's calls: the user's Softmax stays a softmax."""
    model = torch_mlp(softmax=True)
    x = torch.from_numpy(rng.normal(size=(3, 6)).astype(np.float32))
    with torch.no_grad():
        expected = model(x).numpy()

    def user_call():
        with torch.no_grad():
            return model(x).numpy()

    with _Caller(user_call, expected) as user:
        for _ in range(40):
            sw.saliency(model, x, 1)
            sw.saliency(model, x, 1, layer="1", method="integrated_gradients", steps=4)
            sw.saliency(model, x, 1, head="2")
    assert user.calls > 10 and user.wrong == []


class _Slow(nn.Module):
    """A step that gives up the interpreter for a moment, as I/O or a slow kernel would."""

    def forward(self, x):
        time.sleep(0.002)
        return x


def test_two_threads_on_one_torch_model_in_training_mode_give_the_sequential_maps(rng):
    """Item 11: calls on one model are serialised; batch norm statistics never move."""
    model = nn.Sequential(_Slow(), *torch_cnn()).train()  # a slow step lets the threads interleave
    x = rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    expected = {m: sw.saliency(model, x, 1, method=m, **kw) for m, kw in
                (("gradient", {}), ("smoothgrad", {"n_samples": 6, "seed": 3}))}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    results: list[tuple[str, np.ndarray]] = []

    def work(method: str) -> None:
        kw = {"n_samples": 6, "seed": 3} if method == "smoothgrad" else {}
        for _ in range(8):
            results.append((method, sw.saliency(model, x, 1, method=method, **kw)))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SaliencyWarning)  # training mode, said once per call
        threads = [threading.Thread(target=work, args=(m,)) for m in ("gradient", "smoothgrad")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(results) == 16
    for method, got in results:
        np.testing.assert_allclose(got, expected[method], rtol=1e-5, atol=1e-7)
    assert model.training and all(m.training for m in model.modules())
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


# ------------------------------------------------------------------ verdicts
class _BatchCentred(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def forward(self, x):
        return self.linear(x - x.mean(dim=0, keepdim=True))


def _keras_batch_centred() -> keras.Model:
    inputs = keras.Input((3,))
    centred = keras.layers.Lambda(lambda t: t - keras.ops.mean(t, axis=0, keepdims=True))(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(centred))


@pytest.mark.parametrize("make", [_BatchCentred, _keras_batch_centred], ids=["torch", "keras"])
def test_a_refused_model_stays_refused_by_every_entry_point(rng, tmp_path, make):
    """Item 2: the identical retry used to return batch-mixed numbers."""
    model = make()
    x = rng.normal(size=(3, 3)).astype(np.float32)
    with pytest.raises(SaliencyError, match="mixes samples"):
        sw.saliency(model, x, 0)
    for retry in (lambda: sw.saliency(model, x, 0), lambda: sw.jacobian(model, x),
                  lambda: sw.saliency(model, x, 0, method="integrated_gradients"),
                  lambda: sw.SaliencyMap(model, x), lambda: sw.JacobianGrid(model, x),
                  lambda: sw.checks.random_logit(model, x, 0),
                  lambda: sw.attribute_dataset(model, x, batch_size=3, path=tmp_path, progress=False)):
        with pytest.raises(SaliencyError, match="mixes samples"):
            retry()


def test_randomness_is_told_from_mixing(rng):
    """Item 3: a model left with dropout on is not 'mixing samples'; the message names model.eval()."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 32), nn.Dropout(0.5), nn.Linear(32, 3)).train()
    x = rng.normal(size=(3, 6)).astype(np.float32)
    wrapper = lambda t: net(t)  # noqa: E731 (a plain callable: its mode cannot be switched)
    with pytest.raises(SaliencyError, match=r"changes between identical calls.*model\.eval\(\)"):
        sw.saliency(wrapper, x, 0)
    net.eval()  # the fix the message names works: randomness is not remembered as a refusal
    expected = torch.autograd.functional.jacobian(lambda t: net(t)[:, 0].sum(), torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(sw.saliency(wrapper, x, 0), expected, rtol=1e-5, atol=1e-7)


def test_jacobian_warns_when_the_softmax_cannot_be_skipped(rng):
    """Item 4: a subclassed Keras model's softmax cannot be found; sw.jacobian says so, every call."""
    model = KerasSubclassed()
    x = rng.normal(size=(2, 6)).astype(np.float32)
    model(x)  # built by the user's first call
    for call in (lambda: sw.jacobian(model, x), lambda: sw.jacobian(model, x), lambda: sw.saliency(model, x, 0)):
        with pytest.warns(SaliencyWarning, match="could not find the logits"):
            call()


# ------------------------------------------------------------------ freeing
def _alive(refs: list[weakref.ref]) -> int:
    gc.collect()
    return sum(r() is not None for r in refs)


@pytest.mark.parametrize("make", [lambda: torch_mlp(softmax=True), lambda: keras_mlp(softmax=True)],
                         ids=["torch", "keras"])
def test_models_the_user_drops_are_freed(rng, make):
    """Item 10: the torch backend held its model strongly as a value of a cache weakly keyed by it."""
    x = rng.normal(size=(2, 6)).astype(np.float32)
    refs = []
    for _ in range(5):
        model = make()
        sw.saliency(model, x, 1)
        sw.jacobian(model, x)
        refs.append(weakref.ref(model))
        del model
    _join_traces()
    assert _alive(refs) == 0


def test_closed_widgets_free_their_models(rng):
    x = rng.normal(size=(2, 6)).astype(np.float32)
    refs = []
    for _ in range(5):
        model = torch_mlp()
        widget = sw.SaliencyMap(model, x)
        refs.append(weakref.ref(model))
        widget.close()
        del model, widget
    assert _alive(refs) == 0


# ------------------------------------------------------------------ state across calls
def test_keras_traced_functions_follow_weights_changed_between_calls(rng):
    model = keras_mlp()
    x = rng.normal(size=(2, 6)).astype(np.float32)
    sw.saliency(model, x, 1)
    _join_traces()
    sw.saliency(model, x, 1)  # traced now
    model.set_weights([w * 1.5 + 0.1 for w in model.get_weights()])
    np.testing.assert_allclose(sw.saliency(model, x, 1), tape_gradient(model, x, [1, 1]), rtol=1e-4, atol=1e-6)


def test_torch_caches_follow_the_model_changed_between_calls(rng):
    """Layer lookups, plans and pass sizes live across calls; a changed model is honoured."""
    model = torch_mlp()
    x = rng.normal(size=(2, 6)).astype(np.float32)
    sw.saliency(model, x, 1, layer="1", method="integrated_gradients", steps=8)
    sw.saliency(model, x, 1, method="integrated_gradients", steps=8)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-2.0)
    model[0] = nn.Linear(6, 16)  # the attributed layer's input changes; the layer named "1" stays
    xt = torch.from_numpy(x).requires_grad_(True)
    hidden = model[1](model[0](xt))
    (grad,) = torch.autograd.grad(model[2](hidden)[:, 1].sum(), hidden)
    np.testing.assert_allclose(sw.saliency(model, x, 1, layer="1"), grad.numpy(), rtol=1e-5, atol=1e-7)
    ig = sw.attribute(model, x, 1, method="integrated_gradients", steps=64)
    np.testing.assert_allclose(ig.completeness_error, 0, atol=1e-3)


class DoublingSequential(keras.Sequential):
    """A Sequential subclass whose own call differs from its graph."""

    def call(self, inputs, training=None, mask=None):
        return 2.0 * super().call(inputs, training=training, mask=mask)


def test_keras_sequential_subclass_runs_its_own_call(rng):
    """Only Keras's own graph classes are walked node by node: a subclass's call is what runs."""
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = DoublingSequential([keras.Input((6,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(3)])
    x = rng.normal(size=(2, 6)).astype(np.float32)
    np.testing.assert_allclose(sw.saliency(model, x, 1), tape_gradient(model, x, [1, 1]), rtol=1e-4, atol=1e-6)
    hidden = model.layers[0]
    h = tf.constant(hidden(x))
    with tf.GradientTape() as tape:
        tape.watch(h)
        score = 2.0 * model.layers[1](h)[:, 1]
    np.testing.assert_allclose(sw.saliency(model, x, 1, layer=hidden), tape.gradient(score, h).numpy(),
                               rtol=1e-4, atol=1e-6)
