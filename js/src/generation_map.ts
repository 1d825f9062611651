/**
 * anywidget entry of GenerationMap: the prompt and the generated text as chips in reading order. Click a
 * generated chip and every earlier chip takes the colour of its row; shift-click, shift-arrows or drag for a
 * span (the rows summed). Every row of every granularity arrived with the first paint: selections,
 * granularity and the matrix view never wait for the kernel. Method, target and contrast recompute there,
 * and so do the checks (deletion / insertion for the selection, integrated gradients' completeness) while
 * their strip is open.
 */
import { stepKey } from "./bars";
import { ChecksStrip } from "./checks_strip";
import { type ColorBarState } from "./colorbar";
import { button, field, OFFLINE_PAGE, select } from "./controls";
import { h } from "./dom";
import { figureExports } from "./exporting";
import { formatValue } from "./format";
import { Frame } from "./frame";
import {
  causalLimit, chipOf, clickSelection, decodeView, matrixLabel, nGenerated, shownRows, spanRow, targetLabel, titleOf, usableCells,
  type GenInfo, type GenView, type Selection,
} from "./generation";
import { GenerationMatrix } from "./generation_matrix";
import { onChanges, update, type AnyModel, type RenderProps } from "./model";
import { injectStyle } from "./style";
import { slug, textWidth } from "./text";
import { shownToken, TokenChips } from "./textview";

const GEN_CSS = `
.sw-gen-body{display:flex;flex-direction:column;gap:10px;min-width:0;flex:1 1 auto}
.sw-gen-body>[hidden]{display:none!important}
.sw-gen-body .sw-tokens{max-width:780px;gap:6px 3px}
.sw-gen-body .sw-token{font-size:13px}
.sw-token.sw-gen{cursor:pointer;box-shadow:0 0 0 1px var(--sw-line),inset 0 -2px 0 var(--sw-accent)}
.sw-token.sw-gen:hover{box-shadow:0 0 0 1px var(--sw-accent),inset 0 -2px 0 var(--sw-accent)}
.sw-token.sw-gen[aria-pressed=true]{box-shadow:0 0 0 2px var(--sw-fg),inset 0 -2px 0 var(--sw-accent)}
.sw-token.sw-gen:focus-visible{outline:2px solid var(--sw-accent);outline-offset:3px}
.sw-gen-body [data-sw-role=target-label]{font-size:12px}
.sw-root input.sw-contrast{font:12px/1.2 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:var(--sw-fg);background:var(--sw-bg);border:1px solid var(--sw-line);border-radius:6px;padding:2px 6px;height:24px;width:110px}
.sw-root input.sw-contrast:disabled,.sw-root select:disabled,.sw-root .sw-btn:disabled{opacity:.6;cursor:default}
.sw-contrast-tokens{font:11.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:var(--sw-muted);white-space:pre}
.sw-gen-matrix{display:grid;grid-template-columns:max-content max-content;align-items:start;justify-content:start;max-width:100%;overflow-x:auto}
.sw-gen-rows>div{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;text-align:right;padding:0 6px;white-space:pre;overflow:hidden;cursor:pointer;border-radius:3px;color:var(--sw-fg)}
.sw-gen-rows>div[aria-current=true]{background:var(--sw-accent-soft);font-weight:600}
.sw-gen-stage{position:relative;line-height:0;background:var(--sw-soft);box-shadow:0 0 0 1px var(--sw-outline)}
.sw-gen-stage::after{content:"";position:absolute;top:0;bottom:0;left:var(--sw-prompt);border-left:1.5px solid var(--sw-fg);pointer-events:none}
.sw-gen-canvas{image-rendering:pixelated;display:block;cursor:pointer}
.sw-gen-frame{position:absolute;left:0;pointer-events:none;box-shadow:0 0 0 1.5px var(--sw-fg),0 0 0 3px var(--sw-bg)}
.sw-gen-cols{position:relative}
.sw-gen-cols span{position:absolute;top:3px;transform-origin:0 0;transform:rotate(60deg);white-space:pre;font:10.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:var(--sw-muted)}
.sw-gen-cols span.sw-gen-col{color:var(--sw-fg)}
.sw-gen-key{color:var(--sw-muted);font-size:11.5px}
`;

const TARGET_TEXT: Record<string, string> = { log_prob: "log-probability", probability: "probability", logit: "logit" };
const GRANULARITIES: [string, string][] = [["token", "token"], ["word", "word"], ["sentence", "sentence"]];
const VIEWS: [string, string][] = [["text", "text"], ["matrix", "matrix"]];
/** Traits naming what the checks explain (the kernel's `_checks.key`, `_check_key` in generation_map.py). */
const CHECK_KEYS = ["selected", "span", "granularity", "method", "target", "contrast"];
/** Why a map built from a computed result (`GenerationMap.from_attribution`, `_live` false) cannot recompute. */
const FROM_RESULT = { reason: "Built from a computed result, with no model to run", remedy: "build sw.GenerationMap(model, prompt, …) to use them" };

/** The selection held by the model (`span` arrives as a list, or null). */
function selectionOf(model: AnyModel): Selection {
  const span = model.get("span") as number[] | null;
  return { selected: Number(model.get("selected")), span: span ? [Number(span[0]), Number(span[1])] : null };
}

const sameSelection = (a: Selection, b: Selection) =>
  a.selected === b.selected && (a.span === b.span || (a.span !== null && b.span !== null && a.span[0] === b.span[0] && a.span[1] === b.span[1]));

function render({ model, el }: RenderProps): () => void {
  const offline = Boolean(model.get("_offline"));
  const live = () => Boolean(model.get("_live")) && !offline;
  const frame = new Frame(model, el, "generation-map", offline ? OFFLINE_PAGE : live() ? null : FROM_RESULT);
  injectStyle(el, "sw-style-generation", GEN_CSS);
  const methods = (model.get("_methods") ?? []) as [string, string][];
  const methodText = (m: string) => methods.find(([v]) => v === m)?.[1] ?? m;

  // --- state read from the model (decoded once per wire object)
  let wires: unknown = null;
  let views: Record<string, GenView> = {};
  let cells: { view: GenView | null; values: Float32Array } = { view: null, values: new Float32Array(0) };
  const current = () => {
    if (model.get("_views") !== wires) {
      wires = model.get("_views");
      views = Object.fromEntries(Object.entries(wires as Record<string, never>).map(([g, w]) => [g, decodeView(w)]));
    }
    const granularity = String(model.get("granularity"));
    const view = views[granularity] ?? views.token;
    return { view, granularity, prompt: views.token.prompt_length, info: (model.get("_info") ?? {}) as GenInfo };
  };
  let drawn = { start: 0, stop: 0, limit: 0 };

  // --- picking generated chips: click, shift-click, drag, keys
  const pick = (k: number, extend: boolean) => {
    const { view, prompt } = current();
    const now = selectionOf(model);
    const next = clickSelection(view, prompt, now, k, extend);
    if (!sameSelection(now, next)) update(model, { selected: next.selected, span: next.span });
  };
  const onKey = (ev: KeyboardEvent, k: number) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      return pick(k, false);
    }
    const next = stepKey(ev.key, k, nGenerated(current().view));
    if (next === null) return;
    ev.preventDefault();
    pick(next, ev.shiftKey);
    if (model.get("view") === "matrix") matrix.focus(next);
    else generatedChip(next)?.focus();
  };

  /** Hover text: the chip, a generated one's probability and score, and its attribution to what is explained. */
  const describe = (j: number, value: number) => {
    const { view, granularity, info, prompt } = current();
    const name = `'${shownToken(view.tokens[j] ?? "")}'`;
    const k = j - view.prompt_length;
    const head = k >= 0 ? `${name} · generated ${granularity} ${k + 1} of ${nGenerated(view)}\np = ${formatValue(view.probabilities[k])} · score ${formatValue(view.scores[k])}` : `${name} · prompt ${granularity} ${j + 1}`;
    if (j >= drawn.limit) return `${head}\nat or after the explained token: cannot have caused it`;
    return `${head}\nattribution ${formatValue(value)} to ${targetLabel(view, info, prompt, drawn.start, drawn.stop)}`;
  };
  const chips = new TokenChips(frame.tooltip, describe);
  chips.el.setAttribute("role", "group");
  const generatedChip = (k: number) => chips.el.querySelector<HTMLElement>(`[data-sw-output="${k}"]`);
  const outputOf = (ev: Event) => {
    const k = (ev.target as HTMLElement).closest?.("[data-sw-output]")?.getAttribute("data-sw-output");
    return k === null || k === undefined ? null : Number(k);
  };
  let drag: { from: number; moved: boolean } | null = null;
  chips.el.addEventListener("mousedown", (ev) => {
    const k = outputOf(ev);
    if (k === null || ev.button !== 0 || ev.shiftKey) return;
    ev.preventDefault(); // no text selection while dragging over chips
    generatedChip(k)?.focus({ preventScroll: true });
    drag = { from: k, moved: false };
  });
  chips.el.addEventListener("mouseover", (ev) => {
    const k = outputOf(ev);
    if (!drag || !(ev.buttons & 1) || k === null || (k === drag.from && !drag.moved)) return;
    drag.moved = true;
    const { view, prompt } = current();
    const start = clickSelection(view, prompt, selectionOf(model), drag.from, false);
    const next = clickSelection(view, prompt, start, k, true);
    if (!sameSelection(selectionOf(model), next)) update(model, { selected: next.selected, span: next.span });
  });
  chips.el.addEventListener("click", (ev) => {
    const k = outputOf(ev);
    const dragged = drag?.moved;
    drag = null;
    if (k !== null && !dragged) pick(k, ev.shiftKey);
  });
  const endDrag = () => setTimeout(() => (drag = null), 0);
  el.ownerDocument.addEventListener("mouseup", endDrag);
  chips.el.addEventListener("keydown", (ev) => {
    const k = outputOf(ev);
    if (k !== null) onKey(ev, k);
  });
  const matrix = new GenerationMatrix(pick, onKey, frame.tooltip);

  // --- toolbar
  const method = select("attribution method", "method", methods, (v) => update(model, { method: v }));
  const target = select("explained score", "target", ((model.get("_targets") ?? []) as string[]).map((t): [string, string] => [t, TARGET_TEXT[t] ?? t]), (v) => update(model, { target: v }));
  const contrast = h("input", { type: "text", class: "sw-contrast", "data-sw-action": "contrast", "data-sw-role": "contrast", "aria-label": "contrast token (explain the target minus this token's score)", placeholder: "none", spellcheck: "false" });
  const contrastTokens = h("span", { class: "sw-contrast-tokens", "data-sw-role": "contrast-tokens", "aria-live": "polite" });
  contrast.addEventListener("change", () => update(model, { contrast: contrast.value === "" ? null : contrast.value }));
  const granularity = select("granularity", "granularity", GRANULARITIES, (v) => update(model, { granularity: v }));
  const viewSelect = select("view", "view", VIEWS, (v) => update(model, { view: v }));
  const exports = figureExports(model, () => offlineFigure(), (message) => frame.errors.show(message));
  const checksButton = button("checks", "checks", () => update(model, { show_checks: !model.get("show_checks") }),
    "deletion / insertion over the prompt's tokens for the selection, and integrated gradients' completeness (computed in the kernel)");
  frame.toolbar.append(
    field("method", method), field("target", target), field("contrast", contrast), contrastTokens,
    field("by", granularity), field("view", viewSelect), ...frame.commonControls(), checksButton,
    h("span", { class: "sw-spacer" }), h("span", { class: "sw-exports" }, exports),
  );
  frame.kernel.need("another method, target or contrast", method, target, contrast);
  frame.kernel.need("the checks", checksButton);

  // --- body: chips or matrix, then the colour bar with what it explains
  const label = h("div", { "data-sw-role": "target-label" });
  const key = h("div", { class: "sw-gen-key" }, "outlined: explained · underlined: generated · unfilled: at or after it (cannot have caused it) · shift-click, drag or shift-arrows: a span");
  const notes = h("div", { class: "sw-note", "data-sw-role": "notes" });
  const strip = new ChecksStrip(model, null, () => redraw(), {
    keys: CHECK_KEYS,
    open: () => Boolean(model.get("show_checks")),
    pending: () => (live() ? ["deletion_insertion", ...(current().info.method === "integrated_gradients" ? ["completeness"] : [])] : []),
  });
  const body = h("div", { class: "sw-gen-body" }, [chips.el, matrix.el, label, h("div", { class: "sw-legend" }, [frame.colorbar.el]), key, notes, strip.el]);
  frame.body.append(body);

  let contrastShown: unknown = undefined;
  const redraw = () => {
    const { view, granularity: g, prompt, info } = current();
    const sel = selectionOf(model);
    const [start, stop] = shownRows(view, prompt, sel);
    const isMatrix = model.get("view") === "matrix";
    const sign = frame.signValue;
    const lut = frame.lut();
    if (chips.setTokens({ tokens: view.tokens }, view.tokens.length)) {
      chips.items.slice(view.prompt_length).forEach((chip, k) => {
        chip.classList.add("sw-gen");
        Object.assign(chip.dataset, { swOutput: String(k) });
        chip.setAttribute("role", "button");
      });
    }
    const row = spanRow(view.matrix, view.tokens.length, start, stop);
    const limit = causalLimit(view, stop);
    drawn = { start, stop, limit };
    if (isMatrix && cells.view !== view) cells = { view, values: usableCells(view) };
    const m = frame.scaleFor(isMatrix ? cells.values : row.subarray(0, limit));
    const focusRow = chipOf(view, prompt + sel.selected) - view.prompt_length;
    chips.el.hidden = isMatrix;
    matrix.el.hidden = !isMatrix;
    if (isMatrix) matrix.draw(view, sign, m, lut, start, stop, focusRow);
    else {
      chips.draw(row, sign, m, lut, row, limit);
      chips.items.slice(view.prompt_length).forEach((chip, k) => {
        chip.setAttribute("aria-pressed", String(k >= start && k < stop));
        chip.tabIndex = k === focusRow ? 0 : -1;
      });
      chips.el.setAttribute("aria-label", `${nGenerated(view)} generated and ${view.prompt_length} prompt ${g}s; each coloured by its attribution`);
    }
    const what = targetLabel(view, info, prompt, start, stop);
    frame.title.textContent = titleOf(view, g, start, stop);
    frame.sub.textContent = [methodText(info.method), (info.target ?? "").replace("_", "-"), info.layer ? `layer ${info.layer}` : "", g !== "token" ? `by ${g}` : "",
      info.completeness_error === null || info.completeness_error === undefined ? "" : `completeness error ${formatValue(info.completeness_error)}`].filter(Boolean).join(" · ");
    label.textContent = `${isMatrix ? matrixLabel(info, g) : what} — ${methodText(info.method)}, summed over the embedding axis`;
    key.hidden = isMatrix;
    notes.replaceChildren(...(info.notes ?? []).map((n) => h("div", {}, n)));
    // controls
    const busy = live() && (info.method !== model.get("method") || info.target !== model.get("target") || JSON.stringify(info.contrast ?? null) !== JSON.stringify(model.get("contrast") ?? null));
    frame.setBusy(busy, body);
    method.value = String(model.get("method"));
    target.value = String(model.get("target"));
    granularity.value = g;
    viewSelect.value = isMatrix ? "matrix" : "text";
    const wanted = model.get("contrast");
    if (wanted !== contrastShown) {
      contrastShown = wanted;
      contrast.value = wanted === null || wanted === undefined ? "" : typeof wanted === "object" ? JSON.stringify(wanted) : String(wanted);
    }
    checksButton.setAttribute("aria-pressed", String(Boolean(model.get("show_checks"))));
    strip.update(null, sign, lut);
    notes.hidden = !strip.el.hidden && strip.el.querySelector('[data-sw-check="completeness"]') !== null; // the strip shows them
    const tokens = info.contrast_tokens ?? [];
    contrastTokens.textContent = busy && model.get("contrast") ? "→ …" : tokens.length ? `→ ${[...new Set(tokens)].map((t) => `'${shownToken(t)}'`).join(" ")}` : "";
    frame.sync(1);
  };

  /** The offline page's export (no kernel): the chips or the matrix as drawn, with the colour bar. */
  const offlineFigure = () => {
    const { view, info } = current();
    const isMatrix = model.get("view") === "matrix";
    return {
      title: frame.title.textContent ?? "",
      subtitle: label.textContent ?? "",
      name: `generation-${slug(view.tokens.slice(view.prompt_length + drawn.start, view.prompt_length + drawn.stop).join(""))}-${info.method}`,
      map: isMatrix ? matrix.canvas : chipsCanvas(chips),
      smooth: !isMatrix,
      colorbar: frame.colorbar.state as ColorBarState,
    };
  };

  const stop = onChanges(model, ["selected", "span", "granularity", "view", "method", "target", "contrast", "sign", "outlier_perc", "lock_scale", "scale_max", "_views", "_info", "_live", "show_checks", "_checks"], redraw);
  redraw();
  return () => {
    stop();
    el.ownerDocument.removeEventListener("mouseup", endDrag);
    frame.dispose();
  };
}

/** The chips as on screen (fills, outlines, underlines, text), wrapped at `width` pixels and drawn at
 *  `scale` times that, for the offline export. */
function chipsCanvas(chips: TokenChips, width = 480, scale = 2): HTMLCanvasElement {
  const font = "12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace";
  const [pad, gap, line, height] = [5, 4, 24, 19];
  const placed: { chip: HTMLElement; x: number; y: number; w: number }[] = [];
  let [x, y] = [0, 0];
  for (const chip of chips.items) {
    const w = textWidth(chip.textContent ?? "", font) + 2 * pad;
    if (x > 0 && x + w > width) [x, y] = [0, y + line];
    placed.push({ chip, x, y, w });
    x += w + gap;
    if (chip.nextElementSibling?.classList.contains("sw-break")) [x, y] = [0, y + line];
  }
  const canvas = h("canvas", { width: width * scale, height: (y + line) * scale });
  const ctx = canvas.getContext("2d") as CanvasRenderingContext2D;
  ctx.scale(scale, scale);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, y + line);
  ctx.font = font;
  ctx.textBaseline = "middle";
  for (const { chip, x: cx, y: cy, w } of placed) {
    const style = getComputedStyle(chip);
    const off = chip.classList.contains("sw-token-off");
    const marked = chip.getAttribute("aria-pressed") === "true";
    ctx.fillStyle = off ? "#ffffff" : style.backgroundColor;
    ctx.strokeStyle = marked ? "#1f2430" : "#b8bec8";
    ctx.lineWidth = marked ? 2 : 1;
    ctx.beginPath();
    ctx.roundRect(cx + 1, cy + 2, w - 2, height, 4);
    ctx.fill();
    ctx.stroke();
    if (chip.classList.contains("sw-gen")) {
      ctx.fillStyle = "#2f63c9";
      ctx.fillRect(cx + 3, cy + height - 1, w - 6, 2);
    }
    ctx.fillStyle = off ? "#8a919c" : style.color;
    ctx.fillText(chip.textContent ?? "", cx + pad, cy + 2 + height / 2);
  }
  return canvas;
}

export default { render };
