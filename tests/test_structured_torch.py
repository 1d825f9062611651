"""Structured inputs, heads, layer= and logits on torch models, against autograd and captum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import saliency_widgets as sw
from saliency_widgets.attribution import attribute, layer_output
from models import torch_noise


class MaskedMean(nn.Module):
    """forward(x, mask): a float sequence and an integer mask, as a transformer takes them."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.proj = nn.Linear(4, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x, mask):
        h = torch.tanh(self.proj(x)) * mask[..., None]
        return self.head(h.sum(1) / mask.sum(1, keepdim=True))


def masked_batch(rng):
    x = rng.normal(size=(3, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]], dtype=np.int64)
    return x, mask


def autograd(model, inputs, target, wrt=0):
    ts = [torch.tensor(a, requires_grad=np.issubdtype(a.dtype, np.floating)) for a in inputs]
    out = model(*ts)
    (g,) = torch.autograd.grad(out[:, target].sum(), ts[wrt])
    return g.numpy()


def test_tuple_input_keeps_masks_fixed_and_matches_autograd(rng):
    model = MaskedMean().eval()
    x, mask = masked_batch(rng)
    got = sw.saliency(model, (x, mask), target=1)
    assert isinstance(got, tuple) and got[1] is None
    np.testing.assert_allclose(got[0], autograd(model, (x, mask), 1), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(got[0][1, 3:], 0)  # masked positions get nothing


def test_tuple_input_integrated_gradients_equals_captum_with_additional_args(rng):
    from captum.attr import IntegratedGradients

    model = MaskedMean().eval()
    x, mask = masked_batch(rng)
    res = attribute(model, (x, mask), 2, method="integrated_gradients", steps=64)
    ref = IntegratedGradients(model).attribute(torch.tensor(x), target=2, additional_forward_args=(torch.tensor(mask),),
                                               n_steps=64, method="gausslegendre")
    np.testing.assert_allclose(res.values[0], ref.numpy(), rtol=1e-4, atol=1e-6)
    assert np.all(np.abs(res.completeness_error) < 1e-4)


def test_structured_jacobian_and_smoothgrad_repeat_fixed_entries_per_sample(rng):
    model = MaskedMean().eval()
    x, mask = masked_batch(rng)
    J = sw.jacobian(model, (x, mask))
    assert J[1] is None and J[0].shape == (3, 3, 5, 4)
    for t in range(3):
        np.testing.assert_allclose(J[0][:, t], autograd(model, (x, mask), t), rtol=1e-5, atol=1e-7)
    smooth = sw.saliency(model, (x, mask), target=0, method="smoothgrad", n_samples=4, noise=0.0)
    np.testing.assert_allclose(smooth[0], J[0][:, 0], rtol=1e-5, atol=1e-7)


class TwoFloats(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.a = nn.Linear(3, 2)
        self.b = nn.Linear(5, 2)

    def forward(self, left, right):
        return torch.tanh(self.a(left)) * self.b(right)


def test_dict_input_attributes_every_float_entry_and_fixed_by_key(rng):
    model = TwoFloats().eval()
    x = {"left": rng.normal(size=(2, 3)).astype(np.float32), "right": rng.normal(size=(2, 5)).astype(np.float32)}
    got = sw.saliency(model, x, target=1)
    assert set(got) == {"left", "right"}
    np.testing.assert_allclose(got["left"], autograd(model, (x["left"], x["right"]), 1, wrt=0), rtol=1e-5)
    np.testing.assert_allclose(got["right"], autograd(model, (x["left"], x["right"]), 1, wrt=1), rtol=1e-5)
    only_left = sw.saliency(model, x, target=1, fixed=["right"])
    assert only_left["right"] is None
    np.testing.assert_allclose(only_left["left"], got["left"], rtol=1e-6)


def test_bad_structures_say_what_to_do(rng):
    model = TwoFloats().eval()
    left, right = rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=(3, 5)).astype(np.float32)
    with pytest.raises(sw.SaliencyError, match="same leading batch size"):
        sw.saliency(model, (left, right))
    with pytest.raises(sw.SaliencyError, match="fixed= names 'middle'"):
        sw.saliency(model, {"left": left, "right": right[:2]}, fixed=["middle"])
    with pytest.raises(sw.SaliencyError, match=r"forward\(left, right\)"):
        sw.saliency(model, {"left": left, "wrong": right[:2]})
    with pytest.raises(sw.NonDifferentiableError, match="layer="):
        sw.saliency(MaskedMean(), (np.zeros((1, 5, 4), np.int64), np.ones((1, 5), np.int64)))


# ------------------------------------------------------------------- heads
class TupleOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.hidden = nn.Linear(4, 6)
        self.out = nn.Linear(6, 3)
        self.aux = nn.Linear(6, 2)

    def forward(self, x):
        h = torch.tanh(self.hidden(x))
        return self.out(h), self.aux(h)


def test_heads_pick_entries_layers_and_callables(rng):
    model = TupleOut().eval()
    x = rng.normal(size=(2, 4)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    with pytest.raises(sw.SaliencyError, match="head= one of 0, 1"):
        sw.saliency(model, x)
    (ref,) = torch.autograd.grad(model(xt)[1][:, 1].sum(), xt)
    np.testing.assert_allclose(sw.saliency(model, x, target=1, head=1), ref.numpy(), rtol=1e-5)
    np.testing.assert_allclose(sw.saliency(model, x, target=1, head=lambda outs: outs[1]), ref.numpy(), rtol=1e-5)
    hidden = model.hidden(xt)
    (ref_hidden,) = torch.autograd.grad(hidden[:, 4].sum(), xt)
    for head in ("hidden", model.hidden):
        np.testing.assert_allclose(sw.saliency(model, x, target=4, head=head), ref_hidden.numpy(), rtol=1e-5)


def tiny_bert(seed: int = 0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=2)
    return BertForSequenceClassification(config).eval()


def bert_batch():
    ids = np.array([[2, 7, 9, 11, 3, 0, 0], [2, 5, 6, 8, 12, 14, 3]], dtype=np.int64)
    return {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)}


def test_bert_model_output_logits_and_layer_integrated_gradients_equal_captum():
    from captum.attr import LayerIntegratedGradients

    model = tiny_bert()
    batch = bert_batch()
    pad = {"input_ids": np.zeros_like(batch["input_ids"]), "attention_mask": batch["attention_mask"]}
    res = attribute(model, batch, 1, method="integrated_gradients", layer=model.bert.embeddings, steps=128,
                    baseline={"input_ids": pad["input_ids"]})
    assert res.values.shape == (2, 7, 16) and res.layer == "bert.embeddings"

    def logits(ids, mask):
        return model(input_ids=ids, attention_mask=mask).logits

    lig = LayerIntegratedGradients(logits, model.bert.embeddings)
    ref, delta = lig.attribute(torch.tensor(batch["input_ids"]), baselines=torch.tensor(pad["input_ids"]), target=1,
                               additional_forward_args=(torch.tensor(batch["attention_mask"]),), n_steps=128,
                               method="gausslegendre", return_convergence_delta=True)
    np.testing.assert_allclose(res.values, ref.detach().numpy(), rtol=1e-4, atol=1e-4)
    f_gap = np.abs(res.outputs[:, 1] - sw.attribution.predict(model, {**batch, **pad})[:, 1])
    assert np.all(np.abs(res.completeness_error) <= 0.01 * f_gap + 1e-6)


def test_bert_layer_gradient_x_activation_equals_captum():
    from captum.attr import LayerGradientXActivation

    model = tiny_bert(1)
    batch = bert_batch()
    got = sw.saliency(model, batch, 0, method="input_x_gradient", layer="bert.embeddings.word_embeddings")

    def logits(ids, mask):
        return model(input_ids=ids, attention_mask=mask).logits

    ref = LayerGradientXActivation(logits, model.bert.embeddings.word_embeddings).attribute(
        torch.tensor(batch["input_ids"]), target=0, additional_forward_args=(torch.tensor(batch["attention_mask"]),))
    np.testing.assert_allclose(got, ref.detach().numpy(), rtol=1e-5, atol=1e-7)
    J = sw.jacobian(model, batch, layer="bert.embeddings.word_embeddings")
    assert J.shape == (2, 2, 7, 16)
    grad = sw.saliency(model, batch, 0, layer="bert.embeddings.word_embeddings")
    np.testing.assert_allclose(J[:, 0], grad, rtol=1e-5, atol=1e-7)


class Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Linear(3, 3)

    def forward(self, x):
        return self.block(torch.tanh(self.block(x)))


def test_layer_that_runs_twice_is_refused(rng):
    with pytest.raises(sw.SaliencyError, match="more than once"):
        sw.saliency(Shared().eval(), rng.normal(size=(2, 3)).astype(np.float32), layer="block")


def conv_then_inplace_relu():
    torch.manual_seed(4)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()


def test_layer_followed_by_an_inplace_relu(rng):
    """torchvision-style ``ReLU(inplace=True)`` after the layer: the gradient, the IG path and
    the layer's output are those of the layer itself, before the ReLU."""
    model = conv_then_inplace_relu()
    x = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
    act = model[0](torch.tensor(x)).detach().requires_grad_(True)
    (ref,) = torch.autograd.grad(model[3](model[2](torch.relu(act)))[:, 1].sum(), act)
    np.testing.assert_allclose(sw.saliency(model, x, 1, layer=0), ref.numpy(), rtol=1e-5, atol=1e-7)
    ig = attribute(model, x, 1, layer=0, method="integrated_gradients", steps=32)
    np.testing.assert_allclose(ig.completeness_error, 0, atol=1e-4)
    np.testing.assert_array_equal(layer_output(model, x, 0), act.detach().numpy())
    assert (layer_output(model, x, 0) < 0).any()


def test_a_remembered_layer_name_follows_a_replaced_module(rng):
    model = conv_then_inplace_relu()
    x = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
    sw.saliency(model, x, 1, layer="0")
    torch.manual_seed(5)
    model[0] = nn.Conv2d(3, 4, 3)
    act = model[0](torch.tensor(x)).detach().requires_grad_(True)
    (ref,) = torch.autograd.grad(model[3](model[2](torch.relu(act)))[:, 1].sum(), act)
    np.testing.assert_array_equal(layer_output(model, x, "0"), act.detach().numpy())
    np.testing.assert_allclose(sw.saliency(model, x, 1, layer="0"), ref.numpy(), rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------- logits
class CustomSoftmax(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.fc = nn.Linear(5, 4)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):
        return self.softmax(self.fc(x))


class FunctionalSoftmax(CustomSoftmax):
    def forward(self, x):
        return torch.softmax(self.fc(x), dim=-1)


def test_custom_module_ending_in_self_softmax_explains_logits(rng):
    model = CustomSoftmax().eval()
    x = rng.normal(size=(2, 5)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    (ref,) = torch.autograd.grad(model.fc(xt)[:, 2].sum(), xt)
    np.testing.assert_allclose(sw.saliency(model, x, target=2), ref.numpy(), rtol=1e-5, atol=1e-7)
    assert not np.allclose(sw.saliency(model, x, target=2, output="probabilities"), ref.numpy(), rtol=0.1)


def test_functional_softmax_warns_and_names_head(rng):
    x = rng.normal(size=(2, 5)).astype(np.float32)
    with pytest.warns(sw.SaliencyWarning, match="head="):
        sw.saliency(FunctionalSoftmax().eval(), x, target=1)
    model = FunctionalSoftmax().eval()
    xt = torch.tensor(x, requires_grad=True)
    (ref,) = torch.autograd.grad(model.fc(xt)[:, 1].sum(), xt)
    np.testing.assert_allclose(sw.saliency(model, x, target=1, head="fc"), ref.numpy(), rtol=1e-5, atol=1e-7)


# ------------------------------------------------------- samples never mix
class TimeMajorGRU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.gru = nn.GRU(3, 4)  # batch_first=False
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out[-1])


class BatchCentred(nn.Module):
    def forward(self, x):
        return x - x.mean(0, keepdim=True)


def test_time_major_rnn_and_batch_mixing_models_are_refused(rng):
    x = rng.normal(size=(4, 4, 3)).astype(np.float32)  # output's first axis equals the batch size
    with pytest.raises(sw.SaliencyError, match="batch_first"):
        sw.saliency(TimeMajorGRU().eval(), x, target=0)
    with pytest.raises(sw.SaliencyError, match="mixes samples"):
        sw.saliency(BatchCentred(), rng.normal(size=(3, 4)).astype(np.float32), target=0)


def test_half_precision_inputs_and_models(rng):
    from tests.models import torch_mlp

    model = torch_mlp()
    x = rng.normal(size=(2, 6)).astype(np.float32)
    reference = sw.saliency(model, x, target=1)
    from_bf16 = sw.saliency(model, torch.tensor(x).to(torch.bfloat16), target=1)
    assert from_bf16.dtype == np.float32
    np.testing.assert_allclose(from_bf16, reference, rtol=0.05, atol=0.02)
    for dtype in (torch.bfloat16, torch.float16):
        low = torch_mlp().to(dtype)
        got = sw.saliency(low, torch.tensor(x).to(dtype), target=1)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, reference, rtol=0.1, atol=0.05)


def test_smoothgrad_of_two_entries_is_the_same_whatever_the_pass_sizes(rng, monkeypatch):
    """Each attributed entry draws its own noise stream (the first default_rng(seed)'s, the second
    a child of that seed; torch draws each copy with a seed from its stream), copy after copy: how
    the search splits the copies into passes, which changes from call to call, does not change the map."""

    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.a, self.b = nn.Linear(6, 4), nn.Linear(3, 4)

        def forward(self, u, v):
            return torch.tanh(self.a(u)) * self.b(v)

    model = Two().eval()
    u, v = rng.normal(size=(2, 6)).astype(np.float32), rng.normal(size=(2, 3)).astype(np.float32)
    monkeypatch.setattr(sw.config, "chunk_budget_bytes", 2 * 36 * 32 * 4)  # passes of 2, 4, 8 … copies
    maps = [sw.saliency(model, (u, v), 1, method="smoothgrad", n_samples=24, noise=0.2, seed=5) for _ in range(4)]
    sequence = np.random.SeedSequence(5)
    streams = [np.random.Generator(np.random.PCG64(s)) for s in (sequence, *sequence.spawn(1))]
    noisy = [x + np.float32(0.2) * (x.max(1, keepdims=True) - x.min(1, keepdims=True))
             * torch_noise(r, 24, x.shape) for x, r in zip((u, v), streams)]
    expected = [np.mean([autograd(model, (nu, nv), 1, wrt) for nu, nv in zip(*noisy)], axis=0) for wrt in (0, 1)]
    for got in maps:
        for entry, want in zip(got, expected):
            np.testing.assert_allclose(entry, want, rtol=1e-5, atol=1e-7)
