/**
 * The SaliencyMap's checks strip under the map: one item per check (`data-sw-check`, `data-sw-status`),
 * drawn from the kernel's `_checks` trait; the on-demand checks start from a button (`_check_request`),
 * show "computing" until their result arrives, then a deletion / insertion sparkline or the
 * randomization row (`_randomization_maps`: one map per randomized layer, its Spearman ρ under it).
 * Other widgets pass `StripOptions`: the traits that name what is on screen, whether the strip is open
 * and what the kernel computes on its own. An item with axis labels (`x_label`, `y_label`) draws its
 * curves as a labelled chart, and an `explain` line says how to read it.
 */
import { scaleMax, type Sign } from "./colors";
import { button } from "./controls";
import { h } from "./dom";
import { formatValue } from "./format";
import { Heatmap } from "./heatmap";
import { mapGrid, type MapLayout } from "./mapview";
import { tensor, update, type AnyModel } from "./model";
import { injectStyle } from "./style";

/** Status colours and curve colours (STATUS_COLORS / CURVE_COLORS in saliency_widgets/export.py). */
export const STATUS_COLORS = { ok: "#2e9d4f", warn: "#e08a00", computing: "#8a94a6" } as const;
export const CURVE_COLORS = { deletion: "#d1495b", insertion: "#2f63c9" } as const;

/** Check names in the strip's order, as shown. */
export const CHECK_NAMES: Record<string, string> = {
  completeness: "completeness",
  random_logit: "random logit",
  deletion_insertion: "deletion / insertion",
  randomization: "randomization test",
};

export interface CheckItem {
  status: "ok" | "warn" | "computing";
  text: string;
  [key: string]: any;
}

const SPARK = { width: 120, height: 32 };
/** The labelled chart: the plot's size and the margins for tick and axis labels, the legend at its right. */
const CHART = { width: 220, height: 86, left: 46, top: 8, bottom: 34, legend: 150 };
const SVG_NS = "http://www.w3.org/2000/svg";
const TILE = 72;

const CSS = `
.sw-checks{display:flex;flex-direction:column;gap:6px;padding:6px 8px;border-top:1px solid var(--sw-line)}
.sw-checks-items{display:flex;flex-wrap:wrap;gap:6px 18px;align-items:center}
.sw-check{display:inline-flex;align-items:center;gap:6px;color:var(--sw-muted)}
.sw-check-name{color:var(--sw-fg);font-weight:600}
.sw-check-dot{width:10px;height:10px;border-radius:50%;flex:none;box-shadow:0 0 0 1px var(--sw-outline)}
.sw-check[data-sw-status=computing] .sw-check-dot{animation:sw-spin 1s linear infinite;border:2px solid var(--sw-accent-soft);border-top-color:var(--sw-accent);background:none!important}
.sw-check svg{display:block;background:var(--sw-soft);border-radius:3px}
.sw-check-wide{flex-wrap:wrap;max-width:100%}
.sw-check-break{flex-basis:100%;height:0}
.sw-check-wide svg{margin-left:16px;color:var(--sw-muted);font-size:10.5px}
.sw-check-wide svg .sw-axis{stroke:var(--sw-muted);stroke-width:1}
.sw-check-explain{flex-basis:100%;padding-left:16px;font-size:11.5px}
.sw-randomization{display:flex;gap:10px;flex-wrap:wrap;align-items:flex-start}
.sw-randomization:empty{display:none}
.sw-rand-tile{display:flex;flex-direction:column;align-items:center;gap:2px;font-size:11px;color:var(--sw-muted);max-width:${TILE + 40}px}
.sw-rand-tile canvas{image-rendering:pixelated;box-shadow:0 0 0 1px var(--sw-outline);border-radius:3px}
.sw-rand-tile span{max-width:100%;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.sw-rand-tile .sw-rho{color:var(--sw-fg);font-variant-numeric:tabular-nums}
`;

/** SVG polyline points of `values` over `fractions` in a width × height box, y scaled to [lo, hi]. */
export function sparkPoints(fractions: number[], values: number[], lo: number, hi: number, width = SPARK.width, height = SPARK.height): string {
  const span = hi - lo || 1;
  return values
    .map((v, i) => `${(fractions[i] * width).toFixed(1)},${(height - 2 - ((v - lo) / span) * (height - 4)).toFixed(1)}`)
    .join(" ");
}

const KEY = ["index", "target", "contrast", "method", "output", "cam_layer"];

/** How a widget drives the strip (the defaults are the SaliencyMap's). */
export interface StripOptions {
  /** Traits naming what is on screen; the kernel's `_checks.key` holds their values for its items. */
  keys?: readonly string[];
  /** False: the strip is closed (hidden). */
  open?: () => boolean;
  /** Checks the kernel is computing whenever its `_checks` are for something else (shown "computing"). */
  pending?: () => string[];
}

/** An SVG element with attributes. */
function svgEl<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** The deletion and insertion curves of `item` as polylines in a width × height box, on one y scale. */
function curveLines(item: CheckItem, width: number, height: number): { lines: SVGPolylineElement[]; lo: number; hi: number } {
  const values = [...item.deletion, ...item.insertion] as number[];
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const lines = (["deletion", "insertion"] as const).map((what) =>
    svgEl("polyline", { points: sparkPoints(item.fractions, item[what], lo, hi, width, height), fill: "none", stroke: CURVE_COLORS[what], "stroke-width": 1.5, "data-sw-curve": what }));
  return { lines, lo, hi };
}

const aucLabel = (item: CheckItem) => `deletion AUC ${formatValue(item.deletion_auc)} (red), insertion AUC ${formatValue(item.insertion_auc)} (blue)`;

export class ChecksStrip {
  readonly el = h("div", { class: "sw-checks", "data-sw-role": "checks" });
  private items = h("div", { class: "sw-checks-items" });
  private row = h("div", { class: "sw-randomization", "data-sw-role": "randomization" });
  /** On-demand checks asked for, by the key of the map they were asked for. */
  private asked = new Set<string>();
  private requests = 0;
  /** What the strip was last drawn from (a redraw with the same inputs changes nothing). */
  private drawn: unknown[] = [];

  private keys: readonly string[];
  private open: () => boolean;
  private pending: () => string[];

  /** `redraw` is called when a button changes what the strip shows; `layout` shapes the randomization row. */
  constructor(private model: AnyModel, private layout: MapLayout | null, private redraw: () => void, options: StripOptions = {}) {
    this.keys = options.keys ?? KEY;
    this.open = options.open ?? (() => true);
    this.pending = options.pending ?? (() => []);
    injectStyle(this.el, "sw-checks-style", CSS);
    this.el.append(h("span", { class: "sw-panel-head" }, "Checks"), this.items, this.row);
  }

  /** Re-reads `_checks` and `_randomization_maps`; `original` is the map on screen (display shape). */
  update(original: Float32Array | null, sign: Sign, lut: Uint8Array): void {
    injectStyle(this.el, "sw-checks-style", CSS);
    const key = this.currentKey();
    const all = (this.model.get("_checks") ?? {}) as Record<string, any>;
    const k = all.key ?? {};
    const fresh = JSON.stringify(this.keys.map((name) => k[name])) === key;
    const open = this.open();
    const checks: Record<string, CheckItem> = fresh && open ? all : {};
    const onDemand = (this.model.get("_on_demand") ?? []) as string[];
    const pending = open && !fresh ? this.pending() : [];
    const inputs = [all, key, this.asked.size, onDemand, this.model.get("_randomization_maps"), sign, checks.randomization ? original : null, pending.join()];
    if (inputs.every((v, i) => v === this.drawn[i])) return;
    this.drawn = inputs;
    const nodes: HTMLElement[] = [];
    for (const name of Object.keys(CHECK_NAMES)) {
      const computing = this.asked.has(`${name} ${key}`) || pending.includes(name);
      const item = checks[name] ?? (computing ? { status: "computing", text: "computing…" } as CheckItem : null);
      if (item) nodes.push(this.item(name, item));
      else if (onDemand.includes(name)) nodes.push(button(CHECK_NAMES[name], `check-${name.replace("_", "-")}`, () => this.ask(name), `run the ${CHECK_NAMES[name]} in the kernel`));
    }
    this.items.replaceChildren(...nodes);
    this.drawRow(checks.randomization, original, sign, lut);
    this.el.hidden = nodes.length === 0;
  }

  /** The key of what is on screen, to match the kernel's `_checks.key` against. */
  private currentKey(): string {
    return JSON.stringify(this.keys.map((k) => this.model.get(k)));
  }

  private ask(name: string): void {
    this.asked.add(`${name} ${this.currentKey()}`);
    this.requests += 1;
    update(this.model, { _check_request: { name, n: this.requests } });
    this.redraw();
  }

  private item(name: string, item: CheckItem): HTMLElement {
    const dot = h("span", { class: "sw-check-dot" });
    dot.style.background = STATUS_COLORS[item.status] ?? STATUS_COLORS.computing;
    const el = h("span", { class: "sw-check", "data-sw-check": name, "data-sw-status": item.status, title: `${CHECK_NAMES[name]}: ${item.status}` }, [
      dot, h("span", { class: "sw-check-name" }, CHECK_NAMES[name]), h("span", {}, item.text),
    ]);
    if (name === "deletion_insertion" && item.fractions) {
      el.append(...(item.x_label ? [h("span", { class: "sw-check-break" }), this.chart(item)] : [this.sparkline(item)]));
    }
    if (item.explain) el.append(h("span", { class: "sw-check-explain", "data-sw-role": "check-explain" }, item.explain));
    el.classList.toggle("sw-check-wide", Boolean(item.x_label || item.explain));
    return el;
  }

  private sparkline(item: CheckItem): SVGSVGElement {
    const label = aucLabel(item);
    const svg = svgEl("svg", { width: SPARK.width, height: SPARK.height, "data-sw-role": "sparkline", role: "img", "aria-label": label });
    const title = svgEl("title");
    title.textContent = label;
    svg.append(title, ...curveLines(item, SPARK.width, SPARK.height).lines);
    return svg;
  }

  /** The curves on labelled axes (`x_label`, `y_label`), their lowest and highest score as ticks and a legend with the AUCs. */
  private chart(item: CheckItem): SVGSVGElement {
    const { width, height, left, top, bottom, legend } = CHART;
    const label = aucLabel(item);
    const svg = svgEl("svg", { width: left + width + legend, height: top + height + bottom, "data-sw-role": "check-chart", role: "img", "aria-label": `${label}; x: ${item.x_label}, y: ${item.y_label}` });
    const text = (x: number, y: number, content: string, attrs: Record<string, string | number> = {}) => {
      const el = svgEl("text", { x, y, fill: "currentColor", ...attrs });
      el.textContent = content;
      return el;
    };
    const { lines, lo, hi } = curveLines(item, width, height);
    const plot = svgEl("g", { transform: `translate(${left},${top})` });
    plot.append(svgEl("path", { d: `M0,0V${height}H${width}`, fill: "none", class: "sw-axis" }), ...lines);
    const ticks: [number, number, string, string][] = [
      [-4, height - 2, formatValue(lo), "end"], [-4, 8, formatValue(hi), "end"], [0, height + 13, "0", "middle"], [width, height + 13, "1", "middle"],
    ];
    for (const [x, y, t, anchor] of ticks) plot.append(text(x, y, t, { "text-anchor": anchor }));
    plot.append(text(width / 2, height + 28, String(item.x_label), { "text-anchor": "middle" }));
    plot.append(text(0, 0, String(item.y_label ?? ""), { "text-anchor": "middle", transform: `translate(-34,${height / 2}) rotate(-90)` }));
    (["deletion", "insertion"] as const).forEach((what, i) => {
      const y = 14 + 18 * i;
      plot.append(svgEl("line", { x1: width + 12, x2: width + 30, y1: y - 4, y2: y - 4, stroke: CURVE_COLORS[what], "stroke-width": 2 }));
      plot.append(text(width + 36, y, `${what} AUC ${formatValue(item[`${what}_auc`])}`, { "data-sw-auc": what }));
    });
    const title = svgEl("title");
    title.textContent = label;
    svg.append(title, plot);
    return svg;
  }

  /** The original map, then one tile per randomized layer, each on its own colour scale. */
  private drawRow(item: CheckItem | undefined, original: Float32Array | null, sign: Sign, lut: Uint8Array): void {
    const maps = tensor(this.model, "_randomization_maps");
    const m = maps?.meta;
    const layout = this.layout;
    if (!item?.layers || !maps || !m || !original || !layout || JSON.stringify(this.keys.map((name) => m[name])) !== this.currentKey()) {
      this.row.replaceChildren();
      return;
    }
    const size = original.length;
    const tiles = [this.tile(layout, "original", "", original, sign, lut)];
    (item.layers as string[]).forEach((layer, i) => {
      const values = maps.values.subarray(i * size, (i + 1) * size) as Float32Array;
      tiles.push(this.tile(layout, layer, `ρ ${formatValue(item.spearman[i])}`, values, sign, lut, `SSIM ${formatValue(item.ssim[i])}`));
    });
    this.row.replaceChildren(...tiles);
  }

  private tile(layout: MapLayout, layer: string, rho: string, values: Float32Array, sign: Sign, lut: Uint8Array, more = ""): HTMLElement {
    const { rows, cols, at } = mapGrid(layout);
    const heat = new Heatmap({ "data-sw-role": "randomization-map", "aria-label": `map with ${layer} ${rho}` });
    heat.draw(values, rows, cols, sign, scaleMax(values, sign, Number(this.model.get("outlier_perc"))), lut, { at });
    const wide = rows === 1 || cols / rows > 2;
    heat.setDisplaySize(wide ? TILE + 40 : Math.round((TILE * cols) / Math.max(rows, cols)), wide ? 14 : Math.round((TILE * rows) / Math.max(rows, cols)));
    return h("div", { class: "sw-rand-tile", "data-sw-step": layer, title: [layer, rho, more].filter(Boolean).join(" · ") }, [
      h("span", {}, layer), heat.canvas, h("span", { class: "sw-rho" }, rho || "as trained"),
    ]);
  }
}
