"""WeightInspector driven from Python (tier A): layer selection, blocks, display rule, errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from saliency_widgets.export import COLORBAR_GID  # noqa: E402
from saliency_widgets.errors import SaliencyError  # noqa: E402
from saliency_widgets.transport import from_wire  # noqa: E402
from saliency_widgets.weights import layer_weights  # noqa: E402
from saliency_widgets.widgets.weight_display import MAX_CELLS, picture  # noqa: E402
from saliency_widgets.widgets.weight_inspector import WeightInspector  # noqa: E402


def _tagger():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8, 3))


def test_first_layer_with_weights_is_selected_and_blocks_are_exact():
    model = _tagger()
    w = WeightInspector(model, input_shape=(1, 8))
    assert w.layer == "0"
    assert [r["name"] for r in w._layers] == ["0", "1", "2", "3"]
    assert w._layers[0]["output_shape"] == [4, 8]
    assert [b.name for b in w.blocks] == ["kernel", "bias"]
    np.testing.assert_array_equal(w.blocks[0].array, model[0].weight.detach().numpy())
    assert w._note == ""


def test_setting_layer_by_name_or_index_updates_blocks():
    model = _tagger()
    w = WeightInspector(model, input_shape=(1, 8))
    w.layer = "3"
    np.testing.assert_array_equal(w.blocks[0].array, model[3].weight.detach().numpy())
    assert [b["name"] for b in w._blocks] == ["kernel", "bias"]
    assert w._blocks[0]["shape"] == [3, 32]
    w.layer = 0
    assert w.layer == "0"
    assert w._blocks[0]["layout"] == "filters"


def test_weightless_layer_is_refused_and_the_previous_layer_kept():
    w = WeightInspector(_tagger())
    with pytest.raises(SaliencyError, match=r"layer '1' \(ReLU\) has no weights"):
        w.layer = "1"
    assert w.layer == "0"
    assert "has no weights" in w._error
    w.layer = "3"
    assert w._error == ""
    with pytest.raises(SaliencyError, match="no layer 'nope'"):
        w.layer = "nope"


def test_torch_without_input_says_output_shapes_are_unknown():
    w = WeightInspector(_tagger())
    assert w._layers[0]["output_shape"] is None
    assert "example= or input_shape=" in w._note


def test_recurrent_layer_shows_equation_and_gate_blocks():
    model = nn.Sequential(nn.LSTM(2, 3))
    w = WeightInspector(model)
    assert len(w.blocks) == 16
    assert "c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t" in w.equation
    w.split_gates = False
    assert [b["name"] for b in w._blocks] == ["input kernel", "recurrent kernel", "bias (input-hidden)", "bias (hidden-hidden)"]
    assert w._blocks[0]["axes"] == ["4 gates (i f g o) × units", "input features"]


def test_block_wire_holds_the_picture_and_its_index_map():
    model = nn.Sequential(nn.Linear(5, 2))
    w = WeightInspector(model)
    kernel = w._blocks[0]
    values, index = from_wire(kernel["values"]), from_wire(kernel["index"])
    np.testing.assert_array_equal(values, model[0].weight.detach().numpy())
    np.testing.assert_array_equal(index, np.arange(10).reshape(2, 5))
    assert kernel["m"] == pytest.approx(float(np.abs(values).max()))
    assert sum(kernel["hist"]) == 10
    assert kernel["rule"] == "every weight shown"


def test_conv2d_kernel_is_a_grid_of_filters_with_exact_positions():
    conv = nn.Conv2d(2, 3, (2, 3))
    (kernel, _) = layer_weights(nn.Sequential(conv), 0)
    pic = picture(kernel)
    # rows of tiles = 2 input channels (2 kernel rows + 1 gap), columns = 3 filters (3 kernel columns + 1 gap)
    assert pic.values.shape == (2 * 3 - 1, 3 * 4 - 1)
    w = conv.weight.detach().numpy()
    for r, c in np.argwhere(pic.index >= 0):
        f, ch, i, j = np.unravel_index(pic.index[r, c], w.shape)
        assert pic.values[r, c] == w[f, ch, i, j]
        assert (r, c) == (ch * 3 + i, f * 4 + j)
    assert np.isnan(pic.values[pic.index < 0]).all()
    assert pic.col_label == "filters"


def test_large_layer_is_downsampled_by_largest_magnitude_with_exact_values():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1000, 600))
    w = WeightInspector(model)
    kernel = w._blocks[0]
    values, index = from_wire(kernel["values"]), from_wire(kernel["index"])
    assert values.shape == (600 // 3, 1000 // 4) and max(values.shape) <= MAX_CELLS
    assert "3×4 window" in kernel["rule"]
    full = model[0].weight.detach().numpy()
    np.testing.assert_array_equal(values, full.reshape(-1)[index])
    windows = np.abs(full).reshape(200, 3, 250, 4).max(axis=(1, 3))
    np.testing.assert_array_equal(np.abs(values), windows)


def test_to_figure_and_savefig(tmp_path):
    w = WeightInspector(nn.Sequential(nn.GRU(2, 3)))
    fig = w.to_figure()
    maps = [ax for ax in fig.axes if ax.images and ax.images[0].get_gid() != COLORBAR_GID]
    assert len(maps) == 12 and len(fig.axes) == 24  # each block and its colour bar
    w.savefig(tmp_path / "gru.png")
    assert (tmp_path / "gru.png").stat().st_size > 1000


def test_keras_simple_rnn_inspector():
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((5, 1)), keras.layers.SimpleRNN(3, name="rnn"), keras.layers.Dense(2, name="out")])
    w = WeightInspector(model)
    assert w.layer == "rnn"
    assert [(b["name"], b["shape"]) for b in w._blocks] == [("input kernel", [1, 3]), ("recurrent kernel", [3, 3]), ("bias", [3])]
    assert w.equation.startswith("h_t = tanh(x_t·W_x + h_{t−1}·W_h + b)")
    assert w._layers[0]["output_shape"] == [3]
