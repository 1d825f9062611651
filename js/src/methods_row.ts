/**
 * The SaliencyMap's methods row (`methods=`): one map per method under its caption (the method, and the map's
 * own range when each map has its own scale), the current `method` framed (`aria-pressed`); a click or Enter on
 * a map makes its method the current one. Image maps sit in a row over the grey input (the overlay view), or
 * alone after the input in its colours (side by side); vector, sequence and text maps are stacked (side by side, a
 * sequence's input signal above them). It fits the
 * width it is given, as MapView does.
 */
import { greyscale, type Sign } from "./colors";
import { composeLayers } from "./controls";
import { h, throttleFrame } from "./dom";
import { Heatmap, type Tooltip } from "./heatmap";
import { cellSize, fitCell } from "./layout";
import { DEFAULT_WIDTH, describeCell, mapGrid, MAX_SIDE, PANEL_GAP, type MapLayout } from "./mapview";
import { SignalChart } from "./signal";
import { TokenChips, type TokenState } from "./textview";

/** One method's map as the row draws it; `values` null while the kernel computes it. */
export interface RowMap {
  method: string;
  caption: string;
  values: Float32Array | null;
  sign: Sign;
  m: number;
  lut: Uint8Array;
  /** The map is zero up to float rounding: drawn in the colour of 0. */
  neutral: boolean;
}

/** Narrowest image tile before the row wraps (px). */
const MIN_TILE = 110;
/** A tile's padding and border, both sides (`.sw-method` in style.ts). */
const TILE_FRAME = 8;

interface Tile {
  el: HTMLElement;
  caption: HTMLElement;
  heat: Heatmap;
  backdrop: Heatmap | null;
  chips: TokenChips | null;
  values: Float32Array;
}

export class MethodsRow {
  readonly el = h("div", { class: "sw-methods", "data-sw-role": "methods", role: "group", "aria-label": "one map per method" });
  private tiles = new Map<string, Tile>();
  private order: string[] = [];
  private picture: Heatmap | null = null;
  private pictureTile: HTMLElement | null = null;
  private pictureCaption = h("span", { class: "sw-tile-label" }, "input");
  private signal: SignalChart | null = null;
  private backdrop: Uint8Array | null = null;
  private grid: ReturnType<typeof mapGrid>;
  private sideBySide = false;
  private width = DEFAULT_WIDTH;
  private tokens: TokenState = {};
  /** Opacity of the maps over the input (overlay view). */
  opacity = 1;
  /** Each map's CSS size (width, height). */
  private size: [number, number] = [0, 0];
  private hover: (ev: MouseEvent, tile: Tile) => void;

  constructor(private layout: MapLayout, private names: string[], private tooltip: Tooltip, private onPick: (method: string) => void) {
    this.grid = mapGrid(layout);
    this.el.classList.add(layout.kind === "image" ? "sw-methods-row" : "sw-methods-stack");
    if (layout.kind === "image") {
      this.picture = new Heatmap({ "data-sw-role": "input", role: "img", "aria-label": "the input" });
      this.pictureTile = h("figure", { class: "sw-figure", "data-sw-panel": "input" }, [this.pictureCaption, h("div", { class: "sw-pane" }, [this.picture.canvas])]);
    }
    if (layout.kind === "sequence") {
      const { rows, cols } = this.grid;
      this.signal = new SignalChart(cols, rows, Array.from({ length: rows }, (_, r) => names[r] ?? `feature ${r}`));
      this.pictureTile = h("figure", { class: "sw-figure", "data-sw-panel": "input" }, [h("span", { class: "sw-tile-label" }, "input"), this.signal.el]);
    }
    this.hover = throttleFrame((ev: MouseEvent, tile: Tile) => {
      const cell = tile.heat.cellFromEvent(ev);
      if (cell) tooltip.show(`${tile.el.dataset.swMethodText}\n${describeCell(this.layout, this.names, tile.values, null, cell.row, cell.col)}`, ev);
      else tooltip.hide();
    });
  }

  /** The input picture: grey under the overlays, in its colours before the maps side by side. */
  setImage(pixels: Uint8Array, channels: number, caption = ""): void {
    const { rows, cols } = this.grid;
    this.backdrop = greyscale(pixels, channels);
    this.picture?.paintRGB(pixels, rows, cols, channels);
    this.pictureCaption.textContent = this.pictureCaption.title = caption ? `input · ${caption}` : "input";
    for (const tile of this.tiles.values()) tile.backdrop?.paintRGB(this.backdrop, rows, cols, 1);
  }

  /** The current sample's tokens (text maps). */
  setTokens(state: TokenState): void {
    this.tokens = state;
    for (const tile of this.tiles.values()) tile.chips?.setTokens(state, this.layout.display_shape[0]);
  }

  setSideBySide(on: boolean): void {
    this.sideBySide = on && (this.layout.kind === "image" || this.layout.kind === "sequence");
    this.resize(this.width);
  }

  /** Draws one tile per map, in order; `selected` is the current method; `input` (the flat, time-first sample)
   *  is a sequence's signal. */
  draw(maps: RowMap[], selected: string, input: ArrayLike<number> | null = null): void {
    if (this.sideBySide && input) this.signal?.draw(input);
    const methods = maps.map((m) => m.method);
    if (methods.join() !== this.order.join()) this.build(methods);
    const { rows, cols, at } = this.grid;
    for (const map of maps) {
      const tile = this.tiles.get(map.method) as Tile;
      tile.caption.textContent = tile.caption.title = map.caption;
      tile.el.dataset.swMethodText = map.caption;
      tile.el.setAttribute("aria-pressed", String(map.method === selected));
      tile.el.classList.toggle("sw-stale", map.values === null);
      if (tile.backdrop) tile.backdrop.canvas.hidden = this.sideBySide;
      tile.heat.canvas.style.opacity = tile.backdrop && !this.sideBySide ? String(this.opacity) : "";
      if (!map.values) continue;
      tile.values = map.values;
      const shown = map.neutral ? new Float32Array(map.values.length) : map.values;
      tile.heat.draw(shown, rows, cols, map.sign, map.m, map.lut, { overlay: tile.backdrop !== null && !this.sideBySide, at });
      tile.chips?.draw(shown, map.sign, map.m, map.lut, map.values);
      tile.heat.canvas.setAttribute("aria-label", `${map.caption} map`);
    }
  }

  /** Lays the row out for a view `width` px wide. */
  resize(width: number): void {
    this.width = width;
    const { rows, cols } = this.grid;
    const kind = this.layout.kind;
    let size: [number, number, boolean] | null = null;
    if (kind === "image") {
      const n = this.order.length + (this.sideBySide ? 1 : 0);
      const across = Math.max(1, Math.min(n, Math.floor((width + PANEL_GAP) / (MIN_TILE + PANEL_GAP))));
      const room = (width - PANEL_GAP * (across - 1)) / across - TILE_FRAME;
      const { cell, crisp } = fitCell(rows, cols, Math.min(MAX_SIDE, room), MAX_SIDE);
      size = [cols * cell, rows * cell, crisp];
    } else if (kind === "vector" || kind === "text") size = [cols * cellSize(1, cols, width - TILE_FRAME, Infinity, 0.25, 56), 24, true];
    else if (kind === "sequence") {
      const cell = cellSize(rows, cols, width - TILE_FRAME, 180, 0.5, 40);
      size = [cols * cell, rows * cell, true];
    }
    if (this.pictureTile) this.pictureTile.hidden = !this.sideBySide;
    if (!size) return;
    const [w, hgt, crisp] = size;
    this.size = [w, hgt];
    this.signal?.resize(w, hgt);
    const canvases = [this.picture, ...Array.from(this.tiles.values(), (t) => [t.heat, t.backdrop])].flat();
    for (const heat of canvases) {
      heat?.setDisplaySize(w, hgt);
      if (heat) heat.canvas.style.imageRendering = crisp ? "pixelated" : "auto";
    }
  }

  /** The row as drawn, one canvas, for export (the input first when side by side). */
  compose(opacity: number): HTMLCanvasElement {
    const tiles = this.order.map((m) => this.tiles.get(m) as Tile);
    const scale = Math.max(1, Math.ceil(240 / Math.max(this.size[0], 1)));
    const [w, hgt] = [this.size[0] * scale, this.size[1] * scale];
    const parts = tiles.map((t) => (t.backdrop && !this.sideBySide ? composeLayers([t.backdrop.canvas, t.heat.canvas], w, hgt, [1, opacity]) : composeLayers([t.heat.canvas], w, hgt)));
    if (this.sideBySide && this.picture) parts.unshift(composeLayers([this.picture.canvas], w, hgt));
    const gap = PANEL_GAP * scale;
    const across = this.layout.kind === "image";
    const out = composeLayers([], across ? parts.length * (w + gap) - gap : w, across ? hgt : parts.length * (hgt + gap) - gap);
    const ctx = out.getContext("2d") as CanvasRenderingContext2D;
    parts.forEach((part, i) => ctx.drawImage(part, across ? i * (w + gap) : 0, across ? 0 : i * (hgt + gap)));
    return out;
  }

  private build(methods: string[]): void {
    this.order = methods;
    const { rows, cols } = this.grid;
    this.tiles.clear();
    for (const method of methods) {
      const caption = h("span", { class: "sw-tile-label" });
      const heat = new Heatmap({ role: "img" });  // data-sw-role="heatmap", as every map canvas
      const backdrop = this.layout.kind === "image" ? new Heatmap({ "data-sw-role": "input-image" }) : null;
      if (backdrop && this.backdrop) backdrop.paintRGB(this.backdrop, rows, cols, 1);
      const chips = this.layout.kind === "text" ? new TokenChips(this.tooltip) : null;
      chips?.setTokens(this.tokens, this.layout.display_shape[0]);
      const stage = h("div", { class: "sw-pane" }, chips ? [chips.el] : backdrop ? [backdrop.canvas, heat.canvas] : [heat.canvas]);
      const el = h("figure", { class: "sw-figure sw-method", "data-sw-method": method, role: "button", tabindex: 0, "aria-pressed": "false" }, [caption, stage]);
      const tile: Tile = { el, caption, heat, backdrop, chips, values: new Float32Array(0) };
      el.addEventListener("click", () => this.onPick(method));
      el.addEventListener("keydown", (ev) => {
        if (ev.key !== "Enter" && ev.key !== " ") return;
        ev.preventDefault();
        this.onPick(method);
      });
      heat.canvas.addEventListener("mousemove", (ev) => this.hover(ev, tile));
      heat.canvas.addEventListener("mouseleave", () => requestAnimationFrame(() => this.tooltip.hide()));
      this.tiles.set(method, tile);
    }
    this.el.replaceChildren(...(this.pictureTile ? [this.pictureTile] : []), ...methods.map((m) => (this.tiles.get(m) as Tile).el));
    this.resize(this.width);
  }
}
