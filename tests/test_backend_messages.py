"""Clear refusals instead of wrong or raw messages from the backends, and the model's own errors unchanged."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
from torch import nn  # noqa: E402

import saliency_widgets as sw  # noqa: E402
from models import keras_mlp, tape_gradient  # noqa: E402


class _WithUnusedLayer(nn.Module):
    """Two linear layers on the path, and one that never runs."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.unused, self.b = nn.Linear(3, 4), nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.tanh(self.a(x)))


class _KerasWithUnusedLayer(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.a = keras.layers.Dense(4, activation="tanh", name="a")
        self.unused = keras.layers.Dense(4, name="unused")
        self.b = keras.layers.Dense(2, name="b")

    def call(self, x):
        return self.b(self.a(x))


class _Raising(keras.layers.Layer):
    """A layer whose own code raises ``error`` on real tensors."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def call(self, x):
        raise self.error

    def compute_output_shape(self, input_shape):
        return input_shape


@pytest.fixture(scope="module")
def x3() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def torch_model() -> _WithUnusedLayer:
    torch.manual_seed(0)
    return _WithUnusedLayer().eval()


# ------------------------------------------------------------ 1. a layer that never runs
@pytest.mark.parametrize("argument", ["layer", "head"])
def test_torch_layer_that_never_runs_is_named_with_layers_that_do(torch_model, x3, argument):
    with pytest.raises(sw.SaliencyError, match=r"layer 'unused' \(Linear\) did not run in the forward pass.*"
                                               r"pick a layer that runs, e.g. 'a', 'b'$"):
        sw.saliency(torch_model, x3, 0, **{argument: "unused"})


def test_t5_shared_embedding_points_to_the_embeddings_that_run():
    transformers = pytest.importorskip("transformers")
    config = transformers.T5Config(vocab_size=20, d_model=8, d_kv=4, d_ff=8, num_layers=1, num_heads=2,
                                   decoder_start_token_id=0)
    torch.manual_seed(0)
    model = transformers.T5ForConditionalGeneration(config).eval()
    x = {"input_ids": np.array([[1, 2, 3]]), "decoder_input_ids": np.array([[0, 4]])}
    with pytest.raises(sw.SaliencyError, match=r"layer 'shared' \(Embedding\) did not run in the forward pass.*"
                                               r"e.g. 'encoder.embed_tokens', .*'decoder.embed_tokens'"):
        sw.saliency(model, x, 0, layer="shared")


def test_keras_layer_off_the_call_path_is_named_with_layers_that_do(x3):
    keras.utils.set_random_seed(0)
    model = _KerasWithUnusedLayer()
    model(x3)
    with pytest.raises(sw.SaliencyError, match=r"layer 'unused' \(Dense\) did not run in the forward pass.*"
                                               r"pick a layer that runs, e.g. 'a', 'b'$"):
        sw.saliency(model, x3, 0, layer="unused")
    with pytest.raises(sw.SaliencyError, match=r"layer 'unused' \(Dense\) is not built.*never run.*not on the path"):
        sw.layer_weights(model, "unused")


# ------------------------------------------------------------ 2. TorchScript
@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("compile_", ["script", "trace"])
def test_scripted_module_refuses_layers_and_gives_plain_gradients(torch_model, x3, compile_):
    if compile_ == "script":
        compiled = torch.jit.script(torch_model)
    else:
        compiled = torch.jit.trace(torch_model, torch.zeros(1, 3))
    with pytest.raises(sw.SaliencyError, match=r"layer 'a' belongs to a TorchScript module.*cannot be hooked.*"
                                               r"pass the original nn.Module"):
        sw.saliency(compiled, x3, 1, layer="a")
    inputs = torch.tensor(x3, requires_grad=True)
    (expected,) = torch.autograd.grad(torch_model(inputs)[:, 1].sum(), inputs)
    np.testing.assert_allclose(sw.saliency(compiled, x3, 1), expected.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")
def test_scripted_module_lists_its_layers_without_shapes(torch_model, x3):
    with pytest.warns(sw.SaliencyWarning, match=r"TorchScript module .*cannot be hooked.*pass the original nn.Module"):
        infos = sw.layers(torch.jit.script(torch_model), x3)
    assert [(i.name, i.n_params, i.output_shape) for i in infos] == [
        (i.name, i.n_params, None) for i in sw.layers(torch_model, x3)]


# ------------------------------------------------------------ 3. stateful RNN
def test_stateful_keras_rnn_is_refused_and_its_state_untouched():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 3), batch_size=2)
    rnn = keras.layers.SimpleRNN(3, stateful=True, name="rnn")
    model = keras.Model(inputs, keras.layers.Dense(2)(rnn(inputs)))
    x = np.random.default_rng(1).normal(size=(2, 4, 3)).astype(np.float32)
    model(x)
    state = [keras.ops.convert_to_numpy(v) for v in rnn.states]
    message = (r"layer 'rnn' \(SimpleRNN\) is stateful: stateful RNNs carry state between calls; "
               r"rebuild with stateful=False")
    for compute in (sw.saliency, sw.jacobian):
        with pytest.raises(sw.SaliencyError, match=message):
            compute(model, x)
    for before, after in zip(state, rnn.states):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(after), before)


# ------------------------------------------------------------ 4. unbuilt Keras model
@pytest.mark.parametrize("entry", ["layer_weights", "layers", "WeightInspector", "saliency"])
def test_unbuilt_keras_model_is_refused_and_left_unbuilt(x3, entry):
    model = keras.Sequential([keras.layers.Dense(3)])
    call = {"layer_weights": lambda: sw.layer_weights(model, 0), "layers": lambda: sw.layers(model),
            "WeightInspector": lambda: sw.WeightInspector(model), "saliency": lambda: sw.saliency(model, x3)}[entry]
    with pytest.raises(sw.SaliencyError, match=r"is not built yet.*build it or call it on an input first"):
        call()
    assert not model.built and not model.weights


# ------------------------------------------------------------ 5. Keras 2 (tf_keras)
def test_tf_keras_model_is_refused_with_the_way_to_keras_3(x3, tmp_path):
    tf_keras = pytest.importorskip("tf_keras")
    model = tf_keras.Sequential([tf_keras.Input((3,)), tf_keras.layers.Dense(2)])
    for call in (lambda: sw.layer_weights(model, 0), lambda: sw.saliency(model, x3)):
        with pytest.raises(sw.NotAModelError, match=r"Keras 2 \(tf_keras\) model.*keras.saving.load_model"):
            call()
    path = str(tmp_path / "model.h5")
    model.save(path)
    (kernel, _) = sw.layer_weights(keras.saving.load_model(path, compile=False), 0)
    np.testing.assert_array_equal(kernel.array, model.layers[0].kernel.numpy())


# ------------------------------------------------------------ 6. the model's own exceptions
@pytest.mark.parametrize("error", [ValueError("boom"), RuntimeError("boom")], ids=["ValueError", "RuntimeError"])
@pytest.mark.parametrize("layer", [None, "dense"])
def test_keras_model_exceptions_reach_the_user_unchanged(x3, error, layer):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, name="dense"), _Raising(error)])
    with pytest.raises(type(error), match="boom") as info:
        sw.saliency(model, x3, 0, layer=layer)
    assert type(info.value) is type(error)


def test_keras_input_that_contradicts_the_declared_inputs_gets_the_input_message():
    model = keras_mlp(n_in=3)
    x = np.zeros((2, 5), np.float32)
    for layer in (None, 1):
        with pytest.raises(sw.SaliencyError, match=r"could not run on an input of shape \(2, 5\); the model "
                                                   r"expects \(batch, 3\)\. "
                                                   r"\(its input is declared \(3,\) per sample, got \(5,\)\)"):
            sw.saliency(model, x, 0, layer=layer)


@pytest.mark.parametrize("second, message", [
    ({"c": np.zeros((2, 2), np.float32)}, r"\(no entry for input 'b': the model's inputs are named 'a', 'b'\)"),
    ({"b": np.zeros((2, 3), np.float32)}, r"\(input 'b' is declared \(2,\) per sample, got \(3,\)\)"),
], ids=["missing key", "wrong size"])
def test_keras_named_inputs_that_contradict_the_declared_ones_get_the_input_message(x3, second, message):
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    model = keras.Model({"a": a, "b": b}, keras.layers.Dense(2)(keras.layers.Concatenate()([a, b])))
    with pytest.raises(sw.SaliencyError, match=r"could not run on x\['a'\] .*the model expects .*" + message):
        sw.saliency(model, {"a": x3, **second}, 0)


class _EagerOnly(keras.Model):
    """Python control flow on a tensor's value: runs eagerly, cannot be traced."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = keras.layers.Dense(2, activation="tanh")

    def call(self, x):
        return self.dense(-x if float(tf.reduce_sum(x)) > 1e9 else x)


def test_keras_jacobian_of_a_model_that_cannot_be_traced_runs_eagerly(x3):
    keras.utils.set_random_seed(0)
    model = _EagerOnly()
    model(x3)
    xt = tf.constant(x3)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = model(xt)
    np.testing.assert_allclose(sw.jacobian(model, x3), tape.batch_jacobian(out, xt).numpy(), rtol=1e-5, atol=1e-7)


def test_keras_gradient_unchanged_by_the_input_check(x3):
    model = keras_mlp(n_in=3)
    np.testing.assert_allclose(sw.saliency(model, x3, 2), tape_gradient(model, x3, [2, 2]), rtol=1e-5, atol=1e-7)
