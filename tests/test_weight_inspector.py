"""WeightInspector driven from Python (tier A): layer selection, blocks, the block table, zoom, errors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from saliency_widgets.export import COLORBAR_GID  # noqa: E402
from saliency_widgets.errors import SaliencyError  # noqa: E402
from saliency_widgets.transport import from_wire  # noqa: E402
from saliency_widgets.model_layers import layer_weights  # noqa: E402
from saliency_widgets.widgets.weight_display import MAX_PICTURE_CELLS, layer_display, picture  # noqa: E402
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
    assert "has no weights" in w.error
    w.layer = "3"
    assert w.error == ""
    with pytest.raises(SaliencyError, match="no layer 'nope'"):
        w.layer = "nope"


def test_torch_without_input_says_output_shapes_are_unknown():
    w = WeightInspector(_tagger())
    assert w._layers[0]["output_shape"] is None
    assert "x= (one batch) or input_shape= to WeightInspector" in w._note


def test_recurrent_layer_shows_equation_and_gate_blocks():
    model = nn.Sequential(nn.LSTM(2, 3))
    w = WeightInspector(model)
    assert len(w.blocks) == 16
    assert "c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t" in w.equation
    w.split_gates = False
    assert [b["name"] for b in w._blocks] == ["input kernel", "recurrent kernel", "bias (input-hidden)", "bias (hidden-hidden)"]
    assert w._table["has_gates"] is True and w._table["rows"] == [""]  # packed: one row, the control stays
    assert w._blocks[0]["axes"] == ["4 gates (i f g o) × units", "input features"]


def test_block_wire_holds_the_picture_and_its_index_map():
    model = nn.Sequential(nn.Linear(5, 2))
    w = WeightInspector(model)
    kernel = w._blocks[0]
    values, index = from_wire(kernel["values"]), from_wire(kernel["index"])
    np.testing.assert_array_equal(values, model[0].weight.detach().numpy())
    np.testing.assert_array_equal(index, np.arange(10).reshape(2, 5))
    assert w._table["m"] == pytest.approx(float(np.abs(values).max()))
    assert sum(w._table["hist"]) == 12  # every weight of the layer, bias included
    assert kernel["rule"] == "every weight shown"
    assert (kernel["row"], kernel["col"], w._blocks[1]["row"], w._blocks[1]["col"]) == (0, 0, 0, 1)
    np.testing.assert_array_equal(from_wire(w._blocks[1]["values"])[:, 0], model[0].bias.detach().numpy())


def test_conv2d_kernel_is_a_grid_of_filters_with_exact_positions():
    conv = nn.Conv2d(2, 3, (2, 3))
    (kernel, _) = layer_weights(nn.Sequential(conv), 0)
    pic = picture(kernel)
    # bands of rows = 3 filters (2 kernel rows + 1 gap), columns of tiles = 2 input channels (3 kernel columns + 1 gap)
    assert pic.values.shape == (3 * 3 - 1, 2 * 4 - 1)
    w = conv.weight.detach().numpy()
    for r, c in np.argwhere(pic.index >= 0):
        f, ch, i, j = np.unravel_index(pic.index[r, c], w.shape)
        assert pic.values[r, c] == w[f, ch, i, j]
        assert (r, c) == (f * 3 + i, ch * 4 + j)
    assert np.isnan(pic.values[pic.index < 0]).all()
    assert (pic.row_label, pic.tile) == ("filters", (3, 4))


def test_conv_bias_fills_its_filters_band():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, (2, 3))
    display = layer_display(layer_weights(nn.Sequential(conv), 0))
    kernel, bias = display.panels
    assert (bias.row, bias.col) == (kernel.row, 1)
    assert bias.picture.values.shape == (kernel.picture.values.shape[0], 1)
    b = conv.bias.detach().numpy()
    np.testing.assert_array_equal(bias.picture.values[:, 0], [b[0], b[0], np.nan, b[1], b[1], np.nan, b[2], b[2]])
    np.testing.assert_array_equal(bias.picture.index[:, 0], [0, 0, -1, 1, 1, -1, 2, 2])


def test_large_layer_is_downsampled_by_largest_magnitude_with_exact_values():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1000, 600))
    w = WeightInspector(model)
    kernel = w._blocks[0]
    values, index = from_wire(kernel["values"]), from_wire(kernel["index"])
    # 600 000 cells > MAX_PICTURE_CELLS: 2×2 windows
    assert values.shape == (300, 500) and values.size <= MAX_PICTURE_CELLS
    assert (kernel["factor"], kernel["full"]) == ([2, 2], [600, 1000])
    assert "1 cell = 2×2 weights, max |w|" in kernel["rule"]
    full = model[0].weight.detach().numpy()
    np.testing.assert_array_equal(values, full.reshape(-1)[index])
    windows = np.abs(full).reshape(300, 2, 500, 2).max(axis=(1, 3))
    np.testing.assert_array_equal(np.abs(values), windows)


def test_zoom_request_gets_the_full_resolution_region():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1000, 600), nn.Linear(600, 2))
    w = WeightInspector(model)
    w.zoom = {"block": "kernel", "rows": [10, 30], "cols": [990, 1100]}
    zoom = w._zoom
    assert (zoom["block"], zoom["rows"], zoom["cols"]) == ("kernel", [10, 30], [990, 1000])
    full = model[0].weight.detach().numpy()
    np.testing.assert_array_equal(from_wire(zoom["values"]), full[10:30, 990:1000])
    np.testing.assert_array_equal(from_wire(zoom["index"]), np.arange(full.size).reshape(full.shape)[10:30, 990:1000])
    w.layer = 1
    assert w._zoom == {}


def test_to_figure_and_savefig(tmp_path):
    w = WeightInspector(nn.Sequential(nn.GRU(2, 3)))
    fig = w.to_figure()
    maps = [ax for ax in fig.axes if ax.images and ax.images[0].get_gid() != COLORBAR_GID]
    assert len(maps) == 12 and len(fig.axes) == 13  # the gate matrix and one shared colour bar
    spec = [ax.get_subplotspec() for ax in maps]
    assert [(s.rowspan.start, s.colspan.start) for s in spec] == [(b["row"], b["col"]) for b in w._blocks]
    assert maps[0].get_ylabel() == "reset gate" and maps[0].get_title().split() == ["input", "kernel", "3×2"]
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


class _LSTMHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1])


def test_torch_lstm_is_one_gate_matrix_of_exact_slices():
    torch.manual_seed(0)
    model = _LSTMHead()
    w = WeightInspector(model, x=np.zeros((2, 5, 3), np.float32))
    assert [r["output_shape"] for r in w._layers] == [[5, 4], [2]]
    assert w._table["rows"] == ["input gate", "forget gate", "cell gate", "output gate"]
    assert w._table["cols"] == ["input kernel", "recurrent kernel", "bias (input-hidden)", "bias (hidden-hidden)"]
    assert w._table["has_gates"] is True
    lstm = model.lstm
    sources = [lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0[:, None], lstm.bias_hh_l0[:, None]]
    for b in w._blocks:
        expected = sources[b["col"]].detach().numpy()[4 * b["row"]: 4 * b["row"] + 4]
        np.testing.assert_array_equal(from_wire(b["values"]), expected)
    kernels = np.concatenate([lstm.weight_ih_l0.detach().numpy().ravel(), lstm.weight_hh_l0.detach().numpy().ravel()])
    assert w._table["m"] == pytest.approx(float(np.abs(kernels).max()))
    assert w._equation["math"][4] == "c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t"
    assert w._equation["notes"][0].startswith("W_i* = input kernel (weight_ih)")


def test_keras_lstm_gate_matrix_has_units_down_the_rows_and_the_forget_bias_saturates():
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((5, 2)), keras.layers.LSTM(3, name="lstm")])
    w = WeightInspector(model)
    kernel, recurrent, bias = (v.numpy() for v in model.layers[0].weights)
    by_name = {b["name"]: from_wire(b["values"]) for b in w._blocks}
    np.testing.assert_array_equal(by_name["input kernel · forget gate"], kernel[:, 3:6].T)
    np.testing.assert_array_equal(by_name["recurrent kernel · output gate"], recurrent[:, 9:12].T)
    np.testing.assert_array_equal(by_name["bias · forget gate"][:, 0], bias[3:6])
    m = max(np.abs(kernel).max(), np.abs(recurrent).max())
    assert w._table["m"] == pytest.approx(float(m)) and bias[3:6].min() > m  # unit_forget_bias = 1
    assert w._layers[0]["output_shape"] == [3]


def test_layer_object_selects_and_foreign_objects_are_refused():
    model = _LSTMHead()
    w = WeightInspector(model, layer=model.head)
    assert w.layer == "head"
    w.layer = model.lstm
    assert w.layer == "lstm" and len(w.blocks) == 16
    with pytest.raises(SaliencyError, match="Linear is not a layer of the model"):
        w.layer = nn.Linear(4, 2)
    assert w.layer == "lstm"


def test_linear_first_torch_model_knows_its_output_shapes_without_x():
    w = WeightInspector(nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 2)))
    assert [r["output_shape"] for r in w._layers] == [[12], [5], [5], [2]]
    assert w._note == ""
    assert w.layer == "1"
    assert w._table["has_gates"] is False


def test_stacked_bidirectional_lstm_has_one_row_per_layer_direction_and_gate():
    w = WeightInspector(nn.Sequential(nn.LSTM(2, 3, num_layers=2, bidirectional=True)))
    rows = w._table["rows"]
    assert len(rows) == 16 and rows[:2] == ["input gate\nL0 fwd", "forget gate\nL0 fwd"] and rows[-1] == "output gate\nL1 rev"
    reverse_l1 = next(b for b in w._blocks if b["name"] == "layer 1 · reverse · recurrent kernel · cell gate")
    assert (reverse_l1["row"], reverse_l1["col"]) == (14, 1)


def test_keras_conv_and_dense_follow_the_same_orientation_as_torch():
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(3, (2, 3), name="conv"),
                              keras.layers.Flatten(name="flat"), keras.layers.Dense(4, name="dense")])
    w = WeightInspector(model, layer="conv")
    kernel = model.get_layer("conv").kernel.numpy()  # (kernel row, kernel column, in, filters)
    grid, index = from_wire(w._blocks[0]["values"]), from_wire(w._blocks[0]["index"])
    assert grid.shape == (3 * 3 - 1, 2 * 4 - 1)
    for f, ch, i, j in [(0, 0, 0, 0), (2, 1, 1, 2), (1, 0, 1, 1)]:
        assert grid[f * 3 + i, ch * 4 + j] == kernel[i, j, ch, f]
        assert index[f * 3 + i, ch * 4 + j] == np.ravel_multi_index((i, j, ch, f), kernel.shape)
    w.layer = "dense"
    dense = model.get_layer("dense").kernel.numpy()  # (input features, units): shown units × inputs
    np.testing.assert_array_equal(from_wire(w._blocks[0]["values"]), dense.T)
    assert w._layers[1] == {"name": "flat", "type": "Flatten", "output_shape": [60], "n_params": 0}  # 5×4×3


def test_a_tall_narrow_table_is_cut_along_its_long_axis_only():
    torch.manual_seed(0)
    emb = nn.Embedding(10000, 64)
    w = WeightInspector(nn.Sequential(emb))
    (table,) = w._blocks
    values, index = from_wire(table["values"]), from_wire(table["index"])
    assert (table["factor"], values.shape) == ([3, 1], (3334, 64))  # 640 000 cells → ≤ 2^18
    full = emb.weight.detach().numpy()
    np.testing.assert_array_equal(values, full.reshape(-1)[index])
    windows = np.abs(np.pad(full, ((0, 2), (0, 0)))).reshape(3334, 3, 64).max(axis=1)
    np.testing.assert_array_equal(np.abs(values), windows)


def test_export_request_answers_with_the_figure_file_named_after_the_layer():
    w = WeightInspector(_LSTMHead())
    reply, (data,) = w._export_reply({"type": "export", "format": "svg", "id": 7})
    assert reply == {"type": "export", "id": 7, "filename": "weights-lstm.svg", "mime": "image/svg+xml"}
    svg = data.decode()
    assert "Weights of" in svg and "forget gate" in svg and "recurrent kernel" in svg


def _conv_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3)).eval()


@pytest.mark.parametrize("attribute", ["JacobianGrid", "SaliencyMap", "saliency"])
def test_torch_output_shapes_without_x_once_the_model_has_been_attributed(attribute):
    """The backend remembers the input shapes it has computed on; the inspector traces zeros of the last one."""
    import saliency_widgets as sw

    model = _conv_net()
    assert WeightInspector(model)._layers[0]["output_shape"] is None  # a Conv2d first: nothing to go on yet
    x = np.random.default_rng(0).normal(size=(2, 1, 6, 6)).astype(np.float32)
    {"JacobianGrid": sw.JacobianGrid, "SaliencyMap": sw.SaliencyMap, "saliency": sw.saliency}[attribute](model, x)
    w = WeightInspector(model)
    assert [r["output_shape"] for r in w._layers] == [[2, 6, 6], [2, 6, 6], [72], [3]]
    assert w._note == ""
    assert [i.output_shape for i in sw.layers(model)][0] == (2, 6, 6)
    assert not model.training and all(p.grad is None for p in model.parameters())


def test_an_explicit_input_shape_wins_over_the_remembered_one():
    import saliency_widgets as sw

    model = nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU())
    sw.saliency(model, np.ones((1, 1, 9), np.float32), target=0)
    assert WeightInspector(model)._layers[0]["output_shape"] == [2, 7]
    assert WeightInspector(model, input_shape=(1, 5))._layers[0]["output_shape"] == [2, 3]


def test_token_models_remember_integer_inputs():
    import saliency_widgets as sw

    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(5 * 4, 2)).eval()
    sw.saliency(model, np.array([[1, 2, 3, 4, 5]]), target=0, layer=model[0])
    assert [r["output_shape"] for r in WeightInspector(model)._layers] == [[5, 4], [20], [2]]


def test_figure_typesets_the_equations_and_wraps_the_notes():
    from matplotlib.text import Text

    from saliency_widgets.widgets.weight_figure import math_text

    w = WeightInspector(nn.Sequential(nn.LSTM(2, 3)))
    fig = w.to_figure()
    texts = [t.get_text() for t in fig.texts]
    assert texts[:2] == ["Weights of “0”", "LSTM · output ? · 84 params"]
    assert texts[2:8] == [math_text(line) for line in w._equation["math"]]
    assert all(Text(text=t)._preprocess_math(t)[1] is True for t in texts[2:8])  # drawn as mathtext
    notes = texts[8:]
    assert len(notes) >= 2 and "$W_" not in "".join(notes) and "${W}_{i\\ast}$" in notes[0]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()  # every line parses and renders


@pytest.mark.parametrize("line, want", [
    ("i_t = σ(W_ii x_t + b_ii + W_hi h_{t−1} + b_hi)",
     r"${i}_{t}=\sigma({W}_{ii}\;{x}_{t}+{b}_{ii}+{W}_{hi}\;{h}_{t-1}+{b}_{hi})$"),
    ("h̃_t = tanh(x_t·W_xh + (r_t ⊙ h_{t−1})·W_hh + b_h)",
     r"${\tilde{h}}_{t}=\mathrm{tanh}({x}_{t}\cdot{W}_{xh}+({r}_{t}\odot{h}_{t-1})\cdot{W}_{hh}+{b}_{h})$"),
    ("h_t = (1 − z_t) ⊙ n_t", r"${h}_{t}=(1-{z}_{t})\odot{n}_{t}$"),
])
def test_math_text_follows_the_screens_parse(line, want):
    from saliency_widgets.widgets.weight_figure import math_text, prose_text

    assert math_text(line).replace(" ", "") == want
    assert prose_text("W_i* = input kernel, costs $5") == r"${W}_{i\ast}$ = input kernel, costs \$5"
