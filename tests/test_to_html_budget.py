"""An honest offline page (issue 24, item 6): a size budget that keeps a 224² ViT page small, maps stored as
8-bit values when the page would exceed it, and what needs a kernel named in the page's state."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
import torch
from _widget_models import batch, mlp

from saliency_widgets.config import config
from saliency_widgets.errors import SaliencyError
from saliency_widgets.transport import from_wire, quantized, to_wire
from saliency_widgets.widgets import SaliencyMap

MB = 1_000_000


def page_doc(text: str) -> dict:
    """The state and variants a page embeds, with its buffers put back as bytes."""
    doc = json.loads(re.search(r"const DOC = (.*?);\n", text).group(1))
    for path, b64 in json.loads(re.search(r"const BUFFERS = (.*?);\n", text).group(1)):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = base64.b64decode(b64)
    return doc


@pytest.fixture(scope="module")
def vit():
    """A tiny ViT on 224² images (patch 16, random weights) with 10 classes, and two images."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config_ = transformers.ViTConfig(image_size=224, patch_size=16, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, num_labels=10)
    model = transformers.ViTForImageClassification(config_).eval()
    return model, np.random.default_rng(0).uniform(size=(2, 3, 224, 224)).astype(np.float32)


def test_a_224px_vit_page_fits_3_mb_by_default_with_its_maps_as_8_bit_values(vit, tmp_path):
    model, x = vit
    w = SaliencyMap(model, x)
    page = w.to_html(tmp_path / "vit.html")
    assert page.stat().st_size <= 3 * MB
    doc = page_doc(page.read_text(encoding="utf-8"))
    state, jac = doc["state"], doc["variants"]["_want_jacobian"]["true"]["_jacobian"]
    assert jac["dtype"] == "q8" and len(jac["scales"]) == 10  # every output's row, one scale each
    exact = w._jacobian_of(w.index, w.output)
    np.testing.assert_allclose(from_wire(jac), exact, atol=np.abs(exact).max() / 250)
    assert "8-bit" in state["_page_note"] and "max_bytes" in state["_page_note"]
    assert w._attribution["dtype"] == "float32"  # the widget itself is untouched
    big = page_doc(w.to_html(tmp_path / "exact.html", max_bytes=50 * MB).read_text(encoding="utf-8"))
    assert big["variants"]["_want_jacobian"]["true"]["_jacobian"]["dtype"] == "float32" and "_page_note" not in big["state"]


def test_the_default_vit_with_two_classes_fits_too(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(transformers.ViTConfig(
        image_size=224, patch_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64)).eval()
    x = np.random.default_rng(1).uniform(size=(1, 3, 224, 224)).astype(np.float32)
    assert SaliencyMap(model, x).to_html(tmp_path / "vit2.html").stat().st_size <= 3 * MB


def test_the_budget_is_a_config_entry_and_a_page_that_cannot_fit_is_refused(tmp_path, monkeypatch):
    w = SaliencyMap(mlp(), batch(2, 8))
    with pytest.raises(SaliencyError, match=r"max_bytes=1,000.*larger max_bytes"):
        w.to_html(tmp_path / "x.html", max_bytes=1000)
    with pytest.raises(SaliencyError, match="positive"):
        w.to_html(tmp_path / "x.html", max_bytes=0)
    monkeypatch.setattr(config, "html_budget_bytes", 1000)
    with pytest.raises(SaliencyError, match="max_bytes=1,000"):
        w.to_html(tmp_path / "x.html")


def test_what_only_clicks_show_is_left_out_when_8_bit_maps_are_not_enough(tmp_path):
    from saliency_widgets.widgets.standalone import standalone_html

    w = SaliencyMap(mlp(8, 4000), batch(1, 8))  # a Jacobian of 4,000 rows: the page's one large array
    without = len(standalone_html(w, offline=True).encode("utf-8"))  # no variants: no Jacobian
    doc = page_doc(w.to_html(tmp_path / "fit.html", max_bytes=without + 2000).read_text(encoding="utf-8"))
    assert doc["variants"] == {} and "left out" in doc["state"]["_page_note"]


def test_the_offline_page_offers_no_check_that_runs_the_model(tmp_path):
    doc = page_doc(SaliencyMap(mlp(), batch(2, 8)).to_html(tmp_path / "p.html").read_text(encoding="utf-8"))
    assert doc["state"]["_offline"] and doc["state"]["_on_demand"] == []
    assert doc["state"]["_page_needs"] == ["the deletion / insertion and randomization checks"]


def test_quantized_arrays_keep_zero_and_round_each_row_to_its_own_scale():
    values = np.array([[0.0, 1.0, -0.5], [0.0, 0.0, 0.0], [100.0, -3.0, 0.25]], dtype=np.float32)
    q = quantized(to_wire(values, index=3))
    back = from_wire(q)
    assert q["index"] == 3 and q["shape"] == [3, 3] and len(bytes(q["data"])) == 9
    assert back[0, 0] == 0 and np.all(back[1] == 0)
    for row, scale in zip(np.abs(values - back), np.abs(values).max(axis=1)):
        assert row.max() <= scale / 254 + 1e-7
