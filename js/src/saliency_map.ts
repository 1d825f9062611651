/** anywidget entry of SaliencyMap: output panel + attribution map of the selected output. */
import { localAttribution, reduceChannels, type LocalMethod } from "./attribution";
import { OutputPanel } from "./bars";
import { ChecksStrip } from "./checks_strip";
import { type ColorBarState } from "./colorbar";
import { toIndex } from "./colors";
import { field, select } from "./controls";
import { figureExports } from "./exporting";
import { h } from "./dom";
import { formatValue } from "./format";
import { Frame, FRAME_TRAITS } from "./frame";
import { barValue, listedFeatures, MapView, type MapLayout } from "./mapview";
import { slug } from "./text";
import { onChanges, request, tensor, update, type AnyModel, type RenderProps } from "./model";
import type { TokenState } from "./textview";
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

/** True when a kernel reply's metadata answers the current request (every field of it equal). */
export function answersCurrent(meta: Record<string, unknown>, model: AnyModel): boolean {
  const absent: Record<string, unknown> = { cam_layer: "", request: 0, contrast: null };
  return Object.entries(currentRequest(model)).every(([k, v]) => (meta[k] ?? absent[k]) === v);
}

/** The map for the current request: derived locally from the prefetched Jacobian when possible, else
 *  the kernel's reply if it answers this very request (an older reply is never drawn); null while computing. */
export function currentAttribution(model: AnyModel, layout: MapLayout): Current | null {
  const target = Number(model.get("target"));
  const index = Number(model.get("index"));
  const method = String(model.get("method"));
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
  const reply = tensor(model, "_attribution");
  const m = reply?.meta;
  if (reply && m && answersCurrent(m, model)) {
    return { values: Float32Array.from(reply.values), completeness: m.completeness_error ?? null, note: m.note || null, nonnegative: Boolean(m.nonnegative) };
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
  const layout = model.get("_layout") as MapLayout;
  const view = new MapView(layout, model.get("_feature_names") as string[], frame.tooltip);
  /** A click on output k selects it (dropping a contrast it was); an alt-click contrasts the target with it (again: clears). */
  const panel = new OutputPanel((k, alt) => {
    const contrast = contrastOf(model);
    if (!alt) request(model, k === contrast ? { target: k, contrast: null } : { target: k });
    else if (k !== Number(model.get("target"))) request(model, { contrast: k === contrast ? null : k });
  });
  const methods = (model.get("_methods") as string[]).map((m): [string, string] => [m, METHOD_TEXT[m] ?? m]);
  const method = select("attribution method", "method", methods, (v) => request(model, { method: v }));
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
  const versus = select("contrast with output (versus)", "contrast", [["", "none"], ...outputChoices], (v) => request(model, { contrast: v === "" ? null : Number(v) }));
  versus.setAttribute("data-sw-role", "contrast");
  versus.title = "why the selected output and not this one: the map of their score difference (alt-click an output too)";
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
      map: view.compose(Number(model.get("opacity"))),
      bars: layout.kind === "vector"
        ? listedFeatures(values, sign).slice(0, 48).map((k) => ({ label: names[k] ?? `feature ${k}`, value: barValue(values[k], sign), shown: values[k], color: color(values[k]) }))
        : undefined,
      colorbar: frame.colorbar.state as ColorBarState,
      note: note ? zeroSentence(note) : undefined,
    };
  }, (message) => frame.errors.show(message));
  frame.toolbar.append(field("method", method), camField, field("versus", versus), ...frame.commonControls());
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
    for (const option of Array.from(versus.options)) option.disabled = option.value === String(target);
    method.value = String(model.get("method"));
    camLayer.value = String(model.get("cam_layer") ?? "");
    camField.style.display = CAM_METHODS.includes(String(model.get("method"))) ? "" : "none";
    opacity.value = String(model.get("opacity"));
    view.setOpacity(Number(model.get("opacity")));
    const image = model.get("_image");
    if (image && image !== paintedImage) {
      const pic = tensor(model, "_image");
      if (pic) view.setImage(pic.values as Uint8Array, pic.shape[2] ?? 1);
      paintedImage = image;
    }
    view.setTokens((model.get("_tokens") ?? {}) as TokenState);
    const current = currentAttribution(model, layout);
    frame.setBusy(current === null, view.stage);
    if (current) {
      // the title, subtitle and note describe the map drawn: while a request is computing they stay with the dimmed map
      const note = current.note;
      frame.nonnegative = current.nonnegative;
      const m = note ? frame.lastM : frame.scaleFor(current.values);
      const input = tensor(model, "_input");
      view.draw(current.values, frame.shownSign, m, frame.lut(), layout.kind === "vector" && input ? input.values : null, note !== null);
      frame.title.textContent = `Saliency of ${explained()}`;
      const methodText = METHOD_TEXT[model.get("method")] ?? model.get("method");
      view.describeAs(`${frame.title.textContent} by ${methodText}` + (note ? `: zero map, ${note}` : ""), note !== null);
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
  };
  const stop = onChanges(model, [...FRAME_TRAITS, "target", "contrast", "method", "output", "opacity", "_input", "_image", "_jacobian", "_attribution", "_truth", "_tokens", "cam_layer", "_request", "_checks", "_randomization_maps", "_on_demand"], redraw);
  redraw();
  return () => {
    stop();
    frame.dispose();
  };
}

export default { render };
