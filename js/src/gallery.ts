/**
 * The virtualised gallery of DatasetMap: a scroll container with a spacer as tall as every row, and, over
 * the rows in view (± OVERSCAN rows), a pool of recycled cells (caption, borders, the click target
 * `data-sw-sample`) and one recycled canvas per row holding that row's thumbnails (a few canvases, not
 * two per sample: scrolling stays cheap to composite). Thumbnails come from a bounded cache; missing
 * ones are asked of the kernel a page of positions at a time.
 */
import { h } from "./dom";
import { visibleRange } from "./rows";
import { cacheCapacity, missingOf, pagesFor, paintInput, paintMap, thumbSize, ThumbCache, unpackPage, upscale, type PageMeta, type Thumb, type ThumbGeometry } from "./thumbs";

/** Rows drawn beyond the viewport on each side. */
const OVERSCAN = 2;
/** Most gallery height (pixels); the page scrolls the rest. */
const MAX_HEIGHT = 520;
/** Pages asked for beyond the ones in view, in the direction of scrolling. */
const PAGES_AHEAD = 1;
/** While scrolling slowly the view asks for pages at most this often (ms); while it flies (more than a
 *  screen per frame) it waits until it slows down, so pages flown past are never asked for. */
const REQUEST_EVERY = 60;
const SETTLE = 120;
const GAP = 8;
const PAD = 5;
const CAPTION = 16;
/** Space between the input and the map of one sample. */
const SPLIT = 4;

export interface GalleryOptions {
  geometry: ThumbGeometry;
  /** Images: input and map side by side; strips and grids (vectors, sequences, text): stacked. */
  sideBySide: boolean;
  pageSize: number;
  /** No kernel answers (a to_html page): thumbnails beyond the embedded ones are not asked for. */
  offline: boolean;
  label(c: number): string;
  pick(index: number): void;
  /** Asks the kernel for the thumbnails of these samples. */
  request(indices: number[]): void;
}

interface Cell {
  el: HTMLElement;
  index: HTMLElement;
  pred: HTMLElement;
  verdict: HTMLElement;
  /** The sample shown, or -1; its gallery position. */
  sample: number;
  pos: number;
}

interface Row {
  canvas: HTMLCanvasElement;
  ctx: CanvasRenderingContext2D;
  row: number;
}

export class Gallery {
  readonly el: HTMLElement;
  readonly scroller = h("div", { class: "sw-gallery", "data-sw-role": "gallery", role: "listbox", tabindex: "0", "aria-label": "samples" });
  private spacer = h("div", { class: "sw-gallery-spacer" });
  private cache: ThumbCache;
  private asked = new Set<number>();
  private shown: Int32Array = new Int32Array(0);
  private cells = new Map<number, Cell>();
  private freeCells: Cell[] = [];
  private rows = new Map<number, Row>();
  private freeRows: Row[] = [];
  private lut: Uint8Array = new Uint8Array(1024);
  private key = "";
  private selected = -1;
  private columns = 1;
  private stride = 0;
  private width = 0;
  private cellSize: { width: number; height: number };
  private thumb: { width: number; height: number };
  /** Where the map and the input sit inside a cell's thumbnail band (pixels from its left / top). */
  private spots: { map: [number, number]; input: [number, number] | null };
  private band: { width: number; height: number };
  private images: { map: ImageData; input: ImageData; small: ImageData };
  private lastRequest = 0;
  private requestTimer: ReturnType<typeof setTimeout> | null = null;
  private lastTop = 0;
  private resize: ResizeObserver | null = null;

  constructor(private opts: GalleryOptions) {
    const geo = opts.geometry;
    this.cache = new ThumbCache(cacheCapacity(geo));
    this.thumb = thumbSize(geo, opts.sideBySide);
    const { width: tw, height: th } = this.thumb;
    const withInput = geo.channels > 0;
    const pair = opts.sideBySide && withInput;
    this.band = { width: pair ? 2 * tw + SPLIT : tw, height: !pair && withInput ? 2 * th + SPLIT : th };
    this.spots = {
      input: withInput ? [0, 0] : null,
      map: !withInput ? [0, 0] : pair ? [tw + SPLIT, 0] : [0, th + SPLIT],
    };
    this.images = { map: new ImageData(tw, th), input: new ImageData(tw, th), small: new ImageData(geo.cols, geo.rows) };
    this.cellSize = { width: Math.max(this.band.width, 104) + 2 * PAD + 2, height: this.band.height + CAPTION + 3 + 2 * PAD + 2 };
    this.scroller.append(this.spacer);
    this.el = this.scroller;
    this.scroller.addEventListener("scroll", () => this.render(), { passive: true });
    this.scroller.addEventListener("click", (ev) => {
      const cell = (ev.target as HTMLElement).closest<HTMLElement>("[data-sw-sample]");
      if (cell) opts.pick(Number(cell.dataset.swSample));
    });
    this.scroller.addEventListener("keydown", (ev) => this.onKey(ev));
    if (typeof ResizeObserver !== "undefined") {
      this.resize = new ResizeObserver(() => {
        if (this.scroller.clientWidth !== this.width) this.layout();
      });
      this.resize.observe(this.scroller);
    }
  }

  dispose(): void {
    this.resize?.disconnect();
    if (this.requestTimer) clearTimeout(this.requestTimer);
  }

  /** The samples listed, in order: back to the top, every cell redrawn. */
  setShown(shown: Int32Array): void {
    this.shown = shown;
    this.scroller.scrollTop = 0;
    this.lastTop = 0;
    this.layout();
  }

  /** The LUT of the colour key `key` (sign and clipping) the kernel made the thumbnails with; a new key
   *  drops every cached thumbnail (the kernel sends the first page of the new one). */
  setColours(lut: Uint8Array, key: string): void {
    this.lut = lut;
    if (key === this.key) return;
    this.key = key;
    this.cache.clear();
    this.asked.clear();
    for (const cell of this.cells.values()) this.paint(cell);
  }

  /** A page from the kernel: cached, and drawn where its samples are in view. Pages of another key are dropped. */
  ingest(meta: PageMeta, maps: Uint8Array, inputs: Uint8Array | null): void {
    for (const i of meta.indices) this.asked.delete(i);
    if (meta.key !== this.key) return;
    const arrived = new Set<number>();
    for (const [index, thumb] of unpackPage(meta, maps, inputs, this.opts.geometry)) {
      this.cache.set(index, thumb);
      arrived.add(index);
    }
    for (const cell of this.cells.values()) if (arrived.has(cell.sample)) this.paint(cell);
  }

  /** Marks sample `index` as the opened one. */
  select(index: number): void {
    this.selected = index;
    for (const cell of this.cells.values()) cell.el.setAttribute("aria-selected", String(cell.sample === index));
  }

  /** Re-reads the width: columns, spacer height, and every cell and row redrawn. */
  layout(): void {
    this.width = this.scroller.clientWidth;
    const avail = (this.width || this.cellSize.width + 2 * GAP) - 2 * GAP;
    for (const pos of [...this.cells.keys()]) this.releaseCell(pos);
    for (const row of [...this.rows.keys()]) this.releaseRow(row);
    this.columns = Math.max(1, Math.floor((avail + GAP) / (this.cellSize.width + GAP)));
    this.stride = this.columns > 1 ? Math.floor((avail - this.cellSize.width) / (this.columns - 1)) : 0;
    const rows = Math.ceil(this.shown.length / this.columns);
    const rowHeight = this.cellSize.height + GAP;
    this.spacer.style.height = `${rows * rowHeight + GAP}px`;
    this.scroller.style.height = `${Math.max(rowHeight + GAP, Math.min(MAX_HEIGHT, rows * rowHeight + GAP))}px`;
    for (const row of this.freeRows) {
      row.canvas.width = Math.max(1, (this.columns - 1) * this.stride + this.cellSize.width);
      row.canvas.style.width = `${row.canvas.width}px`;
    }
    this.render();
  }

  /** Places cells and row canvases over the rows in view (recycling the others) and asks for the pages they need. */
  render(): void {
    const rowHeight = this.cellSize.height + GAP;
    const top = this.scroller.scrollTop;
    const view = this.scroller.clientHeight || MAX_HEIGHT;
    const count = Math.ceil(this.shown.length / this.columns);
    const [firstRow, lastRow] = visibleRange(top, view, rowHeight, count, OVERSCAN);
    const first = firstRow * this.columns;
    const last = Math.min(this.shown.length, lastRow * this.columns);
    for (const pos of [...this.cells.keys()]) if (pos < first || pos >= last) this.releaseCell(pos);
    for (const row of [...this.rows.keys()]) if (row < firstRow || row >= lastRow) this.releaseRow(row);
    for (let row = firstRow; row < lastRow; row++) if (!this.rows.has(row)) this.placeRow(row, rowHeight);
    for (let pos = first; pos < last; pos++) if (!this.cells.has(pos)) this.placeCell(pos, rowHeight);
    const moved = top - this.lastTop;
    this.lastTop = top;
    this.scheduleRequests(first, last, moved >= 0, Math.abs(moved) > view);
  }

  private placeRow(row: number, rowHeight: number): void {
    const r = this.freeRows.pop() ?? this.makeRow();
    r.row = row;
    r.canvas.dataset.swRow = String(row);
    r.canvas.style.transform = `translate(0px,${GAP + row * rowHeight + PAD + 1}px)`;
    r.ctx.clearRect(0, 0, r.canvas.width, r.canvas.height);
    r.canvas.hidden = false;
    this.rows.set(row, r);
  }

  private placeCell(pos: number, rowHeight: number): void {
    const cell = this.freeCells.pop() ?? this.makeCell();
    const row = Math.floor(pos / this.columns);
    cell.el.style.transform = `translate(${(pos % this.columns) * this.stride}px,${GAP + row * rowHeight}px)`;
    cell.el.hidden = false;
    cell.sample = this.shown[pos];
    cell.pos = pos;
    cell.el.dataset.swSample = String(cell.sample);
    cell.el.setAttribute("aria-selected", String(cell.sample === this.selected));
    cell.el.setAttribute("aria-posinset", String(pos + 1));
    cell.el.setAttribute("aria-setsize", String(this.shown.length));
    cell.index.textContent = `#${cell.sample}`;
    this.cells.set(pos, cell);
    this.paint(cell);
  }

  private scheduleRequests(first: number, last: number, down: boolean, flying: boolean): void {
    if (this.opts.offline) return;
    const now = performance.now();
    const wait = flying ? SETTLE : REQUEST_EVERY - (now - this.lastRequest);
    if (flying && this.requestTimer) clearTimeout(this.requestTimer), (this.requestTimer = null);
    if (wait > 0) {
      if (!this.requestTimer) this.requestTimer = setTimeout(() => ((this.requestTimer = null), this.render()), wait);
      return;
    }
    this.lastRequest = now;
    const size = this.opts.pageSize;
    const ahead = PAGES_AHEAD * size;
    const pages = pagesFor(down ? first : first - ahead, down ? last + ahead : last, size, this.shown.length);
    for (const page of pages) {
      const missing = missingOf(this.shown, page, size, (i) => this.cache.has(i) || this.asked.has(i));
      if (!missing.length) continue;
      for (const i of missing) this.asked.add(i);
      this.opts.request(missing);
    }
  }

  /** Draws a cell's thumbnail (into its row's canvas) and caption from the cache; a placeholder while it is not there. */
  private paint(cell: Cell): void {
    const thumb = this.cache.get(cell.sample);
    const row = this.rows.get(Math.floor(cell.pos / this.columns));
    const x = (cell.pos % this.columns) * this.stride + PAD + 1;
    cell.el.classList.toggle("sw-pending", !thumb);
    if (!thumb) {
      row?.ctx.clearRect(x, 0, this.band.width, this.band.height);
      cell.pred.textContent = this.opts.offline ? "needs a kernel" : "";
      cell.verdict.textContent = "";
      cell.el.dataset.mistake = "false";
      cell.el.title = `sample ${cell.sample}`;
      return;
    }
    if (row) this.drawThumb(row.ctx, x, thumb);
    this.caption(cell, thumb);
  }

  private drawThumb(ctx: CanvasRenderingContext2D, x: number, thumb: Thumb): void {
    const { channels } = this.opts.geometry;
    const { small, map, input } = this.images;
    paintMap(thumb.map, this.lut, small.data);
    upscale(small, map);
    ctx.putImageData(map, x + this.spots.map[0], this.spots.map[1]);
    if (this.spots.input && thumb.input) {
      paintInput(thumb.input, channels, small.data);
      upscale(small, input);
      ctx.putImageData(input, x + this.spots.input[0], this.spots.input[1]);
    }
  }

  private caption(cell: Cell, thumb: Thumb): void {
    const pred = this.opts.label(thumb.pred);
    const wrong = thumb.truth !== null && thumb.truth !== thumb.pred;
    cell.pred.textContent = pred;
    cell.verdict.textContent = thumb.truth === null ? "" : wrong ? `≠ ${this.opts.label(thumb.truth)}` : "✓";
    cell.verdict.className = wrong ? "sw-cap-bad" : "sw-cap-ok";
    cell.el.dataset.mistake = String(wrong);
    const truth = thumb.truth === null ? "" : ` · true “${this.opts.label(thumb.truth)}”${wrong ? " · mistake" : ""}`;
    cell.el.title = `sample ${cell.sample} · predicted “${pred}”${truth}`;
    cell.el.setAttribute("aria-label", cell.el.title);
  }

  private releaseCell(pos: number): void {
    const cell = this.cells.get(pos) as Cell;
    cell.el.hidden = true;
    cell.sample = -1;
    this.cells.delete(pos);
    this.freeCells.push(cell);
  }

  private releaseRow(row: number): void {
    const r = this.rows.get(row) as Row;
    r.canvas.hidden = true;
    this.rows.delete(row);
    this.freeRows.push(r);
  }

  private makeRow(): Row {
    const width = Math.max(1, (this.columns - 1) * this.stride + this.cellSize.width);
    const canvas = h("canvas", { class: "sw-gallery-row", "data-sw-role": "gallery-row", width, height: this.band.height });
    canvas.style.width = `${width}px`;
    canvas.style.height = `${this.band.height}px`;
    this.scroller.append(canvas);
    return { canvas, ctx: canvas.getContext("2d") as CanvasRenderingContext2D, row: -1 };
  }

  private makeCell(): Cell {
    const box = (role: string, [x, y]: [number, number]) => {
      const el = h("div", { class: "sw-thumb", "data-sw-role": role });
      Object.assign(el.style, { left: `${x}px`, top: `${y}px`, width: `${this.thumb.width}px`, height: `${this.thumb.height}px` });
      return el;
    };
    const band = h("div", { class: "sw-band" }, [...(this.spots.input ? [box("thumb-input", this.spots.input)] : []), box("thumb-map", this.spots.map)]);
    Object.assign(band.style, { width: `${this.band.width}px`, height: `${this.band.height}px` });
    const index = h("span", { class: "sw-cap-i" });
    const pred = h("span", { class: "sw-cap-pred" });
    const verdict = h("span", {});
    const el = h("div", { class: "sw-cell", role: "option", tabindex: "-1" }, [band, h("div", { class: "sw-cap" }, [index, pred, verdict])]);
    el.style.width = `${this.cellSize.width}px`;
    el.style.height = `${this.cellSize.height}px`;
    this.scroller.insertBefore(el, this.spacer.nextSibling);
    return { el, index, pred, verdict, sample: -1, pos: -1 };
  }

  /** Arrow keys move the opened sample through the gallery; Enter opens the first one. */
  private onKey(ev: KeyboardEvent): void {
    const moves: Record<string, number> = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: this.columns, ArrowUp: -this.columns };
    if (!(ev.key in moves) && ev.key !== "Enter") return;
    ev.preventDefault();
    if (!this.shown.length) return;
    const at = this.selected < 0 ? -1 : this.shown.indexOf(this.selected);
    const to = at < 0 ? 0 : Math.min(this.shown.length - 1, Math.max(0, at + (moves[ev.key] ?? 0)));
    this.scrollToPosition(to);
    this.opts.pick(this.shown[to]);
  }

  /** Scrolls so that gallery position `pos` is in view. */
  scrollToPosition(pos: number): void {
    const rowHeight = this.cellSize.height + GAP;
    const y = Math.floor(pos / this.columns) * rowHeight;
    const view = this.scroller.clientHeight;
    if (y < this.scroller.scrollTop) this.scroller.scrollTop = y;
    else if (y + rowHeight > this.scroller.scrollTop + view) this.scroller.scrollTop = y + rowHeight - view + GAP;
  }
}

/** The gallery's stylesheet (beside the shared one; only --sw-* colours, so both themes follow the host). */
export const GALLERY_CSS = `
.sw-dm{display:flex;flex-direction:column;gap:14px;width:100%;min-width:0}
.sw-dm-section{display:flex;flex-direction:column;gap:6px;min-width:0}
.sw-dm-head{display:flex;align-items:baseline;gap:10px;flex-wrap:wrap;font-weight:600}
.sw-dm-head .sw-sub,.sw-dm-head .sw-note{font-weight:400}
.sw-dm-note{padding:5px 10px;border-radius:6px;background:var(--sw-soft);border:1px solid var(--sw-line);color:var(--sw-fg)}
.sw-dm-note[hidden]{display:none}
.sw-means{display:flex;flex-wrap:wrap;gap:4px;max-height:260px;overflow-y:auto}
.sw-mean{display:flex;flex-direction:column;align-items:center;gap:3px;padding:4px 5px;border-radius:7px;border:1px solid transparent;cursor:pointer;background:none;font:inherit;color:inherit}
.sw-mean:hover{background:var(--sw-soft)}
.sw-mean[aria-pressed=true]{border-color:var(--sw-accent);background:var(--sw-accent-soft)}
.sw-mean canvas{image-rendering:pixelated;display:block;border-radius:2px;box-shadow:0 0 0 1px var(--sw-outline)}
.sw-mean span{font-size:11px;color:var(--sw-muted);white-space:nowrap;font-variant-numeric:tabular-nums}
.sw-mean[aria-pressed=true] span{color:var(--sw-fg)}
.sw-gallery{position:relative;overflow-y:auto;overflow-x:hidden;contain:strict;border:1px solid var(--sw-line);border-radius:8px;background:var(--sw-bg);width:100%}
.sw-gallery-spacer{width:1px}
.sw-cell{position:absolute;left:${GAP}px;top:0;display:flex;flex-direction:column;gap:3px;padding:${PAD}px;border-radius:7px;border:1px solid transparent;cursor:pointer}
.sw-cell[hidden]{display:none}
.sw-cell:hover{background:var(--sw-soft)}
.sw-cell[aria-selected=true]{border-color:var(--sw-accent);background:var(--sw-accent-soft)}
.sw-cell[data-mistake=true]{border-color:color-mix(in srgb,var(--sw-bad) 55%,transparent)}
.sw-cell[data-mistake=true][aria-selected=true]{border-color:var(--sw-accent)}
.sw-band{position:relative;flex:none}
.sw-thumb{position:absolute;background:var(--sw-soft);box-shadow:0 0 0 1px var(--sw-outline)}
.sw-gallery-row{position:absolute;left:${GAP}px;top:0;z-index:1;pointer-events:none;image-rendering:pixelated}
.sw-gallery-row[hidden]{display:none}
.sw-cap{display:flex;gap:5px;align-items:baseline;font-size:11px;line-height:${CAPTION - 2}px;height:${CAPTION}px;white-space:nowrap;overflow:hidden;font-variant-numeric:tabular-nums}
.sw-cap-i{color:var(--sw-muted)}
.sw-cap-pred{font-weight:600;overflow:hidden;text-overflow:ellipsis}
.sw-cap-ok{color:var(--sw-muted)}
.sw-cap-bad{color:var(--sw-bad);font-weight:600;overflow:hidden;text-overflow:ellipsis}
.sw-root{--sw-bad:color-mix(in srgb,#e53935 72%,var(--sw-fg))}
.sw-detail{display:flex;gap:16px;align-items:flex-start;flex-wrap:wrap}
.sw-detail[hidden],.sw-dm-head[hidden]{display:none}
.sw-detail .sw-view{flex:0 1 auto}
.sw-detail-pic{display:flex;flex-direction:column;gap:4px;align-items:flex-start}
.sw-detail-pic canvas{image-rendering:pixelated;display:block;border-radius:4px;box-shadow:0 0 0 1px var(--sw-outline)}
`;
