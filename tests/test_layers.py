"""sw.layers: per-sample output shapes and parameter counts, for torch and Keras."""

from __future__ import annotations

import numpy as np
import pytest

import saliency_widgets.model_layers as sw_weights
from saliency_widgets.errors import SaliencyError, SaliencyWarning


# ----------------------------------------------------------------------- torch
@pytest.fixture
def nn():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch.nn


def test_torch_conv1d_same_padding_shape_from_a_traced_pass(nn):
    import torch

    model = nn.Sequential(nn.Conv1d(1, 20, kernel_size=10, padding="same"), nn.ReLU(), nn.Flatten(), nn.Linear(20 * 500, 3))
    infos = sw_weights.layers(model, input_shape=(1, 500))
    assert [(i.name, i.type) for i in infos] == [("0", "Conv1d"), ("1", "ReLU"), ("2", "Flatten"), ("3", "Linear")]
    assert infos[0].output_shape == (20, 500)
    x = torch.zeros(2, 1, 500)
    expected = []
    for module in model:
        x = module(x)
        expected.append(tuple(x.shape[1:]))
    assert [i.output_shape for i in infos] == expected
    assert [i.n_params for i in infos] == [sum(p.numel() for p in m.parameters()) for m in model]
    assert infos[0].n_params == 220


def test_torch_shapes_from_an_example_batch(nn):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.Flatten())
    infos = sw_weights.layers(model, np.ones((5, 3, 9, 9), np.float32))
    assert [i.output_shape for i in infos] == [(4, 7, 7), (4, 3, 3), (36,)]


def test_torch_rnn_output_tuple_gives_the_output_tensor_shape(nn):
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.lstm = nn.LSTM(4, 3, num_layers=2, bidirectional=True, batch_first=True)
            self.head = nn.Linear(6, 2)

        def forward(self, tokens):
            return self.head(self.lstm(self.emb(tokens))[0])

    infos = {i.name: i for i in sw_weights.layers(Tagger(), np.zeros((2, 7), np.int64))}
    assert infos["emb"].output_shape == (7, 4)
    assert infos["lstm"].output_shape == (7, 6)
    assert infos["head"].output_shape == (7, 2)
    assert infos["lstm"].n_params == sum(p.numel() for p in Tagger().lstm.parameters())


def test_torch_time_major_rnn_drops_the_batch_axis_not_time(nn):
    class TimeMajor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.GRU(2, 3)

        def forward(self, x):  # x: (batch, time, features), the rnn runs time-major
            return self.rnn(x.transpose(0, 1))[0]

    (info,) = sw_weights.layers(TimeMajor(), np.zeros((1, 6, 2), np.float32))
    assert info.output_shape == (6, 3)


def test_torch_layers_leave_no_trace(nn):
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.BatchNorm1d(4))
    model.train()
    model[1].eval()
    flags = [m.training for m in model.modules()]
    running = model[2].running_mean.clone()
    sw_weights.layers(model, input_shape=(3,))
    assert [m.training for m in model.modules()] == flags
    assert all(not m._forward_hooks for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert model[2].running_mean.equal(running)


def test_torch_layers_failure_restores_the_model(nn):
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)).train()
    with pytest.raises(SaliencyError, match=r"could not run the model on an input of shape \(1, 3\)"):
        sw_weights.layers(model, input_shape=(3,))
    assert all(m.training for m in model.modules())
    assert all(not m._forward_hooks for m in model.modules())


def test_torch_without_input_shapes_are_unknown_and_said_so(nn):
    model = nn.Sequential(nn.Conv1d(1, 2, 3))  # a sequence of unknown length
    with pytest.warns(SaliencyWarning, match="example= or input_shape="):
        (info,) = sw_weights.layers(model)
    assert info == sw_weights.LayerInfo("0", "Conv1d", None, 8)


def test_example_and_input_shape_together_are_refused(nn):
    with pytest.raises(SaliencyError, match="not both"):
        sw_weights.layers(nn.Sequential(nn.Linear(3, 4)), np.zeros((1, 3)), input_shape=(3,))


# ----------------------------------------------------------------------- keras
@pytest.fixture
def keras():
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    return keras


def test_keras_conv1d_same_padding_shapes_match_keras(keras):
    L = keras.layers
    model = keras.Sequential([
        keras.Input((500, 1)),
        L.Conv1D(20, kernel_size=10, padding="same", name="conv"),
        L.Flatten(name="flat"),
        L.Dense(3, name="out"),
    ])
    infos = sw_weights.layers(model)
    assert [(i.name, i.type) for i in infos] == [("conv", "Conv1D"), ("flat", "Flatten"), ("out", "Dense")]
    assert infos[0].output_shape == (500, 20)
    assert [i.output_shape for i in infos] == [tuple(layer.output.shape[1:]) for layer in model.layers]
    assert [i.n_params for i in infos] == [layer.count_params() for layer in model.layers] == [220, 0, 30003]


def test_keras_recurrent_and_bidirectional_shapes(keras):
    L = keras.layers
    model = keras.Sequential([
        keras.Input((None, 2)),
        L.SimpleRNN(3, return_sequences=True, name="rnn"),
        L.Bidirectional(L.LSTM(4), name="bi"),
    ])
    infos = sw_weights.layers(model)
    assert infos[0].output_shape == (None, 3)
    assert infos[1] == sw_weights.LayerInfo("bi", "Bidirectional(LSTM)", (8,), model.layers[1].count_params())
    assert infos[0].n_params == 2 * 3 + 3 * 3 + 3


def test_keras_nested_models_are_flattened(keras):
    L = keras.layers
    inner = keras.Sequential([L.Dense(3, name="d1"), L.Dense(2, name="d2")], name="block")
    x = keras.Input((4,), name="x")
    model = keras.Model(x, L.Dense(1, name="head")(inner(x)))
    infos = sw_weights.layers(model)
    assert [i.name for i in infos] == ["x", "block/d1", "block/d2", "head"]
    assert [i.output_shape for i in infos] == [(4,), (3,), (2,), (1,)]
    assert sum(i.n_params for i in infos) == model.count_params()


def test_keras_unbuilt_model_has_unknown_shapes_and_says_so(keras):
    from saliency_widgets.backends.keras.weights import keras_layers

    model = keras.Sequential([keras.layers.Dense(3, name="d")])
    with pytest.warns(SaliencyWarning, match="output shapes unknown for d"):
        (info,) = keras_layers(model, None)
    assert info == sw_weights.LayerInfo("d", "Dense", None, 0)
