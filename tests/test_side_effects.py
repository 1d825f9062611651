"""Computing attributions leaves no trace on the model, the input or global RNG state (DESIGN §5)."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import saliency_widgets as sw  # noqa: E402
from models import torch_cnn  # noqa: E402


def snapshot(model):
    return {
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [p.grad for p in model.parameters()],
        "state": {k: v.clone() for k, v in model.state_dict().items()},
    }


def assert_unchanged(model, before):
    after = snapshot(model)
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert all(g is None for g in after["grads"])
    for key, value in before["state"].items():
        assert torch.equal(after["state"][key], value), key


@pytest.fixture
def trained_looking_cnn():
    model = torch_cnn().train()
    bn = model[1]
    bn.running_mean.copy_(torch.linspace(-1, 1, 4))
    bn.running_var.copy_(torch.linspace(0.5, 2, 4))
    model[3].training = False  # a mixed pattern of flags must come back exactly
    model[0].weight.requires_grad_(False)
    return model


@pytest.mark.parametrize("method", sw.METHODS)
def test_methods_leave_model_input_and_rng_alone(trained_looking_cnn, method, rng):
    model = trained_looking_cnn
    before = snapshot(model)
    x = rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    x_copy = x.copy()
    torch_rng, numpy_rng = torch.get_rng_state(), np.random.get_state()
    with pytest.warns(sw.SaliencyWarning, match="training mode"):
        sw.saliency(model, x, method=method, **({"n_samples": 4} if method == "smoothgrad" else {}))
    assert_unchanged(model, before)
    np.testing.assert_array_equal(x, x_copy)
    assert torch.equal(torch.get_rng_state(), torch_rng)
    assert np.array_equal(np.random.get_state()[1], numpy_rng[1])


def test_eval_mode_is_used_so_batchnorm_uses_running_statistics(trained_looking_cnn, rng):
    model = trained_looking_cnn
    x = rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    with pytest.warns(sw.SaliencyWarning):
        got = sw.saliency(model, x, target=1)
    reference = torch_cnn()
    reference.load_state_dict(model.state_dict())
    reference.eval()
    xt = torch.tensor(x, requires_grad=True)
    (expected,) = torch.autograd.grad(reference(xt)[:, 1].sum(), xt)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=1e-6)


def test_jacobian_leaves_model_alone(trained_looking_cnn, rng):
    before = snapshot(trained_looking_cnn)
    with pytest.warns(sw.SaliencyWarning):
        sw.jacobian(trained_looking_cnn, rng.normal(size=(2, 3, 12, 12)).astype(np.float32))
    assert_unchanged(trained_looking_cnn, before)


class FailsHalfway(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 2)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        if x.requires_grad:
            raise RuntimeError("boom in the middle of the backward setup")
        return self.drop(self.layer(x))


def test_state_restored_when_an_exception_is_raised_half_way():
    model = FailsHalfway().train()
    before = snapshot(model)
    with pytest.warns(sw.SaliencyWarning), pytest.raises(RuntimeError, match="^boom in the middle"):
        sw.saliency(model, np.ones((1, 3), np.float32), target=0)  # the model's own exception, unchanged
    assert_unchanged(model, before)
    assert model.training and model.drop.training


@pytest.mark.parametrize("method", ["gradient", "integrated_gradients"])
def test_torch_tensor_input_is_not_modified(method):
    model = torch_cnn()
    x = torch.randn(1, 3, 12, 12)
    original = x.clone()
    sw.saliency(model, x, method=method, **({"steps": 4} if method == "integrated_gradients" else {}))
    assert torch.equal(x, original) and not x.requires_grad and x.grad is None


class AddsToItsInput(nn.Module):
    def forward(self, x):
        return (x.add_(1) if not x.requires_grad else x + 1).sum(1, keepdim=True)


def test_read_only_and_shared_inputs_stay_as_they_were(rng):
    """The attributed input is handed to torch without a copy: a read-only array works without a
    warning, and a model that writes into a tensor not requiring grad writes into a copy."""
    model = nn.Linear(3, 2).eval()
    frozen = rng.normal(size=(2, 3)).astype(np.float32)
    frozen.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = sw.saliency(model, frozen, 1)
    np.testing.assert_allclose(got, np.tile(model.weight[1].detach().numpy(), (2, 1)), rtol=1e-6)
    x = rng.normal(size=(2, 3)).astype(np.float32)
    before = x.copy()
    np.testing.assert_array_equal(sw.saliency(AddsToItsInput(), x, 0), np.ones_like(x))
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("context", ["no_grad", "inference_mode"])
def test_called_inside_no_grad_or_inference_mode(context, rng):
    """A notebook cell wrapped in torch.no_grad() or torch.inference_mode() still gets gradients
    (inference mode used to fail: the forward pass made its tensors before leaving it), and
    leaves the mode as it was."""
    model = nn.Linear(3, 2).eval()
    x = rng.normal(size=(2, 3)).astype(np.float32)
    with getattr(torch, context)():
        got = sw.saliency(model, x, 1)
        ig = sw.attribute(model, x, 1, method="integrated_gradients", steps=8)
        jac = sw.jacobian(model, x)
        assert not torch.is_grad_enabled()
        assert torch.is_inference_mode_enabled() == (context == "inference_mode")
    weight = model.weight.detach().numpy()
    np.testing.assert_allclose(got, np.tile(weight[1], (2, 1)), rtol=1e-6)
    np.testing.assert_allclose(ig.completeness_error, 0, atol=1e-5)
    np.testing.assert_allclose(jac, np.broadcast_to(weight, (2, 2, 3)), rtol=1e-6)


def test_recurrent_dropout_in_training_mode_warns_and_is_switched_off(rng):
    """An LSTM's dropout between its layers depends on the mode just as a Dropout module does."""

    class Stacked(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(4, 8, num_layers=2, dropout=0.5, batch_first=True)
            self.fc = torch.nn.Linear(8, 3)

        def forward(self, x):
            return self.fc(self.lstm(x)[0][:, -1])

    torch.manual_seed(0)
    model = Stacked().train()
    x = rng.normal(size=(2, 6, 4)).astype(np.float32)
    with pytest.warns(sw.SaliencyWarning, match="training mode"):
        got = sw.saliency(model, x, target=1)
    assert model.training and model.lstm.training
    xt = torch.tensor(x, requires_grad=True)
    (expected,) = torch.autograd.grad(model.eval()(xt)[:, 1].sum(), xt)
    np.testing.assert_array_equal(got, expected.numpy())
