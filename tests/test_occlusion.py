"""Occlusion against captum's ``Occlusion`` (same window, stride and baseline)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")

from saliency_widgets import config  # noqa: E402
from saliency_widgets.errors import SaliencyError  # noqa: E402
from saliency_widgets.occlusion import occlusion, window_shape  # noqa: E402

from models import torch_cnn, torch_mlp  # noqa: E402


def scores_of(model):
    def scores(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(batch))).numpy()
    return scores


def assert_close_at_float32(got, ref, scores):
    """Occlusion maps computed through different batchings (ours, captum's, passes of other sizes)
    agree up to float32 rounding of the model's ``scores``: a map is a difference of scores, so its
    rounding sits at the scale of the scores (often ~10× the map's) or of the map, whichever is
    larger — atol follows that scale (~8 float32 ulps of it), rtol the large elements."""
    scale = max(np.abs(ref).max(), np.abs(scores).max())
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * scale)


def captum_occlusion(model, x, target, window, stride, baseline=0.0):
    result = captum_attr.Occlusion(model).attribute(
        torch.from_numpy(x), sliding_window_shapes=window, strides=stride, baselines=baseline,
        target=target, perturbations_per_eval=7)
    return result.numpy()


@pytest.mark.parametrize("window,stride", [((3, 4, 4), (3, 2, 2)), ((1, 3, 5), (1, 2, 3)), ((3, 5, 5), (3, 5, 5))])
def test_cnn_matches_captum(rng, window, stride):
    model = torch_cnn(channels=3, size=12)
    x = rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    targets = np.array([1, 4])
    ours = occlusion(scores_of(model), x, targets, window=window, stride=stride, channel_axis=0)
    ref = captum_occlusion(model, x, [1, 4], window, stride)
    assert_close_at_float32(ours, ref, scores_of(model)(x))
    assert np.abs(ref).max() > 1e-2


def test_spatial_window_occludes_channels_whole(rng):
    model = torch_cnn(channels=3, size=12)
    x = rng.normal(size=(1, 3, 12, 12)).astype(np.float32)
    ours = occlusion(scores_of(model), x, np.array([2]), window=(4, 4), stride=2, channel_axis=0, baseline=0.5)
    ref = captum_occlusion(model, x, 2, (3, 4, 4), (3, 2, 2), baseline=0.5)
    assert_close_at_float32(ours, ref, scores_of(model)(x))


def test_vector_default_is_one_feature_and_matches_captum(rng):
    model = torch_mlp(n_in=6, n_out=4)
    x = rng.normal(size=(3, 6)).astype(np.float32)
    baseline = rng.normal(size=(6,)).astype(np.float32)
    ours = occlusion(scores_of(model), x, np.array([0, 3, 2]), baseline=baseline)
    ref = captum_occlusion(model, x, [0, 3, 2], (1,), 1, baseline=torch.from_numpy(baseline)[None])
    assert_close_at_float32(ours, ref, scores_of(model)(x))


def test_cut_off_last_window_and_overlap_average():
    """A linear score: each window's drop is the sum of its elements; an element's
    attribution is the mean over the windows covering it (here written out by hand)."""
    x = np.arange(1, 9, dtype=np.float32)[None]  # 8 elements, window 3, stride 2: starts 0, 2, 4, 6
    ours = occlusion(lambda b: b.sum(axis=1, keepdims=True), x, np.array([0]), window=3, stride=2)
    drops = {0: 1 + 2 + 3, 2: 3 + 4 + 5, 4: 5 + 6 + 7, 6: 7 + 8}  # the last window is cut off
    expected = [np.mean([d for s, d in drops.items() if s <= i < s + 3]) for i in range(8)]
    np.testing.assert_allclose(ours[0], expected, rtol=1e-6)


def test_passes_are_batched_under_the_budget(rng, monkeypatch):
    model = torch_cnn(channels=3, size=12)
    x = rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    calls = []

    def counted(batch):
        calls.append(len(batch))
        return scores_of(model)(batch)

    whole = occlusion(counted, x, np.array([0, 1]), window=(2, 2), channel_axis=0)
    assert calls[1:] == [2 * 36]  # one forward for the reference, one for all 36 windows
    calls.clear()
    monkeypatch.setattr(config, "chunk_budget_bytes", x.nbytes * 8 * 5)
    chunked = occlusion(counted, x, np.array([0, 1]), window=(2, 2), channel_axis=0)
    assert calls[1:] == [10] * 7 + [2]
    # passes of 72, 10 and 2 copies: the same maths, float32 scores rounded differently
    assert_close_at_float32(chunked, whole, scores_of(model)(x))
    assert np.abs(whole).max() > 1e-2


def test_reference_scores_skip_a_forward(rng):
    model = torch_mlp()
    x = rng.normal(size=(2, 6)).astype(np.float32)
    calls = []

    def counted(batch):
        calls.append(len(batch))
        return scores_of(model)(batch)

    occlusion(counted, x, np.array([0, 1]), reference=scores_of(model)(x))
    assert calls == [12]


def test_default_window_is_an_eighth_of_each_spatial_axis():
    assert window_shape(None, (3, 64, 48), 0, "window") == (3, 8, 6)
    assert window_shape(None, (32, 32, 1), 2, "window") == (4, 4, 1)
    assert window_shape(None, (10,), None, "window") == (1,)
    assert window_shape(2, (3, 8, 8), 0, "stride", default=(1, 4, 4)) == (1, 2, 2)


@pytest.mark.parametrize("kw,match", [
    ({"window": (2, 2, 2, 2)}, "one per axis"),
    ({"window": (13, 2)}, "larger than a sample"),
    ({"window": (2, 2), "stride": (3, 3)}, "at most the window"),
    ({"window": (0, 2)}, "positive"),
    ({"baseline": np.zeros((4, 4))}, "does not broadcast"),
])
def test_user_errors(kw, match):
    x = np.zeros((1, 3, 12, 12), dtype=np.float32)
    with pytest.raises(SaliencyError, match=match):
        occlusion(lambda b: b.reshape(len(b), -1)[:, :2], x, np.array([0]), channel_axis=0, **kw)


# ------------------------------------------------------- through the engine
def test_engine_occlusion_matches_captum_with_the_default_window(rng):
    import saliency_widgets as sw

    model = torch_cnn(channels=3, size=12)
    x = rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    got = sw.saliency(model, x, [3, 0], method="occlusion")  # default: 12 / 8 → 2×2 windows, channels whole
    scores = scores_of(model)(x)
    assert_close_at_float32(got, captum_occlusion(model, x, [3, 0], (3, 2, 2), (3, 2, 2)), scores)
    with_stride = sw.saliency(model, x, [3, 0], method="occlusion", window=(4, 4), stride=(2, 2), baseline=-1.0)
    assert_close_at_float32(with_stride, captum_occlusion(model, x, [3, 0], (3, 4, 4), (3, 2, 2), -1.0), scores)


class TwoInputs(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b = torch.nn.Linear(4, 3), torch.nn.Linear(2, 3)

    def forward(self, a, b):
        return torch.tanh(self.a(a)) * self.b(b)


def test_engine_occlusion_of_a_tuple_input_matches_captum(rng):
    import saliency_widgets as sw

    model = TwoInputs().eval()
    a, b = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(3, 2)).astype(np.float32)
    got = sw.saliency(model, (a, b), [0, 1, 2], method="occlusion")
    ref = captum_attr.Occlusion(model).attribute((torch.from_numpy(a), torch.from_numpy(b)),
                                                 sliding_window_shapes=((1,), (1,)), target=[0, 1, 2])
    assert isinstance(got, tuple) and len(got) == 2
    with torch.no_grad():
        scores = model(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    for ours, theirs in zip(got, ref):
        assert_close_at_float32(ours, theirs.numpy(), scores)


def test_engine_occlusion_torch_keras_parity_and_channels_last(rng):
    pytest.importorskip("keras")
    import saliency_widgets as sw
    from models import keras_cnn, keras_mlp_like

    torch_model = torch_mlp()
    keras_model = keras_mlp_like(torch_model)
    x = rng.normal(size=(3, 6)).astype(np.float32)
    np.testing.assert_allclose(sw.saliency(keras_model, x, 1, method="occlusion", window=2, stride=1),
                               sw.saliency(torch_model, x, 1, method="occlusion", window=2, stride=1),
                               rtol=1e-4, atol=1e-5)
    cnn = keras_cnn(size=12, channels=3)
    images = rng.normal(size=(2, 12, 12, 3)).astype(np.float32)
    spatial = sw.saliency(cnn, images, 2, method="occlusion", window=(3, 3), stride=(2, 2))
    every_axis = sw.saliency(cnn, images, 2, method="occlusion", window=(3, 3, 3), stride=(2, 2, 3))
    np.testing.assert_allclose(spatial, every_axis, rtol=1e-6)
    assert np.abs(spatial).max() > 1e-3


def test_engine_occlusion_refuses_layer(rng):
    import saliency_widgets as sw

    with pytest.raises(SaliencyError, match="layer="):
        sw.saliency(torch_cnn(), rng.normal(size=(1, 3, 12, 12)).astype(np.float32), method="occlusion", layer="4")


class TinyTextModel(torch.nn.Module):
    """Embedding, mean over the unmasked tokens, linear: a text classifier in miniature."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed, self.head = torch.nn.Embedding(12, 5), torch.nn.Linear(5, 3)

    def forward(self, input_ids, attention_mask):
        mask = attention_mask[..., None].float()
        return self.head((self.embed(input_ids) * mask).sum(1) / mask.sum(1))


def test_engine_occlusion_of_token_ids_one_token_at_a_time(rng):
    import saliency_widgets as sw

    model = TinyTextModel().eval()
    ids = rng.integers(1, 12, size=(2, 6))
    mask = np.ones((2, 6), dtype=np.int64)
    mask[1, 4:] = 0  # padding
    x = {"input_ids": ids, "attention_mask": mask}
    got = sw.saliency(model, x, [0, 2], method="occlusion", fixed=["attention_mask"], baseline=0)
    assert got["attention_mask"] is None and got["input_ids"].shape == (2, 6)

    def score(token_ids, row, target):
        with torch.no_grad():
            out = model(torch.from_numpy(token_ids[row:row + 1]), torch.from_numpy(mask[row:row + 1]))
            return out[0, target].item()

    for row, target in ((0, 0), (1, 2)):
        for position in range(6):
            padded = ids.copy()
            padded[row, position] = 0  # the [PAD] id
            expected = score(ids, row, target) - score(padded, row, target)
            assert got["input_ids"][row, position] == pytest.approx(expected, abs=1e-5)
    np.testing.assert_allclose(got["input_ids"][1, 4:], 0, atol=1e-6)  # masked tokens do not count
    with pytest.raises(SaliencyError, match="fixed=.*baseline="):
        sw.saliency(model, x, 0, method="occlusion")


class Conv1dNet(torch.nn.Module):
    """A torch Conv1d model: samples (channels, length), length the long axis (time)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.fc = torch.nn.Conv1d(2, 3, 3), torch.nn.Linear(3 * 14, 4)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).flatten(1))


class SequenceNet(torch.nn.Module):
    """Samples (time, features): a GRU over 9 steps of 3 features."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.gru, self.fc = torch.nn.GRU(3, 5, batch_first=True), torch.nn.Linear(5, 4)

    def forward(self, x):
        return self.fc(self.gru(x)[0][:, -1])


@pytest.mark.parametrize("model,shape,captum_window", [
    (torch_mlp(n_in=13, n_out=4), (13,), (1,)),  # wine's 13 features: one at a time, not in pairs
    (SequenceNet(), (9, 3), (1, 3)),  # one time step, all its features
    (Conv1dNet(), (2, 16), (2, 1)),  # torch Conv1d (channels, length): one time step, all channels
], ids=["vector", "sequence", "conv1d"])
def test_engine_default_window_is_one_feature_or_one_time_step(rng, model, shape, captum_window):
    import saliency_widgets as sw

    x = rng.normal(size=(2, *shape)).astype(np.float32)
    got = sw.saliency(model, x, [1, 3], method="occlusion")
    ref = captum_occlusion(model, x, [1, 3], captum_window, captum_window)
    assert_close_at_float32(got, ref, scores_of(model)(x))
