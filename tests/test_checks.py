"""sw.checks: random logit, deletion/insertion, randomization, IG completeness, and the
similarity measures they use, against hand-written references."""

from __future__ import annotations

import numpy as np
import pytest

from saliency_widgets import checks
from saliency_widgets.errors import SaliencyError

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from models import torch_cnn, torch_mlp  # noqa: E402


def torch_state_bytes(model) -> dict:
    return {k: v.detach().cpu().numpy().tobytes() for k, v in model.state_dict().items()}


def torch_gradient(model, x, target):
    """∂ score[target] / ∂ x by autograd, written out by hand."""
    xt = torch.tensor(x, requires_grad=True)
    (g,) = torch.autograd.grad(model(xt)[torch.arange(len(x)), torch.as_tensor(target)].sum(), xt)
    return g.numpy()


# ------------------------------------------------------------ similarities
def test_spearman_matches_scipy_with_ties(rng):
    stats = pytest.importorskip("scipy.stats")
    a = rng.integers(0, 5, size=40).astype(float)  # many ties
    b = a + rng.normal(size=40)
    assert checks.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    c = rng.normal(size=(3, 4))
    assert checks.spearman(c, -c) == pytest.approx(-1.0)
    assert np.isnan(checks.spearman(np.zeros(5), c.ravel()[:5]))


def _ssim_by_hand(a, b, wi, wj):
    """Mean SSIM over every full wi×wj window, loops written out (scikit-image's definition)."""
    c1, c2, n = 0.01 ** 2, 0.03 ** 2, wi * wj
    values = []
    for i in range(a.shape[0] - wi + 1):
        for j in range(a.shape[1] - wj + 1):
            pa, pb = a[i:i + wi, j:j + wj].ravel(), b[i:i + wi, j:j + wj].ravel()
            ua, ub = pa.mean(), pb.mean()
            cov = ((pa - ua) * (pb - ub)).sum() / (n - 1)
            values.append((2 * ua * ub + c1) * (2 * cov + c2)
                          / ((ua ** 2 + ub ** 2 + c1) * (pa.var(ddof=1) + pb.var(ddof=1) + c2)))
    return np.mean(values)


def test_ssim_matches_the_windowed_definition(rng):
    a = rng.uniform(size=(12, 10))
    b = np.clip(a + 0.3 * rng.normal(size=a.shape), 0, 1)
    assert checks.ssim(a, b) == pytest.approx(_ssim_by_hand(a, b, 7, 7), rel=1e-10)
    assert checks.ssim(a, a) == pytest.approx(1.0)
    small_a, small_b = rng.uniform(size=(4, 6)), rng.uniform(size=(4, 6))  # windows clipped to 3×5
    assert checks.ssim(small_a, small_b) == pytest.approx(_ssim_by_hand(small_a, small_b, 3, 5), rel=1e-10)


# ------------------------------------------------------------ random logit
def test_random_logit_gradient_maps_come_from_one_jacobian_pass(rng, monkeypatch):
    model = torch_mlp(n_in=6, n_out=8)
    x = rng.normal(size=(3, 6)).astype(np.float32)
    calls = []
    real_jacobian = checks.jacobian
    monkeypatch.setattr(checks, "jacobian", lambda *a, **k: calls.append(k["outputs"]) or real_jacobian(*a, **k))
    result = checks.random_logit(model, x, [1, 5, 7], n=4, seed=0)
    assert len(calls) == 1
    assert result.correlations.shape == result.others.shape == (3, 4)
    assert result.targets == [(1,), (5,), (7,)]
    for i, t in enumerate([1, 5, 7]):
        assert t not in result.others[i] and len(set(result.others[i])) == 4
        own = torch_gradient(model, x, [t] * 3)[i]
        for j, other in enumerate(result.others[i]):
            expected = checks.spearman(own, torch_gradient(model, x, [int(other)] * 3)[i])
            assert result.correlations[i, j] == pytest.approx(expected, abs=1e-6)
    again = checks.random_logit(model, x, [1, 5, 7], n=4, seed=0)
    np.testing.assert_array_equal(again.others, result.others)


def test_random_logit_other_methods_and_defaults(rng):
    model = torch_mlp(n_in=6, n_out=4)
    x = rng.normal(size=(2, 6)).astype(np.float32)
    result = checks.random_logit(model, x, method="integrated_gradients", n=10, seed=1, steps=8)
    assert result.others.shape == (2, 3)  # n is capped at the number of other outputs
    from saliency_widgets import saliency
    for i in range(2):
        own = saliency(model, x[i:i + 1], [result.targets[i][0]], method="integrated_gradients", steps=8)[0]
        for j, other in enumerate(result.others[i]):
            theirs = saliency(model, x[i:i + 1], [int(other)], method="integrated_gradients", steps=8)[0]
            assert result.correlations[i, j] == pytest.approx(checks.spearman(own, theirs), abs=1e-6)
    assert result.mean.shape == (2,)


def test_random_logit_needs_two_outputs(rng):
    model = torch_mlp(n_in=6, n_out=1)
    with pytest.raises(SaliencyError, match="only one"):
        checks.random_logit(model, rng.normal(size=(1, 6)).astype(np.float32), 0)


# ------------------------------------------------------- deletion/insertion
def one_feature_decides(n_in=8):
    """Class 1 minus class 0 is 4·x0 + 0.1·(the rest): feature 0 decides the class."""
    model = nn.Linear(n_in, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0] * n_in, [4.0] + [0.1] * (n_in - 1)]))
        model.bias.zero_()
    return model.eval()


def test_deletion_insertion_curves_by_hand(rng):
    model = one_feature_decides()
    w = model.weight.detach().numpy()[1]
    x = rng.uniform(0.5, 1.5, size=(2, 8)).astype(np.float32)
    attribution = rng.normal(size=(2, 8))
    result = checks.deletion_insertion(model, x, attribution, 1, steps=4, baseline=0.25)
    np.testing.assert_allclose(result.fractions, [0, 0.25, 0.5, 0.75, 1])
    for i in range(2):
        order = np.argsort(-attribution[i])
        for k, count in enumerate([0, 2, 4, 6, 8]):
            top = order[:count]
            deleted, revealed = x[i].copy(), np.full(8, 0.25, dtype=np.float32)
            deleted[top], revealed[top] = 0.25, x[i][top]
            assert result.deletion[i, k] == pytest.approx(w @ deleted, rel=1e-5)
            assert result.insertion[i, k] == pytest.approx(w @ revealed, rel=1e-5)
    np.testing.assert_allclose(result.deletion_auc, np.trapezoid(result.deletion, result.fractions, axis=1))


def test_a_faithful_map_has_the_lower_deletion_auc(rng):
    model = one_feature_decides(n_in=20)
    x = rng.uniform(0.5, 1.5, size=(4, 20)).astype(np.float32)
    faithful = np.tile(model.weight.detach().numpy()[1], (4, 1)) * x  # ranks feature 0 first
    random_map = rng.normal(size=(4, 20))
    good = checks.deletion_insertion(model, x, faithful, 1, steps=20)
    bad = checks.deletion_insertion(model, x, random_map, 1, steps=20)
    assert np.all(good.deletion_auc < bad.deletion_auc)
    assert np.all(good.insertion_auc > bad.insertion_auc)


def test_deletion_by_whole_pixels_in_batched_passes(rng, monkeypatch):
    from saliency_widgets import config

    model = torch_cnn(channels=3, size=12)
    x = rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    pixel_map = rng.normal(size=(2, 1, 12, 12))
    whole = checks.deletion_insertion(model, x, pixel_map, [0, 3], steps=6)
    monkeypatch.setattr(config, "chunk_budget_bytes", x[0].nbytes * 8 * 5)
    chunked = checks.deletion_insertion(model, x, pixel_map, [0, 3], steps=6)
    np.testing.assert_allclose(chunked.deletion, whole.deletion, rtol=1e-5, atol=1e-6)
    # half the pixels removed, all channels of each: the score of that image by hand
    top = np.argsort(-pixel_map[1, 0].ravel(), kind="stable")[:72]
    mask = np.zeros(144, bool)
    mask[top] = True
    half = np.where(mask.reshape(1, 12, 12), 0, x[1])
    with torch.no_grad():
        expected = model(torch.from_numpy(half[None].astype(np.float32)))[0, 3].item()
    assert whole.deletion[1, 3] == pytest.approx(expected, rel=1e-5)
    assert whole.insertion[1, -1] == pytest.approx(whole.deletion[1, 0], rel=1e-6)  # all revealed = x


def test_deletion_insertion_user_errors(rng):
    model = torch_mlp()
    x = rng.normal(size=(2, 6)).astype(np.float32)
    with pytest.raises(SaliencyError, match="broadcast"):
        checks.deletion_insertion(model, x, np.zeros((2, 5)), 0)
    with pytest.raises(SaliencyError, match="steps"):
        checks.deletion_insertion(model, x, np.zeros((2, 6)), 0, steps=0)


# ----------------------------------------------------------- randomization
def test_randomization_leaves_the_torch_model_and_rng_alone(rng):
    model = torch_cnn(channels=3, size=12)
    model.train()
    before, rng_before = torch_state_bytes(model), torch.random.get_rng_state()
    x = rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    with pytest.warns(Warning):  # training mode is reported, and left as it was
        result = checks.randomization(model, x, [1, 2], seed=0)
    assert torch_state_bytes(model) == before
    assert torch.equal(torch.random.get_rng_state(), rng_before)
    assert model.training
    # output first: Linear, then the second conv, the batch norm and the first conv
    assert result.layers == ["7", "4", "1", "0"]
    assert result.maps.shape == (4, 2, 3, 12, 12) and result.spearman.shape == result.ssim.shape == (4, 2)
    shown = np.abs(result.original).sum(axis=1)
    shown /= shown.reshape(2, -1).max(axis=1)[:, None, None]
    last = np.abs(result.maps[-1]).sum(axis=1)
    last /= last.reshape(2, -1).max(axis=1)[:, None, None]
    for i in range(2):
        assert result.spearman[-1, i] == pytest.approx(checks.spearman(last[i], shown[i]))
        assert result.ssim[-1, i] == pytest.approx(checks.ssim(last[i], shown[i]))
    again = checks.randomization(model.eval(), x, [1, 2], seed=0)
    np.testing.assert_array_equal(again.maps, result.maps)


def test_randomization_cascade_and_independent_copies():
    from saliency_widgets.backends import randomized_copies

    model = torch_mlp(n_in=6, hidden=16, n_out=4)
    original = torch_state_bytes(model)
    cascade = [(name, torch_state_bytes(copy)) for name, copy in randomized_copies(model, seed=3)]
    assert [name for name, _ in cascade] == ["2", "0"]
    assert cascade[0][1]["0.weight"] == original["0.weight"]  # only the output layer so far
    assert cascade[0][1]["2.weight"] != original["2.weight"]
    assert cascade[1][1]["2.weight"] != original["2.weight"] and cascade[1][1]["0.weight"] != original["0.weight"]
    single = [torch_state_bytes(copy) for _, copy in randomized_copies(model, cascade=False, seed=3)]
    assert single[1]["2.weight"] == original["2.weight"] and single[1]["0.weight"] != original["0.weight"]
    assert torch_state_bytes(model) == original


def test_randomization_of_a_plain_callable_is_refused(rng):
    model = torch_mlp()
    with pytest.raises(SaliencyError, match="nn.Module"):
        checks.randomization(lambda t: model(t), rng.normal(size=(1, 6)).astype(np.float32), 0)


# ----------------------------------------------------------- completeness
def test_completeness_relative_to_the_score_change(rng):
    model = torch_mlp(n_in=6, n_out=3)
    x = rng.normal(size=(3, 6)).astype(np.float32)
    baseline = np.full((1, 6), 0.2, dtype=np.float32)
    from saliency_widgets import saliency

    ig = saliency(model, x, 2, method="integrated_gradients", steps=1, baseline=baseline)
    with torch.no_grad():
        delta = (model(torch.from_numpy(x))[:, 2] - model(torch.from_numpy(baseline))[:, 2]).numpy()
    expected = np.abs(ig.sum(axis=1) - delta) / np.abs(delta)
    got = checks.completeness(model, x, 2, steps=1, baseline=baseline)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-6)
    assert got.max() > 1e-3  # one step (the midpoint rule) leaves a visible error
    assert checks.completeness(model, x, 2, steps=64, baseline=baseline).max() < got.max()


@pytest.fixture(scope="module")
def digits_cnn():
    """A small CNN trained for three epochs on scikit-learn's 8×8 digits (about 96 % accuracy)."""
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = torch.from_numpy((digits.images / 16).astype(np.float32)[:, None])
    y = torch.from_numpy(digits.target)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 16, 10))
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(3):
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            batch = order[i:i + 64]
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    assert (model(x).argmax(1) == y).float().mean() > 0.9
    return model, x[:8].numpy(), y[:8].tolist()


def test_randomizing_a_trained_cnn_changes_its_gradient_map(digits_cnn):
    model, x, y = digits_cnn
    result = checks.randomization(model, x, y, seed=0)
    assert result.layers == ["6", "2", "0"]
    # Adebayo et al.: the gradient map of a randomized network no longer looks like the trained one's
    assert np.all(np.abs(result.spearman[-1]) < 0.5)
    assert result.ssim[-1].mean() < 0.3


# --------------------------------------------------------------- Keras
def test_keras_randomization_copies_and_initializers(rng):
    pytest.importorskip("keras")
    from models import keras_cnn
    from saliency_widgets.backends import randomized_copies

    model = keras_cnn(size=12, channels=3)
    bn = model.layers[1]
    bn.set_weights([w + 0.5 for w in bn.get_weights()])  # away from the initial ones and zeros
    before = [w.tobytes() for w in model.get_weights()]
    steps = list(randomized_copies(model, seed=0))
    weighted = [layer.name for layer in model.layers if layer.weights]
    assert [name for name, _ in steps] == weighted[::-1]
    final = steps[-1][1]
    assert final is not model and [w.tobytes() for w in model.get_weights()] == before
    dense, bn_copy = final.layers[-1], final.layers[1]
    np.testing.assert_array_equal(dense.bias.numpy(), 0)  # bias_initializer="zeros"
    np.testing.assert_array_equal(bn_copy.gamma.numpy(), 1)
    np.testing.assert_array_equal(bn_copy.moving_variance.numpy(), 1)
    assert not np.allclose(dense.kernel.numpy(), model.layers[-1].kernel.numpy())
    limit = np.sqrt(6 / sum(dense.kernel.shape))  # glorot_uniform's bound
    assert np.abs(dense.kernel.numpy()).max() <= limit
    again = list(randomized_copies(model, seed=0))[-1][1]
    assert all(np.array_equal(a, b) for a, b in zip(again.get_weights(), final.get_weights()))
    x = rng.normal(size=(2, 12, 12, 3)).astype(np.float32)
    result = checks.randomization(model, x, [0, 4], seed=0, cascade=False)
    assert result.maps.shape == (4, 2, 12, 12, 3) and np.all(np.isfinite(result.spearman))
    assert [w.tobytes() for w in model.get_weights()] == before
