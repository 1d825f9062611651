"""Weight blocks of torch layers against the framework's own named_parameters()/buffers."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import saliency_widgets.model_layers as sw_weights  # noqa: E402
from saliency_widgets.backends.torch.weights import torch_layer_equation  # noqa: E402
from saliency_widgets.errors import SaliencyError, SaliencyWarning  # noqa: E402


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _by_name(blocks) -> dict:
    names = [b.name for b in blocks]
    assert len(names) == len(set(names)), f"block names not unique: {names}"
    return {b.name: b for b in blocks}


def _gate_slices(param: torch.Tensor, n: int) -> list[np.ndarray]:
    size = param.shape[0] // n
    return [_np(param)[k * size:(k + 1) * size] for k in range(n)]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_linear_blocks_are_weight_and_bias():
    model = nn.Sequential(nn.Linear(4, 3))
    blocks = _by_name(sw_weights.layer_weights(model, "0"))
    assert list(blocks) == ["kernel", "bias"]
    np.testing.assert_array_equal(blocks["kernel"].array, _np(model[0].weight))
    np.testing.assert_array_equal(blocks["bias"].array, _np(model[0].bias))
    assert blocks["kernel"].shape == (3, 4) and blocks["kernel"].source == "weight"
    assert (blocks["kernel"].role, blocks["bias"].role) == ("kernel", "bias")
    assert blocks["kernel"].axes == ("units", "input features")
    assert blocks["kernel"].array.dtype == np.float32


def test_blocks_are_copies_not_views():
    model = nn.Sequential(nn.Linear(2, 2))
    before = _np(model[0].weight).copy()
    block = sw_weights.layer_weights(model, 0)[0]
    block.array[:] = 99.0
    np.testing.assert_array_equal(_np(model[0].weight), before)


@pytest.mark.parametrize(
    "conv, axes",
    [
        (nn.Conv1d(2, 5, 3), ("filters", "input channels", "kernel position")),
        (nn.Conv2d(3, 4, (2, 3)), ("filters", "input channels", "kernel row", "kernel column")),
        (nn.Conv2d(4, 6, 3, groups=2), ("filters", "input channels per group (2 groups)", "kernel row", "kernel column")),
    ],
)
def test_conv_kernels_keep_torch_orientation(conv, axes):
    blocks = _by_name(sw_weights.layer_weights(nn.Sequential(conv), 0))
    np.testing.assert_array_equal(blocks["kernel"].array, _np(conv.weight))
    np.testing.assert_array_equal(blocks["bias"].array, _np(conv.bias))
    assert blocks["kernel"].axes == axes
    assert blocks["bias"].axes == ("filter",)


def test_linear_without_bias_has_one_block():
    blocks = sw_weights.layer_weights(nn.Sequential(nn.Linear(3, 2, bias=False)), 0)
    assert [b.name for b in blocks] == ["kernel"]


def test_embedding_table():
    emb = nn.Embedding(7, 3)
    (block,) = sw_weights.layer_weights(nn.Sequential(emb), 0)
    np.testing.assert_array_equal(block.array, _np(emb.weight))
    assert block.source == "weight" and block.shape == (7, 3)
    assert block.axes == ("tokens", "embedding dimensions")


@pytest.mark.parametrize("bn", [nn.BatchNorm1d(3), nn.BatchNorm2d(3)])
def test_batchnorm_gamma_beta_and_running_statistics(bn):
    with torch.no_grad():
        for t in (bn.weight, bn.bias, bn.running_mean):
            t.copy_(torch.randn(3))
        bn.running_var.copy_(torch.rand(3) + 0.5)
    blocks = _by_name(sw_weights.layer_weights(nn.Sequential(bn), 0))
    expected = {"scale γ": bn.weight, "offset β": bn.bias, "moving mean": bn.running_mean, "moving variance": bn.running_var}
    assert list(blocks) == list(expected)
    for name, tensor in expected.items():
        np.testing.assert_array_equal(blocks[name].array, _np(tensor))
    assert [blocks[n].source for n in expected] == ["weight", "bias", "running_mean", "running_var"]
    assert blocks["offset β"].role == "bias"


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_simple_rnn_blocks(nonlinearity):
    rnn = nn.RNN(1, 3, nonlinearity=nonlinearity, batch_first=True)
    blocks = _by_name(sw_weights.layer_weights(nn.Sequential(rnn), 0))
    assert list(blocks) == ["input kernel", "recurrent kernel", "bias (input-hidden)", "bias (hidden-hidden)"]
    assert [b.role for b in blocks.values()] == ["input", "recurrent", "bias", "bias"]
    assert all(b.gate is None for b in blocks.values())
    for block, param in zip(blocks.values(), ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]):
        assert block.source == param
        np.testing.assert_array_equal(block.array, _np(getattr(rnn, param)))
    assert blocks["input kernel"].shape == (3, 1)
    assert "multiplies the previous hidden state h(t−1)" in blocks["recurrent kernel"].description
    assert "sum" in blocks["bias (hidden-hidden)"].description
    assert f"h_t = {nonlinearity}(W_ih x_t + b_ih + W_hh h_{{t−1}} + b_hh)" in torch_layer_equation(nn.Sequential(rnn), 0)


def test_lstm_gates_split_in_torch_order():
    lstm = nn.LSTM(2, 3)
    blocks = sw_weights.layer_weights(nn.Sequential(lstm), 0)
    assert len(blocks) == 16
    gates = ["input", "forget", "cell", "output"]
    for param, part in [("weight_ih_l0", "input kernel"), ("weight_hh_l0", "recurrent kernel"),
                        ("bias_ih_l0", "bias (input-hidden)"), ("bias_hh_l0", "bias (hidden-hidden)")]:
        mine = [b for b in blocks if b.source == param]
        assert [b.gate for b in mine] == gates
        assert [b.name for b in mine] == [f"{part} · {g} gate" for g in gates]
        for block, expected in zip(mine, _gate_slices(getattr(lstm, param), 4)):
            np.testing.assert_array_equal(block.array, expected)
    forget = next(b for b in blocks if b.name == "input kernel · forget gate")
    assert forget.shape == (3, 2) and "forget gate f" in forget.description


def test_split_gates_false_keeps_one_block_per_parameter():
    lstm = nn.LSTM(2, 3)
    blocks = sw_weights.layer_weights(nn.Sequential(lstm), 0, split_gates=False)
    assert [b.source for b in blocks] == [n for n, _ in lstm.named_parameters()]
    for block, (_, param) in zip(blocks, lstm.named_parameters()):
        np.testing.assert_array_equal(block.array, _np(param))
        assert block.gate is None
    assert blocks[0].axes == ("4 gates (i f g o) × units", "input features")
    assert "i (input), f (forget), g (cell), o (output)" in blocks[0].description


def test_gru_gates_in_torch_order_and_candidate_bias_note():
    gru = nn.GRU(2, 4)
    blocks = sw_weights.layer_weights(nn.Sequential(gru), 0)
    hh = [b for b in blocks if b.source == "weight_hh_l0"]
    assert [b.gate for b in hh] == ["reset", "update", "candidate"]
    for block, expected in zip(hh, _gate_slices(gru.weight_hh_l0, 3)):
        np.testing.assert_array_equal(block.array, expected)
    b_hn = next(b for b in blocks if b.name == "bias (hidden-hidden) · candidate gate")
    np.testing.assert_array_equal(b_hn.array, _np(gru.bias_hh_l0)[8:12])
    assert "not interchangeable" in b_hn.description
    equation = torch_layer_equation(nn.Sequential(gru), 0)
    assert "n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t−1} + b_hn))" in equation


@pytest.mark.parametrize("cls, n_gates", [(nn.LSTM, 4), (nn.GRU, 3)])
def test_multilayer_bidirectional_names_and_values(cls, n_gates):
    rnn = cls(2, 3, num_layers=2, bidirectional=True, batch_first=True)
    blocks = _by_name(sw_weights.layer_weights(nn.Sequential(rnn), 0))
    assert len(blocks) == 2 * 2 * 4 * n_gates
    params = dict(rnn.named_parameters())
    for name, param in params.items():
        mine = [b for b in blocks.values() if b.source == name]
        assert len(mine) == n_gates
        for block, expected in zip(mine, _gate_slices(param, n_gates)):
            np.testing.assert_array_equal(block.array, expected)
    gate = "forget" if cls is nn.LSTM else "update"
    block = blocks[f"layer 1 · reverse · input kernel · {gate} gate"]
    assert block.source == "weight_ih_l1_reverse" and block.shape == (3, 6)
    assert "layer 0's output" in block.description
    assert blocks[f"layer 0 · forward · bias (hidden-hidden) · {gate} gate"].source == "bias_hh_l0"
    equation = torch_layer_equation(nn.Sequential(rnn), 0)
    assert "both directions concatenated" in equation and "reverse" in equation


def test_lstm_projection_block():
    lstm = nn.LSTM(2, 4, proj_size=2)
    blocks = _by_name(sw_weights.layer_weights(nn.Sequential(lstm), 0, split_gates=False))
    np.testing.assert_array_equal(blocks["projection"].array, _np(lstm.weight_hr_l0))
    assert blocks["recurrent kernel"].shape == (16, 2)
    assert "h_t = W_hr (o_t ⊙ tanh(c_t))" in torch_layer_equation(nn.Sequential(lstm), 0)


def test_layer_by_index_name_and_object_agree():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    by_name = sw_weights.layer_weights(model, "2")
    by_index = sw_weights.layer_weights(model, -1)
    by_object = sw_weights.layer_weights(model, model[2])
    for a, b, c in zip(by_name, by_index, by_object):
        np.testing.assert_array_equal(a.array, b.array)
        np.testing.assert_array_equal(a.array, c.array)
    np.testing.assert_array_equal(by_name[0].array, _np(model[2].weight))


def test_layer_without_weights_is_a_clear_error():
    model = nn.Sequential(nn.Linear(3, 2), nn.Flatten())
    with pytest.raises(SaliencyError, match=r"layer '1' \(Flatten\) has no weights"):
        sw_weights.layer_weights(model, "1")


def test_unknown_layer_lists_valid_names():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    with pytest.raises(SaliencyError, match=r"no layer 'dense'.*'0', '1'"):
        sw_weights.layer_weights(model, "dense")
    with pytest.raises(SaliencyError, match="'0', '1'"):
        sw_weights.layer_weights(model, 5)


def test_uninterpreted_layer_shows_raw_variables_honestly():
    norm = nn.LayerNorm(4)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(4))
    blocks = _by_name(sw_weights.layer_weights(nn.Sequential(norm), 0))
    assert list(blocks) == ["weight", "bias"]
    assert (blocks["weight"].role, blocks["bias"].role) == ("kernel", "bias")
    np.testing.assert_array_equal(blocks["weight"].array, _np(norm.weight))
    assert all("not interpreted" in b.description for b in blocks.values())


def test_extra_parameters_of_a_known_subclass_are_not_dropped():
    class ScaledLinear(nn.Linear):
        def __init__(self) -> None:
            super().__init__(3, 2)
            self.scale = nn.Parameter(torch.tensor([2.0, 3.0]))

    blocks = _by_name(sw_weights.layer_weights(nn.Sequential(ScaledLinear()), 0))
    assert list(blocks) == ["kernel", "bias", "scale"]
    np.testing.assert_array_equal(blocks["scale"].array, [2.0, 3.0])
    assert "not interpreted" in blocks["scale"].description


def test_custom_module_with_own_parameter_and_children():
    class Wrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.alpha = nn.Parameter(torch.ones(2))
            self.inner = nn.Linear(2, 2)

        def forward(self, x):
            return self.inner(x) * self.alpha

    model = Wrapper()
    with pytest.warns(SaliencyWarning, match="example= or input_shape="):
        assert [i.name for i in sw_weights.layers(model)] == ["model", "inner"]
    (alpha,) = sw_weights.layer_weights(model, "model")
    assert alpha.source == "alpha"
