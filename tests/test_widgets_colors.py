"""Transport, colour rule and input layouts shared by the widgets (and mirrored in js/src)."""

import numpy as np
import pytest
from ipywidgets.widgets.widget import _remove_buffers

from saliency_widgets import colors
from saliency_widgets.errors import SaliencyError
from saliency_widgets.inputs import background_image, infer_layout
from saliency_widgets.transport import from_wire, to_wire, wire_nbytes

# The same numbers are asserted in js/test/colors.test.ts.
VALUES = np.array([-3, -1.5, -0.25, 0, 0.1, 0.5, 2, 4, np.nan, 1e-3])


def test_transport_roundtrip_keeps_values_shape_and_metadata():
    a = np.arange(24, dtype=np.float64).reshape(2, 3, 4)[:, ::2]  # not contiguous
    wire = to_wire(a, target=3, index=1)
    assert wire["shape"] == [2, 2, 4] and wire["dtype"] == "float32"
    assert (wire["target"], wire["index"]) == (3, 1)
    assert wire_nbytes(wire) == 2 * 2 * 4 * 4
    np.testing.assert_array_equal(from_wire(wire), a.astype(np.float32))
    pic = np.array([[0, 128, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(from_wire(to_wire(pic, "uint8")), pic)


def test_wire_arrays_travel_as_binary_buffers_not_json_lists():
    state = {"_attribution": to_wire(np.ones((4, 4)), target=0)}
    stripped, paths, buffers = _remove_buffers(state)
    assert paths == [["_attribution", "data"]]
    assert len(buffers) == 1 and memoryview(buffers[0]).nbytes == 64
    assert "data" not in stripped["_attribution"]


def test_transport_rejects_bad_requests():
    with pytest.raises(ValueError, match="reserved"):
        to_wire(np.zeros(2), shape=[3])
    with pytest.raises(ValueError, match="dtype"):
        to_wire(np.zeros(2), "int8")
    with pytest.raises(ValueError, match="holds 2 values"):
        from_wire({"data": np.zeros(2, np.float32).tobytes(), "shape": [3], "dtype": "float32"})


def test_scale_is_the_percentile_of_magnitudes_per_sign():
    assert colors.scale_max(VALUES, "all", 2) == 3.8200000000000003
    assert colors.scale_max(VALUES, "positive", 2) == 3.6400000000000006
    assert colors.scale_max(VALUES, "negative", 2) == 2.7300000000000004
    assert colors.scale_max(VALUES, "absolute_value", 2) == 3.8200000000000003
    assert colors.scale_max(VALUES, "all", 0) == 4.0
    assert colors.scale_max(np.r_[np.zeros(99), 7.0], "all", 2) == 7.0  # percentile 0 → max
    assert colors.scale_max(np.zeros(3)) == 1.0


def test_indices_and_ranges_follow_the_rule():
    assert colors.to_index(VALUES, "all", 2.0).tolist() == [0, 32, 112, 128, 134, 159, 255, 255, 128, 128]
    assert colors.to_index(VALUES, "negative", 2.0).tolist() == [255, 191, 32, 0, 0, 0, 0, 0, 0, 0]
    assert colors.value_range(2.0, "all") == (-2.0, 2.0)
    assert colors.value_range(2.0, "positive") == (0.0, 2.0)
    assert colors.overlay_alpha(np.array([0, 128, 255]), "all").tolist() == [255, 1, 255]
    assert colors.overlay_alpha(np.array([0, 64, 200]), "positive").tolist() == [0, 128, 255]
    with pytest.raises(SaliencyError, match="sign must be one of"):
        colors.sign_transform(VALUES, "both")


def test_luts_come_from_matplotlib_diverging_for_signed_values():
    table = colors.sign_lut("all")
    assert table.shape == (256, 4) and table.dtype == np.uint8
    assert table[0, 2] > table[0, 0]  # blue end for negative values
    assert table[255, 0] > table[255, 2]  # red end for positive values
    assert abs(int(table[128, 0]) - int(table[128, 2])) < 16  # near-white centre
    rgba = colors.colorize(np.array([-5.0, 0.0, 5.0]), "all", m=5.0)
    np.testing.assert_array_equal(rgba, table[[0, 128, 255]])


@pytest.mark.parametrize(
    "shape, framework, kind, expected",
    [
        ((8,), "torch", None, ("vector", None, (8,))),
        ((20, 4), "keras", None, ("sequence", None, (20, 4))),
        ((3, 16, 12), "torch", None, ("image", 0, (16, 12))),
        ((16, 12, 3), "keras", None, ("image", 2, (16, 12))),
        ((28, 28), "keras", "image", ("image", None, (28, 28))),
        ((2, 3, 4), "torch", "vector", ("vector", None, (24,))),
    ],
)
def test_layout_is_inferred_per_framework(shape, framework, kind, expected):
    layout = infer_layout(shape, framework, kind)
    assert (layout.kind, layout.channel_axis, layout.display_shape) == expected


def test_layout_reduces_channels_by_summing_and_rejects_unknown_ranks():
    layout = infer_layout((3, 2, 2), "torch")
    v = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    np.testing.assert_array_equal(layout.reduce(v), v.sum(axis=0))
    np.testing.assert_array_equal(layout.reduce(np.stack([v, -v])), np.stack([v.sum(0), -v.sum(0)]))
    with pytest.raises(SaliencyError, match="pass kind="):
        infer_layout((1, 2, 3, 4), "torch")
    with pytest.raises(SaliencyError, match="time, features"):
        infer_layout((5,), "torch", "sequence")


def test_background_image_is_min_max_scaled_rgb():
    layout = infer_layout((1, 2, 2), "torch")
    pic = background_image(np.array([[[-1.0, 0.0], [0.0, 1.0]]]), layout)
    assert pic.shape == (2, 2, 3) and pic.dtype == np.uint8
    assert pic[..., 0].tolist() == [[0, 128], [128, 255]]
    assert (pic[..., 0] == pic[..., 2]).all()  # grey repeated
    rgb_first = np.zeros((3, 2, 2))
    rgb_first[0] = 1.0
    assert background_image(None, layout, rgb_first)[0, 0].tolist() == [255, 0, 0]
    with pytest.raises(SaliencyError, match="image= must be 2×2"):
        background_image(None, layout, np.zeros((5, 5)))
