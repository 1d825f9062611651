"""PyTorch attributions against independent references: hand-written autograd,
central finite differences, captum, and closed-form cases."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import saliency_widgets as sw  # noqa: E402
from models import central_differences, torch_cnn, torch_lstm, torch_mlp, torch_noise  # noqa: E402


def autograd_gradient(model, x, target):
    """d model(x)[i, target[i]] / d x, written out by hand."""
    xt = torch.tensor(x, requires_grad=True)
    out = model(xt)
    selected = out.reshape(len(x), -1)[torch.arange(len(x)), torch.as_tensor(target)]
    (grad,) = torch.autograd.grad(selected.sum(), xt)
    return grad.numpy()


def test_mlp_gradient_matches_autograd_and_finite_differences(rng):
    model = torch_mlp()
    x = rng.normal(size=(3, 6)).astype(np.float32)
    got = sw.saliency(model, x, target=2)
    np.testing.assert_allclose(got, autograd_gradient(model, x, [2, 2, 2]), rtol=1e-5, atol=1e-6)

    model64 = torch_mlp().double()

    def f(z):
        with torch.no_grad():
            return model64(torch.tensor(z[None]))[0, 2].item()

    fd = central_differences(f, x[0].astype(np.float64))
    np.testing.assert_allclose(got[0], fd, rtol=1e-3, atol=1e-5)
    assert got.dtype == np.float32 and got.shape == x.shape


def test_argmax_target_is_each_samples_top_output(rng):
    model = torch_mlp()
    x = rng.normal(size=(4, 6)).astype(np.float32)
    top = model(torch.tensor(x)).argmax(1).numpy()
    np.testing.assert_allclose(sw.saliency(model, x), autograd_gradient(model, x, top), rtol=1e-5)
    assert [t[0] for t in sw.attribute(model, x).targets] == top.tolist()


def test_argmax_target_with_tied_outputs_explains_the_first_as_reported():
    """Outputs 1 and 3 tie (x0 == x1) but have different gradients: the arg-max map, taken from
    the same pass, is the gradient of output 1, the target reported."""
    model = torch.nn.Linear(2, 4).eval()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]))
        model.bias.copy_(torch.tensor([-100.0, 0.0, -100.0, 0.0]))
    x = np.array([[0.5, 0.5], [2.0, 2.0]], dtype=np.float32)
    result = sw.attribute(model, x)
    assert result.targets == [(1,), (1,)]
    np.testing.assert_array_equal(result.values, [[1.0, 0.0], [1.0, 0.0]])


def test_one_target_per_sample(rng):
    model = torch_mlp()
    x = rng.normal(size=(3, 6)).astype(np.float32)
    np.testing.assert_allclose(sw.saliency(model, x, target=[0, 3, 1]),
                               autograd_gradient(model, x, [0, 3, 1]), rtol=1e-5)


def test_samples_do_not_mix_across_the_batch(rng):
    model = torch_cnn()
    x = rng.normal(size=(3, 3, 12, 12)).astype(np.float32)
    batch = sw.saliency(model, x, target=[1, 2, 4])
    for i, t in enumerate([1, 2, 4]):
        np.testing.assert_allclose(batch[i], sw.saliency(model, x[i:i + 1], target=t)[0], rtol=1e-4, atol=1e-6)
    J = sw.jacobian(model, x)
    for i in range(3):
        np.testing.assert_allclose(J[i], sw.jacobian(model, x[i:i + 1])[0], rtol=1e-4, atol=1e-6)


def test_all_ones_convolution_pixel_gradient_is_top_left_block():
    """3×3 all-ones kernel on a 4×4 all-ones image: output pixel (1, 1) sees input rows/cols 0..2."""
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = np.ones((1, 1, 4, 4), np.float32)
    got = sw.saliency(conv, x, target=(0, 1, 1))
    expected = np.zeros((4, 4), np.float32)
    expected[:3, :3] = 1
    np.testing.assert_array_equal(got[0, 0], expected)
    corner = sw.saliency(conv, x, target=(0, 0, 0))[0, 0]
    assert corner[:2, :2].sum() == 4 and corner.sum() == 4


def test_cnn_methods_match_captum(rng):
    captum_attr = pytest.importorskip("captum.attr")
    model = torch_cnn()
    x = rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    xt = torch.tensor(x)
    target = [1, 3]
    np.testing.assert_allclose(
        sw.saliency(model, x, target),
        captum_attr.Saliency(model).attribute(xt, target=target, abs=False).numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        sw.saliency(model, x, target, method="input_x_gradient"),
        captum_attr.InputXGradient(model).attribute(xt, target=target).detach().numpy(), rtol=1e-4, atol=1e-6)
    ours = sw.saliency(model, x, target, method="integrated_gradients", steps=32)
    theirs = captum_attr.IntegratedGradients(model).attribute(xt, target=target, n_steps=32).detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-5)


def test_integrated_gradients_completeness(rng):
    model = torch_cnn()
    x = rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    baseline = rng.normal(size=(3, 12, 12)).astype(np.float32) * 0.1
    result = sw.attribute(model, x, target=[0, 4], method="integrated_gradients", steps=256, baseline=baseline)
    with torch.no_grad():
        f_x = model(torch.tensor(x))[[0, 1], [0, 4]].numpy()
        f_b = model(torch.tensor(np.stack([baseline] * 2)))[[0, 1], [0, 4]].numpy()
    sums = result.values.reshape(2, -1).sum(1)
    np.testing.assert_allclose(sums, f_x - f_b, rtol=0.01, atol=1e-4)
    np.testing.assert_allclose(result.completeness_error, sums - (f_x - f_b), atol=1e-4)
    np.testing.assert_allclose(result.outputs[[0, 1], [0, 4]], f_x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["integrated_gradients", "smoothgrad"])
def test_saliency_skips_the_forward_passes_only_the_scores_need(rng, method):
    """sw.saliency returns the map alone: with a target given and the model probed by a first
    call, SmoothGrad and IG run their gradient passes and no forward pass of their own (the
    scores, f(baseline)); sw.attribute still reports them, with the same map."""
    model = torch_cnn()
    x = rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    options = {"seed": 3} if method == "smoothgrad" else {"baseline": 0.1}
    first = sw.saliency(model, x, 1, method=method, **options)
    grad_enabled = []
    handle = model.register_forward_hook(lambda *_: grad_enabled.append(torch.is_grad_enabled()))
    try:
        again = sw.saliency(model, x, 1, method=method, **options)
        saliency_passes, grad_enabled[:] = list(grad_enabled), []
        reported = sw.attribute(model, x, 1, method=method, **options)
    finally:
        handle.remove()
    assert saliency_passes and all(saliency_passes)
    assert grad_enabled.count(False) == (2 if method == "integrated_gradients" else 1)
    scale = np.abs(first).max()  # passes of other sizes or layouts differ in the last float32 bits
    np.testing.assert_allclose(again, first, rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(reported.values, first, rtol=1e-5, atol=1e-6 * scale)
    with torch.no_grad():
        np.testing.assert_allclose(reported.outputs, model(torch.tensor(x)).numpy(), rtol=1e-6)


def test_smoothgrad_is_mean_gradient_of_noisy_copies(rng):
    model = torch_mlp()
    x = rng.normal(size=(2, 6)).astype(np.float32)
    got = sw.saliency(model, x, target=1, method="smoothgrad", n_samples=8, noise=0.2, seed=7)
    sigma = 0.2 * (x.max(1, keepdims=True) - x.min(1, keepdims=True))
    noisy = x + sigma.astype(np.float32) * torch_noise(7, 8, x.shape)
    expected = np.mean([autograd_gradient(model, n.astype(np.float32), [1, 1]) for n in noisy], axis=0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    again = sw.saliency(model, x, target=1, method="smoothgrad", n_samples=8, noise=0.2, seed=7)
    np.testing.assert_array_equal(got, again)
    drawn = [sw.saliency(model, x, target=1, method="smoothgrad", n_samples=8, seed=np.random.default_rng(2))
             for _ in range(2)]  # a generator as the seed: one seed drawn from it, the same each time
    np.testing.assert_array_equal(drawn[0], drawn[1])


def test_logits_skip_trailing_softmax(rng):
    logits_model = torch_mlp()
    softmax_model = torch_mlp(softmax=True)
    x = rng.normal(size=(2, 6)).astype(np.float32)
    np.testing.assert_allclose(sw.saliency(softmax_model, x, 1), sw.saliency(logits_model, x, 1), rtol=1e-5)
    probs = sw.saliency(softmax_model, x, 1, output="probabilities")
    np.testing.assert_allclose(probs, autograd_gradient(softmax_model, x, [1, 1]), rtol=1e-5, atol=1e-7)
    assert not np.allclose(probs, sw.saliency(softmax_model, x, 1))


def test_jacobian_matches_torch_autograd_functional(rng):
    model = torch_mlp()
    x = rng.normal(size=(2, 6)).astype(np.float32)
    J = sw.jacobian(model, x)
    assert J.shape == (2, 4, 6)
    for i in range(2):
        ref = torch.autograd.functional.jacobian(lambda z: model(z[None])[0], torch.tensor(x[i]))
        np.testing.assert_allclose(J[i], ref.numpy(), rtol=1e-5, atol=1e-7)
    subset = sw.jacobian(model, x, outputs=[3, 1])
    np.testing.assert_allclose(subset, J[:, [3, 1]], rtol=1e-5, atol=1e-7)


def test_cnn_jacobian_equals_per_target_gradients(rng):
    model = torch_cnn()
    x = rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    J = sw.jacobian(model, x)
    assert J.shape == (2, 5, 3, 12, 12)
    for t in range(5):
        np.testing.assert_allclose(J[:, t], autograd_gradient(model, x, [t, t]), rtol=1e-4, atol=1e-6)


def test_every_jacobian_strategy_agrees(rng):
    from saliency_widgets.backends import get_backend
    from saliency_widgets.backends.torch.backend import CHANNELS_LAST
    from saliency_widgets.structure import flatten

    model = torch_cnn()  # held: the backend holds its model weakly
    backend = get_backend(model)
    x = rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    spec, entries = flatten(x, backend.to_numpy)
    query = backend.query(spec)
    rows = np.array([4, 0, 2])
    vmapped = backend._jacobian_vmap(query, entries, rows)[0]
    assert backend.layouts(query, entries) == (CHANNELS_LAST, None)
    for layout in (None, CHANNELS_LAST):
        np.testing.assert_allclose(backend._jacobian_tile(query, entries, rows, layout)[0], vmapped,
                                   rtol=1e-4, atol=1e-6)
    sw.jacobian(model, x)
    assert set(backend._strategy.values()) <= {("_jacobian_vmap", None), ("_jacobian_tile", None),
                                               ("_jacobian_tile", CHANNELS_LAST)}


def test_multidimensional_output_jacobian_and_tuple_target(rng):
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = rng.normal(size=(2, 2, 5, 5)).astype(np.float32)
    J = sw.jacobian(conv, x)
    assert J.shape == (2, 3, 5, 5, 2, 5, 5)
    np.testing.assert_allclose(J[:, 2, 1, 3], sw.saliency(conv, x, target=(2, 1, 3)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sw.jacobian(conv, x, outputs=[(2, 1, 3), 0])[:, 0], J[:, 2, 1, 3], rtol=1e-6)
    np.testing.assert_allclose(sw.jacobian(conv, x, outputs=[[2, 1, 3]])[:, 0], J[:, 2, 1, 3], rtol=1e-6)
    grid = sw.JacobianGrid(conv, x, outputs=[[2, 1, 3], 5])
    np.testing.assert_allclose(grid.jacobian, J[0].reshape(-1, 2, 5, 5)[[np.ravel_multi_index((2, 1, 3), (3, 5, 5)), 5]],
                               rtol=1e-5, atol=1e-7)


def test_lstm_then_dense_matches_finite_differences(rng):
    model = torch_lstm()
    x = rng.normal(size=(2, 7, 3)).astype(np.float32)
    got = sw.saliency(model, x, target=1)
    np.testing.assert_allclose(got, autograd_gradient(model, x, [1, 1]), rtol=1e-4, atol=1e-6)
    model64 = torch_lstm().double()

    def f(z):
        with torch.no_grad():
            return model64(torch.tensor(z[None]))[0, 1].item()

    np.testing.assert_allclose(got[1], central_differences(f, x[1].astype(np.float64)), rtol=1e-3, atol=1e-5)
    J = sw.jacobian(model, x)
    np.testing.assert_allclose(J[:, 1], got, rtol=1e-4, atol=1e-6)


class LinearOnSequenceWithBmm(nn.Module):
    """nn.Linear on a 3-D input followed by a batched matrix product with the input."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.proj = nn.Linear(4, 4)

    def forward(self, x):  # x: (batch, time, 4)
        scores = torch.bmm(self.proj(x), x.transpose(1, 2))  # (batch, time, time)
        return scores.mean(dim=2)  # (batch, time)


def test_linear_on_3d_input_with_bmm(rng):
    model = LinearOnSequenceWithBmm()
    x = rng.normal(size=(2, 5, 4)).astype(np.float32)
    got = sw.saliency(model, x, target=3)
    np.testing.assert_allclose(got, autograd_gradient(model, x, [3, 3]), rtol=1e-5, atol=1e-6)
    J = sw.jacobian(model, x)
    assert J.shape == (2, 5, 5, 4)
    ref = torch.autograd.functional.jacobian(lambda z: model(z[None])[0], torch.tensor(x[0]))
    np.testing.assert_allclose(J[0], ref.numpy(), rtol=1e-5, atol=1e-6)


def test_plain_callable_and_tensor_inputs(rng):
    model = torch_mlp()
    x = rng.normal(size=(2, 6)).astype(np.float32)
    expected = autograd_gradient(model, x, [0, 0])
    np.testing.assert_allclose(sw.saliency(lambda t: model(t) * 1.0, x, 0), expected, rtol=1e-5)
    xt = torch.tensor(x, requires_grad=True)
    np.testing.assert_allclose(sw.saliency(model, xt, 0), expected, rtol=1e-5)
    assert xt.grad is None


class Regressor(nn.Module):
    """One score per sample: output shape (batch,)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.layer = nn.Linear(6, 1)

    def forward(self, x):
        return torch.tanh(self.layer(x)).squeeze(-1)


def test_one_score_per_sample_does_not_mix_samples(rng):
    model = Regressor()
    x = rng.normal(size=(3, 6)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    (expected,) = torch.autograd.grad(model(xt).sum(), xt)
    result = sw.attribute(model, x)
    np.testing.assert_allclose(result.values, expected.numpy(), rtol=1e-5, atol=1e-7)
    assert result.outputs.shape == (3, 1) and result.targets == [(0,)] * 3
    np.testing.assert_allclose(sw.jacobian(model, x)[:, 0], expected.numpy(), rtol=1e-5, atol=1e-7)


FRESH_KERNEL = """
import sys
import numpy as np
import torch
import saliency_widgets as sw
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3))
x = np.random.default_rng(0).normal(size=(2, 3, 8, 8)).astype(np.float32)
before = sw.saliency(model.eval(), x, 1)
light = "sympy" not in sys.modules
import torch.fx.experimental.symbolic_shapes  # noqa: F401  (what a Jacobian or other code imports)
after = sw.saliency(model, x, 1)
print(light, np.array_equal(before, after))
"""


def test_first_gradient_does_not_import_sympy_and_gives_the_same_numbers():
    """A gradient differentiates the sum of the chosen outputs: no grad_outputs=, whose shape check
    imports sympy (0.4 s of a fresh kernel); the numbers stay the same once that module is loaded."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", FRESH_KERNEL], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]


def test_points_staged_on_the_models_device_give_the_same_maps(rng, monkeypatch):
    """A model on an accelerator builds SmoothGrad's and IG's points there (``staged``) and draws
    the noise there, one torch generator seed per copy. Forced onto the CPU device here (CI has no
    GPU; tests/test_cuda.py runs it on one): IG equals the numpy path's, SmoothGrad is the mean
    gradient of its noisy copies (the numpy path's noise too), the same for a seed however the
    copies are split into passes."""
    from saliency_widgets.backends.torch.backend import TorchBackend

    model, x = torch_cnn(), rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    on_numpy = sw.attribute(model, x, 1, method="integrated_gradients", steps=24)
    monkeypatch.setattr(TorchBackend, "_accelerator", lambda self: torch.device("cpu"))
    staged = sw.attribute(model, x, 1, method="integrated_gradients", steps=24)
    np.testing.assert_allclose(staged.values, on_numpy.values, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(staged.completeness_error, on_numpy.completeness_error, atol=1e-6)

    monkeypatch.setattr(sw.config, "chunk_budget_bytes", x.nbytes * 32)  # passes of 1, 2, 4 … copies
    maps = [sw.saliency(model, x, 1, method="smoothgrad", n_samples=12, noise=0.2, seed=3) for _ in range(3)]
    sigma = 0.2 * (x.max(axis=(1, 2, 3), keepdims=True) - x.min(axis=(1, 2, 3), keepdims=True))
    noisy = x + sigma.astype(np.float32) * torch_noise(3, 12, x.shape)
    expected = np.mean([autograd_gradient(model, n.astype(np.float32), [1, 1]) for n in noisy], axis=0)
    for got in maps:
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-7)
    monkeypatch.undo()
    np.testing.assert_allclose(sw.saliency(model, x, 1, method="smoothgrad", n_samples=12, noise=0.2, seed=3),
                               expected, rtol=1e-4, atol=1e-7)
