/**
 * anywidget entry of SaliencyMap: output panel + attribution map of the selected output — over the input or side
 * by side with it (trait `view`), alone or one per method in a row (trait `methods`), with the words that name what
 * it shows (top-k, the colour bar's target, the checks' readings) and an announcement of each new map.
 */
import { Announcer, injectA11yStyle } from "./a11y";
import { localAttribution, reduceChannels, type LocalMethod } from "./attribution";
import { OutputPanel } from "./bars";
import { ChecksStrip } from "./checks_strip";
import { type ColorBarState } from "./colorbar";
import { scaleMax, shownSign, toIndex } from "./colors";
import { button, field, select } from "./controls";
import { decode } from "./decode";
import { figureExports } from "./exporting";
import { h } from "./dom";
import { formatValue } from "./format";
import { Frame, FRAME_TRAITS } from "./frame";
import { barValue, listedFeatures, MapView, type MapLayout } from "./mapview";
import { MethodsRow, type RowMap } from "./methods_row";
import { slug } from "./text";
import { onChanges, request, tensor, update, type AnyModel, type RenderProps } from "./model";
import type { TokenState } from "./textview";
import { pushesText, scaleRange, targetLegend } from "./words";
import { zeroDetail, zeroReason, zeroSentence } from "./zero";

const METHOD_TEXT: Record<string, string> = {
  gradient: "gradient",
  input_x_gradient: "gradient × input",
  smoothgrad: "SmoothGrad",
  integrated_gradients: "integrated gradients",
  gradcam: "Grad-CAM",
  gradcam_plus_plus: "Grad-CAM++",
  occlusion: "occlusion",
};
/** Methods that map from a spatial layer (the layer picker is shown for them). */
const CAM_METHODS = ["gradcam", "gradcam_plus_plus"];
/** What an offline page says when a click asks for a map it does not embed. */
const NOT_EMBEDDED = "That map is not embedded in this page (it holds the maps shown when it was written, and gradient and gradient × input for every output when the Jacobian fits); computing it needs the kernel.";

interface Current {
  values: Float32Array;
  completeness: number | null;
  /** Why the map is zero up to float rounding (it is then drawn neutral, with this sentence); null when it is not. */
  note: string | null;
  /** The map is ≥ 0 by construction (the kernel says so for Grad-CAM with its ReLU): drawn one-sided. */
  nonnegative: boolean;
}

/** The request the map on screen must answer: the key of the map and the browser's latest request number. */
export function currentRequest(model: AnyModel): Record<string, unknown> {
  return {
    target: Number(model.get("target")),
    contrast: contrastOf(model),
    index: Number(model.get("index")),
    method: String(model.get("method")),
    output: String(model.get("output")),
    cam_layer: String(model.get("cam_layer") ?? ""),
    request: Number(model.get("_request") ?? 0),
  };
}

/** The output the target is contrasted with (trait `contrast`), or null. */
export function contrastOf(model: AnyModel): number | null {
  const c = model.get("contrast");
  return c === null || c === undefined ? null : Number(c);
}

/** What a reply's metadata means when it leaves a field out. */
const ABSENT: Record<string, unknown> = { cam_layer: "", request: 0, contrast: null };

/** True when a kernel reply's metadata answers the current request (every field of it equal). In an offline
 *  page no reply comes late: the embedded map answers its key whatever the request number. */
export function answersCurrent(meta: Record<string, unknown>, model: AnyModel): boolean {
  const offline = Boolean(model.get("_offline"));
  return Object.entries(currentRequest(model)).every(([k, v]) => (offline && k === "request") || (meta[k] ?? ABSENT[k]) === v);
}

/** Whether an offline page can draw the request `changes` would make: a gradient or input × gradient map
 *  of the embedded Jacobian's sample, or the key of a map the page embeds (`_attribution`, `_method_maps`). */
export function answerableOffline(model: AnyModel, changes: Record<string, unknown>): boolean {
  const key: Record<string, unknown> = { ...currentRequest(model), ...changes };
  const jac = model.get("_jacobian") as Record<string, unknown> | null;
  const methods = ((model.get("methods") ?? []) as string[]).length ? (model.get("methods") as string[]) : [String(key.method)];
  const embeds = (name: string) => {
    const meta = model.get(name) as Record<string, unknown> | null;
    return Boolean(meta) && ["target", "contrast", "index", "output", "cam_layer"].every((k) => ((meta as Record<string, unknown>)[k] ?? ABSENT[k]) === key[k]);
  };
  return methods.every((m) => {
    if (jac && (model.get("_local_methods") as string[]).includes(m) && jac.index === key.index && jac.output === key.output) return true;
    const row = model.get("_method_maps") as { methods?: string[] } | null;
    return (embeds("_attribution") && (model.get("_attribution") as Record<string, unknown>).method === m) || (embeds("_method_maps") && Boolean(row?.methods?.includes(m)));
  });
}

/** The map for the current request: derived locally from the prefetched Jacobian when possible, else
 *  the kernel's reply if it answers this very request (an older reply is never drawn); null while computing. */
export function currentAttribution(model: AnyModel, layout: MapLayout): Current | null {
  const local = localMap(model, layout, String(model.get("method")));
  if (local) return local;
  const reply = tensor(model, "_attribution");
  const m = reply?.meta;
  if (reply && m && answersCurrent(m, model)) {
    return { values: Float32Array.from(reply.values), completeness: m.completeness_error ?? null, note: m.note || null, nonnegative: Boolean(m.nonnegative) };
  }
  return null;
}

/** The methods row's maps (trait `methods`), in its order: derived from the Jacobian, else from the kernel's
 *  `_method_maps` when they answer the sample, target, contrast, output and layer on screen (whatever the request
 *  number: they hold every method of the row, so a click on another map needs none), else the current method's
 *  own map; null while computing. */
export function methodMaps(model: AnyModel, layout: MapLayout): (Current | null)[] {
  const methods = (model.get("methods") ?? []) as string[];
  const key = currentRequest(model);
  const row = tensor(model, "_method_maps");
  const m = row?.meta ?? {};
  const fits = Boolean(row) && ["target", "contrast", "index", "output", "cam_layer"].every((k) => (m[k] ?? ABSENT[k]) === key[k]);
  const size = row ? row.values.length / Math.max(1, row.shape[0]) : 0;
  return methods.map((method) => {
    const local = localMap(model, layout, method);
    if (local) return local;
    const k = fits ? (m.methods as string[]).indexOf(method) : -1;
    if (row && k >= 0) {
      const values = Float32Array.from(row.values.subarray(k * size, (k + 1) * size));
      return { values, completeness: m.completeness_error?.[k] ?? null, note: m.notes?.[k] || null, nonnegative: Boolean(m.nonnegative?.[k]) };
    }
    return method === key.method ? currentAttribution(model, layout) : null;
  });
}

/** The map of `method` derived from the prefetched Jacobian (gradient, input × gradient), or null. */
function localMap(model: AnyModel, layout: MapLayout, method: string): Current | null {
  const target = Number(model.get("target"));
  const index = Number(model.get("index"));
  const output = String(model.get("output"));
  const jac = tensor(model, "_jacobian");
  const input = tensor(model, "_input");
  if (jac && input && (model.get("_local_methods") as string[]).includes(method) && jac.meta.index === index && jac.meta.output === output && input.meta.index === index) {
    const size = input.values.length;
    const values = localAttribution(jac.values, size, target, method as LocalMethod, input.values, contrastOf(model));
    const tokens = (model.get("_tokens") ?? {}) as TokenState;
    const hidden = layout.kind === "text" && tokens.index === index ? tokens.hidden : undefined;
    const note = zeroReason(values, layout.sample_shape, {
      method,
      summedAxis: layout.channel_axis,
      axisName: layout.kind === "text" ? "embedding" : "channel",
      shown: hidden ? hidden.map((h) => !h) : null,
    });
    return { values: reduceChannels(values, layout.sample_shape, layout.channel_axis), completeness: null, note, nonnegative: false };
  }
  return null;
}

/** "predicted “cat” · true “dog”" for one sample (the true part only when `truth` has labels). */
export function predictionText(scores: ArrayLike<number>, labels: string[], truth: string[], index: number): string {
  if (scores.length === 0) return "";
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  const predicted = labels[best] ?? String(best);
  const actual = truth[index];
  if (actual === undefined) return `predicted “${predicted}”`;
  return `predicted “${predicted}” · true “${actual}” ${actual === predicted ? "✓" : "✗"}`;
}

function render({ model, el }: RenderProps): () => void {
  const frame = new Frame(model, el, "saliency-map");
  /** A request the view makes: in an offline page only one the page can draw (else the note says why). */
  const ask = (changes: Record<string, unknown>) => {
    const refused = frame.kernel.off && !answerableOffline(model, changes);
    frame.kernel.say(NOT_EMBEDDED, refused);
    if (!refused) request(model, changes);
  };
  injectA11yStyle(el);
  const layout = model.get("_layout") as MapLayout;
  const names = model.get("_feature_names") as string[];
  const view = new MapView(layout, names, frame.tooltip, { fit: true });
  /** The methods row: a click on a map makes its method the current one (its checks, list and colour bar). */
  const row = new MethodsRow(layout, names, frame.tooltip, (m) => m !== model.get("method") && ask({ method: m }));
  view.onWidth = (width) => row.resize(width);
  view.afterMap(row.el);
  const announcer = new Announcer();
  frame.root.append(announcer.el);
  /** A click on output k selects it (dropping a contrast it was); an alt-click contrasts the target with it (again: clears). */
  const panel = new OutputPanel((k, alt) => {
    const contrast = contrastOf(model);
    if (!alt) ask(k === contrast ? { target: k, contrast: null } : { target: k });
    else if (k !== Number(model.get("target"))) ask({ contrast: k === contrast ? null : k });
  });
  const methods = (model.get("_methods") as string[]).map((m): [string, string] => [m, METHOD_TEXT[m] ?? m]);
  const method = select("attribution method", "method", methods, (v) => ask({ method: v }));
  const camLayers = (model.get("_cam_layers") ?? []) as string[];
  const camLabels = (model.get("_cam_layer_labels") ?? []) as string[];
  const camLabel = (i: number) => camLabels[i] ?? camLayers[i] ?? "none";
  const camLayer = select("Grad-CAM layer", "cam-layer", [["", `last spatial (${camLabel(camLayers.length - 1)})`], ...camLayers.map((l, i): [string, string] => [l, camLabel(i)])], (v) => request(model, { cam_layer: v }));
  const camField = field("layer", camLayer);
  const opacity = h("input", { type: "range", min: 0, max: 1, step: 0.05, "data-sw-action": "opacity", "aria-label": "opacity" });
  opacity.addEventListener("input", () => {
    view.setOpacity(Number(opacity.value));
    update(model, { opacity: Number(opacity.value) });
  });
  const labelOf = (k: number) => (model.get("_labels") as string[])[k] ?? String(k);
  /** “cat”, or “cat” vs “dog” with a contrast: what the map explains. */
  const explained = () => {
    const contrast = contrastOf(model);
    return `“${labelOf(Number(model.get("target")))}”` + (contrast === null ? "" : ` vs “${labelOf(contrast)}”`);
  };
  const outputChoices = (model.get("_labels") as string[]).map((label, k): [string, string] => [String(k), label]);
  const versus = select("contrast with output (versus)", "contrast", [["", "none"], ...outputChoices], (v) => ask({ contrast: v === "" ? null : Number(v) }));
  versus.setAttribute("data-sw-role", "contrast");
  versus.title = "why the selected output and not this one: the map of their score difference (alt-click an output too)";
  const arrangement = select("layout", "view", [["overlay", "overlay"], ["side_by_side", "side by side"]], (v) => update(model, { view: v }));
  arrangement.title = "the map over the input, or the input, the map and the overlay side by side (a sequence: its input signal above the map)";
  const arrangementField = field("layout", arrangement);
  if (layout.kind !== "image" && layout.kind !== "sequence") arrangementField.style.display = "none";
  const shared = button("shared scale", "shared-scale", () => update(model, { shared_scale: !model.get("shared_scale") }), "one colour scale for every map of the row (off: each map on its own scale)");
  const methodsOf = () => (model.get("methods") ?? []) as string[];
  const exports = figureExports(model, () => {
    const current = currentAttribution(model, layout);
    const contrast = contrastOf(model);
    const m = frame.lastM;
    const lut = frame.lut();
    const note = current?.note ?? null;
    const values = current ? (note ? new Float32Array(current.values.length) : current.values) : new Float32Array(0);
    const names = model.get("_feature_names") as string[];
    const sign = frame.shownSign;
    const color = (v: number) => {
      const i = toIndex(v, sign, m) * 4;
      return `rgb(${lut[i]},${lut[i + 1]},${lut[i + 2]})`;
    };
    return {
      title: frame.title.textContent ?? "",
      subtitle: `${frame.sub.textContent ?? ""} · ${verdict.textContent ?? ""}`,
      name: `saliency-${slug(labelOf(model.get("target")))}${contrast === null ? "" : `-vs-${slug(labelOf(contrast))}`}-${model.get("method")}`,
      map: methodsOf().length ? row.compose(Number(model.get("opacity"))) : view.compose(Number(model.get("opacity"))),
      bars: layout.kind === "vector" && !methodsOf().length
        ? listedFeatures(values, sign).slice(0, 48).map((k) => ({ label: names[k] ?? `feature ${k}`, value: barValue(values[k], sign), shown: values[k], color: color(values[k]) }))
        : undefined,
      colorbar: frame.colorbar.state as ColorBarState,
      note: note ? zeroSentence(note) : undefined,
    };
  }, (message) => frame.errors.show(message));
  frame.toolbar.append(field("method", method), camField, field("versus", versus), arrangementField, shared, ...frame.commonControls());
  if (camLayers.length) frame.kernel.need("another Grad-CAM layer", camLayer);
  if (layout.kind === "image") frame.toolbar.append(field("opacity", opacity));
  frame.toolbar.append(h("span", { class: "sw-spacer" }), h("span", { class: "sw-exports" }, exports));
  const zero = h("div", { class: "sw-zero", "data-sw-role": "note", role: "note", hidden: true });
  const legend = h("div", { class: "sw-legend" }, [frame.colorbar.el, zero]);
  view.el.append(legend);
  frame.body.append(panel.el, view.el);
  const strip = new ChecksStrip(model, layout, () => redraw());
  view.el.append(strip.el);
  const verdict = h("span", { class: "sw-verdict", "data-sw-role": "prediction" });
  frame.head.append(verdict);

  let paintedImage: unknown = null;
  let sideBySide: boolean | null = null;
  /** What the colour bar reads for the map drawn (it stays with the dimmed map while a request computes). */
  let legendText = "";
  /** After the first map is painted, ask the kernel for the Jacobian (targets then switch in the browser). */
  let prefetchAsked = false;
  const prefetchAfterPaint = () => {
    if (prefetchAsked || !model.get("_prefetchable") || model.get("_want_jacobian") || model.get("_jacobian")) return;
    prefetchAsked = true;
    requestAnimationFrame(() => setTimeout(() => update(model, { _want_jacobian: true }), 0));
  };
  const redraw = () => {
    const target = Number(model.get("target"));
    const scores = tensor(model, "_scores");
    const contrast = contrastOf(model);
    panel.update(scores ? scores.values : new Float32Array(0), model.get("_labels"), target, String(model.get("output")), contrast);
    versus.value = contrast === null ? "" : String(contrast);
    const offline = frame.kernel.off;
    for (const option of Array.from(versus.options)) option.disabled = option.value === String(target) || (offline && !answerableOffline(model, { contrast: option.value === "" ? null : Number(option.value) }));
    const methods = methodsOf();
    const inRow = methods.length > 0;
    method.value = String(model.get("method"));
    for (const option of Array.from(method.options)) option.disabled = (inRow && !methods.includes(option.value)) || (offline && !answerableOffline(model, { method: option.value }));
    const side = model.get("view") === "side_by_side";
    arrangement.value = side ? "side_by_side" : "overlay";
    if (side !== sideBySide) {
      sideBySide = side;
      view.setSideBySide(side);
      row.setSideBySide(side);
    }
    view.setMapShown(!inRow);
    row.el.hidden = !inRow;
    shared.hidden = !inRow;
    shared.setAttribute("aria-pressed", String(Boolean(model.get("shared_scale"))));
    camLayer.value = String(model.get("cam_layer") ?? "");
    camField.style.display = CAM_METHODS.includes(String(model.get("method"))) ? "" : "none";
    opacity.value = String(model.get("opacity"));
    view.setOpacity(Number(model.get("opacity")));
    const image = model.get("_image");
    if (image && image !== paintedImage) {
      const pic = tensor(model, "_image");
      if (pic) {
        view.setImage(pic.values as Uint8Array, pic.shape[2] ?? 1, pic.meta.caption ?? "");
        row.setImage(pic.values as Uint8Array, pic.shape[2] ?? 1, pic.meta.caption ?? "");
      }
      paintedImage = image;
    }
    const tokens = (model.get("_tokens") ?? {}) as TokenState;
    view.setTokens(tokens);
    row.setTokens(tokens);
    const maps = inRow ? methodMaps(model, layout) : [];
    // in a row the current method's map may come with the row's (a click on another map asks the kernel for nothing)
    const current = inRow ? maps[methods.indexOf(String(model.get("method")))] ?? currentAttribution(model, layout) : currentAttribution(model, layout);
    frame.setBusy(current === null || maps.includes(null), view.stage);
    const locked = Boolean(model.get("lock_scale") && model.get("scale_max") > 0);
    const relative = inRow && !model.get("shared_scale") && !locked;
    if (current) {
      // the title, subtitle and note describe the map drawn: while a request is computing they stay with the dimmed map
      const note = current.note;
      frame.nonnegative = current.nonnegative;
      const m = note ? frame.lastM : frame.scaleFor(current.values);
      if (inRow && !relative && !locked && !note) frame.lastM = Math.max(m, ...maps.map((c) => (c && !c.note ? ownScale(c) : 0)));
      const input = tensor(model, "_input");
      view.draw(current.values, frame.shownSign, frame.lastM, frame.lut(), input ? input.values : null, note !== null);
      row.opacity = Number(model.get("opacity"));
      if (inRow) row.draw(methods.map((name, i) => rowMap(name, maps[i], relative)), String(model.get("method")), input ? input.values : null);
      const entries = view.entries(current.values);
      const words = (layout.kind === "vector" || layout.kind === "text") && !note;
      view.setWords(words ? pushesText(entries.values, entries.names, explained()) : null);
      frame.title.textContent = `Saliency of ${explained()}`;
      legendText = targetLegend(frame.shownSign, explained());
      const methodText = METHOD_TEXT[model.get("method")] ?? model.get("method");
      view.describeAs(`${frame.title.textContent} by ${methodText}` + (note ? `: zero map, ${note}` : ""), note !== null);
      const n = Number(model.get("_n_samples"));
      const sample = n > 1 ? `, sample ${Number(model.get("index")) + 1} of ${n}` : "";
      announcer.say(JSON.stringify({ ...currentRequest(model), request: 0 }), `${frame.title.textContent} by ${methodText}${sample}`);
      const ce = current.completeness;
      frame.sub.textContent = `${methodText} · ${model.get("output")}` + (ce === null ? "" : ` · completeness error ${formatValue(ce)}`);
      zero.hidden = note === null;
      zero.replaceChildren(...(note ? [h("strong", {}, "Zero map."), " ", h("span", {}, zeroDetail(note))] : []));
      frame.colorbar.el.hidden = note !== null;
      prefetchAfterPaint();
    } else if (!frame.title.textContent) frame.title.textContent = `Saliency of ${explained()}`;
    strip.update(current ? (current.note ? new Float32Array(current.values.length) : current.values) : null, frame.shownSign, frame.lut());
    verdict.textContent = scores ? predictionText(scores.values, model.get("_labels"), model.get("_truth") ?? [], Number(model.get("index"))) : "";
    frame.sync(Number(model.get("_n_samples")));
    frame.colorbar.update({ ...(frame.colorbar.state as ColorBarState), target: legendText, relative });
  };
  /** A row map's own colour scale: the normalization rule over it, with its own (one-sided for Grad-CAM) sign. */
  const ownScale = (c: Current) => scaleMax(c.values, shownSign(frame.signValue, c.nonnegative), Number(model.get("outlier_perc")));
  /** One map of the row as drawn: the shared (or locked) scale, or its own with its range in its caption. */
  const rowMap = (name: string, c: Current | null, relative: boolean): RowMap => {
    const sign = shownSign(frame.signValue, c?.nonnegative ?? false);
    const m = c && relative ? ownScale(c) : frame.lastM;
    const caption = (METHOD_TEXT[name] ?? name) + (relative && c ? ` · ${scaleRange(sign, m)}` : "");
    return { method: name, caption, values: c?.values ?? null, sign, m, lut: decode(model.get("_luts")[sign]) as Uint8Array, neutral: Boolean(c?.note) };
  };
  const stop = onChanges(model, [...FRAME_TRAITS, "target", "contrast", "method", "output", "opacity", "_input", "_image", "_jacobian", "_attribution", "_truth", "_tokens", "cam_layer", "_request", "_checks", "_randomization_maps", "_on_demand", "view", "methods", "shared_scale", "_method_maps"], redraw);
  redraw();
  return () => {
    stop();
    view.dispose();
    frame.dispose();
  };
}

export default { render };
