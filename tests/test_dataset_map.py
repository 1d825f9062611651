"""``DatasetMap`` from Python: the gallery's order, its thumbnail pages, the opened sample, exports."""

import json

import numpy as np
import pytest
import torch

import saliency_widgets as sw
from saliency_widgets import colors
from saliency_widgets.inputs import background_image
from saliency_widgets.transport import from_wire
from saliency_widgets.widgets import DatasetMap
from saliency_widgets.widgets import _gallery as gallery
from saliency_widgets.widgets.dataset_map import PAGE
from saliency_widgets.widgets.standalone import record_messages


def digits(n=300, seed=0):
    """``n`` 8×8 digits (sklearn's, noised), their labels and a small CNN trained a little (it makes mistakes)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(d.images), n, replace=False)
    x = np.clip(d.images[pick] / 16 + rng.normal(0, 0.1, (n, 8, 8)), 0, 1).astype(np.float32)[:, None]
    y = d.target[pick]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 64, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(15):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(torch.tensor(x)), torch.tensor(y)).backward()
        opt.step()
    return model.eval(), x, y


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    model, x, y = digits()
    result = sw.attribute_dataset(model, x, labels=y, path=tmp_path_factory.mktemp("grad"), progress=False,
                                  batch_size=64)
    return model, x, y, result


def probabilities(model, x):
    with torch.no_grad():
        return torch.softmax(model(torch.tensor(x)), dim=1).numpy().astype(np.float64)


def test_result_widget_lists_every_sample_and_opens_the_stored_map(run):
    model, x, y, result = run
    w = result.widget(model, x)
    assert isinstance(w, sw.DatasetMap) and "DatasetMap" in sw.__all__
    np.testing.assert_array_equal(w.shown, np.arange(len(x)))
    assert w.attribution is None and w._detail is None
    w.selected = 17
    np.testing.assert_array_equal(w.attribution, np.asarray(result.values[17]))
    np.testing.assert_allclose(w.attribution, sw.saliency(model, x[17:18])[0], rtol=1e-5, atol=1e-6)
    detail = w._detail
    assert (detail["index"], detail["pred"], detail["true"]) == (17, int(result.predictions[17]), int(y[17]))
    np.testing.assert_array_equal(from_wire(detail["map"]), w.attribution[0])
    np.testing.assert_array_equal(from_wire(detail["picture"]), background_image(x[17], w._info))


def test_filters_and_sorts_match_numpy(run):
    model, x, y, result = run
    pred = np.asarray(result.predictions)
    p = probabilities(model, x)
    top2 = -np.sort(-p, axis=1)[:, :2]
    magnitude = np.abs(np.asarray(result.values, dtype=np.float64)).reshape(len(x), -1).mean(axis=1)
    w = DatasetMap(result, model, x)

    w.klass = 3
    np.testing.assert_array_equal(w.shown, np.flatnonzero(y == 3))
    w.predicted = 3
    np.testing.assert_array_equal(w.shown, np.flatnonzero((y == 3) & (pred == 3)))
    w.klass, w.predicted, w.mistakes_only = None, None, True
    wrong = np.flatnonzero(pred != y)
    assert len(wrong) > 3  # the model is meant to make mistakes
    np.testing.assert_array_equal(w.shown, wrong)
    w.mistakes_only = False
    for sort, key in [("confidence", top2[:, 0]), ("margin", top2[:, 0] - top2[:, 1]), ("magnitude", magnitude)]:
        w.sort = sort
        np.testing.assert_array_equal(w.shown, np.argsort(-key.astype(np.float32), kind="stable"))
        w.ascending = True
        np.testing.assert_array_equal(w.shown, np.argsort(key.astype(np.float32), kind="stable"))
        w.ascending = False
    w.klass, w.mistakes_only, w.sort = 5, True, "confidence"
    both = np.flatnonzero((y == 5) & (pred != 5))
    np.testing.assert_array_equal(w.shown, both[np.argsort(-top2[both, 0].astype(np.float32), kind="stable")])
    assert from_wire(w._shown).tolist() == w.shown.tolist()
    assert w._shown["text"].startswith(f"{len(both)} of {len(x)} samples") and "mistakes only" in w._shown["text"]
    assert w._first_page["indices"] == w.shown[:PAGE].tolist()


def test_a_page_holds_the_thumbnails_of_the_samples_asked_for(run):
    model, x, y, result = run
    w = DatasetMap(result, model, x, sign="absolute_value", outlier_perc=5)
    asked = [250, 3, 77]
    meta, (maps, pictures) = w.thumbnails(asked)
    assert meta["indices"] == asked and meta["key"] == "absolute_value|5"
    assert meta["pred"] == [int(result.predictions[i]) for i in asked] and meta["true"] == [int(y[i]) for i in asked]
    maps = np.frombuffer(maps, np.uint8).reshape(meta["maps"]["shape"])
    pictures = np.frombuffer(pictures, np.uint8).reshape(meta["inputs"]["shape"])
    assert maps.shape == (3, 8, 8) and pictures.shape == (3, 8, 8, 1)
    for k, i in enumerate(asked):
        display = np.asarray(result.values[i])[0]
        np.testing.assert_array_equal(maps[k], colors.to_index(display, "absolute_value",
                                                               colors.scale_max(display, "absolute_value", 5)))
        np.testing.assert_array_equal(pictures[k, ..., 0], background_image(x[i], w._info)[..., 0])


def test_the_browser_asks_for_pages_by_message_and_bad_requests_are_answered(run):
    model, x, y, result = run
    w = DatasetMap(result, model, x)
    with record_messages(w) as sent:
        w._on_custom_message(w, {"type": "thumbs", "id": 7, "indices": [5, 6]}, [])
        w._on_custom_message(w, {"type": "thumbs", "id": 8, "indices": [len(x)]}, [])
    (reply, buffers), (refusal, none) = [(m["content"], b) for m, b in sent
                                         if m.get("method") == "custom" and m["content"].get("type") == "thumbs"]
    assert reply["type"] == "thumbs" and reply["id"] == 7 and reply["indices"] == [5, 6] and len(buffers) == 2
    assert len(buffers[0]) == 2 * 64 and len(buffers[1]) == 2 * 64
    assert refusal["id"] == 8 and f"0..{len(x) - 1}" in refusal["error"] and not none
    assert f"0..{len(x) - 1}" in w.error


def test_colour_changes_send_a_new_first_page(run):
    model, x, y, result = run
    w = DatasetMap(result, model, x)
    first = w._first_page
    w.sign = "positive"
    assert w._thumb["key"] == "positive|2" and w._first_page is not first
    display = np.asarray(result.values[0])[0]
    np.testing.assert_array_equal(from_wire(w._first_page["maps"])[0],
                                  colors.to_index(display, "positive", colors.scale_max(display, "positive")))


def test_refused_values_keep_the_previous_ones(run, tmp_path):
    model, x, y, result = run
    w = DatasetMap(result, model, x, klass=2)
    with pytest.raises(sw.SaliencyError, match="one of the classes"):
        w.klass = 42
    assert w.klass == 2 and (y[w.shown] == 2).all()
    with pytest.raises(sw.SaliencyError, match="sort must be one of"):
        w.sort = "loss"
    with pytest.raises(sw.SaliencyError, match=r"selected must be None or a sample index in 0\.\.299"):
        w.selected = 300
    assert w.sort == "index" and w.selected is None
    unlabelled = sw.attribute_dataset(model, x[:40], path=tmp_path / "nolabels", progress=False)
    v = unlabelled.widget(model, x[:40])
    with pytest.raises(sw.SaliencyError, match="no labels"):
        v.mistakes_only = True
    with pytest.raises(sw.SaliencyError, match="no labels"):
        v.klass = 1
    assert v._means["by"] == "prediction" and not v._has_labels
    with pytest.raises(sw.SaliencyError, match="x has 10 samples but the result holds 40"):
        unlabelled.widget(model, x[:10])
    with pytest.raises(sw.SaliencyError, match="one-shot iterator"):
        unlabelled.widget(model, iter([x[:40]]))


def test_class_means_are_mean_by_class(run):
    model, x, y, result = run
    w = DatasetMap(result, model, x)
    means = result.mean_by_class()
    assert w._means["by"] == "label" and w._means["classes"] == list(means)
    assert w._means["counts"] == [int((y == c).sum()) for c in means]
    np.testing.assert_allclose(from_wire(w._means), np.stack([m[0] for m in means.values()]), rtol=1e-6)


def test_datasets_and_loaders_read_the_same_samples(run):
    model, x, y, result = run
    dataset = torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y))
    loader = torch.utils.data.DataLoader(dataset, batch_size=50)
    expected = DatasetMap(result, model, x, sort="confidence")
    for source in (dataset, loader, torch.tensor(x)):
        w = DatasetMap(result, model, source, sort="confidence")
        np.testing.assert_array_equal(w.shown, expected.shown)
        assert w.thumbnails([299, 0])[1] == expected.thumbnails([299, 0])[1]


def test_vector_and_sequence_data_give_strips_and_grids(tmp_path):
    torch.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(90, 13)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    mlp = torch.nn.Sequential(torch.nn.Linear(13, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).eval()
    result = sw.attribute_dataset(mlp, x, labels=y, path=tmp_path / "vec", progress=False)
    w = result.widget(mlp, x, labels=["no", "yes"], feature_names=[f"f{i}" for i in range(13)])
    assert w._thumb | {"key": None} == {"rows": 1, "cols": 13, "channels": 1, "page": PAGE, "key": None}
    meta, (maps, inputs) = w.thumbnails([4])
    v = x[4]
    np.testing.assert_array_equal(np.frombuffer(inputs, np.uint8), np.round((v - v.min()) / np.ptp(v) * 255))
    w.selected = 4
    np.testing.assert_array_equal(from_wire(w._detail["input"]), x[4])
    fig = w.to_figure(n=6)
    assert fig.axes
    seq = np.random.default_rng(1).normal(size=(40, 100, 3)).astype(np.float32)
    lstm_like = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(300, 2)).eval()
    result = sw.attribute_dataset(lstm_like, seq, path=tmp_path / "seq", progress=False)
    w = result.widget(lstm_like, seq)
    assert (w._thumb["rows"], w._thumb["cols"]) == (3, 50)  # features × time, 100 steps averaged in pairs
    maps = np.frombuffer(w.thumbnails([0])[1][0], np.uint8).reshape(3, 50)
    display = np.asarray(result.values[0]).T
    pooled = display.reshape(3, 50, 2).mean(axis=2)
    np.testing.assert_array_equal(maps, colors.to_index(pooled, "all", colors.scale_max(display)))


def test_large_images_are_averaged_into_small_thumbnails():
    grids = np.arange(2 * 130 * 70, dtype=np.float64).reshape(2, 130, 70)
    pooled = gallery.pooled(grids)
    assert pooled.shape == (2, 44, 35)  # blocks of 3 rows (the last one of 1) and 2 columns
    np.testing.assert_allclose(pooled[0, 0, 0], grids[0, :3, :2].mean())
    np.testing.assert_allclose(pooled[1, -1, -1], grids[1, 129:, 68:].mean())


def test_figure_and_offline_page(run, tmp_path):
    model, x, y, result = run
    w = DatasetMap(result, model, x, mistakes_only=True, sort="confidence")
    fig = w.to_figure(n=8)
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.startswith(f"#{w.shown[0]} ·") for t in titles)
    assert sum("(n=" in t for t in titles) == len(result.mean_by_class())
    assert w.savefig(tmp_path / "gallery.png").stat().st_size > 10_000
    path = w.to_html(tmp_path / "gallery.html")
    text = path.read_text()
    assert '"_offline": true' in text
    doc = json.loads(text.split("const DOC = ")[1].split(";\nconst BUFFERS")[0])
    assert doc["state"]["_first_page"]["indices"] == w.shown[:PAGE].tolist()
    assert set(doc["variants"]["selected"]) == {str(i) for i in w.shown[:PAGE]}
    assert len(text) < 400_000
