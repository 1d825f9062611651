"""Tier B (issue 24, item 9): words beside the colours of the SaliencyMap — a named top-k list under vector and
text maps, the target (and contrast) named in the colour bar's legend, a reading of each check, an announcement
of each new map, a keyboard focus ring unlike the selection, and a sample box that holds 5 digits."""

import numpy as np
import pytest
from _widget_models import batch, mlp
from kernel import kernel_answers
from viewports import SCHEMES

from saliency_widgets.widgets import SaliencyMap

pytestmark = pytest.mark.browser
NAMES = ["alcohol", "malic_acid", "ash", "alcalinity", "magnesium", "phenols", "flavanoids", "proline"]
LABELS = ["class_0", "class_1", "class_2", "class_3", "class_4"]
TOPK = '[data-sw-role="topk"] [data-sw-topk="{}"]'
ANNOUNCE = '[data-sw-role="announce"]'
LEGEND = '[data-sw-role="legend-target"]'


def saves(page):
    return [e["changes"] for e in page.evaluate("window.__sw.log") if e["type"] == "save_changes"]


def listed(line: str) -> list[tuple[str, str]]:
    """(name, signed value) pairs of a top-k line."""
    return [tuple(part.rsplit(" ", 1)) for part in line.split(": ", 1)[1].split(", ") if part != "…"]


def wine(**kw):
    return SaliencyMap(mlp(), batch(3, 8), feature_names=NAMES, labels=LABELS, target=0, **kw)


def test_top_k_list_names_the_largest_entries_of_the_attribution(show):
    w = wine()
    page = show(w)

    def check():
        up, down = page.text_content(TOPK.format("up")), page.text_content(TOPK.format("down"))
        assert [up, down] == w.pushes  # the same words as the figure's
        a = w.attribution
        assert [n for n, _ in listed(up)] == [NAMES[i] for i in np.argsort(-a) if a[i] > 0][:5]
        assert [n for n, _ in listed(down)] == [NAMES[i] for i in np.argsort(a) if a[i] < 0][:5]
        assert all(v.startswith("+") for _, v in listed(up)) and all(v.startswith("−") for _, v in listed(down))
        return up

    assert check().startswith("pushes “class_0” up: ")
    page.click('[data-sw-output="3"]')  # drawn from the prefetched Jacobian, words too
    w.set_state(saves(page)[-1])
    assert check().startswith("pushes “class_3” up: ")


def test_text_maps_list_the_tokens_that_push_most(show):
    pytest.importorskip("transformers")
    from test_text_view import TOKENS, tiny_bert

    ids = np.array([[2, 7, 9, 11, 12, 3, 0], [2, 5, 6, 8, 13, 14, 3]], dtype=np.int64)
    model = tiny_bert()
    w = SaliencyMap(model, {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)}, layer=model.bert.embeddings,
                    tokens=TOKENS, labels=["neg", "neutral", "pos"], target=2)
    page = show(w)
    words = [page.text_content(TOPK.format("up")), page.text_content(TOPK.format("down"))]
    assert words == w.pushes and words[0].startswith("pushes “pos” up: ")
    assert "[PAD]" not in " ".join(words)  # padding is hidden, and never named


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_colour_bar_names_the_target_and_the_contrast(show_in, artifacts, scheme):
    w = wine()
    w.prefetch()
    page = show_in(w, scheme)
    assert page.text_content(LEGEND) == "“class_0”: red raises it, blue lowers it"
    page.select_option('[data-sw-role="contrast"]', "2")
    assert page.text_content(LEGEND) == "“class_0” vs “class_2”: red raises it, blue lowers it"
    page.select_option('[data-sw-action="sign"]', "absolute_value")
    assert page.text_content(LEGEND) == "“class_0” vs “class_2”: what moves it either way"
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"words-legend-{scheme}.png"))


def test_each_check_says_what_its_number_is_and_which_value_is_good(show, artifacts):
    w = wine(method="integrated_gradients", method_kwargs={"integrated_gradients": {"steps": 16}})
    page = show(w)
    explain = '[data-sw-check="{}"] [data-sw-role="check-explain"]'
    assert "good: an error under 5%" in page.text_content(explain.format("completeness"))
    for name in ("deletion_insertion", "randomization"):
        w.run_check(name)
    kernel_answers(page, w, "_checks", "_randomization_maps")
    assert page.text_content(explain.format("deletion_insertion")).startswith("Good: deletion falls fast (low AUC)")
    assert "ρ: rank correlation of the map with the map of a model whose layers are re-initialized" in page.text_content(explain.format("randomization"))
    legend = page.eval_on_selector_all('[data-sw-check="deletion_insertion"] [data-sw-auc]', "s => s.map((e) => e.textContent)")
    assert [t.split(" AUC ")[0] for t in legend] == ["deletion", "insertion"]  # the curves are named
    w.method = "gradient"
    w.prefetch()
    kernel_answers(page, w, "method", "_jacobian", "_attribution", "_checks")
    assert "good: well under 0.9" in page.text_content(explain.format("random_logit"))
    page.locator("[data-sw-role=checks]").screenshot(path=str(artifacts / "words-checks.png"))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_new_target_is_announced_and_focus_is_not_the_selection(show_in, artifacts, scheme):
    w = wine()
    w.prefetch()  # maps drawn in the page: each is announced as it appears
    page = show_in(w, scheme)
    assert page.get_attribute(ANNOUNCE, "aria-live") == "polite" and page.text_content(ANNOUNCE) == ""
    page.click('[data-sw-output="2"]')
    assert page.text_content(ANNOUNCE) == "Saliency of “class_2” by gradient, sample 1 of 3"
    page.click('[data-sw-output="4"]', modifiers=["Alt"])
    assert page.text_content(ANNOUNCE) == "Saliency of “class_2” vs “class_4” by gradient, sample 1 of 3"
    page.focus('[data-sw-output="2"]')
    page.keyboard.press("ArrowUp")  # keyboard focus moves with the selection: focused and selected
    page.keyboard.press("Tab")  # … then focus leaves the list, the selection stays
    page.keyboard.press("Shift+Tab")
    row = page.locator('[data-sw-output="1"]')
    style = row.evaluate("e => { const s = getComputedStyle(e); return [s.outlineStyle, s.outlineColor, s.borderTopStyle, s.borderTopColor]; }")
    assert row.get_attribute("aria-pressed") == "true" and row.evaluate("e => e.matches(':focus-visible')")
    outline, outline_colour, border, border_colour = style
    assert (outline, border) == ("dashed", "solid") and outline_colour != border_colour  # two different marks
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"words-focus-{scheme}.png"))


def test_the_sample_box_holds_five_digits(show):
    w = SaliencyMap(mlp(), batch(3, 8))
    page = show(w)
    room, needed = page.eval_on_selector('[data-sw-action="index"]', """e => {
      const s = getComputedStyle(e), ctx = document.createElement("canvas").getContext("2d");
      ctx.font = `${s.fontSize} ${s.fontFamily}`;
      const spinner = 16;  // Chromium's number spin buttons
      return [e.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight) - spinner, ctx.measureText("12345").width];
    }""")
    assert needed <= room
