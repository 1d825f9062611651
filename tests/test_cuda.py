"""Models on a GPU stay there and give the hand-written numbers (DESIGN §4). Skipped without CUDA:
CI has no GPU; these ran on a lent H100 (see the README's GPU note)."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest

import saliency_widgets as sw

torch = pytest.importorskip("torch")
from test_side_effects import assert_unchanged, snapshot  # noqa: E402
nn = torch.nn
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class LSTMHead(nn.Module):
    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 16, num_layers=2, dropout=dropout, batch_first=True)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc(self.lstm(x)[0][:, -1])


def _untouched(model: nn.Module, before: dict) -> None:
    """As ``test_side_effects.assert_unchanged`` says, and still on the GPU."""
    assert_unchanged(model, before)
    assert all(p.is_cuda for p in model.parameters())


def test_lstm_on_the_gpu_in_eval_and_training_mode(rng):
    """cuDNN's RNN backward refuses eval mode; the map must still be the eval-mode gradient,
    equal to the same model's on the CPU, with cuDNN left switched on afterwards."""
    torch.manual_seed(0)
    cpu_model = LSTMHead(dropout=0.5).eval()
    model = LSTMHead(dropout=0.5).cuda()
    model.load_state_dict(cpu_model.state_dict())
    x = rng.normal(size=(4, 12, 8)).astype(np.float32)
    expected = sw.saliency(cpu_model, x, 1)
    for mode in (False, True):  # training mode: sw computes in eval mode (dropout off) all the same
        model.train(mode)
        before = snapshot(model)
        with pytest.warns(sw.SaliencyWarning, match="training mode") if mode else nullcontext():
            got = sw.saliency(model, x, 1)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
        _untouched(model, before)
        assert torch.backends.cudnn.enabled
    ig = sw.attribute(model.eval(), x, 1, method="integrated_gradients", steps=32)
    assert np.abs(ig.completeness_error).max() < 1e-4


def test_cnn_on_the_gpu_equals_autograd_and_keeps_the_model(rng):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(8 * 64, 5)).cuda().train()
    before = snapshot(model)
    x = rng.normal(size=(3, 3, 16, 16)).astype(np.float32)
    with pytest.warns(sw.SaliencyWarning, match="training mode"):
        from_numpy = sw.saliency(model, x, 2)
        from_tensor = sw.saliency(model, torch.from_numpy(x).cuda(), 2)
    _untouched(model, before)
    model.eval()
    xt = torch.from_numpy(x).cuda().requires_grad_(True)
    (hand,) = torch.autograd.grad(model(xt)[:, 2].sum(), xt)
    np.testing.assert_array_equal(from_numpy, hand.cpu().numpy())
    np.testing.assert_array_equal(from_tensor, hand.cpu().numpy())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_model_gives_float32_maps(rng, dtype):
    torch.manual_seed(0)
    wanted = getattr(torch, dtype)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 14 * 14, 5)).cuda().to(wanted)
    x = rng.normal(size=(2, 3, 16, 16)).astype(np.float32)
    got = sw.saliency(model, x, 2)
    xt = torch.from_numpy(x).cuda().to(wanted).requires_grad_(True)
    (hand,) = torch.autograd.grad(model(xt)[:, 2].sum(), xt)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, hand.float().cpu().numpy())



def test_integrated_gradients_and_smoothgrad_built_on_the_gpu(rng):
    """The points are built, and SmoothGrad's noise drawn, on the GPU: IG equals the same model's
    on the CPU; SmoothGrad is reproducible for a seed and tends to the CPU's as samples grow."""
    torch.manual_seed(0)
    cpu_model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 4)).eval()
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 4)).cuda().eval()
    model.load_state_dict(cpu_model.state_dict())
    x = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
    ig = sw.attribute(model, x, 1, method="integrated_gradients", steps=32)
    expected = sw.attribute(cpu_model, x, 1, method="integrated_gradients", steps=32)
    np.testing.assert_allclose(ig.values, expected.values, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ig.completeness_error, expected.completeness_error, atol=1e-5)
    first = sw.saliency(model, x, 1, method="smoothgrad", n_samples=20, seed=4)
    for _ in range(3):  # pass sizes change between these calls; the noise does not
        np.testing.assert_allclose(sw.saliency(model, x, 1, method="smoothgrad", n_samples=20, seed=4), first,
                                   rtol=1e-5, atol=1e-7)
    many = sw.saliency(model, x, 1, method="smoothgrad", n_samples=2000, seed=1)
    reference = sw.saliency(cpu_model, x, 1, method="smoothgrad", n_samples=2000, seed=1)
    assert np.corrcoef(many.ravel(), reference.ravel())[0, 1] > 0.95
