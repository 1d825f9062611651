"""Tier A: SaliencyMap driven from Python, without a browser."""

import json

import numpy as np
import pytest
from _widget_models import batch, cnn, mlp
from matplotlib.text import Text

import saliency_widgets as sw
from saliency_widgets import colors
from saliency_widgets.config import config
from saliency_widgets.errors import SaliencyError, SaliencyWarning
from saliency_widgets.export import format_value
from saliency_widgets.transport import from_wire
from saliency_widgets.widgets import SaliencyMap
from saliency_widgets.widgets.standalone import record_messages

TOL = dict(rtol=1e-5, atol=1e-6)


@pytest.fixture
def model():
    return mlp()


@pytest.fixture
def x():
    return batch(3, 8)


@pytest.fixture
def no_prefetch(monkeypatch):
    monkeypatch.setattr(config, "prefetch_budget_bytes", 0)


def test_starts_on_the_argmax_with_the_engines_attribution(model, x):
    w = SaliencyMap(model, x, labels=list("abcde"))
    scores = model(__import__("torch").as_tensor(x)).detach().numpy()
    assert w.target == int(scores[0].argmax())
    np.testing.assert_allclose(w.attribution, sw.saliency(model, x, target=w.target)[0], **TOL)
    np.testing.assert_allclose(from_wire(w._scores), scores[0], **TOL)
    assert w._labels == list("abcde")


def test_retarget_uses_the_prefetched_jacobian_without_resending(model, x):
    w = SaliencyMap(model, x)
    assert w._jacobian is None and w._prefetchable  # sent after the first paint, when the browser asks
    w.prefetch()
    assert w._jacobian is not None and w._jacobian["shape"] == [5, 8]
    np.testing.assert_allclose(from_wire(w._jacobian), sw.jacobian(model, x)[0], **TOL)
    with record_messages(w) as sent:
        w.target = 2
    np.testing.assert_allclose(w.attribution, sw.saliency(model, x, target=2)[0], **TOL)
    # the browser derives the map itself; the kernel only updates the checks (random logit)
    assert [sorted(m["state"]) for m, _ in sent] == [["target"], ["_checks"]]


def test_input_x_gradient_is_derived_locally_too(model, x):
    w = SaliencyMap(model, x, target=1, method="input_x_gradient")
    assert w._attribution["target"] == 1  # the first map comes from the kernel, before the Jacobian
    w.prefetch()
    with record_messages(w) as sent:
        w.target = 0
    np.testing.assert_allclose(w.attribution, sw.saliency(model, x, target=0, method="input_x_gradient")[0], **TOL)
    assert "_attribution" not in {k for m, _ in sent for k in m["state"]}


def test_method_change_sends_a_tagged_map(model, x):
    w = SaliencyMap(model, x, target=3, method_kwargs={"smoothgrad": {"n_samples": 8, "seed": 0}})
    w.method = "smoothgrad"
    expected = sw.saliency(model, x[:1], target=3, method="smoothgrad", n_samples=8, seed=0)[0]
    np.testing.assert_allclose(w.attribution, expected, **TOL)
    tag = {k: w._attribution[k] for k in ("target", "index", "method", "output")}
    assert tag == {"target": 3, "index": 0, "method": "smoothgrad", "output": "logits"}
    np.testing.assert_allclose(from_wire(w._attribution), expected, **TOL)


def test_integrated_gradients_reports_completeness(model, x):
    w = SaliencyMap(model, x, target=0, method="integrated_gradients")
    assert w.completeness_error is not None and w.completeness_error < 1e-2
    assert w._attribution["completeness_error"] == pytest.approx(w.completeness_error)
    np.testing.assert_allclose(w.attribution, sw.saliency(model, x, target=0, method="integrated_gradients")[0], rtol=1e-4, atol=1e-5)


def test_sample_index_switches_scores_input_jacobian_and_map(model, x):
    w = SaliencyMap(model, x, target=2)
    w.prefetch()
    w.index = 2
    assert w.target == 2
    np.testing.assert_allclose(w.attribution, sw.saliency(model, x, target=2)[2], **TOL)
    np.testing.assert_array_equal(from_wire(w._input), x[2])
    assert w._input["index"] == w._jacobian["index"] == w._scores["index"] == 2
    np.testing.assert_allclose(from_wire(w._jacobian), sw.jacobian(model, x)[2], **TOL)


def test_without_prefetch_every_retarget_is_computed_and_tagged(model, x, no_prefetch):
    w = SaliencyMap(model, x, target=0)
    assert w._jacobian is None
    with record_messages(w) as sent:
        w.target = 4
    assert w._attribution["target"] == 4
    np.testing.assert_allclose(from_wire(w._attribution), sw.saliency(model, x, target=4)[0], **TOL)
    assert [sorted(m["state"]) for m, _ in sent] == [["target"], ["_attribution", "_checks"]]
    msg, buffers = sent[1]
    payload = 8 * 4
    assert sum(map(len, buffers)) == payload
    assert len(json.dumps(msg)) < 450  # metadata only: no JSON float lists (8 floats would add ~160)


def test_a_browser_click_updates_the_kernel(model, x):
    w = SaliencyMap(model, x, target=0)
    w.set_state({"target": 3})  # what ipywidgets does with the browser's update
    assert w.target == 3
    np.testing.assert_allclose(w.attribution, sw.saliency(model, x, target=3)[0], **TOL)


def test_bad_values_raise_and_keep_the_previous_view(model, x):
    w = SaliencyMap(model, x, target=1, method_kwargs={"integrated_gradients": {"steps": 0}})
    before = w.attribution.copy()
    with pytest.raises(SaliencyError, match="target must be a flat output index in 0..4"):
        w.target = 9
    assert w.target == 1 and "target must be" in w.error
    with pytest.raises(SaliencyError):
        w.method = "integrated_gradients"  # steps=0 makes the engine refuse
    assert w.method == "gradient" and w.error
    np.testing.assert_array_equal(w.attribution, before)
    w.target = 2
    assert w.error == ""
    with pytest.raises(SaliencyError, match="index must be in 0..2"):
        w.index = 3


def test_a_bad_trait_value_shows_the_users_line_not_traitlets_internals(model, x):
    import traceback

    w = SaliencyMap(model, x, target=1)
    with pytest.raises(SaliencyError) as info:
        w.target = 99
    frames = traceback.extract_tb(info.value.__traceback__)
    assert [f.name for f in frames] == ["test_a_bad_trait_value_shows_the_users_line_not_traitlets_internals", "__setattr__"]
    assert frames[0].line == "w.target = 99"
    assert info.value.__suppress_context__ and info.value.__cause__ is None
    text = "".join(traceback.format_exception(info.value))
    assert "traitlets/" not in text and len(text.splitlines()) <= 10
    assert w.target == 1 and "got 99" in w.error


def test_constructor_checks_user_data(model, x):
    with pytest.raises(SaliencyError, match="labels= has 2 entries but the model has 5 outputs"):
        SaliencyMap(model, x, labels=["a", "b"])
    with pytest.raises(SaliencyError, match="feature_names= has 1 entries"):
        SaliencyMap(model, x, feature_names=["a"])
    with pytest.raises(SaliencyError, match="leading batch axis"):
        SaliencyMap(model, x[0])


def test_lock_scale_freezes_the_colour_range(model, x):
    w = SaliencyMap(model, x, target=0)
    w.lock_scale = True
    locked = w.scale_max
    assert locked == colors.scale_max(w.attribution, "all", 2.0)
    w.target = 3
    assert w.scale_max == locked
    w.lock_scale = False
    assert w.scale_max == 0.0


def test_torch_image_is_channels_first_and_summed_over_channels():
    model, xi = cnn(), batch(2, 3, 8, 8, seed=1)
    w = SaliencyMap(model, xi, target=4, method_kwargs={"smoothgrad": {"n_samples": 4, "seed": 1}})
    assert w._layout["kind"] == "image" and w._layout["channel_axis"] == 0
    assert w._image["shape"] == [8, 8, 3] and w._image["dtype"] == "uint8"
    w.method = "smoothgrad"
    expected = sw.saliency(model, xi[:1], target=4, method="smoothgrad", n_samples=4, seed=1)[0]
    np.testing.assert_allclose(from_wire(w._attribution), expected.sum(axis=0), rtol=1e-4, atol=1e-6)


def test_sequences_are_time_by_feature():
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6 * 2, 3))
    w = SaliencyMap(model, batch(2, 6, 2), feature_names=["price", "volume"])
    assert w._layout["kind"] == "sequence" and w._layout["display_shape"] == [6, 2]
    assert w._feature_names == ["price", "volume"]


@pytest.mark.slow
def test_keras_images_are_channels_last():
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(2, 3), keras.layers.Flatten(), keras.layers.Dense(4)])
    xk = batch(2, 6, 6, 3, seed=3)
    w = SaliencyMap(model, xk, target=1)
    assert w._layout["channel_axis"] == 2 and w._layout["display_shape"] == [6, 6]
    np.testing.assert_allclose(w.attribution, sw.saliency(model, xk, target=1)[0], rtol=1e-4, atol=1e-6)


def test_a_batch_of_pictures_is_drawn_per_sample():
    from saliency_widgets.inputs import background_image

    x = batch(3, 3, 8, 8, seed=1)
    pictures = np.random.default_rng(5).uniform(size=(3, 8, 8))
    w = SaliencyMap(cnn(), x, image=pictures)
    for i in (0, 2):
        w.index = i
        want = background_image(x[i], w._layout_info, pictures[i])
        np.testing.assert_array_equal(from_wire(w._image), want)
        assert w._image["index"] == i
    assert not np.array_equal(from_wire(w._image), background_image(x[0], w._layout_info, pictures[0]))
    with pytest.raises(SaliencyError, match="image= holds 2 pictures but x has 3 samples"):
        SaliencyMap(cnn(), x, image=np.zeros((2, 8, 8, 3)))


def test_true_labels_are_shown_with_the_prediction(model, x):
    w = SaliencyMap(model, x, labels=list("abcde"), y=[4, 0, 2])
    assert w._truth == ["e", "a", "c"]
    predicted = "abcde"[int(w._all_scores("logits")[0].argmax())]
    assert f"predicted “{predicted}” · true “e”" in w.to_figure().axes[0].get_title()
    assert SaliencyMap(model, x, y=np.array(["cat", "dog", "cat"]))._truth == ["cat", "dog", "cat"]
    with pytest.raises(SaliencyError, match="y= has 2 entries but x has 3 samples"):
        SaliencyMap(model, x, y=[1, 2])
    with pytest.raises(SaliencyError, match="y= holds class 7, outside the model's outputs 0..4"):
        SaliencyMap(model, x, y=[1, 7, 2])


def test_array_traits_are_never_echoed_back(model, x):
    w = SaliencyMap(model, x, target=0)
    with record_messages(w) as sent:
        w.set_state({"target": 2, "_luts": w._luts, "_scores": w._scores})  # a host sending the whole state
    echoed = [m for m, _ in sent if m.get("method") == "echo_update"]
    assert echoed and set(echoed[0]["state"]) == {"target"}


# ------------------------------------------------------------- the request a map answers
def test_every_sent_map_carries_the_request_it_answers(model, x, no_prefetch):
    w = SaliencyMap(model, x, target=0, method_kwargs={"integrated_gradients": {"steps": 8}})
    w.set_state({"method": "integrated_gradients", "_request": 1})  # what the browser sends
    tag = {k: w._attribution[k] for k in ("target", "index", "method", "output", "cam_layer", "request", "note")}
    assert tag == {"target": 0, "index": 0, "method": "integrated_gradients", "output": "logits", "cam_layer": "",
                   "request": 1, "note": ""}
    w.target = 2  # a change made in Python answers the browser's latest request number
    assert (w._attribution["target"], w._attribution["request"]) == (2, 1)
    np.testing.assert_allclose(w.attribution, sw.saliency(model, x, target=2, method="integrated_gradients", steps=8)[0],
                               rtol=1e-4, atol=1e-5)


def test_attribution_is_always_the_map_of_the_current_request(model, x):
    w = SaliencyMap(model, x, target=0, method_kwargs={"integrated_gradients": {"steps": 8}})
    w.prefetch()
    w.set_state({"method": "integrated_gradients", "_request": 1})
    w.set_state({"method": "gradient", "_request": 2})  # derived in the browser: no map is sent ...
    assert w._attribution["request"] == 1 and w._attribution["method"] == "integrated_gradients"
    np.testing.assert_allclose(w.attribution, sw.saliency(model, x, target=0)[0], **TOL)  # ... Python has the new one
    w.set_state({"target": 3, "method": "integrated_gradients", "_request": 3})
    np.testing.assert_allclose(w.attribution, sw.saliency(model, x, target=3, method="integrated_gradients", steps=8)[0],
                               rtol=1e-4, atol=1e-5)
    assert (w._attribution["target"], w._attribution["method"], w._attribution["request"]) == (3, "integrated_gradients", 3)


def test_a_failed_browser_request_is_answered_with_the_map_that_stays(model, x, no_prefetch):
    w = SaliencyMap(model, x, target=1, method="smoothgrad",
                    method_kwargs={"smoothgrad": {"n_samples": 4, "seed": 0}, "integrated_gradients": {"steps": 0}})
    before = w.attribution.copy()
    with pytest.raises(SaliencyError):
        w.set_state({"method": "integrated_gradients", "_request": 5})  # steps=0: the engine refuses
    assert w.method == "smoothgrad" and w.error
    # the browser waits for an answer to request 5: the smoothgrad map it keeps, so tagged
    assert (w._attribution["method"], w._attribution["request"]) == ("smoothgrad", 5)
    np.testing.assert_array_equal(w.attribution, before)
    np.testing.assert_array_equal(from_wire(w._attribution), before)


def test_grad_cam_maps_are_tagged_with_their_layer():
    w = SaliencyMap(cnn(), batch(1, 3, 8, 8, seed=1), target=3, method="gradcam")
    first = w._cam_layers[0]
    w.set_state({"cam_layer": first, "_request": 1})
    assert (w._attribution["cam_layer"], w._attribution["request"]) == (first, 1)
    np.testing.assert_allclose(w.attribution, sw.saliency(cnn(), batch(1, 3, 8, 8, seed=1), target=3, method="gradcam",
                                                          layer=first)[0], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------- maps that are zero up to rounding
def test_text_view_defaults_to_input_x_gradient(tmp_path):
    pytest.importorskip("transformers")
    from _widget_models import tiny_bert

    bert, tokenizer, xt = tiny_bert(tmp_path)
    words = bert.bert.embeddings.word_embeddings
    w = SaliencyMap(bert, xt, layer=words, tokens=tokenizer)
    assert w._layout["kind"] == "text" and w.method == "input_x_gradient" and w.note == ""
    np.testing.assert_allclose(w.attribution, sw.saliency(bert, xt, target=w.target, layer=words,
                                                          method="input_x_gradient")[0], **TOL)
    with pytest.warns(SaliencyWarning):  # an explicit method= stays, even this one (see the next test)
        assert SaliencyMap(bert, xt, layer=words, method="gradient").method == "gradient"
    assert SaliencyMap(mlp(), batch(2, 8)).method == "gradient"  # other views keep the signed gradient


def test_a_signed_gradient_summed_over_a_layernormed_embedding_is_said_to_be_zero(tmp_path):
    pytest.importorskip("transformers")
    from _widget_models import tiny_bert

    from saliency_widgets.export import COLORBAR_GID
    from saliency_widgets.zero import zero_sentence

    bert, tokenizer, xt = tiny_bert(tmp_path)
    with pytest.warns(SaliencyWarning, match="embedding axis is 0 up to rounding"):
        w = SaliencyMap(bert, xt, layer=bert.bert.embeddings.word_embeddings, tokens=tokenizer, method="gradient")
    assert w.note == ("the signed gradient summed over the embedding axis is 0 up to rounding: "
                      "the embeddings feed a normalisation layer; use input × gradient")
    assert w._attribution["note"] == w.note  # the browser shows it (neutral chips, the sentence, no colour bar)
    summed = w.attribution.sum(-1)
    assert 0 < np.abs(summed).max() < 1e-5 * np.abs(w.attribution).sum(-1).max()  # rounding noise, not exact 0
    fig = w.to_figure()
    texts = [t.get_text() for t in fig.findobj(Text)]
    assert zero_sentence(w.note).replace("\n", " ") in [t.replace("\n", " ") for t in texts]
    assert not [im for ax in fig.axes for im in ax.get_images() if im.get_gid() == COLORBAR_GID]
    neutral = colors.sign_lut("all")[128][:3] / 255  # every chip has the colour of 0
    fills = [p.get_facecolor()[:3] for t in fig.axes[0].texts if (p := t.get_bbox_patch()) is not None]
    assert fills and np.allclose(fills, neutral)
    w.method = "input_x_gradient"
    assert w.note == "" and w._attribution["note"] == ""


def test_grad_cam_whose_relu_clips_every_pixel_is_said_to_be_zero():
    from _widget_models import clipping_cnn

    net, xi = clipping_cnn(), batch(1, 3, 8, 8, seed=4)
    w = SaliencyMap(net, xi, target=0, method="gradcam")
    assert w.note == "" and w.attribution.max() > 0
    with pytest.warns(SaliencyWarning, match="ReLU clipped every pixel"):
        w.target = 1
    assert w.note == "Grad-CAM's ReLU clipped every pixel: no location raises this score; try relu=False or another layer"
    assert not w.attribution.any() and w._attribution["note"] == w.note
    assert "ReLU clipped every pixel" in " ".join(t.get_text() for t in w.to_figure().findobj(Text)).replace("\n", " ")
    unclipped = SaliencyMap(net, xi, target=1, method="gradcam", method_kwargs={"gradcam": {"relu": False}})
    assert unclipped.note == "" and unclipped.attribution.min() < 0


# ------------------------------------------------------------------- contrast
def test_contrast_is_the_map_of_the_score_difference_from_the_jacobian(model, x):
    w = SaliencyMap(model, x, target=1, contrast=3, labels=list("abcde"))
    assert w.contrast == 3 and w._attribution["contrast"] == 3
    np.testing.assert_allclose(w.attribution, sw.saliency(model, x, 1, contrast=3)[0], **TOL)
    w.prefetch()
    with record_messages(w) as sent:
        w.contrast = 0  # derived from two Jacobian rows: no map is sent
    assert "_attribution" not in {k for m, _ in sent for k in m["state"]}
    np.testing.assert_allclose(w.attribution, sw.saliency(model, x, 1, contrast=0)[0], **TOL)
    w.method = "input_x_gradient"
    np.testing.assert_allclose(w.attribution, sw.saliency(model, x, 1, contrast=0, method="input_x_gradient")[0],
                               **TOL)
    assert w.checks["random_logit"]["others"] and not {0, 1} & set(w.checks["random_logit"]["others"])
    w.contrast = None
    np.testing.assert_allclose(w.attribution, sw.saliency(model, x, 1, method="input_x_gradient")[0], **TOL)


def test_contrast_without_prefetch_asks_the_kernel_and_tags_the_map(model, x, no_prefetch):
    w = SaliencyMap(model, x, target=2, method_kwargs={"integrated_gradients": {"steps": 16}})
    w.set_state({"contrast": 4, "method": "integrated_gradients", "_request": 1})  # the "versus" control
    tag = {k: w._attribution[k] for k in ("target", "contrast", "method", "request")}
    assert tag == {"target": 2, "contrast": 4, "method": "integrated_gradients", "request": 1}
    expected = sw.attribute(model, x[:1], 2, contrast=4, method="integrated_gradients", steps=16)
    np.testing.assert_allclose(w.attribution, expected.values[0], rtol=1e-4, atol=1e-5)
    assert w.completeness_error == pytest.approx(float(expected.completeness_error[0]), abs=1e-6)
    assert w.checks["completeness"]["status"] == "ok"
    w.set_state({"target": 4, "contrast": None, "_request": 2})  # clicking the contrast output makes it the target
    assert (w.target, w.contrast) == (4, None)


def test_contrast_runs_through_the_on_demand_checks_and_exports(model, x):
    w = SaliencyMap(model, x, target=0, contrast=2, labels=["cat", "dog", "car", "ship", "frog"])
    item = w.run_check("deletion_insertion")
    ranking = w.attribution[None]
    expected = sw.checks.deletion_insertion(model, x[:1], ranking, 0, contrast=2, steps=20)
    assert item["deletion_auc"] == pytest.approx(float(expected.deletion_auc[0]))
    randomization = w.run_check("randomization")
    assert randomization["spearman"]
    assert w._randomization_maps["contrast"] == 2
    fig = w.to_figure()
    texts = " ".join(t.get_text() for t in fig.findobj(Text))
    assert "Saliency of “cat” vs “car”" in texts and "“cat” − “car”" in texts
    assert w.export_name() == "saliency-cat-vs-car-gradient"


def test_a_contrast_equal_to_the_target_is_refused(model, x):
    w = SaliencyMap(model, x, target=1, contrast=2)
    before = w.attribution.copy()
    with pytest.raises(SaliencyError, match="contrast 1 is the target.*map zero"):
        w.contrast = 1
    with pytest.raises(SaliencyError, match="target 2 is the contrast"):
        w.target = 2
    with pytest.raises(SaliencyError, match="contrast must be None or a flat output index in 0..4"):
        w.contrast = 5
    assert (w.target, w.contrast) == (1, 2) and w.error
    np.testing.assert_array_equal(w.attribution, before)
    with pytest.raises(SaliencyError, match="is the target"):
        SaliencyMap(model, x, target=3, contrast=3)


# ----------------------------------------------------- issue 24, items 3 and 9: layouts, methods, words
IG_STEPS = {"integrated_gradients": {"steps": 8}, "smoothgrad": {"n_samples": 4, "seed": 0}}


def photo(n=2, size=8):
    """RGB pictures in [0, 1] that do not span the range (a stretch would change them)."""
    return (0.2 + 0.5 * np.random.default_rng(4).random((n, 3, size, size))).astype(np.float32)


def test_side_by_side_is_the_view_trait_and_a_photo_keeps_its_colours():
    x = photo()
    w = SaliencyMap(cnn(), x, layout="side_by_side")
    assert w.view == "side_by_side"
    np.testing.assert_array_equal(from_wire(w._image), np.round(np.moveaxis(x[0], 0, -1) * 255).astype(np.uint8))
    assert w._image["caption"] == "colours as given (0 … 1)"
    stored = (40 + 150 * np.random.default_rng(6).random((8, 8, 3))).astype(np.uint8)  # image= in [0, 255]
    given = SaliencyMap(cnn(), batch(2, 3, 8, 8), image=stored, layout="side_by_side")
    np.testing.assert_array_equal(from_wire(given._image), stored)
    assert given._image["caption"] == "colours as given (0 … 255)"
    normalised = SaliencyMap(cnn(), batch(2, 3, 8, 8), target=1)  # not a stored picture: stretched, and said so
    assert normalised.view == "overlay" and normalised._image["caption"].startswith("colours stretched from ")
    with pytest.raises(SaliencyError, match="layout"):
        w.view = "grid"
    assert w.view == "side_by_side"
    with pytest.raises(SaliencyError, match="layout"):
        SaliencyMap(cnn(), x, layout="stacked")


def test_methods_row_gives_every_methods_map_and_one_update_per_retarget(model, x):
    methods = ["gradient", "integrated_gradients", "smoothgrad"]
    w = SaliencyMap(model, x, methods=methods, method_kwargs=IG_STEPS)
    assert w.method == "gradient" and w.methods == methods
    assert list(w.attributions) == methods
    for m in methods:
        np.testing.assert_allclose(w.attributions[m], sw.saliency(model, x[:1], w.target, method=m, **IG_STEPS.get(m, {}))[0], **TOL)
    w.prefetch()
    with record_messages(w) as sent:
        w.target = 2
    rows = [m["state"]["_method_maps"] for m, _ in sent if "_method_maps" in m.get("state", {})]
    assert len(rows) == 1  # one update carries every map the browser cannot derive itself
    assert rows[0]["methods"] == ["integrated_gradients", "smoothgrad"] and rows[0]["target"] == 2
    stacked = from_wire({**w._method_maps})
    for k, m in enumerate(rows[0]["methods"]):
        np.testing.assert_allclose(stacked[k], w.attributions[m], **TOL)
    with record_messages(w) as sent:
        w.method = "smoothgrad"  # another map of the row becomes the current one: the row is not sent again
    assert not [m for m, _ in sent if "_method_maps" in m.get("state", {})]
    np.testing.assert_array_equal(w.attribution, w.attributions["smoothgrad"])


def test_methods_are_checked_and_the_current_method_stays_in_the_row(model, x):
    with pytest.raises(SaliencyError, match="not one of methods"):
        SaliencyMap(model, x, method="smoothgrad", methods=["gradient", "integrated_gradients"])
    with pytest.raises(SaliencyError, match="methods must be a list of"):
        SaliencyMap(model, x, methods=["gradient", "gradcam"])  # no spatial layer on an MLP
    w = SaliencyMap(model, x, methods=["gradient", "input_x_gradient"])
    with pytest.raises(SaliencyError, match="twice"):
        w.methods = ["gradient", "gradient"]
    with pytest.raises(SaliencyError, match="methods row"):
        w.method = "smoothgrad"
    w.methods = ["input_x_gradient", "integrated_gradients"]
    assert w.method == "input_x_gradient"
    w.methods = []
    assert w.attributions.keys() == {"input_x_gradient"}


def test_shared_scale_is_the_largest_of_the_rows_own_scales(model, x):
    w = SaliencyMap(model, x, methods=["gradient", "integrated_gradients"], method_kwargs=IG_STEPS)
    own = {m: colors.scale_max(v, "all", 2.0) for m, v in w.attributions.items()}
    assert {m: w._scale(m).m for m in own} == own
    w.shared_scale = True
    assert {w._scale(m).m for m in own} == {max(own.values())}


def test_pushes_name_the_largest_entries_of_the_attribution(model, x):
    names = [f"f{i}" for i in range(8)]
    w = SaliencyMap(model, x, feature_names=names, labels=list("abcde"), target=1)
    a = w.attribution
    up = [i for i in np.argsort(-a) if a[i] > 0][:5]
    down = [i for i in np.argsort(a) if a[i] < 0][:5]
    line_up, line_down = w.pushes
    assert line_up.startswith("pushes “b” up: " + ", ".join(f"{names[i]} +" for i in up[:1]))
    assert [part.split()[0] for part in line_up.split(": ", 1)[1].split(", ") if part != "…"] == [names[i] for i in up]
    assert [part.split()[0] for part in line_down.split(": ", 1)[1].split(", ") if part != "…"] == [names[i] for i in down]
    assert "−" in line_down and line_down.startswith("down: ")
    assert SaliencyMap(cnn(), batch(1, 3, 8, 8)).pushes == []  # images name no entries


def test_checks_carry_a_reading_and_labelled_curves(model, x):
    w = SaliencyMap(model, x, target=1, method="integrated_gradients", method_kwargs=IG_STEPS)
    assert "good: an error under 5%" in w.checks["completeness"]["explain"]
    item = w.run_check("deletion_insertion")
    assert item["x_label"] == "fraction of features removed / revealed" and item["y_label"] == "score"
    assert item["explain"].startswith("Good: deletion falls fast")
    w.method = "gradient"
    w.prefetch()
    assert w.checks["random_logit"]["explain"].startswith("ρ: rank correlation")


def test_a_text_methods_row_names_tokens_and_draws_one_strip_per_method(tmp_path):
    pytest.importorskip("transformers")
    from _widget_models import tiny_bert

    bert, tokenizer, xt = tiny_bert(tmp_path)
    w = SaliencyMap(bert, xt, layer=bert.bert.embeddings.word_embeddings, tokens=tokenizer,
                    methods=["input_x_gradient", "integrated_gradients"], method_kwargs=IG_STEPS)
    assert w.method == "input_x_gradient"  # the row's first, not the text view's default by chance
    shown = [t for t, hidden in zip(w._tokens["tokens"], w._tokens["hidden"]) if not hidden]
    named = [part.rsplit(" ", 1)[0] for line in w.pushes for part in line.split(": ", 1)[1].split(", ") if part not in ("…", "nothing")]
    assert named and set(named) <= set(shown) and "[PAD]" not in named
    fig = w.to_figure(checks=True)
    strips = [ax for ax in fig.axes if ax.images and ax.images[0].get_gid() is None]
    assert [ax.get_title(loc="left") for ax in strips] == [f"gradient × input · ±{format_value(w._scale('input_x_gradient').m)}",
                                                          f"integrated gradients · ±{format_value(w._scale('integrated_gradients').m)}"]
    assert all(ax.images[0].get_array().shape[:2] == (1, len(shown)) for ax in strips)
