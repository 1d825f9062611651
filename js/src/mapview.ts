/**
 * One attribution map drawn for its input kind: a vector strip (with its feature list and top-k words), an
 * image (the map over the grey input, or side by side: the input in colour, the map, the overlay), a
 * time × feature grid (side by side: under its input signal), or text chips. With `fit`, the map grows with
 * the width the view is given (nearest-neighbour while cells are whole pixels, layout.ts `fitCell`).
 */
import { BarList } from "./bars";
import { greyscale, signTransform, toIndex, type Sign } from "./colors";
import { composeLayers } from "./controls";
import { h, throttleFrame } from "./dom";
import { formatValue } from "./format";
import { Heatmap, type Tooltip } from "./heatmap";
import { cellSize, fitCell } from "./layout";
import { SignalChart } from "./signal";
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

/** Largest side of one image panel, and the tallest sequence map (CSS px). */
export const MAX_SIDE = 640;
const MAX_SEQUENCE_HEIGHT = 320;
/** Gap between side-by-side panels (px; `.sw-panels` in style.ts). */
export const PANEL_GAP = 12;
/** The width a fitting view assumes until it is laid out (px). */
export const DEFAULT_WIDTH = 560;

/** The hover text of cell (row, col) of a `layout` map of `values` (`names`: features; `input`: a vector's input). */
export function describeCell(layout: MapLayout, names: string[], values: ArrayLike<number>, input: ArrayLike<number> | null, row: number, col: number): string {
  const d = layout.display_shape;
  const name = (i: number) => names[i] ?? `feature ${i}`;
  if (layout.kind === "vector" || layout.kind === "text") {
    const x = input && layout.kind === "vector" ? `\ninput ${formatValue(input[col])}` : "";
    return `${name(col)} (#${col})\nattribution ${formatValue(values[col])}${x}`;
  }
  if (layout.kind === "image") return `pixel (${row}, ${col})\nattribution ${formatValue(values[row * d[1] + col])}`;
  return `t = ${col}, ${name(row)}\nattribution ${formatValue(values[col * d[1] + row])}`;
}

/** A captioned picture of a side-by-side view (`data-sw-panel`: input, map or overlay). */
function panel(role: string, caption: HTMLElement, body: HTMLElement): HTMLElement {
  return h("figure", { class: "sw-figure", "data-sw-panel": role }, [caption, body]);
}

export interface MapOptions {
  /** Grow with the view's width (a ResizeObserver); else the map keeps the size it starts with. */
  fit?: boolean;
}

export class MapView {
  readonly el = h("div", { class: "sw-view" });
  /** The map — over the grey input for images (the overlay). */
  readonly stage = h("div", { class: "sw-stage" });
  readonly heat = new Heatmap({ role: "img" });
  /** Called with the view's width whenever it changes (fitting views). */
  onWidth: (width: number) => void = () => {};
  private background: Heatmap | null = null;
  /** Side by side (images): the input in its colours, and the map alone. */
  private picture: Heatmap | null = null;
  private plain: Heatmap | null = null;
  private pictureCaption = h("figcaption", {}, "input");
  private overlayCaption = h("figcaption", {}, "overlay");
  private besides: HTMLElement[] = [];
  private signal: SignalChart | null = null;
  /** What the methods row replaces (the map and its axes). */
  private main = h("div", { class: "sw-main" });
  private words = h("div", { class: "sw-topk", "data-sw-role": "topk", hidden: true });
  private features: BarList | null = null;
  private featureNote = h("div", { class: "sw-note" });
  private rowLabels: HTMLElement | null = null;
  private axis: HTMLElement | null = null;
  private grid: ReturnType<typeof mapGrid>;
  private size = { width: 0, height: 0 };
  private values: Float32Array = new Float32Array(0);
  private input: ArrayLike<number> | null = null;
  private chips: TokenChips | null = null;
  private sideBySide = false;
  private width = DEFAULT_WIDTH;
  private observer: ResizeObserver | null = null;

  constructor(private layout: MapLayout, private names: string[], tooltip: Tooltip, options: MapOptions = {}) {
    this.grid = mapGrid(layout);
    const { rows, cols } = this.grid;
    this.stage.append(this.heat.canvas);
    this.el.append(this.main);
    if (layout.kind === "image") {
      this.background = new Heatmap({ "data-sw-role": "input-image" });
      this.stage.prepend(this.background.canvas);
      this.picture = new Heatmap({ "data-sw-role": "input", role: "img", "aria-label": "the input" });
      this.plain = new Heatmap({ "data-sw-role": "heatmap", role: "img", "aria-label": "the map alone" });
      const plainStage = h("div", { class: "sw-pane" }, [this.plain.canvas]);
      const pictureStage = h("div", { class: "sw-pane" }, [this.picture.canvas]);
      this.besides = [panel("input", this.pictureCaption, pictureStage), panel("map", h("figcaption", {}, "map"), plainStage)];
      // the overlay comes first in the document (the widget's first heatmap) and last on screen (CSS order)
      this.main.append(h("div", { class: "sw-panels" }, [panel("overlay", this.overlayCaption, this.stage), ...this.besides]));
    } else if (layout.kind === "sequence") {
      this.signal = new SignalChart(cols, rows, Array.from({ length: rows }, (_, r) => this.name(r)));
      this.rowLabels = h("div", { class: "sw-rowlabels" });
      this.axis = h("div", { class: "sw-axis" }, [h("span", {}, "0"), h("span", { class: "sw-spacer" }), h("span", {}, "time →"), h("span", { class: "sw-spacer" }), h("span", {}, String(cols - 1))]);
      this.main.append(h("div", { class: "sw-matrix" }, [h("div", {}), this.signal.el, this.rowLabels, this.stage, h("div", {}), this.axis]));
    } else if (layout.kind === "text") {
      this.chips = new TokenChips(tooltip);
      this.stage.replaceChildren(this.chips.el);
      this.main.append(this.stage, h("div", { class: "sw-note" }, "chip colour: the attribution summed over the embedding axis · padding hidden"));
      this.el.append(this.words);
    } else {
      this.main.append(this.stage);
      this.features = new BarList(undefined, "features");
      this.features.el.classList.add("sw-features");
      const n = layout.display_shape[0];
      this.features.el.style.setProperty("--sw-label-w", `${labelColumn(Array.from({ length: n }, (_, i) => this.name(i)))}px`);
      this.axis = h("div", { class: "sw-axis" }, [h("span", { class: "sw-ellipsis", title: this.name(0) }, this.name(0)), h("span", { class: "sw-spacer" }), h("span", {}, `${n} features →`), h("span", { class: "sw-spacer" }), h("span", { class: "sw-ellipsis", title: this.name(n - 1) }, this.name(n - 1))]);
      this.main.append(this.axis);
      this.el.append(this.words, h("div", { class: "sw-panel-head" }, "Features"), this.features.el, this.featureNote);
    }
    this.setSideBySide(false);
    if (options.fit) this.fit();
    else this.fixedSize();
    const hover = throttleFrame((ev: MouseEvent, heat: Heatmap) => {
      const cell = heat.cellFromEvent(ev);
      if (cell) tooltip.show(describeCell(this.layout, this.names, this.values, this.input, cell.row, cell.col), ev);
      else tooltip.hide();
    });
    for (const heat of [this.heat, this.plain]) {
      heat?.canvas.addEventListener("mousemove", (ev) => hover(ev, heat));
      heat?.canvas.addEventListener("mouseleave", () => requestAnimationFrame(() => tooltip.hide()));
    }
  }

  /** Side by side (images: input, map, overlay; sequences: the input signal above the map) or the overlay alone. */
  setSideBySide(on: boolean): void {
    this.sideBySide = on && (this.layout.kind === "image" || this.layout.kind === "sequence");
    for (const part of this.besides) part.hidden = !this.sideBySide;
    this.overlayCaption.hidden = !this.sideBySide;
    if (this.signal) this.signal.el.hidden = !this.sideBySide;
    this.resize(this.width);
  }

  /** Puts `el` (the methods row) right after the map, before the words and the feature list. */
  afterMap(el: HTMLElement): void {
    this.main.after(el);
  }

  /** Hides the map and its axes (a methods row draws the maps instead); the words and feature list stay. */
  setMapShown(shown: boolean): void {
    this.main.hidden = !shown;
  }

  /** Lays the map out for a view `width` px wide. */
  resize(width: number): void {
    this.width = width;
    if (!this.observer) return;
    const { rows, cols } = this.grid;
    const kind = this.layout.kind;
    if (kind === "image") {
      const n = this.sideBySide ? 3 : 1;
      const { cell, crisp } = fitCell(rows, cols, Math.min(MAX_SIDE, (width - PANEL_GAP * (n - 1)) / n), MAX_SIDE);
      this.setSize(cols * cell, rows * cell, crisp);
    } else if (kind === "sequence") {
      const labels = Math.min(160, labelColumn(Array.from({ length: rows }, (_, r) => this.name(r)), 160, 24));
      this.layoutSequence(cellSize(rows, cols, width - labels - 8, MAX_SEQUENCE_HEIGHT, 0.5, 40), labels);
    } else if (kind === "vector") {
      this.setSize(cols * cellSize(1, cols, width, Infinity, 0.25, 56), 28, true);
    }
    this.onWidth(width);
  }

  /** Stops following the view's width. */
  dispose(): void {
    this.observer?.disconnect();
  }

  /** Draws `values` (display shape, flat) at scale m; `input` (the flat, time-first sample) feeds hover and a
   *  sequence's signal. `neutral`: the map is zero up to float rounding — every cell gets the colour of 0 (hover
   *  still shows the values). */
  draw(values: Float32Array, sign: Sign, m: number, lut: Uint8Array, input: ArrayLike<number> | null = null, neutral = false): void {
    this.values = values;
    this.input = input;
    const shown = neutral ? new Float32Array(values.length) : values;
    const { rows, cols, at } = this.grid;
    this.heat.draw(shown, rows, cols, sign, m, lut, { overlay: this.background !== null, at });
    if (this.sideBySide) this.plain?.draw(shown, rows, cols, sign, m, lut, { at });
    if (this.sideBySide && input) this.signal?.draw(input);
    this.chips?.draw(shown, sign, m, lut, values);
    if (this.features) this.drawFeatures(shown, sign, m, lut);
  }

  /** The top-k lines under a vector or text map (words.ts `pushesText`); null hides them. */
  setWords(lines: string[] | null): void {
    this.words.hidden = !lines;
    this.words.replaceChildren(...(lines ?? []).map((line, i) => h("div", { "data-sw-topk": i === 0 ? "up" : "down" }, line)));
  }

  /** The names of the drawn entries and their values: features, or a text map's tokens without the hidden ones. */
  entries(values: Float32Array): { values: Float32Array; names: string[] } {
    if (this.layout.kind !== "text" || !this.chips) return { values, names: this.names };
    const shown = this.chips.items.map((chip, k) => (chip.hidden ? -1 : k)).filter((k) => k >= 0);
    return { values: Float32Array.from(shown, (k) => values[k]), names: shown.map((k) => this.chips?.items[k].textContent ?? `#${k}`) };
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

  /** The input picture: in grey under the overlay, in its colours beside it (`caption`: how it is drawn). */
  setImage(pixels: Uint8Array, channels: number, caption = ""): void {
    const { rows, cols } = this.grid;
    this.background?.paintRGB(greyscale(pixels, channels), rows, cols, 1);
    this.picture?.paintRGB(pixels, rows, cols, channels);
    this.pictureCaption.textContent = this.pictureCaption.title = caption ? `input · ${caption}` : "input";
  }

  /** The current sample's token strings and padding flags (text view). */
  setTokens(state: TokenState): void {
    this.chips?.setTokens(state, this.layout.display_shape[0]);
  }

  setOpacity(opacity: number): void {
    if (this.background) this.heat.canvas.style.opacity = String(opacity);
  }

  /** The map as drawn on screen, one canvas, for export: side by side, the input, the map and the overlay. */
  compose(opacity: number): HTMLCanvasElement {
    const scale = Math.max(1, Math.ceil(400 / Math.max(this.size.width, 1)));
    const [w, hgt] = [this.size.width * scale, this.size.height * scale];
    const overlay = this.background ? composeLayers([this.background.canvas, this.heat.canvas], w, hgt, [1, opacity]) : composeLayers([this.heat.canvas], w, hgt);
    if (!this.sideBySide || !this.picture || !this.plain) return overlay;
    const parts = [composeLayers([this.picture.canvas], w, hgt), composeLayers([this.plain.canvas], w, hgt), overlay];
    const gap = PANEL_GAP * scale;
    const out = composeLayers([], 3 * w + 2 * gap, hgt);
    const ctx = out.getContext("2d") as CanvasRenderingContext2D;
    parts.forEach((part, i) => ctx.drawImage(part, i * (w + gap), 0));
    return out;
  }

  private name(i: number): string {
    return this.names[i] ?? `feature ${i}`;
  }

  /** Follows the view's width from now on (and starts at DEFAULT_WIDTH until it is laid out). */
  private fit(): void {
    if (typeof ResizeObserver === "undefined") return;
    this.observer = new ResizeObserver((entries) => {
      const width = Math.floor(entries[0]?.contentRect.width ?? 0);
      if (width > 0 && width !== this.width) this.resize(width);
    });
    this.observer.observe(this.el);
    this.resize(DEFAULT_WIDTH);
  }

  /** The size a view that does not fit its width keeps (the gallery's opened sample sizes its canvases itself). */
  private fixedSize(): void {
    const { rows, cols } = this.grid;
    const kind = this.layout.kind;
    if (kind === "vector") this.setSize(cols * cellSize(1, cols, 560, 28, 0.25, 40), 28, true);
    else if (kind === "image") {
      const cell = cellSize(rows, cols, 320, 320, 0.5, 12);
      this.setSize(cols * cell, rows * cell, true);
    } else if (kind === "sequence") this.layoutSequence(cellSize(rows, cols, 560, 300, 0.5, 24), 0);
  }

  private setSize(width: number, height: number, crisp: boolean): void {
    this.size = { width, height };
    if (this.layout.kind === "vector") (this.axis as HTMLElement).style.width = `${width}px`;
    for (const heat of [this.heat, this.background, this.picture, this.plain]) {
      heat?.setDisplaySize(width, height);
      if (heat) heat.canvas.style.imageRendering = crisp ? "pixelated" : "auto";
    }
  }

  /** A sequence map at `cell` px per cell, its feature names in a column `labels` px wide (0: as wide as they need). */
  private layoutSequence(cell: number, labels: number): void {
    const { rows, cols } = this.grid;
    this.setSize(cols * cell, rows * cell, true);
    const column = this.rowLabels as HTMLElement;
    column.style.height = `${this.size.height}px`;
    if (labels) column.style.width = `${labels}px`;
    column.replaceChildren(...(cell >= 9 ? Array.from({ length: rows }, (_, r) => h("div", { style: `height:${cell}px;cursor:default`, title: this.name(r) }, this.name(r))) : []));
    (this.axis as HTMLElement).style.width = `${this.size.width}px`;
    this.signal?.resize(this.size.width, this.size.height);
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
}
