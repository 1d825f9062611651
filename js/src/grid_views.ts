/** The two JacobianGrid views: a virtualized outputs × inputs matrix (vector inputs) and a grid of
 *  small maps, one per output (images, sequences). Both show the rows `setOrder` gives them. */
import { h, throttleFrame } from "./dom";
import { formatValue } from "./format";
import { Heatmap } from "./heatmap";
import { BACKDROP_BLACK, BACKDROP_WHITE, colorize, greyscale, type Sign } from "./colors";
import { cellSize, columnLabelPlan } from "./layout";
import { mapGrid, type MapLayout } from "./mapview";
import { visibleRange } from "./rows";
import { fitText, labelColumn, textWidth } from "./text";

/** The grid's own rules (injected by jacobian_grid.ts after the shared sheet): column labels, full tile
 *  captions, and a sample box that holds five digits. */
export const GRID_CSS = `
[data-sw-widget=jacobian-grid] .sw-colclip{position:relative;overflow:hidden;max-width:100%;flex:none}
[data-sw-widget=jacobian-grid] .sw-collabels span{font-size:11px;line-height:14px;cursor:default}
[data-sw-widget=jacobian-grid] .sw-tile-label{white-space:normal;overflow:visible;text-overflow:clip;overflow-wrap:anywhere;text-align:center}
[data-sw-widget=jacobian-grid] .sw-tile-label>span{display:block}
[data-sw-widget=jacobian-grid] .sw-tile-score{color:var(--sw-muted);font-variant-numeric:tabular-nums}
[data-sw-widget=jacobian-grid] input[data-sw-action=index]{width:calc(5ch + 36px)}
`;

/** The faint input under image tiles spans these greys (UNDERLAY in saliency_widgets/export.py): pale, so the
 *  map's colours stay what the colour bar says and the input only shows where the map is near 0. */
export const UNDERLAY: [number, number] = [200, 250];

/** The pale greys (one byte per pixel) under image tiles: `greyscale` stretched from its backdrop range onto
 *  UNDERLAY, rounded half up (``faint_underlay`` in export.py). */
export function faintUnderlay(pixels: Uint8Array, channels: number): Uint8Array {
  const grey = greyscale(pixels, channels);
  const gain = (UNDERLAY[1] - UNDERLAY[0]) / (BACKDROP_WHITE - BACKDROP_BLACK);
  return grey.map((g) => Math.floor(UNDERLAY[0] + gain * (g - BACKDROP_BLACK) + 0.5));
}

export interface GridContext {
  /** Every output row of the Jacobian (flat indices), in the order of its values. */
  rows: number[];
  labels: string[];
  featureNames: string[];
  layout: MapLayout;
  pick(flat: number): void;
  /** The pointer (or keyboard) is on input `j` (flat in the display map) of output `flat`. */
  hover(flat: number, j: number, name: string): void;
  tooltip(text: string, ev: MouseEvent): void;
  hideTooltip(): void;
}

export interface GridView {
  el: HTMLElement;
  /** The rows to show, in display order. */
  setOrder(order: number[]): void;
  /** Values: ctx.rows.length × display size, in ctx.rows order. */
  draw(values: Float32Array, sign: Sign, m: number, lut: Uint8Array): void;
  /** Highlights output `flat` and scrolls it into view. */
  select(flat: number): void;
  /** Moves keyboard focus to output `flat`'s row or tile. */
  focus(flat: number): void;
  /** Every shown row as one canvas (for the offline export). */
  compose(): HTMLCanvasElement;
  /** The input picture (rows × cols × channels uint8) drawn faintly under image tiles; null: none. */
  setUnderlay?(pixels: Uint8Array | null, channels: number): void;
}

interface Painted {
  values: Float32Array;
  sign: Sign;
  m: number;
  lut: Uint8Array;
}

/** Zoom steps of the matrix: pixels per row. */
export const ROW_HEIGHTS = [1, 2, 4, 8, 14, 20, 28];
const VIEWPORT = 420;
const LABEL_MIN = 10;
/** Column labels: font, line height and the longest a slanted one is drawn (the full name shows on hover). */
const COLUMN_FONT = "11px system-ui, sans-serif";
const COLUMN_LINE = 14;
const COLUMN_MAX = 120;

/** Vector inputs: rows × inputs heatmap, only the rows in view drawn (any number of outputs), row zoom. */
export class MatrixView implements GridView {
  readonly el: HTMLElement;
  private heat = new Heatmap({ role: "img" });
  private scroller = h("div", { class: "sw-scroller" });
  private inner = h("div", { class: "sw-scroll-inner" });
  private labels = h("div", { class: "sw-rowlabels sw-vlabels" });
  private selMark = h("div", { class: "sw-mark" });
  private colMark = h("div", { class: "sw-mark", "data-sw-role": "column-mark" });
  private colLabels = h("div", { class: "sw-collabels" });
  private colClip = h("div", { class: "sw-colclip" }, [this.colLabels]);
  private zoomNote = h("span", { class: "sw-note" });
  private order: number[] = [];
  private index: Map<number, number>;
  private painted: Painted | null = null;
  private rowHeight = 14;
  private selected = -1;
  /** The input column the arrow keys are on (-1 before the first Left/Right). */
  private keyColumn = -1;
  private range: [number, number] = [0, 0];
  private readonly n: number;
  private readonly colWidth: number;
  private readonly labelWidth: number;

  constructor(private ctx: GridContext) {
    this.n = ctx.layout.display_shape[0];
    this.index = new Map(ctx.rows.map((f, i) => [f, i]));
    this.colWidth = cellSize(1, this.n, 560, 28, 0.5, 28);
    this.labelWidth = labelColumn(ctx.rows.map((r) => ctx.labels[r] ?? String(r)), 180);
    this.labels.style.width = `${this.labelWidth}px`;
    this.inner.style.width = `${this.labelWidth + this.n * this.colWidth}px`;
    this.colMark.style.display = "none";
    this.inner.append(this.labels, this.heat.canvas, this.selMark, this.colMark);
    this.scroller.append(this.inner);
    this.heat.canvas.style.left = `${this.labelWidth}px`;
    this.scroller.addEventListener("scroll", throttleFrame(() => {
      this.paint();
      this.colLabels.style.transform = `translateX(${-this.scroller.scrollLeft}px)`;
    }));
    const zoom = (step: number) => {
      const at = ROW_HEIGHTS.indexOf(this.rowHeight);
      this.setRowHeight(ROW_HEIGHTS[Math.min(ROW_HEIGHTS.length - 1, Math.max(0, at + step))]);
    };
    const tools = h("div", { class: "sw-panel-head sw-zoom" }, [
      zoomButton("−", "zoom-out", "shorter rows (overview)", () => zoom(-1)),
      zoomButton("+", "zoom-in", "taller rows (readable labels)", () => zoom(1)),
      zoomButton("fit", "zoom-fit", "every row in view", () => this.setRowHeight(this.fitHeight())),
      this.zoomNote,
    ]);
    this.buildColumnLabels();
    this.el = h("div", { class: "sw-matrix-view" }, [tools, this.scroller, this.colClip]);
    this.heat.canvas.addEventListener("click", (ev) => {
      const flat = this.rowAt(ev);
      if (flat !== null) ctx.pick(flat);
    });
    this.heat.canvas.addEventListener("mousemove", throttleFrame((ev: MouseEvent) => this.onHover(ev)));
    this.heat.canvas.addEventListener("mouseleave", () => requestAnimationFrame(() => {
      this.colMark.style.display = "none";
      ctx.hideTooltip();
    }));
    this.labels.addEventListener("click", (ev) => {
      const flat = Number((ev.target as HTMLElement).closest("[data-sw-output]")?.getAttribute("data-sw-output"));
      if (Number.isInteger(flat) && this.index.has(flat)) ctx.pick(flat);
    });
    this.setRowHeight(Math.max(this.fitHeight(), 14));
  }

  setOrder(order: number[]): void {
    this.order = order;
    this.inner.style.height = `${order.length * this.rowHeight}px`;
    this.paint(true);
  }

  draw(values: Float32Array, sign: Sign, m: number, lut: Uint8Array): void {
    this.painted = { values, sign, m, lut };
    this.paint(true);
  }

  select(flat: number): void {
    this.selected = flat;
    const i = this.order.indexOf(flat);
    if (i >= 0) {
      const top = i * this.rowHeight;
      if (top < this.scroller.scrollTop || top + this.rowHeight > this.scroller.scrollTop + this.scroller.clientHeight) {
        this.scroller.scrollTop = Math.max(0, top - this.scroller.clientHeight / 2);
      }
    }
    this.paint(true);
  }

  focus(flat: number): void {
    this.select(flat);
    (this.labels.querySelector(`[data-sw-output="${flat}"]`) as HTMLElement | null)?.focus();
  }

  compose(): HTMLCanvasElement {
    const rows = this.order.length;
    const canvas = h("canvas", { width: this.n, height: Math.max(rows, 1) });
    if (this.painted && rows) {
      const { values, sign, m, lut } = this.painted;
      const image = new ImageData(this.n, rows);
      const base = this.order.map((f) => (this.index.get(f) ?? 0) * this.n);
      colorize(values, sign, m, lut, image.data, false, (k) => base[Math.floor(k / this.n)] + (k % this.n));
      (canvas.getContext("2d") as CanvasRenderingContext2D).putImageData(image, 0, 0);
    }
    return canvas;
  }

  private fitHeight(): number {
    const fit = VIEWPORT / Math.max(1, this.order.length || this.ctx.rows.length);
    return [...ROW_HEIGHTS].reverse().find((hgt) => hgt <= fit) ?? 1;
  }

  private setRowHeight(hgt: number): void {
    this.rowHeight = hgt;
    this.zoomNote.textContent = hgt >= LABEL_MIN ? `${hgt} px rows` : `${hgt} px rows · zoom in for labels`;
    this.inner.style.height = `${this.order.length * hgt}px`;
    this.paint(true);
    this.select(this.selected);
  }

  /** Draws the rows in view (canvas, labels, marks); `force` redraws even if the range did not move. */
  private paint(force = false): void {
    const count = this.order.length;
    const viewport = Math.min(VIEWPORT, Math.max(count * this.rowHeight, 1));
    this.scroller.style.height = `${viewport + 2}px`;
    const range = visibleRange(this.scroller.scrollTop, viewport, this.rowHeight, count);
    if (!force && range[0] === this.range[0] && range[1] === this.range[1]) return;
    this.range = range;
    const [first, last] = range;
    const rows = last - first;
    const width = this.n * this.colWidth;
    this.heat.canvas.style.top = `${first * this.rowHeight}px`;
    this.heat.setDisplaySize(width, rows * this.rowHeight);
    if (this.painted && rows > 0) {
      const { values, sign, m, lut } = this.painted;
      const n = this.n;
      const base = this.order.slice(first, last).map((f) => (this.index.get(f) ?? 0) * n);
      this.heat.draw(values, rows, n, sign, m, lut, { at: (k) => base[Math.floor(k / n)] + (k % n) });
    }
    this.heat.canvas.setAttribute("aria-label", `Jacobian heatmap: ${count} outputs × ${this.n} inputs, outputs ${count ? first + 1 : 0}–${last} in view`);
    this.paintLabels(first, last);
    const i = this.order.indexOf(this.selected);
    this.selMark.style.display = i < 0 ? "none" : "block";
    Object.assign(this.selMark.style, { left: `${this.labelWidth}px`, top: `${i * this.rowHeight}px`, width: `${width}px`, height: `${Math.max(this.rowHeight, 2)}px` });
  }

  private paintLabels(first: number, last: number): void {
    const show = this.rowHeight >= LABEL_MIN;
    this.labels.style.display = show ? "" : "none";
    if (!show) return;
    const focusKey = this.order.includes(this.selected) ? this.selected : this.order[first];
    const els = Array.from(this.labels.children) as HTMLElement[];
    while (els.length < last - first) {
      const el = h("div", { role: "button" });
      el.addEventListener("keydown", (ev) => this.onKey(ev));
      this.labels.append(el);
      els.push(el);
    }
    els.forEach((el, k) => {
      const r = first + k;
      if (r >= last) {
        el.style.display = "none";
        el.removeAttribute("data-sw-output");
        return;
      }
      const flat = this.order[r];
      const label = this.ctx.labels[flat] ?? String(flat);
      el.style.display = "";
      el.style.top = `${r * this.rowHeight}px`;
      el.style.height = `${this.rowHeight}px`;
      el.style.lineHeight = `${this.rowHeight}px`;
      el.style.fontSize = `${Math.min(12, this.rowHeight - 2)}px`;
      el.textContent = label;
      el.title = label;
      el.setAttribute("data-sw-output", String(flat));
      el.setAttribute("aria-pressed", String(flat === this.selected));
      el.tabIndex = flat === focusKey ? 0 : -1;
    });
  }

  /** Column names under the heatmap: flat when they fit, else slanted and thinned so that none overlap
   *  (columnLabelPlan); a name cut to fit shows in full on hover, with its column marked. */
  private buildColumnLabels(): void {
    const names = Array.from({ length: this.n }, (_, j) => this.ctx.featureNames[j] ?? String(j));
    const widest = Math.max(0, ...names.map((name) => textWidth(name, COLUMN_FONT)));
    const plan = columnLabelPlan(this.colWidth, widest, COLUMN_LINE, COLUMN_MAX);
    const slant = (plan.angle * Math.PI) / 180;
    this.colLabels.style.marginLeft = `${this.labelWidth}px`;
    this.colLabels.style.width = `${this.n * this.colWidth}px`;
    this.colLabels.style.height = `${plan.height}px`;
    this.colLabels.dataset.swAngle = String(plan.angle);
    this.colClip.style.width = `${this.labelWidth + this.n * this.colWidth}px`;
    for (let j = 0; j < this.n; j += plan.stride) {
      const centre = j * this.colWidth + this.colWidth / 2;
      // a slanted name ends at its column and runs down-left, over the row labels' width at most
      const room = plan.angle ? Math.min(COLUMN_MAX, (this.labelWidth + centre) / Math.cos(slant) - 4) : this.colWidth * plan.stride - 6;
      const span = h("span", { "data-sw-column": String(j), "data-sw-name": names[j] }, fitText(names[j], room, COLUMN_FONT));
      span.style.left = `${centre}px`;
      if (plan.angle) {
        Object.assign(span.style, { top: `${2 + (COLUMN_LINE / 2) * Math.cos(slant) - COLUMN_LINE / 2}px`, transformOrigin: "100% 50%", transform: `translateX(-100%) rotate(${-plan.angle}deg)` });
      } else {
        Object.assign(span.style, { top: "2px", transform: "translateX(-50%)" });
      }
      span.addEventListener("mouseenter", (ev) => {
        this.markColumn(j);
        this.ctx.tooltip(names[j], ev);
      });
      span.addEventListener("mouseleave", () => {
        this.colMark.style.display = "none";
        this.ctx.hideTooltip();
      });
      this.colLabels.append(span);
    }
  }

  /** Outlines input column `j` over the rows in view. */
  private markColumn(j: number): void {
    Object.assign(this.colMark.style, { display: "block", left: `${this.labelWidth + j * this.colWidth}px`, top: `${this.range[0] * this.rowHeight}px`, width: `${this.colWidth}px`, height: `${(this.range[1] - this.range[0]) * this.rowHeight}px` });
  }

  private rowAt(ev: MouseEvent): number | null {
    const c = this.heat.cellFromEvent(ev);
    return c ? this.order[this.range[0] + c.row] ?? null : null;
  }

  private onHover(ev: MouseEvent): void {
    const c = this.heat.cellFromEvent(ev);
    if (!c || !this.painted) return;
    const flat = this.order[this.range[0] + c.row];
    const name = this.ctx.featureNames[c.col] ?? `input ${c.col}`;
    this.markColumn(c.col);
    this.ctx.hover(flat, c.col, name);
    const v = this.painted.values[(this.index.get(flat) ?? 0) * this.n + c.col];
    this.ctx.tooltip(`${this.ctx.labels[flat]} ← ${name}\n∂out/∂in ${formatValue(v)}`, ev);
  }

  private onKey(ev: KeyboardEvent): void {
    const flat = Number((ev.target as HTMLElement).getAttribute("data-sw-output"));
    const at = this.order.indexOf(flat);
    if (at < 0) return;
    const moves: Record<string, number> = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10 };
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      this.ctx.pick(flat);
    } else if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") {
      ev.preventDefault();
      this.keyColumn = Math.min(this.n - 1, Math.max(0, this.keyColumn + (ev.key === "ArrowRight" ? 1 : -1)));
      const j = this.keyColumn;
      this.markColumn(j);
      this.ctx.hover(flat, j, this.ctx.featureNames[j] ?? `input ${j}`);
    } else if (ev.key in moves) {
      ev.preventDefault();
      const next = this.order[Math.min(this.order.length - 1, Math.max(0, at + moves[ev.key]))];
      this.ctx.pick(next);
      requestAnimationFrame(() => this.focus(next));
    }
  }
}

/** Most tiles drawn at once (search, sort and top-k reach the others). */
export const TILE_MAX = 120;

/** Narrowest tile (px of map), so that captions wrap into a few lines at most. */
const TILE_MIN = 72;

interface Tile {
  tile: HTMLElement;
  heat: Heatmap;
  /** The faint input under the map (image inputs). */
  underlay: Heatmap | null;
  caption: HTMLElement;
  mark: HTMLElement;
}

/** Image and sequence inputs: one small map per output, flowing in as many columns as fit; image maps lie
 *  over a faint grey copy of the input (transparent where the map is 0) and every caption is shown in full. */
export class TilesView implements GridView {
  readonly el: HTMLElement;
  private grid = h("div", { class: "sw-grid", role: "group", "aria-label": "outputs" });
  private note = h("div", { class: "sw-note" });
  private tiles = new Map<number, Tile>();
  private order: number[] = [];
  private painted: Painted | null = null;
  /** The faint greys under image tiles (one byte per pixel), once the input has arrived. */
  private underlay: Uint8Array | null = null;
  private selected = -1;
  private geo: ReturnType<typeof mapGrid>;
  private cell: number;
  private size: number;
  private index: Map<number, number>;

  constructor(private ctx: GridContext, private scores: () => ArrayLike<number>) {
    this.geo = mapGrid(ctx.layout);
    this.size = this.geo.rows * this.geo.cols;
    this.cell = cellSize(this.geo.rows, this.geo.cols, 84, 84, 0.25, 8);
    this.index = new Map(ctx.rows.map((f, i) => [f, i]));
    const w = Math.max(this.geo.cols * this.cell, TILE_MIN) + 8;
    this.grid.style.gridTemplateColumns = `repeat(auto-fill, minmax(${w}px, 1fr))`;
    this.el = h("div", { class: "sw-tiles" }, [this.grid, this.note]);
  }

  setOrder(order: number[]): void {
    this.order = order;
    const shown = order.slice(0, TILE_MAX);
    this.grid.replaceChildren(...shown.map((flat) => (this.tiles.get(flat) ?? this.makeTile(flat)).tile));
    this.note.textContent = order.length > TILE_MAX ? `first ${TILE_MAX} of ${order.length} outputs · search, sort or top-k for others` : "";
    this.paint();
  }

  draw(values: Float32Array, sign: Sign, m: number, lut: Uint8Array): void {
    this.painted = { values, sign, m, lut };
    this.paint();
  }

  select(flat: number): void {
    this.selected = flat;
    const focusKey = this.order.slice(0, TILE_MAX).includes(flat) ? flat : this.order[0];
    for (const [key, t] of this.tiles) {
      t.tile.setAttribute("aria-pressed", String(key === flat));
      t.tile.tabIndex = key === focusKey ? 0 : -1;
    }
  }

  focus(flat: number): void {
    this.tiles.get(flat)?.tile.focus();
  }

  setUnderlay(pixels: Uint8Array | null, channels: number): void {
    this.underlay = pixels && this.ctx.layout.kind === "image" ? faintUnderlay(pixels, channels) : null;
    this.paint();
  }

  compose(): HTMLCanvasElement {
    const shown = this.order.slice(0, TILE_MAX);
    const columns = Math.max(1, Math.min(10, Math.ceil(Math.sqrt(shown.length * 1.6))));
    const [w, hgt] = [this.geo.cols + 2, this.geo.rows + 2];
    const out = h("canvas", { width: columns * w, height: Math.max(1, Math.ceil(shown.length / columns)) * hgt });
    const ctx = out.getContext("2d") as CanvasRenderingContext2D;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, out.width, out.height);
    shown.forEach((flat, i) => {
      const t = this.tiles.get(flat);
      for (const layer of t ? [t.underlay?.canvas, t.heat.canvas] : []) {
        if (layer && layer.width) ctx.drawImage(layer, (i % columns) * w + 1, Math.floor(i / columns) * hgt + 1);
      }
    });
    return out;
  }

  private paint(): void {
    if (!this.painted) return;
    const { values, sign, m, lut } = this.painted;
    const s = this.scores();
    for (const flat of this.order.slice(0, TILE_MAX)) {
      const t = this.tiles.get(flat);
      const i = this.index.get(flat);
      if (!t || i === undefined) continue;
      if (t.underlay && this.underlay) t.underlay.paintRGB(this.underlay, this.geo.rows, this.geo.cols, 1);
      const overlay = Boolean(t.underlay && this.underlay);
      t.heat.draw(values.subarray(i * this.size, (i + 1) * this.size), this.geo.rows, this.geo.cols, sign, m, lut, { at: this.geo.at, overlay });
      const label = this.ctx.labels[flat] ?? String(flat);
      t.caption.replaceChildren(h("span", { class: "sw-tile-name" }, label), h("span", { class: "sw-tile-score" }, formatValue(s[flat])));
      t.tile.title = `${label} · score ${formatValue(s[flat])}`;
      t.heat.canvas.setAttribute("aria-label", `∂“${label}”/∂input map, ${this.geo.rows}×${this.geo.cols}`);
    }
    this.select(this.selected);
  }

  private inputName(k: number): string {
    const row = Math.floor(k / this.geo.cols);
    const col = k % this.geo.cols;
    return this.ctx.layout.kind === "image" ? `pixel (${row}, ${col})` : `t = ${col}, ${this.ctx.featureNames[row] ?? `feature ${row}`}`;
  }

  private makeTile(flat: number): Tile {
    const heat = new Heatmap({ "data-sw-output": String(flat), role: "img" });
    const underlay = this.ctx.layout.kind === "image" ? new Heatmap({ "data-sw-role": "underlay", "aria-hidden": "true" }) : null;
    for (const layer of [underlay, heat]) layer?.setDisplaySize(this.geo.cols * this.cell, this.geo.rows * this.cell);
    const mark = h("div", { class: "sw-mark" });
    mark.style.display = "none";
    const caption = h("span", { class: "sw-tile-label" });
    const layers = underlay ? [underlay.canvas, heat.canvas] : [heat.canvas];
    const tile = h("div", { class: "sw-tile", role: "button", tabindex: "-1", "data-sw-output": String(flat), "aria-pressed": "false" }, [
      h("div", { class: "sw-stage" }, [...layers, mark]),
      caption,
    ]);
    tile.addEventListener("click", () => this.ctx.pick(flat));
    tile.addEventListener("keydown", (ev) => this.onKey(ev, flat));
    heat.canvas.addEventListener("mousemove", throttleFrame((ev: MouseEvent) => {
      const c = heat.cellFromEvent(ev);
      if (!c || !this.painted) return;
      const k = c.row * this.geo.cols + c.col;
      const cell = this.cell;
      for (const t of this.tiles.values()) {
        Object.assign(t.mark.style, { display: "block", left: `${c.col * cell}px`, top: `${c.row * cell}px`, width: `${Math.max(cell, 2)}px`, height: `${Math.max(cell, 2)}px` });
      }
      const at = this.geo.at ? this.geo.at(k) : k;
      this.ctx.hover(flat, at, this.inputName(k));
      const v = this.painted.values[(this.index.get(flat) ?? 0) * this.size + at];
      this.ctx.tooltip(`${this.ctx.labels[flat]} ← ${this.inputName(k)}\n∂out/∂in ${formatValue(v)}`, ev);
    }));
    heat.canvas.addEventListener("mouseleave", () => requestAnimationFrame(() => {
      for (const t of this.tiles.values()) t.mark.style.display = "none";
      this.ctx.hideTooltip();
    }));
    const entry = { tile, heat, underlay, caption, mark };
    this.tiles.set(flat, entry);
    return entry;
  }

  /** Arrows move across the tiles as laid out (Up/Down by one row of tiles); Enter selects. */
  private onKey(ev: KeyboardEvent, flat: number): void {
    const shown = this.order.slice(0, TILE_MAX);
    const at = shown.indexOf(flat);
    const columns = Math.max(1, getComputedStyle(this.grid).gridTemplateColumns.split(" ").length);
    const moves: Record<string, number> = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns };
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      this.ctx.pick(flat);
    } else if (ev.key in moves) {
      ev.preventDefault();
      const to = at + moves[ev.key];
      if (to < 0 || to >= shown.length) return;
      const next = shown[to];
      this.ctx.pick(next);
      this.select(next);
      this.focus(next);
    }
  }
}

function zoomButton(text: string, action: string, title: string, onClick: () => void): HTMLButtonElement {
  const el = h("button", { class: "sw-btn", type: "button", "data-sw-action": action, title, "aria-label": title }, text);
  el.addEventListener("click", onClick);
  return el;
}
