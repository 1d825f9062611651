"""Tier B: the text view (an embedding layer's attribution as token chips) in headless Chromium."""

import re

import numpy as np
import pytest

from saliency_widgets import colors
from saliency_widgets.widgets import SaliencyMap

pytestmark = pytest.mark.browser
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


def tiny_bert():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=3)
    return BertForSequenceClassification(config).eval()


TOKENS = [["[CLS]", "the", "film", "was", "great", "[SEP]", "[PAD]"], ["[CLS]", "a", "long", "dull", "plot", "again", "[SEP]"]]


def chip_colours(page):
    styles = page.eval_on_selector_all('[data-sw-token]:not([hidden])', "els => els.map(e => getComputedStyle(e).backgroundColor)")
    return np.array([[int(v) for v in re.findall(r"\d+", s)[:3]] for s in styles])


def test_token_chips_follow_the_clicked_output_and_hide_padding(show, artifacts):
    ids = np.array([[2, 7, 9, 11, 12, 3, 0], [2, 5, 6, 8, 13, 14, 3]], dtype=np.int64)
    model = tiny_bert()
    w = SaliencyMap(model, {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)},
                    layer=model.bert.embeddings, tokens=TOKENS, labels=["neg", "neutral", "pos"], target=0)
    assert w._layout["kind"] == "text"
    assert w.method == "input_x_gradient"  # the default of a text view: a per-token sum that means something
    page = show(w)
    assert page.input_value('[data-sw-action="method"]') == "input_x_gradient"
    assert page.get_attribute('[data-sw-token="6"]', "hidden") is not None  # padding (attention_mask 0)
    assert page.inner_text('[data-sw-token="4"]') == "great"
    before = chip_colours(page)
    page.click('[data-sw-output="2"]')
    page.wait_for_function("window.__sw.log.length > 0")
    after = chip_colours(page)
    assert after.shape == (6, 3) and not np.array_equal(before, after)
    w.target = 2
    summed = w.attribution.sum(-1)
    expected = colors.colorize(summed, "all", 2.0)[:6, :3]
    np.testing.assert_array_equal(after, expected)
    page.screenshot(path=str(artifacts / "text-view.png"))
