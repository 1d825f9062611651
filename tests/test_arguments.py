"""Bad arguments get a SaliencyError that says what to pass, before any model runs; values that mean
something (a 0-d tensor holding a target, negative tuple positions, token ids to occlude) are taken."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
from torch import nn  # noqa: E402

import saliency_widgets as sw  # noqa: E402
from models import keras_mlp, tape_gradient, torch_mlp  # noqa: E402


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(3).normal(size=(2, 6)).astype(np.float32)


@pytest.fixture(scope="module", params=["torch", "keras"])
def model(request):
    return torch_mlp() if request.param == "torch" else keras_mlp()


def autograd_gradient(model, x, targets):
    """d model(x)[i, targets[i]] / d x, written out with torch.autograd.grad."""
    xt = torch.tensor(x, requires_grad=True)
    out = model(xt).reshape(len(x), -1)
    (grad,) = torch.autograd.grad(out[torch.arange(len(x)), torch.as_tensor(targets)].sum(), xt)
    return grad.numpy()


def reference_gradient(model, x, targets):
    targets = np.broadcast_to(targets, (len(x),)).copy()
    return autograd_gradient(model, x, targets) if isinstance(model, nn.Module) else tape_gradient(model, x, targets)


@pytest.mark.parametrize("target", [np.int64(2), np.array(2), torch.tensor(2), tf.constant(2)],
                         ids=["numpy int", "0-d array", "0-d torch", "0-d tf"])
def test_a_scalar_target_is_the_int_it_holds(model, x, target):
    np.testing.assert_allclose(sw.saliency(model, x, target=target), reference_gradient(model, x, 2),
                               rtol=1e-5, atol=1e-6)
    integrated = sw.attribute(model, x, target=target, method="integrated_gradients", steps=4)
    assert integrated.targets == [(2,), (2,)]
    np.testing.assert_allclose(integrated.values, sw.saliency(model, x, 2, method="integrated_gradients", steps=4),
                               rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("targets", [np.array([1, 3]), torch.tensor([1, 3]), tf.constant([1, 3])],
                         ids=["numpy", "torch", "tf"])
def test_one_target_per_sample_as_a_1d_array_or_tensor(model, x, targets):
    np.testing.assert_allclose(sw.saliency(model, x, target=targets), reference_gradient(model, x, [1, 3]),
                               rtol=1e-5, atol=1e-6)
    assert sw.attribute(model, x, target=targets, method="smoothgrad", n_samples=2, seed=0).targets == [(1,), (3,)]


@pytest.mark.parametrize("target", [np.bool_(True), {0, 1}, {"a": 1}, np.array([1.0, 2.0])])
@pytest.mark.parametrize("method", ["gradient", "integrated_gradients"])
def test_targets_that_are_not_indices_are_refused(x, target, method):
    with pytest.raises(sw.SaliencyError, match="target must be None, an int, one int per sample.*got"):
        sw.saliency(torch_mlp(), x, target=target, method=method)


@pytest.mark.parametrize("method, options, message", [
    ("smoothgrad", {"noise": "big"}, r"noise must be a finite, non-negative fraction .* got 'big'"),
    ("smoothgrad", {"noise": float("inf")}, r"noise must be a finite.*got inf"),
    ("smoothgrad", {"noise": float("nan")}, r"noise must be a finite.*got nan"),
    ("smoothgrad", {"noise": -0.1}, r"noise must be a finite, non-negative.*got -0.1"),
    ("smoothgrad", {"noise": True}, r"noise must be a finite.*got True \(bool\)"),
    ("smoothgrad", {"seed": -1}, r"seed must be None, a non-negative int or a numpy Generator, got -1"),
    ("smoothgrad", {"seed": "abc"}, r"seed must be None.*got 'abc'"),
    ("smoothgrad", {"seed": 1.5}, r"seed must be None.*got 1.5"),
    ("smoothgrad", {"seed": True}, r"seed must be None.*got True \(bool\)"),
    ("smoothgrad", {"n_samples": True}, r"n_samples must be a positive integer, got True \(bool\)"),
    ("smoothgrad", {"n_samples": 10**9}, r"n_samples=1,000,000,000 is more than the cap of 10,000: .*pass fewer"),
    ("integrated_gradients", {"steps": True}, r"steps must be a positive integer, got True \(bool\)"),
    ("integrated_gradients", {"steps": 30000}, r"steps=30,000 is more than the cap of 2,048: Gauss–Legendre"),
    ("integrated_gradients", {"steps": 10**7}, r"steps=10,000,000 is more than the cap of 2,048"),
    ("integrated_gradients", {"baseline": object()}, r"baseline must be a number or a numeric array, .*object"),
    ("integrated_gradients", {"baseline": "zeros"}, r"baseline must be a number or a numeric array"),
    ("integrated_gradients", {"baseline": np.nan}, r"baseline must be finite, got 1 NaN or infinite values"),
    ("integrated_gradients", {"baseline": 1e300}, r"baseline \(as float32\) must be finite, got 1 NaN or infinite"),
    ("smoothgrad", {"noise": 1e38}, r"noise=1e\+38 is more than 10 times the input range"),
    ("occlusion", {"baseline": object()}, r"baseline must be a number or a numeric array, .*object"),
    ("occlusion", {"window": "big"}, r"window must be a positive int .* got 'big'"),
    ("occlusion", {"window": 1.5}, r"window must be a positive int .* got 1.5"),
    ("occlusion", {"window": True}, r"window must be a positive int .* got True \(bool\)"),
    ("occlusion", {"window": (2, 0)}, r"window must be a positive int"),
    ("occlusion", {"stride": True}, r"stride must be a positive int .* got True \(bool\)"),
    ("gradcam", {"relu": "yes"}, r"relu must be True or False, got 'yes'"),
])
def test_bad_method_options_are_refused(model, x, method, options, message):
    with pytest.raises(sw.SaliencyError, match=message):
        sw.saliency(model, x, 0, method=method, **options)


@pytest.mark.parametrize("outputs, message", [
    (2, r"outputs must be None or a list of output indices \(e.g. outputs=\[0, 2\]\), got 2"),
    ([], r"outputs=\[\] selects no output; pass at least one output index, or None for all"),
    ("01", r"outputs must be None or a list"),
    ([True], r"outputs must be None, an int.*got True \(bool\)"),
])
def test_bad_jacobian_outputs_are_refused(model, x, outputs, message):
    with pytest.raises(sw.SaliencyError, match=message):
        sw.jacobian(model, x, outputs=outputs)


def test_jacobian_outputs_as_a_tensor(x):
    model = torch_mlp()
    np.testing.assert_allclose(sw.jacobian(model, x, outputs=torch.tensor([3, 0])),
                               sw.jacobian(model, x)[:, [3, 0]], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("bad, message", [
    ([[1.0, 2.0], [1.0]], r"x: a list of sequences of different lengths is not an array; pass a rectangular"),
    (torch.zeros(2, 6).to_sparse(), r"x: a tensor of layout torch.sparse_coo has no dense values; pass tensor"),
    (torch.empty(2, 6, device="meta"), r"x: a meta tensor has a shape but no values"),
])
def test_inputs_that_are_not_arrays_are_refused(model, bad, message):
    with pytest.raises(sw.SaliencyError, match=message):
        sw.saliency(model, bad)


@pytest.mark.parametrize("fixed", [1.5, True, object()])
def test_fixed_that_names_no_entry_kind_is_refused(fixed, x):
    with pytest.raises(sw.SaliencyError, match="fixed must be None, a key or position of x, or a list of them; got"):
        sw.saliency(torch_mlp(), (x,), fixed=fixed)


@pytest.mark.parametrize("bad", [np.array(["a", "b"]), [0, 1]], ids=["strings", "list"])
def test_method_and_output_must_be_names(x, bad):
    with pytest.raises(sw.SaliencyError, match="unknown method .*; choose one of 'gradient'"):
        sw.saliency(torch_mlp(), x, method=bad)
    with pytest.raises(sw.SaliencyError, match="unknown output .*; choose one of 'logits', 'probabilities'"):
        sw.jacobian(torch_mlp(), x, output=bad)


def test_more_arrays_than_the_model_has_inputs_is_refused(model, x):
    name = "'input'" if isinstance(model, nn.Module) else repr(model.inputs[0].name)
    with pytest.raises(sw.SaliencyError, match=rf"x is a list of 2 arrays, but the model takes 1 input \({name}\); "
                                               "pass one array per input"):
        sw.saliency(model, [x, x])


class IdsAndMask(nn.Module):
    def forward(self, input_ids, attention_mask):
        return input_ids * attention_mask


def test_batch_mismatch_names_the_forward_parameters():
    ids, mask = np.zeros((3, 2), np.float32), np.zeros((2, 2), np.float32)
    with pytest.raises(sw.SaliencyError, match=r"x\[0\] \(`input_ids`\) has batch 3 .*, x\[1\] \(`attention_mask`\) "
                                               r"has batch 2 .*; pass the same samples in every entry"):
        sw.saliency(IdsAndMask(), (ids, mask))
    with pytest.raises(sw.SaliencyError, match=r"x\['mask'\] has batch 2 .*x\['ids'\] has batch 3"):
        sw.saliency(IdsAndMask(), {"mask": mask, "ids": ids})


def test_keras_batch_mismatch_names_the_model_inputs():
    a, b = keras.Input((2,), name="ids"), keras.Input((2,), name="mask")
    model = keras.Model([a, b], keras.layers.Multiply()([a, b]))
    with pytest.raises(sw.SaliencyError, match=r"x\[0\] \(`ids`\) has batch 3 .*x\[1\] \(`mask`\) has batch 2"):
        sw.saliency(model, [np.zeros((3, 2), np.float32), np.zeros((2, 2), np.float32)])


def grid_mlp():
    """Six inputs → a (3, 4) output per sample."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Unflatten(1, (3, 4))).eval()


def test_negative_tuple_positions_count_from_the_end(x):
    model = grid_mlp()
    xt = torch.tensor(x, requires_grad=True)
    (reference,) = torch.autograd.grad(model(xt)[:, 2, 1].sum(), xt)
    for target in [(-1, 1), (2, -3), (-1, -3), [(-1, 1), (2, -3)]]:
        np.testing.assert_allclose(sw.saliency(model, x, target=target), reference.numpy(), rtol=1e-5, atol=1e-6)
    assert sw.attribute(model, x, target=(-1, -3), method="integrated_gradients", steps=3).targets == [(2, 1)] * 2
    np.testing.assert_allclose(sw.jacobian(model, x, outputs=[(-1, -3)])[:, 0], reference.numpy(), rtol=1e-5, atol=1e-6)
    for out_of_range in [(-4, 0), (0, 4), (0, -5)]:
        with pytest.raises(sw.SaliencyError, match=r"does not index one sample's output of shape \(3, 4\)"):
            sw.saliency(model, x, target=out_of_range)


class MeanEmbedding(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed, self.head = nn.Embedding(7, 3), nn.Linear(3, 2)

    def forward(self, ids):
        return self.head(torch.tanh(self.embed(ids)).mean(dim=1))


def test_occlusion_of_token_ids_by_the_pad_id():
    model, pad, target = MeanEmbedding().eval(), 0, 1
    ids = np.array([[3, 5, 6, 2], [1, 4, 4, 0]])
    with torch.no_grad():
        score = model(torch.tensor(ids))[:, target]
        expected = np.zeros(ids.shape, np.float32)
        for j in range(ids.shape[1]):
            occluded = ids.copy()
            occluded[:, j] = pad
            expected[:, j] = (score - model(torch.tensor(occluded))[:, target]).numpy()
    np.testing.assert_allclose(sw.saliency(model, ids, target, method="occlusion", baseline=pad), expected,
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(sw.SaliencyError, match=r"x holds integers \(token ids\?\) .*must then be an int .*got 0.0"):
        sw.saliency(model, ids, target, method="occlusion")


class BatchSimilarity(nn.Module):
    """CLIP-like: each sample's scores are its similarities with every sample of the batch, (B, B)."""

    def forward(self, x):
        return x @ x.T


@pytest.mark.parametrize("batch", [1, 2])
def test_a_batch_by_batch_head_mixes_samples(rng, batch):
    model, x = BatchSimilarity(), rng.normal(size=(batch, 3)).astype(np.float32)
    for _ in range(2):  # refused, and remembered
        with pytest.raises(sw.SaliencyError, match=r"its shape follows the batch size .*mixes samples"):
            sw.saliency(model, x, target=0)


class RaisesInForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def forward(self, x):
        raise RuntimeError("boom")


def test_the_torch_models_own_exception_reaches_the_user_unchanged():
    with pytest.raises(RuntimeError, match="^boom$") as info:
        sw.saliency(RaisesInForward(), np.zeros((2, 3), np.float32))
    assert type(info.value) is RuntimeError


def test_an_input_torch_refuses_still_gets_the_input_message():
    with pytest.raises(sw.SaliencyError, match=r"could not run on .*torch said"):
        sw.saliency(torch.nn.Linear(3, 2), np.zeros((2, 5), np.float32))


def test_a_model_on_the_meta_device_is_refused():
    with torch.device("meta"):
        model = torch.nn.Linear(3, 2)
    with pytest.raises(sw.SaliencyError, match="meta device.*load its weights"):
        sw.saliency(model, np.zeros((2, 3), np.float32))
