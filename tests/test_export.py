"""Figures, files and the static PNG exported from every widget (no browser)."""

import base64
import gc
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from _figure_pixels import cell_pixels, heatmaps, render
from _widget_models import batch, cnn, mlp

import saliency_widgets as sw
from saliency_widgets import colors
from saliency_widgets.errors import SaliencyError
from saliency_widgets.export import COLORBAR_GID, UNDERLAY, faint_underlay, format_value
from saliency_widgets.inputs import background_image
from saliency_widgets.transport import from_wire
from saliency_widgets.widgets import JacobianGrid, SaliencyMap, WeightInspector

LABELS = ["cat", "dog", "car", "<script>alert(1)</script>", "ship"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class SeqHead(torch.nn.Module):
    """An LSTM over (time, 2 features) followed by a linear head (3 outputs)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.lstm = torch.nn.LSTM(2, 4, batch_first=True)
        self.head = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1])


WIDGETS = {
    "saliency-vector": lambda: SaliencyMap(mlp(), batch(3, 8), labels=LABELS, feature_names=[f"f{i}" for i in range(8)]),
    "saliency-image": lambda: SaliencyMap(cnn(), batch(2, 3, 8, 8, seed=1), target=3),
    "saliency-sequence": lambda: SaliencyMap(SeqHead(), batch(2, 6, 2), feature_names=["temp", "wind"]),
    "jacobian-vector": lambda: JacobianGrid(mlp(), batch(2, 8), labels=LABELS),
    "jacobian-image": lambda: JacobianGrid(cnn(), batch(2, 3, 8, 8, seed=1)),
    "jacobian-sequence": lambda: JacobianGrid(SeqHead(), batch(2, 6, 2)),
    "weights": lambda: WeightInspector(mlp()),
}


def assert_cells(fig, expected: list[np.ndarray]) -> None:
    """Every cell centre of the figure's maps has the expected RGB (±1 per channel)."""
    pixels = render(fig)
    images = heatmaps(fig)
    assert len(images) == len(expected)
    for image, want in zip(images, expected):
        got = cell_pixels(fig, image, pixels)
        assert got.shape[:2] == want.shape[:2]
        np.testing.assert_allclose(got[..., :3].astype(int), want[..., :3].astype(int), atol=1)


@pytest.mark.parametrize("name", list(WIDGETS))
def test_savefig_writes_valid_png_svg_and_pdf(name, tmp_path):
    widget = WIDGETS[name]()
    png = widget.savefig(tmp_path / f"{name}.png", dpi=60)
    assert png.read_bytes()[:8] == PNG_MAGIC
    svg = widget.savefig(tmp_path / f"{name}.SVG")
    assert ET.parse(svg).getroot().tag == "{http://www.w3.org/2000/svg}svg"
    pdf = widget.savefig(tmp_path / f"{name}.pdf")
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-" and data.rstrip().endswith(b"%%EOF")


def test_savefig_refuses_other_suffixes(tmp_path):
    widget = WIDGETS["saliency-vector"]()
    with pytest.raises(SaliencyError, match=r"\.png, \.svg, \.pdf.*'map\.jpg'"):
        widget.savefig(tmp_path / "map.jpg")
    assert not (tmp_path / "map.jpg").exists()


def test_dpi_sets_the_png_size(tmp_path):
    widget = WIDGETS["saliency-image"]()
    fig = widget.to_figure(figsize=(4, 5))
    assert tuple(fig.get_size_inches()) == (4, 5)
    path = widget.savefig(tmp_path / "map.png", dpi=50, figsize=(4, 5))
    width, height = np.frombuffer(path.read_bytes()[16:24], dtype=">u4")
    assert (width, height) == (200, 250)


def test_vector_map_cells_are_the_lut_colours():
    w = WIDGETS["saliency-vector"]()
    w.target = 3
    fig = w.to_figure()
    assert_cells(fig, [colors.colorize(w.attribution)[None]])
    assert fig._suptitle.get_text() == "Saliency of “<script>alert(1)</script>”"
    labels = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert labels == [f"f{i}" for i in range(8)]


def test_vector_bars_carry_each_features_colour():
    w = WIDGETS["saliency-vector"]()
    fig = w.to_figure()
    bars = fig.axes[1].patches
    want = colors.colorize(w.attribution)[:, :3] / 255.0
    np.testing.assert_allclose([b.get_facecolor()[:3] for b in bars], want, atol=1e-9)
    np.testing.assert_allclose([b.get_width() for b in bars], w.attribution, rtol=1e-6)


@pytest.mark.parametrize("sign", ["negative", "absolute_value"])
def test_vector_bars_follow_the_sign_mode_and_keep_long_names(sign):
    names = [f"od280/od315_of_diluted_wines_{i}" for i in range(8)]
    w = SaliencyMap(mlp(), batch(3, 8), labels=LABELS, feature_names=names, sign=sign)
    fig = w.to_figure()
    widths = np.array([b.get_width() for b in fig.axes[1].patches])
    np.testing.assert_allclose(widths, colors.sign_transform(w.attribution, sign), rtol=1e-6)
    assert (widths >= 0).all() and (widths > 0).any()
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == names


def test_vector_figure_has_a_bar_for_every_feature_up_to_48():
    torch.manual_seed(0)
    w = SaliencyMap(torch.nn.Linear(40, 3), batch(1, 40), feature_names=[f"feature-{i}" for i in range(40)])
    fig = w.to_figure()
    assert len(fig.axes[1].patches) == 40
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == [f"feature-{i}" for i in range(40)]


def test_image_map_is_the_overlay_over_the_grey_input():
    w = WIDGETS["saliency-image"]()
    w.opacity = 0.6
    display = w.attribution.sum(axis=0)
    idx = colors.to_index(display, "all", colors.scale_max(display))
    rgba = colors.sign_lut("all")[idx].copy()
    rgba[..., 3] = colors.overlay_alpha(idx, "all")
    grey = colors.greyscale(background_image(w._x[0], w._layout_info))
    a = rgba[..., 3:4] / 255.0 * 0.6
    want = np.floor(rgba[..., :3] * a + grey[..., None] * (1 - a) + 0.5)
    assert_cells(w.to_figure(), [want])
    assert np.abs(want - grey[..., None]).max() > 40  # the overlay shows, not just the grey input


def test_sequence_map_is_features_by_time_with_sign_and_outliers():
    w = WIDGETS["saliency-sequence"]()
    w.sign, w.outlier_perc = "absolute_value", 10.0
    fig = w.to_figure()
    assert_cells(fig, [colors.colorize(w.attribution.T, "absolute_value", 10.0)])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["temp", "wind"]
    assert "absolute value · top 10% clipped" in fig.axes[-1].get_xlabel()


def test_locked_scale_is_used_and_shown():
    w = WIDGETS["saliency-vector"]()
    w.lock_scale = True
    w.scale_max = 0.05
    fig = w.to_figure()
    assert_cells(fig, [colors.colorize(w.attribution, m=0.05)[None]])
    bar = fig.axes[-1]
    assert [t.get_text() for t in bar.get_xticklabels()] == [format_value(-0.05), "0", format_value(0.05)]
    assert "scale locked" in bar.get_xlabel()


def test_jacobian_matrix_cells_and_labels():
    g = WIDGETS["jacobian-vector"]()
    fig = g.to_figure()
    assert_cells(fig, [colors.colorize(g.jacobian)])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == LABELS


@pytest.mark.parametrize("name", ["jacobian-image", "jacobian-sequence"])
def test_jacobian_tiles_share_one_scale(name):
    """One scale for every tile; image tiles over the faint input, as the screen composites them."""
    g = WIDGETS[name]()
    display = from_wire(g._jacobian)
    m = colors.scale_max(display)
    tiles = [colors.colorize(d, m=m) for d in display]
    if name == "jacobian-sequence":
        tiles = [t.transpose(1, 0, 2) for t in tiles]
    else:
        under = faint_underlay(from_wire(g._image))
        tiles = [colors.overlay(with_overlay_alpha(t, d, m), under, 1.0) for t, d in zip(tiles, display)]
    fig = g.to_figure()
    assert_cells(fig, tiles)
    bold = [ax.title.get_fontweight() for ax in fig.axes if ax.images and ax.images[0].get_gid() is None]
    assert bold.count("bold") == 1 and bold[g._rows.index(g.selected)] == "bold"


def with_overlay_alpha(rgba: np.ndarray, values: np.ndarray, m: float) -> np.ndarray:
    """LUT pixels with the alpha of a map drawn over an image (0 where the value is 0)."""
    out = rgba.copy()
    out[..., 3] = colors.overlay_alpha(colors.to_index(values, "all", m), "all")
    return out


def test_faint_underlay_is_the_grey_input_stretched_onto_pale_greys():
    picture = np.array([[[0, 0, 0], [255, 255, 255], [128, 128, 128], [200, 10, 10]]], np.uint8)
    np.testing.assert_array_equal(faint_underlay(picture), [[UNDERLAY[0], UNDERLAY[1], 225, 213]])  # grid_views.test.ts


def test_jacobian_colour_bar_keeps_its_height_with_1000_outputs():
    """The 1000-output export used to squeeze the bar to nothing (its height followed the row count)."""
    torch.manual_seed(0)
    g = JacobianGrid(torch.nn.Linear(64, 1000).eval(), batch(1, 64), labels=[f"class {i:03d}" for i in range(1000)])
    fig = g.to_figure()
    pixels = render(fig)
    [bar] = [im for ax in fig.axes for im in ax.images if im.get_gid() == COLORBAR_GID]
    box = bar.get_window_extent()
    assert box.height >= 0.25 * 100  # px at the render's 100 dpi
    middle = pixels.shape[0] - int(box.y0 + box.height / 2)
    lut = colors.sign_lut("all")
    for frac in (0.02, 0.5, 0.98):
        got = pixels[middle, int(box.x0 + frac * box.width), :3].astype(int)
        np.testing.assert_allclose(got, lut[int(frac * 255), :3], atol=12)


def text_boxes(fig) -> list[tuple[str, object]]:
    """Every non-empty text of a rendered figure with its box in display pixels."""
    render(fig)
    renderer = fig.canvas.get_renderer()
    return [(t.get_text(), t.get_window_extent(renderer)) for t in fig.findobj(lambda a: hasattr(a, "get_text"))
            if getattr(t, "get_text", lambda: "")() and t.get_visible() and hasattr(t, "get_window_extent")]


def clipped(fig) -> list[str]:
    """The texts of ``fig`` that stick out of it."""
    w, h = fig.get_size_inches() * fig.dpi
    return [text for text, b in text_boxes(fig) if b.x0 < -1 or b.y0 < -1 or b.x1 > w + 1 or b.y1 > h + 1]


LONG = "a label far longer than any tile is wide, with words"
CLIPPED_CASES = {
    "jacobian-1000": lambda: JacobianGrid(torch.nn.Linear(64, 1000), batch(1, 64), labels=[f"class {i:03d} ({LONG})" for i in range(1000)],
                                          feature_names=[f"input_feature_{j}" for j in range(64)]),
    "jacobian-one-tile": lambda: JacobianGrid(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 1)), batch(3, 1, 8, 8), labels=[LONG]),
    "jacobian-tiles": lambda: JacobianGrid(cnn(), batch(2, 3, 8, 8, seed=1), labels=[f"{LONG} {i}" for i in range(10)]),
    "jacobian-sequence": WIDGETS["jacobian-sequence"],
    "weights-stacked-bilstm": lambda: WeightInspector(torch.nn.Sequential(torch.nn.LSTM(2, 3, num_layers=2, bidirectional=True))),
    "weights-gru": lambda: WeightInspector(torch.nn.Sequential(torch.nn.GRU(2, 3))),
    "weights-linear": lambda: WeightInspector(torch.nn.Sequential(torch.nn.Linear(3, 2))),
}


@pytest.mark.parametrize("name", list(CLIPPED_CASES))
def test_titles_subtitles_and_captions_are_never_clipped(name):
    fig = CLIPPED_CASES[name]().to_figure()
    assert clipped(fig) == []
    captions = [ax.title.get_window_extent() for ax in fig.axes if ax.images and ax.title.get_text()]
    for i, a in enumerate(captions):  # tile captions do not run into each other
        assert not any(a.overlaps(b) for b in captions[i + 1:]), name


def test_narrow_inspector_figure_wraps_its_header():
    w = WeightInspector(torch.nn.Sequential(torch.nn.LSTM(2, 3, num_layers=2, bidirectional=True)))
    assert clipped(w.to_figure(figsize=(4.0, 9.0))) == []


def test_tile_captions_are_whole_labels_with_the_score_below():
    g = CLIPPED_CASES["jacobian-tiles"]()
    fig = g.to_figure()
    titles = [ax.title.get_text() for ax in fig.axes if ax.images and ax.images[0].get_gid() != COLORBAR_GID]
    scores = g._all_scores("logits")[g.index]
    for i, title in enumerate(titles):
        *label, score = title.split("\n")
        assert " ".join(label) == f"{LONG} {i}" and score == format_value(scores[i])


def test_weight_blocks_share_the_layer_scale():
    inspector = WeightInspector(mlp())
    fig = inspector.to_figure()
    kernel, bias = inspector.blocks
    m = float(np.abs(kernel.array).max())  # the kernels' max |w|; the bias (a column) shares it
    assert_cells(fig, [colors.colorize(kernel.array, m=m), colors.colorize(bias.array[:, None], m=m)])


def test_figures_match_the_functional_api():
    """The exported map is the engine's answer, not a stale one."""
    model, x = mlp(), batch(3, 8)
    w = SaliencyMap(model, x, target=1, method="input_x_gradient", index=2)
    want = sw.saliency(model, x, target=1, method="input_x_gradient")[2]
    assert_cells(w.to_figure(), [colors.colorize(want)[None]])


def test_mime_bundle_keeps_the_widget_view_and_adds_a_png():
    w = WIDGETS["jacobian-vector"]()
    data, _meta = w._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == w.model_id
    assert base64.b64decode(data["image/png"])[:8] == PNG_MAGIC
    inspector = WIDGETS["weights"]()
    data, _meta = inspector._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data and "image/png" in data


def test_widgets_are_built_and_shown_with_the_garbage_collector_paused(monkeypatch):
    """Construction and the display bundle run with cyclic collection off (its full passes come
    after the widget is shown); the collector is left as it was, also when it was off or on error."""
    states = []
    real_lut = colors.sign_lut
    monkeypatch.setattr(colors, "sign_lut", lambda sign: states.append(gc.isenabled()) or real_lut(sign))
    real_png = SaliencyMap._static_png
    monkeypatch.setattr(SaliencyMap, "_static_png", lambda self: states.append(gc.isenabled()) or real_png(self))
    w = SaliencyMap(mlp(), batch(2, 8))
    w._repr_mimebundle_()
    assert states and not any(states) and gc.isenabled()
    gc.disable()
    try:
        SaliencyMap(mlp(), batch(2, 8))._repr_mimebundle_()
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(SaliencyError):
        SaliencyMap(mlp(), batch(2, 8)[0])
    assert gc.isenabled()


def test_to_html_escapes_labels_and_embeds_no_urls(tmp_path):
    w = WIDGETS["saliency-vector"]()
    page = w.to_html(tmp_path / "map.html", title="<b>t</b>").read_text(encoding="utf-8")
    assert "<script>alert" not in page and "alert(1)" in page
    assert "<title>&lt;b&gt;t&lt;/b&gt;</title>" in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page


def wine_widget(method="integrated_gradients"):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).eval()
    names = ["alcohol", "malic_acid", "od280/od315_of_diluted_wines", "proline"]
    return SaliencyMap(model, batch(2, 4), target=0, method=method, labels=["class_0", "class_1", "class_2"], feature_names=names), names


def test_browser_export_request_gets_the_figure_with_text_as_text():
    w, names = wine_widget()
    reply, buffers = w._export_reply({"type": "export", "format": "svg", "id": 7})
    assert reply == {"type": "export", "id": 7, "filename": "saliency-class_0-integrated_gradients.svg", "mime": "image/svg+xml"}
    root = ET.fromstring(buffers[0])
    texts = " ".join("".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for want in ["Saliency of “class_0”", "integrated gradients", *names, "signed (red +, blue −)"]:
        assert want in texts, want
    assert root.find(".//{http://www.w3.org/2000/svg}image") is not None  # the map's cells


def test_browser_export_pdf_and_png():
    import io

    from pypdf import PdfReader

    w, names = wine_widget("gradient")
    reply, (pdf,) = w._export_reply({"type": "export", "format": "pdf", "id": 1})
    assert reply["filename"] == "saliency-class_0-gradient.pdf" and pdf.startswith(b"%PDF")
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    for want in ["Saliency of", "class_0", *names]:
        assert want in text, want
    reply, (png,) = w._export_reply({"type": "export", "format": "png", "id": 2})
    assert png.startswith(PNG_MAGIC) and reply["mime"] == "image/png"
    reply, buffers = w._export_reply({"type": "export", "format": "gif", "id": 3})
    assert buffers == [] and "png, svg, pdf" in reply["error"]
    g = JacobianGrid(mlp(), batch(2, 8), labels=["a b", "dog", "car", "x", "ship"])
    g.selected = 0
    assert g._export_reply({"format": "svg", "id": 4})[0]["filename"] == "jacobian-a_b.svg"


# ------------------------------------------- issue 24, item 8 for the SaliencyMap's new layouts (items 3, 9)
def sbs_photo() -> np.ndarray:
    return (0.1 + 0.8 * np.random.default_rng(5).random((2, 3, 8, 8))).astype(np.float32)


def test_side_by_side_figure_is_the_input_in_colour_the_map_and_the_overlay():
    w = SaliencyMap(cnn(), sbs_photo(), target=3, layout="side_by_side")
    fig = w.to_figure()
    scale = w._scale()
    display = w._display_values()
    picture = from_wire(w._image)
    rgba = scale.rgba(display)
    overlay = colors.overlay(with_overlay_alpha(rgba, display, scale.m), colors.greyscale(picture), w.opacity)
    assert_cells(fig, [picture, rgba, overlay])
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles[:3] == ["input · colours as given (0 … 1)", "map", "overlay"]


@pytest.mark.parametrize("shared", [False, True])
def test_methods_figure_draws_one_map_per_method_on_the_screens_scales(shared):
    methods = ["gradient", "input_x_gradient", "integrated_gradients"]
    w = SaliencyMap(cnn(), sbs_photo(), target=3, layout="side_by_side", methods=methods, shared_scale=shared,
                    method_kwargs={"integrated_gradients": {"steps": 8}})
    fig = w.to_figure()
    maps = [w._scale(m).rgba(w.attributions[m].sum(axis=0)) for m in methods]
    assert_cells(fig, [from_wire(w._image), *maps])
    titles = [ax.get_title() for ax in fig.axes if ax.images and ax.images[0].get_gid() is None][1:]
    if shared:
        assert titles == ["gradient", "gradient × input", "integrated gradients"]
        assert len({w._scale(m).m for m in methods}) == 1
    else:
        assert [t.split(" · ")[1] for t in titles] == [f"±{format_value(w._scale(m).m)}" for m in methods]
    bold = [ax.title.get_fontweight() for ax in fig.axes if ax.images and ax.images[0].get_gid() is None]
    assert bold == ["normal", "bold", "normal", "normal"]  # the current method is framed, as on screen


def test_sequence_side_by_side_figure_draws_the_input_signal_above_the_map():
    w = SaliencyMap(SeqHead(), batch(2, 6, 2), feature_names=["temp", "wind"], layout="side_by_side")
    fig = w.to_figure()
    [signal] = [ax for ax in fig.axes if ax.lines]
    np.testing.assert_allclose(np.stack([line.get_ydata() for line in signal.lines], 1), w._x[0])
    assert [t.get_text() for t in signal.get_legend().get_texts()] == ["temp", "wind"]
    assert_cells(fig, [w._scale().rgba(w._display_values().T)])


def test_vector_figure_names_the_target_and_what_pushes_it():
    w, names = wine_widget("gradient")
    from matplotlib.text import Text

    texts = [t.get_text() for t in w.to_figure().findobj(Text)]
    assert w.pushes and any(all(line in t for line in w.pushes) for t in texts)
    assert any(t.startswith("“class_0”: red raises it, blue lowers it") for t in texts)


@pytest.mark.parametrize("make", [
    lambda: SaliencyMap(cnn(), sbs_photo(), layout="side_by_side", methods=["gradient", "input_x_gradient", "smoothgrad"],
                        labels=[f"{LONG} {i}" for i in range(10)]),
    lambda: SaliencyMap(mlp(), batch(2, 8), methods=["gradient", "input_x_gradient"], feature_names=[f"{LONG} {i}" for i in range(8)]),
    lambda: SaliencyMap(SeqHead(), batch(2, 6, 2), feature_names=["temp", "wind"], layout="side_by_side", methods=["gradient", "input_x_gradient"]),
], ids=["image-methods", "vector-methods", "sequence-methods"])
def test_new_layouts_clip_no_text(make):
    assert clipped(make().to_figure()) == []
