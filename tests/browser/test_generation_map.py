"""Tier B: GenerationMap in headless Chromium: clicks, spans, keys, granularity and the matrix view
redraw in the browser alone (no message to the kernel beyond the trait itself), light and dark."""

import json
import re

import numpy as np
import pytest
from _generation_results import made_up
from contrast import assert_readable
from kernel import kernel_answers
from test_generation_widget import lm  # noqa: F401  (a tiny GPT-2 and its word-level tokenizer)
from test_theme import themed  # noqa: F401  (a page in the OS's light or dark scheme)

from saliency_widgets import colors
from saliency_widgets.generation.figure import causal_limit, matrix_mask
from saliency_widgets.widgets.generation_map import GenerationMap

pytestmark = pytest.mark.browser
TRANSPARENT = (-1, -1, -1)


def chip_colours(page) -> np.ndarray:
    """Each chip's fill (RGB), TRANSPARENT for an unfilled one, in reading order."""
    styles = page.eval_on_selector_all("[data-sw-token]", "els => els.map(e => getComputedStyle(e).backgroundColor)")
    return np.array([TRANSPARENT if s.startswith("rgba(0, 0, 0, 0") else [int(v) for v in re.findall(r"\d+", s)[:3]] for s in styles])


def expected_colours(row: np.ndarray, limit: int) -> np.ndarray:
    """The chips the way the widget fills them: the row's own scale over the chips that can have caused it."""
    fills = colors.colorize(row[:limit], "all", 2.0)[:, :3].astype(int)
    return np.concatenate([fills, np.tile(TRANSPARENT, (len(row) - limit, 1))])


def log(page, kind: str) -> list:
    return [e["changes" if kind == "save_changes" else "content"] for e in page.evaluate("window.__sw.log") if e["type"] == kind]


def test_clicking_generated_chips_recolours_the_context_with_no_kernel_message(show):
    res = made_up()
    w = GenerationMap.from_attribution(res)
    page = show(w)
    p = res.prompt_length
    assert page.get_attribute("[data-sw-widget]", "data-sw-widget") == "generation-map"
    assert page.locator("[data-sw-token]").count() == 13 and page.locator("[data-sw-output]").count() == 8
    assert page.get_attribute('[data-sw-output="7"]', "aria-pressed") == "true"
    np.testing.assert_array_equal(chip_colours(page), expected_colours(res.matrix[7], p + 7))
    for k in (2, 5, 0):
        page.click(f'[data-sw-output="{k}"]')
        np.testing.assert_array_equal(chip_colours(page), expected_colours(res.matrix[k], p + k))
        pressed = page.eval_on_selector_all("[data-sw-output]", "els => els.map(e => e.getAttribute('aria-pressed'))")
        assert pressed == ["true" if i == k else "false" for i in range(8)]
    assert log(page, "send") == []  # nothing asked of the kernel: every row came with the first paint
    assert log(page, "save_changes") == [{"selected": k, "span": None} for k in (2, 5, 0)]
    assert page.text_content(".sw-title") == "Explaining ' Par' (generated token 1 of 8)"


def test_shift_click_and_drag_give_spans_coloured_by_the_summed_rows(show):
    res = made_up()
    w = GenerationMap.from_attribution(res)
    page = show(w)
    page.click('[data-sw-output="1"]')
    page.click('[data-sw-output="4"]', modifiers=["Shift"])
    summed = res.matrix[1:5].sum(axis=0)
    np.testing.assert_array_equal(chip_colours(page), expected_colours(summed, causal_limit(res, 5)))
    assert page.eval_on_selector_all("[aria-pressed=true]", "els => els.map(e => e.dataset.swOutput)") == ["1", "2", "3", "4"]
    assert log(page, "save_changes")[-1] == {"selected": 1, "span": [1, 5]}
    for changes in log(page, "save_changes"):
        w.set_state(changes)  # the kernel's view of the same selection: what an export draws
    np.testing.assert_allclose(w.row, summed, rtol=1e-6)
    assert w.to_figure().texts[0].get_text() == page.text_content(".sw-title")
    page.hover('[data-sw-output="2"]')
    page.mouse.down()
    page.hover('[data-sw-output="4"]')
    page.hover('[data-sw-output="6"]')
    page.mouse.up()
    assert log(page, "save_changes")[-1] == {"selected": 2, "span": [2, 7]}
    np.testing.assert_array_equal(chip_colours(page), expected_colours(res.matrix[2:7].sum(axis=0), causal_limit(res, 7)))
    assert log(page, "send") == []


def active(page) -> dict:
    return page.evaluate("""() => { const e = document.activeElement;
      return { output: e.dataset.swOutput ?? null, outline: getComputedStyle(e).outlineStyle }; }""")


def test_arrows_move_the_selection_shift_arrows_extend_it_and_enter_selects(show):
    page = show(GenerationMap.from_attribution(made_up()))
    page.focus('[data-sw-output="7"]')
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert active(page) == {"output": "5", "outline": "solid"}  # a visible focus ring
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("Shift+ArrowLeft")
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    assert log(page, "save_changes") == [
        {"selected": 6, "span": None}, {"selected": 5, "span": None}, {"selected": 5, "span": [4, 6]},
        {"selected": 5, "span": [3, 6]}, {"selected": 0, "span": None}, {"selected": 1, "span": None},
    ]
    assert active(page)["output"] == "1" and page.get_attribute('[data-sw-output="1"]', "aria-pressed") == "true"


def test_granularity_and_the_matrix_view_switch_in_the_browser(show):
    res = made_up()
    w = GenerationMap.from_attribution(res, selected=1)
    page = show(w)
    page.select_option('[data-sw-action="granularity"]', "word")
    word = res.aggregate("word")
    assert page.eval_on_selector_all("[data-sw-token]", "els => els.map(e => e.textContent)") == [t.replace("\n", "↵") for t in word.tokens]
    np.testing.assert_array_equal(chip_colours(page), expected_colours(word.matrix[0], causal_limit(word, 1)))  # " Paris"
    page.select_option('[data-sw-action="view"]', "matrix")
    assert page.is_hidden(".sw-tokens") and page.is_visible('[data-sw-role="heatmap"]')
    pixels = np.array(page.evaluate("""() => { const c = document.querySelector('[data-sw-role="heatmap"]');
      return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }""")).reshape(*word.matrix.shape, 4)
    mask = matrix_mask(word)
    m = colors.scale_max(word.matrix[mask], "all", 2.0)
    np.testing.assert_array_equal(pixels[mask], colors.colorize(word.matrix, "all", m=m)[mask])
    assert (pixels[~mask][:, 3] == 0).all()  # cells no row can use show the theme's grey through
    page.click('.sw-gen-rows [data-sw-row="3"]')
    assert log(page, "save_changes") == [{"granularity": "word"}, {"view": "matrix"}, {"selected": 4, "span": None}]
    assert log(page, "send") == []


def test_the_contrast_box_sends_the_word_and_shows_what_it_tokenizes_to(show):
    w = GenerationMap.from_attribution(made_up())
    w._live = True  # as if a model were behind it: the kernel answers below
    page = show(w)
    page.fill('[data-sw-role="contrast"]', " London")
    page.press('[data-sw-role="contrast"]', "Enter")
    assert log(page, "save_changes") == [{"contrast": " London"}]
    assert page.text_content('[data-sw-role="contrast-tokens"]') == "→ …"
    assert page.get_attribute('[data-sw-role="status"]', "data-busy") == "true"
    info = {**w._info, "contrast": " London", "contrast_tokens": [" London"] * 8}
    page.evaluate("(info) => window.__sw.kernelSet('_info', info)", info)
    page.wait_for_function("document.querySelector('[data-sw-role=\"status\"]').dataset.busy === 'false'")
    assert page.text_content('[data-sw-role="contrast-tokens"]') == "→ ' London'"
    assert page.text_content('[data-sw-role="target-label"]').startswith("log p('Yes') − log p(' London')")


def test_offline_pages_keep_every_row_clickable_and_lock_the_kernel_controls(page, tmp_path, artifacts):
    res = made_up()
    page.goto(GenerationMap.from_attribution(res).to_html(tmp_path / "offline.html").as_uri())
    page.wait_for_function("window.__sw && window.__sw.ready", timeout=30_000)
    assert page.is_disabled('[data-sw-action="method"]') and page.is_disabled('[data-sw-role="contrast"]')
    page.click('[data-sw-output="3"]')
    np.testing.assert_array_equal(chip_colours(page), expected_colours(res.matrix[3], res.prompt_length + 3))
    with page.expect_download() as download:
        page.click('[data-sw-action="export-svg"]')
    assert download.value.suggested_filename == "generation-It-input_x_gradient.svg"
    download.value.save_as(artifacts / "generation-map-offline.svg")
    assert "<title>Explaining ' It' (generated token 4 of 8)</title>" in (artifacts / "generation-map-offline.svg").read_text()
    checks = page.locator('[data-sw-action="checks"]')
    assert checks.is_disabled() and "kernel" in checks.get_attribute("title")
    note = page.text_content('[data-sw-role="offline-note"]')
    assert page.is_visible('[data-sw-role="offline-note"]') and "kernel" in note and "the checks" in note


# ------------------------------------------------------------------ checks
def number(text: str) -> float:
    return float(text.replace("−", "-"))


def test_the_checks_button_draws_the_curves_with_their_aucs_and_follows_the_selection(show, lm):
    model, tokenizer = lm
    w = GenerationMap(model, "the capital of France is", tokenizer=tokenizer, max_new_tokens=4)
    page = show(w)
    assert page.is_hidden('[data-sw-role="checks"]') and page.is_hidden('[data-sw-role="offline-note"]')
    page.click('[data-sw-output="1"]')
    page.click('[data-sw-action="checks"]')
    assert log(page, "save_changes") == [{"selected": 1, "span": None}, {"show_checks": True}]
    assert page.get_attribute('[data-sw-action="checks"]', "aria-pressed") == "true"
    item = page.locator('[data-sw-check="deletion_insertion"]')
    assert item.get_attribute("data-sw-status") == "computing"
    for changes in log(page, "save_changes"):
        w.set_state(changes)  # what the kernel receives: the checks of token 1 run
    kernel_answers(page, w, "_checks")
    expected = w.checks["deletion_insertion"]
    assert item.get_attribute("data-sw-status") == expected["status"]
    assert page.locator('[data-sw-role="check-chart"] polyline').count() == 2
    aucs = {a.get_attribute("data-sw-auc"): a.text_content() for a in page.locator("[data-sw-auc]").all()}
    for what in ("deletion", "insertion"):
        assert aucs[what].startswith(f"{what} AUC ")
        assert number(aucs[what].split()[-1]) == pytest.approx(expected[f"{what}_auc"], rel=1e-3)
    chart = page.text_content('[data-sw-role="check-chart"]')
    assert "fraction of prompt tokens removed / revealed" in chart and "score" in chart
    assert page.text_content('[data-sw-role="check-explain"]').startswith("Good: deletion falls fast (low area)")
    page.click('[data-sw-output="3"]')  # open: the next selection's checks are computed in the kernel
    assert item.get_attribute("data-sw-status") == "computing"
    w.set_state(log(page, "save_changes")[-1])
    kernel_answers(page, w, "_checks")
    assert item.get_attribute("data-sw-status") == w.checks["deletion_insertion"]["status"]
    assert w._checks["key"]["selected"] == 3
    page.click('[data-sw-action="checks"]')
    assert page.is_hidden('[data-sw-role="checks"]') and log(page, "save_changes")[-1] == {"show_checks": False}
    assert log(page, "send") == []  # traits only: no custom message


def test_an_offline_page_shows_the_checks_it_was_saved_with_and_nothing_stale(page, lm, tmp_path):
    model, tokenizer = lm
    w = GenerationMap(model, "the capital of France is", tokenizer=tokenizer, max_new_tokens=4)
    w.show_checks = True
    page.goto(w.to_html(tmp_path / "checks.html").as_uri())
    page.wait_for_function("window.__sw && window.__sw.ready", timeout=30_000)
    assert page.is_disabled('[data-sw-action="checks"]')
    status = page.get_attribute('[data-sw-check="deletion_insertion"]', "data-sw-status")
    assert status == w.checks["deletion_insertion"]["status"]
    page.click('[data-sw-output="0"]')
    assert page.is_hidden('[data-sw-role="checks"]')  # no kernel to compute them: never "computing" for ever


# ------------------------------------------------------------------ screenshots and timings
WORDS = ("the cat sat on the mat while the dog slept by a warm fire and the rain fell on the old roof of the quiet "
         "house near the river").split()


def long_result(prompt: int, generated: int):
    words = [(" " if i else "") + WORDS[i % len(WORDS)] for i in range(prompt + generated)]
    words[prompt + generated // 2] = ".\n"
    return made_up(words[:prompt], words[prompt:], seed=1)


@pytest.fixture(scope="module")
def llama_checks(lm):
    """A GenerationMap of a tiny Llama (RMSNorm) by integrated gradients, its checks strip open."""
    import torch
    import transformers

    tokenizer = lm[1]
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=len(tokenizer.get_vocab()), hidden_size=16, intermediate_size=32,
                                      num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                      max_position_embeddings=64, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    model = transformers.LlamaForCausalLM(config).eval()
    w = GenerationMap(model, "the capital of France is a big city . It is", tokenizer=tokenizer, max_new_tokens=5,
                      method="integrated_gradients", steps=16)
    w.set_state({"selected": 1, "span": [1, 3], "show_checks": True})
    return w


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_checks_strip_screenshots_in_light_and_dark(themed, artifacts, scheme, llama_checks):
    page = themed(llama_checks, scheme)
    assert page.get_attribute('[data-sw-check="completeness"]', "data-sw-status") == "warn"
    assert "RMSNorm" in page.text_content('[data-sw-check="completeness"]')
    assert page.is_hidden('[data-sw-role="notes"]')  # the strip shows them
    assert page.locator('[data-sw-role="check-chart"] polyline').count() == 2
    assert_readable(page)
    page.locator("[data-sw-widget]").screenshot(path=str(artifacts / f"generation-map-checks-{scheme}.png"))


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_in_light_and_dark(themed, artifacts, scheme):
    res = made_up(seed=3)
    page = themed(GenerationMap.from_attribution(res, selected=4), scheme)
    root = page.locator("[data-sw-widget]")
    assert_readable(page)  # chips, unfilled chips and the chrome, on either background
    root.screenshot(path=str(artifacts / f"generation-map-{scheme}.png"))
    page.click('[data-sw-output="1"]')
    page.click('[data-sw-output="5"]', modifiers=["Shift"])
    page.mouse.move(0, 0)  # no tooltip in the picture
    page.wait_for_function("getComputedStyle(document.querySelector('.sw-tooltip')).display === 'none'")
    root.screenshot(path=str(artifacts / f"generation-map-span-{scheme}.png"))
    page.select_option('[data-sw-action="view"]', "matrix")
    root.screenshot(path=str(artifacts / f"generation-map-matrix-{scheme}.png"))
    background = page.evaluate("getComputedStyle(document.querySelector('.sw-root')).backgroundColor")
    assert (background == "rgb(255, 255, 255)") == (scheme == "light")


CLICKS_JS = """async (n) => {
  const chips = [...document.querySelectorAll('[data-sw-output]')];
  const probe = document.querySelector('[data-sw-token="0"]');
  const redraw = [], frame = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    chips[(i * 7) % chips.length].click();
    await Promise.resolve();  // the redraw is the microtask the click queued, before this one
    getComputedStyle(probe).backgroundColor; probe.getBoundingClientRect();  // styles and layout done
    redraw.push(performance.now() - t0);
    await new Promise(requestAnimationFrame);
    frame.push(performance.now() - t0);
  }
  return { redraw, frame };
}"""


@pytest.mark.parametrize("size", [(32, 32), (512, 128)])
def test_first_paint_and_click_to_redraw_times(show, artifacts, size):
    import time

    res = long_result(*size)
    start = time.perf_counter()
    w = GenerationMap.from_attribution(res)
    build = time.perf_counter() - start
    page = show(w)
    page.evaluate("new Promise(requestAnimationFrame)")
    paint = page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? performance.now()")
    times = page.evaluate(CLICKS_JS, 40)
    redraw, frame = np.array(times["redraw"][5:]), np.array(times["frame"][5:])  # the first clicks warm the JIT
    report = {"prompt": size[0], "generated": size[1], "widget_build_ms": round(build * 1e3, 1),
              "first_paint_ms": round(paint, 1), "click_redraw_median_ms": round(float(np.median(redraw)), 2),
              "click_redraw_max_ms": round(float(redraw.max()), 2), "click_next_frame_median_ms": round(float(np.median(frame)), 2)}
    (artifacts / f"generation-map-timing-{size[0]}x{size[1]}.json").write_text(json.dumps(report, indent=1))
    print(report)
    assert log(page, "send") == []
    # times are recorded (generation-map-timing-*.json), not asserted: a bound on time fails on a loaded shared machine
