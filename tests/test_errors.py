"""Bad input gets a clear error (or warning), never a framework stack trace."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import saliency_widgets as sw  # noqa: E402
from _widget_models import FlakyModel, batch  # noqa: E402
from models import keras_mlp, torch_cnn, torch_mlp  # noqa: E402
from saliency_widgets.errors import describe  # noqa: E402
from saliency_widgets.export import format_value  # noqa: E402
from saliency_widgets.widgets import SaliencyMap  # noqa: E402
from saliency_widgets.widgets.standalone import record_messages  # noqa: E402


def test_wrong_input_shape_says_what_the_model_expects():
    with pytest.raises(sw.SaliencyError, match=r"shape \(2, 5\).*\(batch, \.\.\., 6\)") as info:
        sw.saliency(torch_mlp(), np.zeros((2, 5), np.float32))
    assert info.value.__cause__ is None and info.value.__suppress_context__
    with pytest.raises(sw.SaliencyError, match=r"shape \(1, 12, 12, 3\).*\(batch, 3, height, width\)"):
        sw.saliency(torch_cnn(), np.zeros((1, 12, 12, 3), np.float32))


def test_wrong_input_shape_keras():
    with pytest.raises(sw.SaliencyError, match=r"shape \(2, 5\).*expects \(batch, 6\)"):
        sw.jacobian(keras_mlp(), np.zeros((2, 5), np.float32))


@pytest.mark.parametrize("target, message", [
    (4, r"target 4 is out of range: the model has 4 outputs per sample \(valid: 0 to 3\)"),
    (-1, r"valid: 0 to 3"),
    ([0, 1, 2], r"got 3 targets for a batch of 2"),
    ((0, 1), r"does not index one sample's output of shape \(4,\)"),
    ("cat", r"target must be None, an int"),
])
def test_bad_targets(target, message):
    with pytest.raises(sw.SaliencyError, match=message):
        sw.saliency(torch_mlp(), np.zeros((2, 6), np.float32), target=target)


def test_unknown_method_lists_the_methods():
    with pytest.raises(sw.SaliencyError, match="'gradient', 'input_x_gradient', 'smoothgrad', 'integrated_gradients', "
                                               "'gradcam', 'gradcam_plus_plus', 'occlusion'"):
        sw.saliency(torch_mlp(), np.zeros((1, 6), np.float32), method="deconvnet")


def test_unknown_option_lists_accepted_ones():
    with pytest.raises(sw.SaliencyError, match="does not take stepz; it accepts baseline, steps"):
        sw.saliency(torch_mlp(), np.zeros((1, 6), np.float32), method="integrated_gradients", stepz=3)
    with pytest.raises(sw.SaliencyError, match="unknown output 'softmax'"):
        sw.saliency(torch_mlp(), np.zeros((1, 6), np.float32), output="softmax")


@pytest.mark.parametrize("thing", [42, "model.pt", np.zeros(3)])
def test_not_a_model(thing):
    with pytest.raises(sw.NotAModelError, match="expected a model"):
        sw.saliency(thing, np.zeros((1, 6), np.float32))


def test_integer_input_is_not_differentiable():
    with pytest.raises(sw.NonDifferentiableError, match="dtype int64; gradients need a floating-point input"):
        sw.saliency(torch_mlp(), np.zeros((1, 6), np.int64))


class ArgmaxInside(nn.Module):
    def forward(self, x):
        return nn.functional.one_hot(x.argmax(dim=1), 3).float()


def test_argmax_inside_the_model_is_not_differentiable():
    with pytest.raises(sw.NonDifferentiableError, match="does not depend differentiably"):
        sw.saliency(ArgmaxInside(), np.random.rand(2, 3).astype(np.float32))


def test_keras_argmax_inside_the_model_is_not_differentiable():
    keras = pytest.importorskip("keras")
    inputs = keras.Input((3,))
    outputs = keras.layers.Lambda(lambda t: keras.ops.one_hot(keras.ops.argmax(t, axis=1), 3))(inputs)
    with pytest.raises(sw.NonDifferentiableError):
        sw.saliency(keras.Model(inputs, outputs), np.random.rand(2, 3).astype(np.float32))


def test_nan_input_and_gradient_warn():
    x = np.zeros((1, 6), np.float32)
    x[0, 2] = np.nan
    with pytest.warns(sw.SaliencyWarning, match="the input contains 1 NaN"):
        with pytest.warns(sw.SaliencyWarning, match="the attribution contains"):
            sw.saliency(torch_mlp(), x, target=0)


class OverflowsPastOne(nn.Module):
    def forward(self, x):
        return torch.exp(x * 100.0)


def test_non_finite_scores_for_a_finite_input_are_blamed_on_the_model():
    x = np.array([[0.5, 1.0, 2.0]], np.float32)
    with pytest.warns(sw.SaliencyWarning, match="the model's output contains 2 NaN or infinite values for a finite"):
        with pytest.warns(sw.SaliencyWarning, match="the attribution contains 2 NaN or infinite"):
            sw.saliency(OverflowsPastOne(), x, target=2)


def test_a_nan_the_model_masks_out_is_not_reported():
    x = np.array([[1.0, np.nan]], np.float32)
    masked = nn.Sequential(nn.Identity())
    masked.forward = lambda t: torch.nan_to_num(t, nan=0.0) * torch.tensor([2.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(sw.saliency(masked, x, target=0), [[2.0, 0.0]])


def test_saturated_softmax_warns_for_probabilities():
    model = torch_mlp(softmax=True)
    with torch.no_grad():
        model[2].weight.mul_(200)
    x = np.random.default_rng(0).normal(size=(1, 6)).astype(np.float32)
    with pytest.warns(sw.SaliencyWarning, match="softmax output is saturated"):
        sw.saliency(model, x, output="probabilities")


def test_jacobian_over_budget_is_refused_with_a_hint(monkeypatch):
    monkeypatch.setattr(sw.config, "jacobian_budget_bytes", 1000)
    with pytest.raises(sw.MemoryBudgetError, match=r"more than the budget.*pass outputs=\[\.\.\.\]"):
        sw.jacobian(torch_cnn(), np.zeros((1, 3, 12, 12), np.float32))
    monkeypatch.setattr(sw.config, "jacobian_budget_bytes", 3 * 12 * 12 * 4)
    assert sw.jacobian(torch_cnn(), np.zeros((1, 3, 12, 12), np.float32), outputs=[0]).shape == (1, 1, 3, 12, 12)


def test_work_is_chunked_under_the_chunk_budget(monkeypatch, rng):
    model = torch_cnn()
    x = rng.normal(size=(2, 3, 12, 12)).astype(np.float32)
    whole_jacobian = sw.jacobian(model, x)
    whole_ig = sw.saliency(model, x, 2, method="integrated_gradients", steps=5)
    monkeypatch.setattr(sw.config, "chunk_budget_bytes", 1)  # one row / one step per pass
    np.testing.assert_allclose(sw.jacobian(model, x), whole_jacobian, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sw.saliency(model, x, 2, method="integrated_gradients", steps=5),
                               whole_ig, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------ a widget reports the model's own exception
def _banner_messages(sent):
    """The error-banner messages among what a widget sent to its views."""
    return [msg["content"]["message"] for msg, _ in sent
            if msg.get("method") == "custom" and msg["content"].get("type") == "error"]


def test_a_widget_reports_the_models_own_exception_and_clears_it_on_the_next_success(tmp_path):
    model = FlakyModel()
    w = SaliencyMap(model, batch(2, 8), target=0, method="integrated_gradients", method_kwargs={"integrated_gradients": {"steps": 4}})
    before = w.attribution.copy()
    model.failing = True
    with record_messages(w) as sent, pytest.raises(RuntimeError, match="CUDA out of memory") as info:
        w.target = 2
    assert type(info.value) is RuntimeError  # Python sees the model's exception itself
    said = f"the model raised RuntimeError: {FlakyModel.MESSAGE}"
    assert w.error == said and "shape" not in w.error
    assert _banner_messages(sent) == [said]
    assert w.target == 0
    np.testing.assert_array_equal(w.attribution, before)  # the previous view stays
    model.failing = False
    # the banner is a message, not state: never restored on reload, never written into an offline page
    assert "_error" not in w.get_state()
    assert FlakyModel.MESSAGE not in w.to_html(tmp_path / "page.html").read_text(encoding="utf-8")
    with record_messages(w) as sent:
        w.target = 2
    assert w.error == "" and _banner_messages(sent) == [""]
    with record_messages(w) as sent:
        w.target = 3
    assert _banner_messages(sent) == []  # nothing to clear


def test_a_refusal_is_shown_as_written_and_a_bug_of_ours_as_ours():
    assert describe(sw.SaliencyError("target must be in 0..4; got 9")) == "target must be in 0..4; got 9"
    with pytest.raises(ValueError) as info:
        format_value("not a number")  # raised in saliency_widgets' own code
    assert describe(info.value) == ("saliency_widgets failed with ValueError: could not convert string to float: "
                                    "'not a number' (a bug in saliency_widgets: please report it)")
    assert describe(torch.cuda.OutOfMemoryError("CUDA out of memory")).startswith("the model raised torch.")
