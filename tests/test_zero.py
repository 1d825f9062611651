"""The rule that says a displayed map is zero up to float rounding (saliency_widgets/zero.py)."""

import numpy as np
import pytest

from saliency_widgets.zero import SUM_RTOL, zero_reason, zero_sentence

LAYERNORM = "the signed gradient summed over the embedding axis is 0 up to rounding"


def layernorm_input_gradient(tokens=6, dim=64, seed=0):
    """The gradient a LayerNorm passes to its input, in float32: its sum over the feature axis is 0 exactly."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(tokens, dim))
    g = rng.normal(size=(tokens, dim))
    mu, sd = x.mean(-1, keepdims=True), x.std(-1, keepdims=True)
    xhat = (x - mu) / sd
    return ((g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True)) / sd).astype(np.float32)


def test_a_sum_that_cancels_to_rounding_is_zero_with_the_layernorm_reason():
    grad = layernorm_input_gradient()
    summed = grad.sum(-1, dtype=np.float64)
    assert 0 < np.abs(summed).max() <= 1e-6 * np.abs(grad).sum(-1).max()  # float32 noise, not 0
    reason = zero_reason(grad, method="gradient", summed_axis=1, axis_name="embedding")
    assert reason == (f"{LAYERNORM}: the embeddings feed a normalisation layer; use input × gradient")
    assert zero_reason(grad, method="smoothgrad", summed_axis=1).startswith("SmoothGrad's signed gradient summed")
    assert zero_reason(grad, method="input_x_gradient", summed_axis=1).endswith("its terms cancel; use integrated gradients")
    assert "channel axis" in zero_reason(grad.T, method="gradient", summed_axis=0, axis_name="channel")


def test_a_sum_that_means_something_is_not_zero():
    grad = layernorm_input_gradient()
    rng = np.random.default_rng(1)
    assert zero_reason(grad * rng.normal(size=grad.shape).astype(np.float32), method="input_x_gradient", summed_axis=1) is None
    # one token whose sum is a real value (10 × the threshold) is enough
    grad[2, 0] += 10 * SUM_RTOL * np.abs(grad[2]).sum()
    assert zero_reason(grad, method="gradient", summed_axis=1) is None


def test_tiny_values_that_are_not_a_sum_are_not_rounding_noise():
    values = np.full((4, 5), 1e-12, dtype=np.float32)
    assert zero_reason(values, method="gradient") is None
    assert zero_reason(values, method="gradient", summed_axis=1) is None  # nothing cancels


def test_exact_zeros_name_grad_cams_relu_or_a_flat_score():
    zeros = np.zeros((8, 8), dtype=np.float32)
    assert zero_reason(zeros, method="gradcam") == (
        "Grad-CAM's ReLU clipped every pixel: no location raises this score; try relu=False or another layer")
    assert zero_reason(zeros, method="gradcam_plus_plus").startswith("Grad-CAM++'s ReLU clipped every pixel")
    assert zero_reason(zeros, method="gradcam", relu=False).startswith("the map is exactly 0 everywhere")
    assert zero_reason(zeros, method="gradient").startswith("the map is exactly 0 everywhere")
    assert zero_reason(np.zeros((3, 4, 4)), method="gradient", summed_axis=0, axis_name="channel").startswith("the map is exactly 0")


def test_only_shown_cells_count_and_non_finite_maps_are_left_to_other_warnings():
    grad = layernorm_input_gradient(tokens=4)
    grad[3] = 1.0  # a padding position with a real (hidden) value
    assert zero_reason(grad, method="gradient", summed_axis=1) is None
    shown = np.array([True, True, True, False])
    assert zero_reason(grad, method="gradient", summed_axis=1, shown=shown).startswith(LAYERNORM)
    assert zero_reason(grad, method="gradient", summed_axis=1, shown=np.zeros(4, bool)) is None
    grad[0, 0] = np.nan
    assert zero_reason(grad, method="gradient", summed_axis=1, shown=shown) is None


def test_the_sentence_shown_in_place_of_the_colour_bar():
    assert zero_sentence("the map is exactly 0 everywhere: x") == "Zero map. The map is exactly 0 everywhere: x."


@pytest.mark.parametrize("dim", [16, 768])
def test_bert_word_embedding_gradients_are_zero_and_input_x_gradient_is_not(tmp_path, dim):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers import BertConfig, BertForSequenceClassification

    import saliency_widgets as sw

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=20, hidden_size=dim, num_hidden_layers=1, num_attention_heads=2,
                                                     intermediate_size=32, max_position_embeddings=8, num_labels=2)).eval()
    ids = np.array([[2, 5, 6, 7, 3]])
    x = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    words = model.bert.embeddings.word_embeddings
    grad = sw.saliency(model, x, target=1, layer=words)[0]
    assert zero_reason(grad, method="gradient", summed_axis=1).startswith(LAYERNORM)
    ixg = sw.saliency(model, x, target=1, layer=words, method="input_x_gradient")[0]
    assert zero_reason(ixg, method="input_x_gradient", summed_axis=1) is None
