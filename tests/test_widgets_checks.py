"""The SaliencyMap's checks strip, kernel side: every number equals ``sw.checks`` called directly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _widget_models import batch, cnn, mlp

import saliency_widgets as sw
from saliency_widgets.errors import SaliencyError
from saliency_widgets.export import STATUS_COLORS
from saliency_widgets.transport import from_wire
from saliency_widgets.widgets import SaliencyMap
from saliency_widgets.widgets import _checks
from saliency_widgets.widgets.standalone import record_messages

TOL = {"rtol": 1e-5, "atol": 1e-6}


@pytest.fixture
def model():
    return mlp()


@pytest.fixture
def x():
    return batch(3, 8)


@pytest.mark.parametrize("steps", [1, 200])
def test_completeness_is_the_checks_module_number_and_warns_above_five_percent(model, x, steps):
    x = 3 * x  # tanh bends between the baseline and x: one step misses more than 5 %
    w = SaliencyMap(model, x, target=1, method="integrated_gradients",
                    method_kwargs={"integrated_gradients": {"steps": steps}})
    item = w.checks["completeness"]
    expected = sw.checks.completeness(model, x[:1], 1, steps=steps)[0]
    assert item["value"] == pytest.approx(expected, rel=1e-4)
    assert item["status"] == ("warn" if expected > 0.05 else "ok")
    assert ("steps" in item["text"]) == (item["status"] == "warn")


def test_the_steps_extremes_give_both_statuses(model, x):
    statuses = {
        SaliencyMap(model, 3 * x, target=1, method="integrated_gradients",
                    method_kwargs={"integrated_gradients": {"steps": s}}).checks["completeness"]["status"]
        for s in (1, 500)
    }
    assert statuses == {"ok", "warn"}


def test_completeness_only_for_integrated_gradients(model, x):
    assert "completeness" not in SaliencyMap(model, x).checks


@pytest.mark.parametrize("method", ["gradient", "input_x_gradient"])
def test_random_logit_comes_from_the_prefetched_jacobian(model, x, method):
    w = SaliencyMap(model, x, target=3, method=method)
    assert "random_logit" not in w.checks  # free only once the Jacobian is there
    w.prefetch()
    w.index = 1
    item = w.checks["random_logit"]
    expected = sw.checks.random_logit(model, x[1:2], 3, method=method, n=_checks.RANDOM_LOGIT_N, seed=_checks.RANDOM_LOGIT_SEED)
    np.testing.assert_array_equal(item["others"], expected.others[0])
    np.testing.assert_allclose(item["correlations"], expected.correlations[0], rtol=1e-6)
    assert item["value"] == pytest.approx(float(expected.mean[0]), rel=1e-6)
    assert item["status"] == ("warn" if expected.mean[0] > 0.9 else "ok")


def test_random_logit_warns_when_every_class_has_the_same_map(x):
    torch.manual_seed(0)
    same = torch.nn.Linear(8, 4)
    with torch.no_grad():
        same.weight.copy_(torch.randn(1, 8).abs() * torch.tensor([[1.0], [2.0], [3.0], [4.0]]))
    w = SaliencyMap(same.eval(), x, target=0)
    w.prefetch()
    assert w.checks["random_logit"]["status"] == "warn"
    assert w.checks["random_logit"]["value"] == pytest.approx(1.0)


def test_random_logit_costs_no_kernel_pass_after_the_prefetch(model, x, monkeypatch):
    w = SaliencyMap(model, x, target=0)
    w.prefetch()
    calls = []
    monkeypatch.setattr(sw.attribution, "attribute", lambda *a, **k: calls.append(1))
    monkeypatch.setattr(sw.attribution, "jacobian", lambda *a, **k: calls.append(1))
    w.target = 4
    assert calls == [] and w.checks["random_logit"]["status"] in ("ok", "warn")


def test_deletion_insertion_on_demand_equals_the_checks_module(model, x):
    w = SaliencyMap(model, x, target=2)
    assert "deletion_insertion" not in w.checks
    states = []
    w.observe(lambda c: states.append(c["new"].get("deletion_insertion", {}).get("status")), "_checks")
    item = w.run_check("deletion_insertion")
    expected = sw.checks.deletion_insertion(model, x[:1], w.attribution[None], 2, steps=_checks.DELETION_STEPS)
    np.testing.assert_allclose(item["deletion"], expected.deletion[0], **TOL)
    np.testing.assert_allclose(item["insertion"], expected.insertion[0], **TOL)
    assert item["deletion_auc"] == pytest.approx(float(expected.deletion_auc[0]), rel=1e-6)
    assert item["insertion_auc"] == pytest.approx(float(expected.insertion_auc[0]), rel=1e-6)
    assert item["status"] == ("warn" if expected.insertion_auc[0] <= expected.deletion_auc[0] else "ok")
    assert states[:2] == ["computing", item["status"]]
    assert w.checks["deletion_insertion"] == item


def test_results_are_kept_per_map(model, x):
    w = SaliencyMap(model, x, target=2)
    item = w.run_check("deletion_insertion")
    w.target = 0
    assert "deletion_insertion" not in w.checks
    w.target = 2
    assert w.checks["deletion_insertion"] == item


def test_randomization_row_equals_the_checks_module_and_leaves_the_model_alone(model, x):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    w = SaliencyMap(model, x, target=1)
    item = w.run_check("randomization")
    expected = sw.checks.randomization(model, x[:1], 1, seed=_checks.RANDOMIZATION_SEED)
    assert item["layers"] == expected.layers
    np.testing.assert_allclose(item["spearman"], expected.spearman[:, 0], **TOL)
    np.testing.assert_allclose(item["ssim"], expected.ssim[:, 0], **TOL)
    rows = from_wire(w._randomization_maps)
    np.testing.assert_allclose(rows, expected.maps[:, 0], **TOL)
    assert w._randomization_maps["target"] == 1
    assert item["status"] == ("warn" if expected.spearman[-1, 0] > 0.5 else "ok")
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_a_browser_request_runs_the_check(model, x):
    w = SaliencyMap(model, x, target=0)
    with record_messages(w) as sent:
        w.set_state({"_check_request": {"name": "deletion_insertion", "n": 1}})
    assert w.checks["deletion_insertion"]["status"] in ("ok", "warn")
    statuses = [m["state"]["_checks"].get("deletion_insertion", {}).get("status")
                for m, _ in sent if "_checks" in m["state"]]
    assert statuses == ["computing", w.checks["deletion_insertion"]["status"]]


def test_unknown_checks_and_structured_inputs_are_refused(model, x):
    w = SaliencyMap(model, x)
    with pytest.raises(SaliencyError, match="deletion_insertion"):
        w.run_check("nonsense")
    assert w.error


def test_gradcam_is_offered_with_a_layer_picker_for_image_models():
    model, xi = cnn(), batch(2, 3, 8, 8)
    assert "gradcam" not in SaliencyMap(mlp(), batch(1, 8))._methods
    w = SaliencyMap(model, xi, target=4)
    assert {"gradcam", "gradcam_plus_plus", "occlusion"} <= set(w._methods)
    assert w._cam_layers == ["0", "1"]
    assert w._cam_layer_labels == ["0 · Conv2d · 4×8×8", "1 · Tanh · 4×8×8"]
    w.method = "gradcam"
    np.testing.assert_allclose(w.attribution, sw.saliency(model, xi[:1], target=4, method="gradcam")[0], **TOL)
    w.cam_layer = "0"
    np.testing.assert_allclose(w.attribution, sw.saliency(model, xi[:1], target=4, method="gradcam", layer="0")[0], **TOL)
    assert from_wire(w._attribution).shape == (8, 8)
    with pytest.raises(SaliencyError, match="cam_layer"):
        w.cam_layer = "3"
    item = w.run_check("deletion_insertion")  # a Grad-CAM map ranks whole pixels
    ranking = w.attribution[None, None]  # (1, 1, H, W): broadcast over the channels
    expected = sw.checks.deletion_insertion(model, xi[:1], ranking, 4, steps=_checks.DELETION_STEPS)
    np.testing.assert_allclose(item["deletion"], expected.deletion[0], **TOL)


def test_figure_with_checks_shows_the_strip_in_the_screens_colours(model, x):
    w = SaliencyMap(model, 3 * x, target=1, method="integrated_gradients",
                    method_kwargs={"integrated_gradients": {"steps": 1}})
    w.run_check("deletion_insertion")
    w.run_check("randomization")
    fig = w.to_figure(checks=True)
    texts = [t.get_text() for sub in fig.subfigs for ax in sub.axes for t in ax.texts]
    assert any(t.startswith("completeness (warn)") for t in texts)
    dots = [tuple(np.round(c.get_facecolor()[0][:3], 3)) for sub in fig.subfigs for ax in sub.axes for c in ax.collections]
    hexes = {"#" + "".join(f"{round(v * 255):02x}" for v in d) for d in dots}
    assert hexes == {STATUS_COLORS[w.checks[n]["status"]] for n in ("completeness", "deletion_insertion", "randomization")}
    rho_labels = [ax.get_xlabel() for ax in fig.subfigs[1].axes if ax.get_xlabel().startswith("ρ")]
    assert len(rho_labels) == len(w.checks["randomization"]["layers"])
    assert len(fig.subfigs[1].axes[1].lines) == 2  # the deletion and insertion curves
    assert fig.subfigs[1].axes[2].get_title() == "original"
    assert len(w.to_figure().axes) < len(fig.axes)


def test_offline_page_answers_the_jacobian_request(model, x):
    w = SaliencyMap(model, x)
    patch = w._html_variants()["_want_jacobian"]["true"]["_jacobian"]
    np.testing.assert_allclose(from_wire(patch), sw.jacobian(model, x[:1])[0], **TOL)


def test_keras_cnn_offers_gradcam_and_runs_the_checks():
    pytest.importorskip("keras")
    from models import keras_cnn

    model, xk = keras_cnn(), batch(2, 12, 12, 3)
    w = SaliencyMap(model, xk, target=1)
    assert w._cam_layers == [layer.name for layer in model.layers[:4]] and "gradcam_plus_plus" in w._methods
    w.method = "gradcam_plus_plus"
    np.testing.assert_allclose(w.attribution, sw.saliency(model, xk[:1], target=1, method="gradcam_plus_plus")[0], **TOL)
    item = w.run_check("deletion_insertion")  # (1, H, W, 1): whole pixels, channels last
    expected = sw.checks.deletion_insertion(model, xk[:1], w.attribution[None, ..., None], 1, steps=_checks.DELETION_STEPS)
    np.testing.assert_allclose(item["deletion"], expected.deletion[0], **TOL)


def test_the_screen_uses_the_figures_colours():
    import json
    import pathlib
    import re

    from saliency_widgets.export import CURVE_COLORS

    source = (pathlib.Path(__file__).parents[1] / "js" / "src" / "checks_strip.ts").read_text()
    for name, expected in (("STATUS_COLORS", STATUS_COLORS), ("CURVE_COLORS", CURVE_COLORS)):
        literal = re.search(name + r" = (\{[^}]*\})", source).group(1)
        assert json.loads(re.sub(r"(\w+):", r'"\1":', literal)) == expected


def test_the_pages_jacobian_request_sends_it_and_the_random_logit(model, x):
    w = SaliencyMap(model, x, target=2)
    with record_messages(w) as sent:
        w.set_state({"_want_jacobian": True})  # what the page sends after its first paint
    state = {k for m, _ in sent for k in m["state"]}
    assert {"_jacobian", "_checks"} <= state
    np.testing.assert_allclose(from_wire(w._jacobian), sw.jacobian(model, x[:1])[0], **TOL)
    assert "random_logit" in w.checks
