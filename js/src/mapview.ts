/** One attribution map drawn for its input kind: vector strip, image overlay, or time × feature grid. */
import { BarList } from "./bars";
import { greyscale, signTransform, toIndex, type Sign } from "./colors";
import { composeLayers } from "./controls";
import { h, throttleFrame } from "./dom";
import { formatValue } from "./format";
import { Heatmap, type Tooltip } from "./heatmap";
import { cellSize } from "./layout";
import { labelColumn } from "./text";
import { TokenChips, type TokenState } from "./textview";

export interface MapLayout {
  kind: "vector" | "image" | "sequence" | "text";
  sample_shape: number[];
  display_shape: number[];
  channel_axis: number | null;
}

/** Grid geometry of a display map: rows × cols on screen and the value index of each pixel. */
export function mapGrid(layout: MapLayout): { rows: number; cols: number; at?: (k: number) => number } {
  const d = layout.display_shape;
  if (layout.kind === "vector" || layout.kind === "text") return { rows: 1, cols: d[0] };
  if (layout.kind === "image") return { rows: d[0], cols: d[1] };
  const [time, features] = d;
  return { rows: features, cols: time, at: (k) => (k % time) * features + Math.floor(k / time) };
}

/** Up to this many features are listed in input order; beyond, all of them by strength (scrolling). */
export const FEATURE_ORDERED = 48;
/** Most rows of the feature list (the strongest ones beyond it). */
const FEATURE_ROWS = 500;

/** Which features the list shows, in order: every one up to FEATURE_ORDERED, else the strongest first. */
export function listedFeatures(values: ArrayLike<number>, sign: Sign): number[] {
  const n = values.length;
  const keys = Array.from({ length: n }, (_, i) => i);
  if (n <= FEATURE_ORDERED) return keys;
  const strength = Array.from(values, (v) => Math.abs(signTransform(v, sign)));
  return keys.sort((a, b) => strength[b] - strength[a] || a - b).slice(0, FEATURE_ROWS);
}

/** Where a feature's bar ends: the signed value for "all", else the magnitude the colour scale shows. */
export function barValue(v: number, sign: Sign): number {
  return sign === "all" ? v : signTransform(v, sign);
}

export class MapView {
  readonly el = h("div", { class: "sw-view" });
  readonly stage = h("div", { class: "sw-stage" });
  readonly heat = new Heatmap({ role: "img" });
  private background: Heatmap | null = null;
  private features: BarList | null = null;
  private featureNote = h("div", { class: "sw-note" });
  private grid: ReturnType<typeof mapGrid>;
  private size = { width: 0, height: 0 };
  private values: Float32Array = new Float32Array(0);
  private input: ArrayLike<number> | null = null;
  private chips: TokenChips | null = null;

  constructor(private layout: MapLayout, private names: string[], tooltip: Tooltip) {
    this.grid = mapGrid(layout);
    const { rows, cols } = this.grid;
    const cell = layout.kind === "vector" ? cellSize(1, cols, 560, 28, 0.25, 40) : layout.kind === "image" ? cellSize(rows, cols, 320, 320, 0.5, 12) : cellSize(rows, cols, 560, 300, 0.5, 24);
    this.size = { width: cols * cell, height: layout.kind === "vector" ? 28 : rows * cell };
    this.heat.setDisplaySize(this.size.width, this.size.height);
    if (layout.kind === "image") {
      this.background = new Heatmap({ "data-sw-role": "input-image" });
      this.background.setDisplaySize(this.size.width, this.size.height);
      this.stage.append(this.background.canvas);
    }
    this.stage.append(this.heat.canvas);
    this.el.append(this.stage);
    if (layout.kind === "sequence") this.el.replaceChildren(this.sequenceFrame(rows, cell));
    if (layout.kind === "text") {
      this.chips = new TokenChips(tooltip);
      this.stage.replaceChildren(this.chips.el);
      this.el.append(h("div", { class: "sw-note" }, "chip colour: the attribution summed over the embedding axis · padding hidden"));
    }
    if (layout.kind === "vector") {
      this.features = new BarList(undefined, "features");
      this.features.el.classList.add("sw-features");
      const n = layout.display_shape[0];
      this.features.el.style.setProperty("--sw-label-w", `${labelColumn(Array.from({ length: n }, (_, i) => this.name(i)))}px`);
      const axis = h("div", { class: "sw-axis" }, [h("span", { class: "sw-ellipsis", title: this.name(0) }, this.name(0)), h("span", { class: "sw-spacer" }), h("span", {}, `${n} features →`), h("span", { class: "sw-spacer" }), h("span", { class: "sw-ellipsis", title: this.name(n - 1) }, this.name(n - 1))]);
      axis.style.width = `${this.size.width}px`;
      this.el.append(axis, h("div", { class: "sw-panel-head" }, "Features"), this.features.el, this.featureNote);
    }
    const hover = throttleFrame((ev: MouseEvent) => {
      const cell = this.heat.cellFromEvent(ev);
      if (cell) tooltip.show(this.describe(cell.row, cell.col), ev);
      else tooltip.hide();
    });
    this.heat.canvas.addEventListener("mousemove", hover);
    this.heat.canvas.addEventListener("mouseleave", () => requestAnimationFrame(() => tooltip.hide()));
  }

  /** Draws `values` (display shape, flat) at scale m; `input` (flat sample) enriches hover. `neutral`:
   *  the map is zero up to float rounding — every cell gets the colour of 0 (hover still shows the values). */
  draw(values: Float32Array, sign: Sign, m: number, lut: Uint8Array, input: ArrayLike<number> | null = null, neutral = false): void {
    this.values = values;
    this.input = input;
    const shown = neutral ? new Float32Array(values.length) : values;
    const { rows, cols, at } = this.grid;
    this.heat.draw(shown, rows, cols, sign, m, lut, { overlay: this.background !== null, at });
    this.chips?.draw(shown, sign, m, lut, values);
    if (this.features) this.drawFeatures(shown, sign, m, lut);
  }

  /** Sets the map's accessible description: what it shows and where it is strongest (`zero`: the map is
   *  zero up to rounding, `what` says why; there is no strongest place). */
  describeAs(what: string, zero = false): void {
    const v = this.values;
    let best = 0;
    for (let i = 1; i < v.length; i++) if (Math.abs(v[i]) > Math.abs(v[best])) best = i;
    const d = this.layout.display_shape;
    const kind = this.layout.kind;
    const where = kind === "vector" ? this.name(best)
      : kind === "image" ? `pixel (${Math.floor(best / d[1])}, ${best % d[1]})`
      : kind === "text" ? `token ${best}`
      : `t = ${Math.floor(best / d[1])}, ${this.name(best % d[1])}`;
    const size = kind === "vector" ? `${d[0]} features` : kind === "image" ? `${d[0]}×${d[1]} pixels` : kind === "text" ? `${d[0]} tokens` : `${d[0]} time steps × ${d[1]} features`;
    const label = v.length && !zero ? `${what}, ${size}; strongest at ${where} (${formatValue(v[best])})` : `${what}, ${size}`;
    (this.chips?.el ?? this.heat.canvas).setAttribute("aria-label", label);
  }

  /** The input picture under an image map, drawn in grey so the colours stay readable. */
  setImage(pixels: Uint8Array, channels: number): void {
    const { rows, cols } = this.grid;
    this.background?.paintRGB(greyscale(pixels, channels), rows, cols, 1);
  }

  /** The current sample's token strings and padding flags (text view). */
  setTokens(state: TokenState): void {
    this.chips?.setTokens(state, this.layout.display_shape[0]);
  }

  setOpacity(opacity: number): void {
    if (this.background) this.heat.canvas.style.opacity = String(opacity);
  }

  /** The map as drawn on screen, one canvas, for export. */
  compose(opacity: number): HTMLCanvasElement {
    const scale = Math.max(1, Math.ceil(400 / Math.max(this.size.width, 1)));
    const layers = this.background ? [this.background.canvas, this.heat.canvas] : [this.heat.canvas];
    const alphas = this.background ? [1, opacity] : [1];
    return composeLayers(layers, this.size.width * scale, this.size.height * scale, alphas);
  }

  private name(i: number): string {
    return this.names[i] ?? `feature ${i}`;
  }

  private describe(row: number, col: number): string {
    const d = this.layout.display_shape;
    if (this.layout.kind === "vector") {
      const x = this.input ? `\ninput ${formatValue(this.input[col])}` : "";
      return `${this.name(col)} (#${col})\nattribution ${formatValue(this.values[col])}${x}`;
    }
    if (this.layout.kind === "image") return `pixel (${row}, ${col})\nattribution ${formatValue(this.values[row * d[1] + col])}`;
    return `t = ${col}, ${this.name(row)}\nattribution ${formatValue(this.values[col * d[1] + row])}`;
  }

  private drawFeatures(values: Float32Array, sign: Sign, m: number, lut: Uint8Array): void {
    const n = values.length;
    const keys = listedFeatures(values, sign);
    const color = (v: number) => {
      const i = toIndex(v, sign, m) * 4;
      return `rgb(${lut[i]},${lut[i + 1]},${lut[i + 2]})`;
    };
    (this.features as BarList).render(keys.map((k) => ({ key: k, label: this.name(k), value: barValue(values[k], sign), shown: values[k], color: color(values[k]) })));
    this.featureNote.textContent =
      n <= FEATURE_ORDERED ? "" : keys.length < n ? `the ${keys.length} strongest of ${n} features · hover the strip for any` : `all ${n} features, strongest first · scroll for more`;
  }

  private sequenceFrame(rows: number, cell: number): HTMLElement {
    const labels = h("div", { class: "sw-rowlabels" });
    labels.style.height = `${this.size.height}px`;
    if (cell >= 9) for (let r = 0; r < rows; r++) labels.append(h("div", { style: `height:${cell}px;cursor:default` }, this.name(r)));
    const time = h("div", { class: "sw-axis" }, [h("span", {}, "0"), h("span", { class: "sw-spacer" }), h("span", {}, "time →"), h("span", { class: "sw-spacer" }), h("span", {}, String(this.layout.display_shape[0] - 1))]);
    time.style.width = `${this.size.width}px`;
    return h("div", { class: "sw-matrix" }, [labels, this.stage, h("div", {}), time]);
  }
}
