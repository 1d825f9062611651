"""Weight blocks of Keras layers against the framework's own get_weights()."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import saliency_widgets.model_layers as sw_weights  # noqa: E402
from saliency_widgets.backends.keras.weights import keras_layer_equation  # noqa: E402
from saliency_widgets.errors import SaliencyError  # noqa: E402

L = keras.layers


def _model(input_shape, *layers):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input(input_shape), *layers])


def _functional(input_shape, layer):
    """A one-layer functional model (attention layers get the input as query and value)."""
    keras.utils.set_random_seed(0)
    x = keras.Input(input_shape)
    return keras.Model(x, layer(x, x) if isinstance(layer, L.MultiHeadAttention) else layer(x))


class _TwoDense(L.Layer):
    """A custom composite layer: two Dense sublayers whose variables are both named kernel/bias."""

    def __init__(self, units=(6, 4), names=("dense_a", "dense_b"), **kw):
        super().__init__(**kw)
        self.dense_a = L.Dense(units[0], name=names[0])
        self.dense_b = L.Dense(units[1], name=names[1])

    def call(self, x):
        return self.dense_b(self.dense_a(x))


def _numpy(variable) -> np.ndarray:
    return keras.ops.convert_to_numpy(variable.value)


def _by_name(blocks) -> dict:
    names = [b.name for b in blocks]
    assert len(names) == len(set(names)), f"block names not unique: {names}"
    return {b.name: b for b in blocks}


def _randomize(layer) -> None:
    """Non-trivial values everywhere (Keras initializes biases to zeros)."""
    rng = np.random.default_rng(0)
    layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])


def test_simple_rnn_three_blocks_as_in_the_design():
    model = _model((5, 1), L.SimpleRNN(3))
    _randomize(model.layers[0])
    kernel, recurrent, bias = model.layers[0].get_weights()
    blocks = sw_weights.layer_weights(model, "simple_rnn")
    assert [(b.name, b.role, b.source, b.shape) for b in blocks] == [
        ("input kernel", "input", "kernel", (1, 3)),
        ("recurrent kernel", "recurrent", "recurrent_kernel", (3, 3)),
        ("bias", "bias", "bias", (3,)),
    ]
    for block, expected in zip(blocks, (kernel, recurrent, bias)):
        np.testing.assert_array_equal(block.array, expected)
    assert blocks[0].description == (
        "input kernel (1×3): multiplies the input x(t); rows = input features, columns = units"
    )
    assert blocks[1].description.startswith("recurrent kernel (3×3): multiplies the previous hidden state h(t−1)")
    assert keras_layer_equation(model, 0).splitlines()[0] == "h_t = tanh(x_t·W_x + h_{t−1}·W_h + b)"


def test_dense_kernel_in_keras_orientation():
    model = _model((4,), L.Dense(3))
    _randomize(model.layers[0])
    kernel, bias = model.layers[0].get_weights()
    blocks = _by_name(sw_weights.layer_weights(model, 0))
    np.testing.assert_array_equal(blocks["kernel"].array, kernel)
    np.testing.assert_array_equal(blocks["bias"].array, bias)
    assert blocks["kernel"].shape == (4, 3)
    assert blocks["kernel"].axes == ("input features", "units")
    assert keras_layer_equation(model, 0) is None


@pytest.mark.parametrize(
    "layer, input_shape, axes",
    [
        (L.Conv1D(20, kernel_size=10, padding="same"), (500, 1), ("kernel position", "input channels", "filters")),
        (L.Conv2D(4, (2, 3)), (6, 6, 2), ("kernel row", "kernel column", "input channels", "filters")),
    ],
)
def test_conv_kernels(layer, input_shape, axes):
    model = _model(input_shape, layer)
    _randomize(layer)
    kernel, bias = layer.get_weights()
    blocks = _by_name(sw_weights.layer_weights(model, 0))
    np.testing.assert_array_equal(blocks["kernel"].array, kernel)
    np.testing.assert_array_equal(blocks["bias"].array, bias)
    assert blocks["kernel"].axes == axes


def test_embedding():
    model = _model((4,), L.Embedding(10, 3))
    (table,) = model.layers[0].get_weights()
    (block,) = sw_weights.layer_weights(model, 0)
    np.testing.assert_array_equal(block.array, table)
    assert (block.source, block.shape) == ("embeddings", (10, 3))


def test_batch_normalization_four_arrays():
    model = _model((3,), L.BatchNormalization())
    _randomize(model.layers[0])
    gamma, beta, mean, variance = model.layers[0].get_weights()
    blocks = sw_weights.layer_weights(model, 0)
    assert [b.source for b in blocks] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [b.name for b in blocks] == ["scale γ", "offset β", "moving mean", "moving variance"]
    for block, expected in zip(blocks, (gamma, beta, mean, variance)):
        np.testing.assert_array_equal(block.array, expected)


def test_lstm_gates_split_along_the_last_axis_in_keras_order():
    model = _model((4, 2), L.LSTM(3))
    _randomize(model.layers[0])
    kernel, recurrent, bias = model.layers[0].get_weights()
    blocks = sw_weights.layer_weights(model, 0)
    assert len(blocks) == 12
    gates = ["input", "forget", "cell", "output"]
    for source, full in [("kernel", kernel), ("recurrent_kernel", recurrent), ("bias", bias)]:
        mine = [b for b in blocks if b.source == source]
        assert [b.gate for b in mine] == gates
        for k, block in enumerate(mine):
            np.testing.assert_array_equal(block.array, full[..., k * 3:(k + 1) * 3])
    forget = _by_name(blocks)["input kernel · forget gate"]
    assert forget.shape == (2, 3)
    assert "f_t = σ(x_t·W_xf + h_{t−1}·W_hf + b_f)" in keras_layer_equation(model, 0)


def test_lstm_unsplit_blocks_equal_get_weights():
    model = _model((4, 2), L.LSTM(3))
    blocks = sw_weights.layer_weights(model, 0, split_gates=False)
    for block, expected in zip(blocks, model.layers[0].get_weights()):
        np.testing.assert_array_equal(block.array, expected)
    assert blocks[0].axes == ("input features", "4 gates (i f c o) × units")


def test_gru_reset_after_bias_rows_and_gates():
    model = _model((4, 2), L.GRU(3))
    _randomize(model.layers[0])
    kernel, recurrent, bias = model.layers[0].get_weights()
    assert bias.shape == (2, 9)
    blocks = _by_name(sw_weights.layer_weights(model, 0))
    gates = ["update", "reset", "candidate"]
    for k, gate in enumerate(gates):
        cols = slice(k * 3, (k + 1) * 3)
        np.testing.assert_array_equal(blocks[f"input kernel · {gate} gate"].array, kernel[:, cols])
        np.testing.assert_array_equal(blocks[f"recurrent kernel · {gate} gate"].array, recurrent[:, cols])
        np.testing.assert_array_equal(blocks[f"input bias · {gate} gate"].array, bias[0, cols])
        np.testing.assert_array_equal(blocks[f"recurrent bias · {gate} gate"].array, bias[1, cols])
    assert len(blocks) == 12
    assert "reset gate's product" in blocks["recurrent bias · candidate gate"].description
    unsplit = sw_weights.layer_weights(model, 0, split_gates=False)
    assert [b.shape for b in unsplit] == [(2, 9), (3, 9), (2, 9)]
    np.testing.assert_array_equal(unsplit[2].array, bias)
    assert "r_t ⊙ (h_{t−1}·W_hh + b_hh)" in keras_layer_equation(model, 0)


def test_gru_without_reset_after_has_one_bias_row():
    model = _model((4, 2), L.GRU(3, reset_after=False))
    _randomize(model.layers[0])
    bias = model.layers[0].get_weights()[2]
    blocks = _by_name(sw_weights.layer_weights(model, 0))
    np.testing.assert_array_equal(blocks["bias · reset gate"].array, bias[3:6])
    assert "(r_t ⊙ h_{t−1})·W_hh" in keras_layer_equation(model, 0)


def test_bidirectional_forward_and_backward_sub_layers():
    model = _model((4, 2), L.Bidirectional(L.LSTM(3)))
    layer = model.layers[0]
    _randomize(layer)
    blocks = _by_name(sw_weights.layer_weights(model, "bidirectional"))
    assert len(blocks) == 24
    for direction, sub in [("forward", layer.forward_layer), ("backward", layer.backward_layer)]:
        kernel, recurrent, bias = sub.get_weights()
        block = blocks[f"{direction} · recurrent kernel · output gate"]
        assert block.source == f"{sub.name}/recurrent_kernel"
        np.testing.assert_array_equal(block.array, recurrent[:, 9:12])
        np.testing.assert_array_equal(blocks[f"{direction} · bias · forget gate"].array, bias[3:6])
        np.testing.assert_array_equal(blocks[f"{direction} · input kernel · input gate"].array, kernel[:, 0:3])
    assert not np.array_equal(blocks["forward · input kernel · input gate"].array,
                              blocks["backward · input kernel · input gate"].array)
    assert "backward" in keras_layer_equation(model, 0)


def test_nested_sequential_layers_are_reachable_by_path():
    inner = keras.Sequential([L.Dense(3, name="inner_dense")], name="inner")
    x = keras.Input((4,))
    model = keras.Model(x, L.Dense(2, name="head")(inner(x)))
    blocks = _by_name(sw_weights.layer_weights(model, "inner/inner_dense"))
    np.testing.assert_array_equal(blocks["kernel"].array, inner.layers[0].get_weights()[0])


def test_errors_for_weightless_and_unknown_layers():
    model = _model((2, 3), L.Flatten(name="flatten"), L.Dense(2, name="dense"))
    with pytest.raises(SaliencyError, match=r"layer 'flatten' \(Flatten\) has no weights"):
        sw_weights.layer_weights(model, "flatten")
    with pytest.raises(SaliencyError, match=r"no layer 'conv'.*'flatten', 'dense'"):
        sw_weights.layer_weights(model, "conv")


def test_uninterpreted_layer_shows_raw_variables():
    model = _model((4,), L.LayerNormalization())
    _randomize(model.layers[0])
    gamma, beta = model.layers[0].get_weights()
    blocks = _by_name(sw_weights.layer_weights(model, 0))
    assert list(blocks) == ["gamma", "beta"]
    assert (blocks["gamma"].role, blocks["beta"].role) == ("kernel", "bias")
    np.testing.assert_array_equal(blocks["gamma"].array, gamma)
    np.testing.assert_array_equal(blocks["beta"].array, beta)
    assert all("not interpreted" in b.description for b in blocks.values())


def test_multi_head_attention_has_query_key_value_and_output_blocks():
    layer = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")
    model = _functional((5, 8), layer)
    _randomize(layer)
    blocks = _by_name(sw_weights.layer_weights(model, "mha"))
    parts = {"query": layer.query_dense, "key": layer.key_dense, "value": layer.value_dense, "output": layer.output_dense}
    assert list(blocks) == [f"{part} · {role}" for part in parts for role in ("kernel", "bias")]
    for part, dense in parts.items():
        for role in ("kernel", "bias"):
            block = blocks[f"{part} · {role}"]
            assert (block.role, block.gate, block.source) == (role, None, f"{dense.name}/{role}")
            np.testing.assert_array_equal(block.array, _numpy(getattr(dense, role)))
    assert sum(b.array.size for b in blocks.values()) == layer.count_params() == 288
    assert blocks["query · kernel"].description == (
        "query · kernel (8×2×4): projects the query input onto each head's queries; "
        "axes = (query features, heads, key dimensions)"
    )
    assert blocks["output · kernel"].axes == ("heads", "value dimensions", "output features")


def test_custom_layer_shows_each_sublayer_variable_once_by_path():
    layer = _TwoDense(name="two")
    model = _model((3,), layer)
    _randomize(layer)
    blocks = _by_name(sw_weights.layer_weights(model, "two"))
    assert list(blocks) == ["dense_a/kernel", "dense_a/bias", "dense_b/kernel", "dense_b/bias"]
    for name, block in blocks.items():
        sublayer, variable = name.split("/")
        assert block.source == name
        np.testing.assert_array_equal(block.array, _numpy(getattr(getattr(layer, sublayer), variable)))
    assert sum(b.array.size for b in blocks.values()) == layer.count_params() == 52


@pytest.mark.parametrize(
    "make, input_shape",
    [
        pytest.param(lambda: L.Dense(3), (4,), id="Dense"),
        pytest.param(lambda: L.Conv2D(2, 3), (5, 5, 1), id="Conv2D"),
        pytest.param(lambda: L.LSTM(3), (4, 2), id="LSTM"),
        pytest.param(lambda: L.GRU(3), (4, 2), id="GRU"),
        pytest.param(lambda: L.SimpleRNN(3), (4, 2), id="SimpleRNN"),
        pytest.param(lambda: L.Embedding(10, 3), (4,), id="Embedding"),
        pytest.param(lambda: L.BatchNormalization(), (3,), id="BatchNormalization"),
        pytest.param(lambda: L.LayerNormalization(), (3,), id="LayerNormalization"),
        pytest.param(lambda: L.MultiHeadAttention(2, 3, value_dim=2), (4, 5), id="MultiHeadAttention"),
        pytest.param(lambda: L.Bidirectional(L.LSTM(3)), (4, 2), id="Bidirectional(LSTM)"),
        pytest.param(lambda: keras.Sequential([L.Dense(3), L.Dense(2)], name="inner"), (4,), id="nested Sequential"),
        pytest.param(lambda: _TwoDense(names=("same", "same")), (3,), id="sublayers with one name"),
    ],
)
def test_blocks_cover_every_variable_exactly_once(make, input_shape):
    layer = make()
    model = _functional(input_shape, layer)
    for split_gates in (True, False):
        total = 0
        for info in sw_weights.layers(model):
            if info.n_params:
                blocks = _by_name(sw_weights.layer_weights(model, info.name, split_gates=split_gates))
                assert sum(b.array.size for b in blocks.values()) == info.n_params, info.name
                total += info.n_params
        assert total == layer.count_params() > 0
