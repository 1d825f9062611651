"""Tier A: GenerationMap and generation_figure driven from Python, without a browser."""

import numpy as np
import pytest
from _figure_pixels import heatmaps, render
from _generation_results import GENERATED, PROMPT, made_up as result

from saliency_widgets import colors
from saliency_widgets.errors import SaliencyError
from saliency_widgets.generation.figure import (
    MASKED, causal_limit, generation_figure, matrix_mask, row_scale, shown_token, target_label,
)
from saliency_widgets.transport import from_wire
from saliency_widgets.widgets.generation_map import GenerationMap


def test_first_paint_state_holds_every_row_of_every_granularity():
    res = result()
    w = GenerationMap.from_attribution(res)
    assert (w.selected, w.span, w.granularity, w.view, w._live) == (len(GENERATED) - 1, None, "token", "text", False)
    assert set(w._views) == {"token", "word", "sentence"}
    for g, wire in w._views.items():
        expected = res if g == "token" else res.aggregate(g)
        assert wire["tokens"] == expected.tokens and wire["prompt_length"] == expected.prompt_length
        assert wire["matrix"]["dtype"] == "float32" and isinstance(wire["matrix"]["data"], memoryview)
        np.testing.assert_array_equal(from_wire(wire["matrix"]), expected.matrix)
        np.testing.assert_array_equal(from_wire(wire["scores"]), expected.scores)
        np.testing.assert_array_equal(from_wire(wire["probabilities"]), expected.probabilities)
        assert wire["groups"] == expected.groups
    assert w._views["word"]["tokens"][5:] == [" Paris", ".", " It", " is", " big", ".\n", "Yes"]
    assert w._info["method"] == "input_x_gradient" and w._info["contrast_tokens"] == []
    assert w.attribution is res


def test_selection_traits_count_tokens_and_draw_the_groups_holding_them():
    res = result()
    w = GenerationMap.from_attribution(res, selected=3)
    np.testing.assert_array_equal(w.row, res.matrix[3])
    w.span = (1, 4)
    assert w.rows == (1, 4)
    np.testing.assert_allclose(w.row, res.span(1, 4), rtol=1e-6)
    w.set_state({"granularity": "word", "span": None, "selected": 1})  # as the browser sends it
    assert w.attribution.tokens == res.aggregate("word").tokens and w.rows == (0, 1)  # token 1 ("is") is in " Paris"
    by_word = [res.span(0, 2)[g].sum() for g in w.attribution.groups]  # the span, columns summed per word
    np.testing.assert_allclose(w.row, by_word, rtol=1e-5, atol=1e-6)
    w.span = (1, 5)  # tokens "is" … " is": the words " Paris" … " is"
    assert w.rows == (0, 4)
    w.granularity = "sentence"
    assert w.attribution.tokens[w.attribution.prompt_length:] == [" Paris.", " It is big.\n", "Yes"]
    assert w.rows == (0, 2)


def test_refused_values_keep_the_previous_ones():
    w = GenerationMap.from_attribution(result(), selected=2)
    for name, value, message in [("selected", 8, "selected must be a generated token in 0..7"),
                                 ("span", (3, 3), "span must be"), ("span", (0, 9), "span must be"),
                                 ("granularity", "paragraph", "granularity must be one of"),
                                 ("view", "table", "view must be one of"), ("sign", "both", "sign must be one of"),
                                 ("outlier_perc", 100.0, "outlier_perc must be in"),
                                 ("method", "gradient", "built from a computed GenerationAttribution"),
                                 ("contrast", " London", "built from a computed GenerationAttribution")]:
        before = getattr(w, name)
        with pytest.raises(SaliencyError, match=message):
            setattr(w, name, value)
        assert getattr(w, name) == before and w.error
    with pytest.raises(SaliencyError, match="token-level result"):
        GenerationMap.from_attribution(result().aggregate("word"))
    with pytest.raises(SaliencyError, match="takes a GenerationAttribution"):
        GenerationMap.from_attribution(np.zeros((2, 3)))


def test_labels_name_the_explained_target():
    res = result(contrast=" London")
    assert target_label(res, 0, 1) == "log p(' Par') − log p(' London')"
    assert target_label(res, 0, 2) == "log p(' Paris') − log p(' London')"  # log-probabilities add up
    assert target_label(result(target="probability"), 0, 3) == "Σ p over ' Paris.'"
    assert target_label(result(target="logit"), 5, 7) == "Σ logit over ' big.↵'"
    assert target_label(result(contrast=" London", target="logit").aggregate("word"), 0, 1) == "Σ [logit − logit(' London')] over ' Paris'"
    assert shown_token("a\r\nb\tc") == "a↵b⇥c"
    w = GenerationMap.from_attribution(res)
    assert w.contrast == " London"


def chip_fills(fig):
    """The face colours (RGB 0..255) of the text figure's chips, in reading order."""
    from matplotlib.patches import FancyBboxPatch

    return np.array([np.round(np.array(p.get_facecolor()[:3]) * 255) for p in fig.axes[0].patches if isinstance(p, FancyBboxPatch)])


@pytest.mark.parametrize("span", [None, (2, 5)])
def test_text_figure_colours_the_chips_before_the_explained_token_by_its_row(span):
    res = result()
    w = GenerationMap.from_attribution(res, selected=4, span=span)
    start, stop = span or (4, 5)
    row = res.matrix[start:stop].sum(axis=0)
    limit = causal_limit(res, stop)
    assert limit == len(PROMPT) + stop - 1
    fills = chip_fills(w.to_figure())
    expected = colors.colorize(row[:limit], "all", 2.0)[:, :3]
    np.testing.assert_array_equal(fills[:limit], expected)
    assert (fills[limit:] == 255).all()  # at or after the explained token: unfilled
    assert w.to_figure().texts[0].get_text().startswith(f"Explaining '{''.join(GENERATED[start:stop])}'")


def test_figure_pixels_follow_the_selection_and_the_locked_scale():
    w = GenerationMap.from_attribution(result(), selected=6)
    before = render(w.to_figure())
    w.selected = 2
    after = render(w.to_figure())
    assert before.shape != after.shape or not np.array_equal(before, after)
    m = float(row_scale(w.row, causal_limit(w.attribution, 3)).m)
    w.lock_scale, w.scale_max = True, 10 * m
    locked = chip_fills(w.to_figure())
    np.testing.assert_array_equal(locked[:7], colors.colorize(w.row[:7], "all", m=10 * m)[:, :3])


def test_matrix_figure_draws_every_row_with_the_unusable_cells_grey():
    res = result()
    w = GenerationMap.from_attribution(res, view="matrix", granularity="word")
    shown = w.attribution
    image, = heatmaps(w.to_figure())
    pixels = image.get_array()
    mask = matrix_mask(shown)
    scale = colors.scale_max(shown.matrix[mask], "all", 2.0)
    np.testing.assert_array_equal(pixels[mask], colors.colorize(shown.matrix, "all", m=scale)[mask])
    assert (pixels[~mask][:, :3] == [int(MASKED[i:i + 2], 16) for i in (1, 3, 5)]).all()
    # " Paris" (" Par" + "is") attributes to itself too: "is" was made by " Par"
    assert mask.sum(axis=1).tolist() == [6, 6, 7, 8, 9, 10, 11]


def test_exports_write_real_files_of_the_current_selection(tmp_path):
    w = GenerationMap.from_attribution(result(), selected=1)
    for fmt, magic in [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")]:
        path = w.savefig(tmp_path / f"map.{fmt}")
        assert path.read_bytes().startswith(magic)
    assert "Explaining" in (tmp_path / "map.svg").read_text()  # text stays text
    reply, buffers = w._export_reply({"type": "export", "format": "pdf", "id": 3})
    assert reply["filename"] == "generation-is-input_x_gradient.pdf" and buffers[0].startswith(b"%PDF")
    page = w.to_html(tmp_path / "map.html").read_text()
    assert '"_offline": true' in page and "generation-map" in page
    assert result().to_html().startswith("<!doctype html>")  # GenerationAttribution.to_html through from_attribution
    assert w._repr_mimebundle_()[0]["image/png"]


def test_generation_figure_checks_its_arguments():
    res = result()
    with pytest.raises(SaliencyError, match="view must be one of"):
        generation_figure(res, view="heatmap")
    with pytest.raises(SaliencyError, match="selected must be a generated position"):
        generation_figure(res, selected=8)
    with pytest.raises(SaliencyError, match="is empty"):
        generation_figure(res, span=(4, 2))


# ------------------------------------------------------------------ with a model
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
WORDS = "<pad> <unk> the capital of France is Paris London . It a big city".split()


@pytest.fixture(scope="module")
def lm():
    from tokenizers import Tokenizer, models, pre_tokenizers

    word_level = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=word_level, pad_token="<pad>", unk_token="<unk>")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=len(WORDS), n_embd=16, n_layer=2, n_head=2, n_positions=64,
                                     bos_token_id=0, eos_token_id=0, pad_token_id=0)
    return transformers.GPT2LMHeadModel(config).eval(), tokenizer


def test_model_path_equals_attribute_generation_and_recomputes_the_same_continuation(lm):
    import saliency_widgets as sw

    model, tokenizer = lm
    w = GenerationMap(model, "the capital of France is", tokenizer=tokenizer, max_new_tokens=4)
    ref = sw.attribute_generation(model, "the capital of France is", tokenizer=tokenizer, max_new_tokens=4)
    np.testing.assert_array_equal(w.attribution.matrix, ref.matrix)
    assert w._live and w.selected == 3 and w._info["method"] == "input_x_gradient"
    ids = w.attribution.generated_ids.copy()
    w.method = "gradient"
    w.contrast = " London"
    assert w._info["method"] == "gradient" and w._info["contrast_tokens"] == [" London"] * 4
    np.testing.assert_array_equal(w.attribution.generated_ids, ids)
    ref = sw.attribute_generation(model, "the capital of France is", tokenizer=tokenizer, continuation=ids,
                                  method="gradient", contrast=" London")
    np.testing.assert_allclose(w.attribution.matrix, ref.matrix, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(from_wire(w._views["token"]["matrix"]), ref.matrix, rtol=1e-6, atol=1e-7)
    with pytest.raises(SaliencyError, match="not one"):
        w.contrast = "Paris London"
    assert w.contrast == " London" and "not one" in w.error
    with pytest.raises(SaliencyError, match="one prompt"):
        GenerationMap(model, ["the capital", "of France"], tokenizer=tokenizer)


def test_checks_equal_deletion_insertion_of_the_selection_and_run_only_while_the_strip_is_open(lm, monkeypatch):
    from saliency_widgets.generation.checks import deletion_insertion
    from saliency_widgets.widgets import generation_map

    model, tokenizer = lm
    w = GenerationMap(model, "the capital of France is", tokenizer=tokenizer, max_new_tokens=4)
    runs = []
    monkeypatch.setattr(generation_map, "deletion_insertion",
                        lambda *a, **kw: runs.append(kw["span"]) or deletion_insertion(*a, **kw))
    w.selected = 1
    assert runs == [] and w.checks == {}  # closed: nothing runs
    w.show_checks = True
    for span, rows in [(None, (1, 2)), ([0, 3], (0, 3))]:
        w.set_state({"selected": 1, "span": span})  # as the browser sends a click or a shift-click
        expected = deletion_insertion(model, w.attribution, *([1] if span is None else []), span=span, tokenizer=tokenizer)
        item = w.checks["deletion_insertion"]
        np.testing.assert_array_equal(item["fractions"], expected.fractions)
        np.testing.assert_allclose(item["deletion"], expected.deletion[0], rtol=1e-6)
        np.testing.assert_allclose(item["insertion"], expected.insertion[0], rtol=1e-6)
        assert item["deletion_auc"] == pytest.approx(expected.deletion_auc[0])
        assert item["insertion_auc"] == pytest.approx(expected.insertion_auc[0])
        assert item["status"] == ("warn" if item["insertion_auc"] <= item["deletion_auc"] else "ok")
        assert runs[-1] == rows
    assert w._checks["key"] == {"selected": 1, "span": [0, 3], "granularity": "token", "method": "input_x_gradient",
                                "target": "log_prob", "contrast": None}
    assert item["x_label"] == "fraction of prompt tokens removed / revealed" and item["y_label"] == "score"
    assert "completeness" not in w.checks  # integrated gradients' only
    w.set_state({"selected": 1, "span": None})
    assert len(runs) == 2  # computed once per selection
    w.show_checks = False
    assert w.checks == {}
    w.selected = 3
    assert len(runs) == 2
    w.method = "integrated_gradients"
    w.show_checks = True
    assert runs[-1] == (3, 4) and w.checks["completeness"]["value"] == pytest.approx(w.attribution.completeness_error)
    figure = w.to_figure(checks=True)
    texts = [t.get_text() for f in figure.subfigs for t in f.findobj(lambda o: hasattr(o, "get_text"))]
    assert any(t.startswith("deletion / insertion (") and "insertion AUC" in t for t in texts)
    assert "fraction of prompt tokens removed / revealed" in texts and any(t.startswith("completeness (ok)") for t in texts)


def test_checks_without_a_model_are_completeness_only():
    w = GenerationMap.from_attribution(result())
    w.show_checks = True
    assert w.checks == {} and w.run_checks() == {}
    with pytest.raises(SaliencyError, match="no checks for this map"):
        w.to_figure(checks=True)
    from dataclasses import replace

    w = GenerationMap.from_attribution(replace(result(), method="integrated_gradients", completeness_error=0.2,
                                               notes=("the model normalises with RMSNorm",)), show_checks=True)
    item = w.checks["completeness"]
    assert item["status"] == "warn" and "pass baseline=" in item["text"] and "RMSNorm" in item["explain"]
    assert set(w.checks) == {"completeness"}


def test_a_check_that_fails_shows_in_the_strip_and_keeps_the_selection(lm, monkeypatch):
    from saliency_widgets.widgets import generation_map

    model, tokenizer = lm
    w = GenerationMap(model, "the capital of France is", tokenizer=tokenizer, max_new_tokens=3)

    def fails(*args, **kw):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(generation_map, "deletion_insertion", fails)
    w.show_checks = True
    w.selected = 0
    assert w.selected == 0 and w.checks["deletion_insertion"]["status"] == "warn"
    assert "out of memory" in w.checks["deletion_insertion"]["text"] and "out of memory" in w.error
