/**
 * The SaliencyMap's checks strip under the map: one item per check (`data-sw-check`, `data-sw-status`),
 * drawn from the kernel's `_checks` trait; the on-demand checks start from a button (`_check_request`),
 * show "computing" until their result arrives, then a deletion / insertion sparkline or the
 * randomization row (`_randomization_maps`: one map per randomized layer, its Spearman ρ under it).
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
const TILE = 72;

const CSS = `
.sw-checks{display:flex;flex-direction:column;gap:6px;padding:6px 8px;border-top:1px solid var(--sw-line)}
.sw-checks-items{display:flex;flex-wrap:wrap;gap:6px 18px;align-items:center}
.sw-check{display:inline-flex;align-items:center;gap:6px;color:var(--sw-muted)}
.sw-check-name{color:var(--sw-fg);font-weight:600}
.sw-check-dot{width:10px;height:10px;border-radius:50%;flex:none;box-shadow:0 0 0 1px var(--sw-outline)}
.sw-check[data-sw-status=computing] .sw-check-dot{animation:sw-spin 1s linear infinite;border:2px solid var(--sw-accent-soft);border-top-color:var(--sw-accent);background:none!important}
.sw-check svg{display:block;background:var(--sw-soft);border-radius:3px}
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

const KEY = ["index", "target", "method", "output", "cam_layer"];

/** The key of the map on screen, to match the kernel's `_checks.key` against. */
function currentKey(model: AnyModel): string {
  return JSON.stringify(KEY.map((k) => model.get(k)));
}

export class ChecksStrip {
  readonly el = h("div", { class: "sw-checks", "data-sw-role": "checks" });
  private items = h("div", { class: "sw-checks-items" });
  private row = h("div", { class: "sw-randomization", "data-sw-role": "randomization" });
  /** On-demand checks asked for, by the key of the map they were asked for. */
  private asked = new Set<string>();
  private requests = 0;
  /** What the strip was last drawn from (a redraw with the same inputs changes nothing). */
  private drawn: unknown[] = [];

  /** `redraw` is called when a button changes what the strip shows. */
  constructor(private model: AnyModel, private layout: MapLayout, private redraw: () => void) {
    injectStyle(this.el, "sw-checks-style", CSS);
    this.el.append(h("span", { class: "sw-panel-head" }, "Checks"), this.items, this.row);
  }

  /** Re-reads `_checks` and `_randomization_maps`; `original` is the map on screen (display shape). */
  update(original: Float32Array | null, sign: Sign, lut: Uint8Array): void {
    injectStyle(this.el, "sw-checks-style", CSS);
    const key = currentKey(this.model);
    const all = (this.model.get("_checks") ?? {}) as Record<string, any>;
    const k = all.key ?? {};
    const fresh = JSON.stringify(KEY.map((name) => k[name])) === key;
    const checks: Record<string, CheckItem> = fresh ? all : {};
    const onDemand = (this.model.get("_on_demand") ?? []) as string[];
    const inputs = [all, key, this.asked.size, onDemand, this.model.get("_randomization_maps"), sign, checks.randomization ? original : null];
    if (inputs.every((v, i) => v === this.drawn[i])) return;
    this.drawn = inputs;
    const nodes: HTMLElement[] = [];
    for (const name of Object.keys(CHECK_NAMES)) {
      const item = checks[name] ?? (this.asked.has(`${name} ${key}`) ? { status: "computing", text: "computing…" } as CheckItem : null);
      if (item) nodes.push(this.item(name, item));
      else if (onDemand.includes(name)) nodes.push(button(CHECK_NAMES[name], `check-${name.replace("_", "-")}`, () => this.ask(name), `run the ${CHECK_NAMES[name]} in the kernel`));
    }
    this.items.replaceChildren(...nodes);
    this.drawRow(checks.randomization, original, sign, lut);
    this.el.hidden = nodes.length === 0;
  }

  private ask(name: string): void {
    this.asked.add(`${name} ${currentKey(this.model)}`);
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
    if (name === "deletion_insertion" && item.fractions) el.append(this.sparkline(item));
    return el;
  }

  private sparkline(item: CheckItem): SVGSVGElement {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", String(SPARK.width));
    svg.setAttribute("height", String(SPARK.height));
    svg.setAttribute("data-sw-role", "sparkline");
    svg.setAttribute("role", "img");
    const label = `deletion AUC ${formatValue(item.deletion_auc)} (red), insertion AUC ${formatValue(item.insertion_auc)} (blue)`;
    svg.setAttribute("aria-label", label);
    const title = document.createElementNS(ns, "title");
    title.textContent = label;
    svg.append(title);
    const values = [...item.deletion, ...item.insertion] as number[];
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    for (const what of ["deletion", "insertion"] as const) {
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", sparkPoints(item.fractions, item[what], lo, hi));
      line.setAttribute("fill", "none");
      line.setAttribute("stroke", CURVE_COLORS[what]);
      line.setAttribute("stroke-width", "1.5");
      line.setAttribute("data-sw-curve", what);
      svg.append(line);
    }
    return svg;
  }

  /** The original map, then one tile per randomized layer, each on its own colour scale. */
  private drawRow(item: CheckItem | undefined, original: Float32Array | null, sign: Sign, lut: Uint8Array): void {
    const maps = tensor(this.model, "_randomization_maps");
    const m = maps?.meta;
    if (!item?.layers || !maps || !m || !original || JSON.stringify(KEY.map((name) => m[name])) !== currentKey(this.model)) {
      this.row.replaceChildren();
      return;
    }
    const size = original.length;
    const tiles = [this.tile("original", "", original, sign, lut)];
    (item.layers as string[]).forEach((layer, i) => {
      const values = maps.values.subarray(i * size, (i + 1) * size) as Float32Array;
      tiles.push(this.tile(layer, `ρ ${formatValue(item.spearman[i])}`, values, sign, lut, `SSIM ${formatValue(item.ssim[i])}`));
    });
    this.row.replaceChildren(...tiles);
  }

  private tile(layer: string, rho: string, values: Float32Array, sign: Sign, lut: Uint8Array, more = ""): HTMLElement {
    const { rows, cols, at } = mapGrid(this.layout);
    const heat = new Heatmap({ "data-sw-role": "randomization-map", "aria-label": `map with ${layer} ${rho}` });
    heat.draw(values, rows, cols, sign, scaleMax(values, sign, Number(this.model.get("outlier_perc"))), lut, { at });
    const wide = rows === 1 || cols / rows > 2;
    heat.setDisplaySize(wide ? TILE + 40 : Math.round((TILE * cols) / Math.max(rows, cols)), wide ? 14 : Math.round((TILE * rows) / Math.max(rows, cols)));
    return h("div", { class: "sw-rand-tile", "data-sw-step": layer, title: [layer, rho, more].filter(Boolean).join(" · ") }, [
      h("span", {}, layer), heat.canvas, h("span", { class: "sw-rho" }, rho || "as trained"),
    ]);
  }
}
