/** The block table of one layer: every block's heatmap on one cell size and one colour scale. */
import { h, throttleFrame } from "../dom";
import { Heatmap, Tooltip } from "../heatmap";
import { pictureCaption, shapeText, weightTooltip } from "../weight_format";
import { downsample, type Picture } from "./downsample";
import { tableLayout, type TableLayout } from "./table";
import { wirePicture, type BlockWire, type TableWire } from "./wire";

/** Width of the gate-label column, when the table has row labels. */
const ROW_HEAD = 84;
const GAP = 6;
/** Narrowest table column (a bias column still has room for its head). */
const MIN_COL = 72;

/** Cell limits of the table: at most `maxHeight` tall, cells 2..24 px, at most 3:1. */
export const LIMITS = { maxHeight: 540, minCell: 2, maxCell: 24, maxAspect: 3 };

/** Where a click landed: the block and the cell in its (kernel-sent) picture's coordinates. */
export interface CellHit {
  panel: BlockPanel;
  row: number;
  col: number;
}

/** One block: its picture as received, as shown (fitted to the table), canvas and zoom mark. */
export class BlockPanel {
  readonly heat: Heatmap;
  readonly stage: HTMLElement;
  readonly picture: Picture;
  shown: Picture;
  private mark = h("div", { class: "sw-wi-mark", hidden: true });
  private f: [number, number] = [1, 1];

  constructor(readonly block: BlockWire) {
    this.picture = wirePicture(block);
    this.shown = this.picture;
    this.heat = new Heatmap({ "data-sw-block": block.name, "aria-label": `${block.name}, ${shapeText(block.shape)}` });
    this.heat.canvas.setAttribute("role", "img");
    this.stage = h("div", { class: "sw-stage", title: `${block.name} · ${shapeText(block.shape)} · ${block.source}\n${block.rule}` }, [this.heat.canvas, this.mark]);
  }

  /** Draws the picture downsampled by (fr, fc) at cw×ch px per cell. */
  draw(layout: TableLayout, m: number, lut: Uint8Array): void {
    this.f = [layout.fr, layout.fc];
    this.shown = downsample(this.picture, layout.fr, layout.fc);
    this.heat.draw(this.shown.values, this.shown.rows, this.shown.cols, "all", m, lut);
    clearBlanks(this.heat.canvas, this.shown.index);
    this.heat.setDisplaySize(this.shown.cols * layout.cw, this.shown.rows * layout.ch);
  }

  /** Block cells per displayed cell: the kernel's factor times the table's. */
  get factor(): [number, number] {
    return [this.block.factor[0] * this.f[0], this.block.factor[1] * this.f[1]];
  }

  /** The cell (in the received picture) under a mouse event, or null. */
  hit(ev: MouseEvent): { row: number; col: number; k: number } | null {
    const c = this.heat.cellFromEvent(ev);
    if (!c) return null;
    return { row: c.row * this.f[0], col: c.col * this.f[1], k: c.row * this.shown.cols + c.col };
  }

  /** Outlines picture cells [r0, r0+nr) × [c0, c0+nc) on the map (null hides the outline). */
  showMark(region: { r0: number; c0: number; nr: number; nc: number } | null): void {
    this.mark.hidden = !region;
    if (!region) return;
    const sx = this.heat.canvas.getBoundingClientRect().width / this.picture.cols;
    const sy = this.heat.canvas.getBoundingClientRect().height / this.picture.rows;
    Object.assign(this.mark.style, {
      left: `${region.c0 * sx}px`, top: `${region.r0 * sy}px`, width: `${region.nc * sx}px`, height: `${region.nr * sy}px`,
    });
  }
}

/** The table: column heads (block parts), row heads (gates), one panel per block. */
export class BlockTable {
  readonly el = h("div", { class: "sw-wi-table", "data-sw-role": "block-table" });
  readonly panels: BlockPanel[];
  layout: TableLayout | null = null;
  private hasRowHeads: boolean;
  private rowHeads: HTMLElement[];

  constructor(blocks: BlockWire[], private table: TableWire, private lut: Uint8Array, tooltip: Tooltip, onZoom: (hit: CellHit) => void) {
    this.panels = blocks.map((b) => new BlockPanel(b));
    this.hasRowHeads = table.rows.some((r) => r !== "");
    const offset = this.hasRowHeads ? 2 : 1;
    if (this.hasRowHeads) this.el.append(h("div", {}));
    table.cols.forEach((name, c) => {
      const first = this.panels.find((p) => p.block.col === c);
      const b = first?.block;
      const sub = b && first ? pictureCaption(b.layout, b.shape, b.axes, b.full[0], b.full[1], b.col_label) : "";
      const head = h("div", { class: "sw-wi-colhead", title: `${name}\n${sub}` }, [h("b", {}, name), h("span", {}, sub)]);
      head.style.gridColumn = String(c + offset);
      head.style.gridRow = "1";
      this.el.append(head);
    });
    this.rowHeads = table.rows.map((name, r) => {
      const head = h("div", { class: "sw-wi-rowhead", title: name }, name);
      head.style.gridColumn = "1";
      head.style.gridRow = String(r + 2);
      return head;
    });
    if (this.hasRowHeads) this.el.append(...this.rowHeads);
    for (const p of this.panels) {
      p.stage.style.gridColumn = String(p.block.col + offset);
      p.stage.style.gridRow = String(p.block.row + 2);
      this.el.append(p.stage);
      const hover = throttleFrame((ev: MouseEvent) => {
        const at = p.hit(ev);
        const flat = at ? p.shown.index[at.k] : -1;
        if (!at || flat < 0) return tooltip.hide();
        const [fr, fc] = p.factor;
        const window = fr * fc > 1 ? `\n(largest |w| of a ${fr}×${fc} window; click to zoom)` : "";
        tooltip.show(weightTooltip(p.block.name, p.shown.values[at.k], flat, p.block.shape, p.block.axes) + window, ev);
      });
      p.heat.canvas.addEventListener("mousemove", hover);
      p.heat.canvas.addEventListener("mouseleave", () => requestAnimationFrame(() => tooltip.hide()));
      p.heat.canvas.addEventListener("click", (ev) => {
        const at = p.hit(ev);
        if (at) onZoom({ panel: p, row: at.row, col: at.col });
      });
    }
  }

  /** Lays the table out in `width` px and draws every panel. */
  fit(width: number): TableLayout {
    const heads = this.hasRowHeads ? ROW_HEAD + GAP : 0;
    const shapes = this.panels.map((p) => ({ row: p.block.row, col: p.block.col, rows: p.picture.rows, cols: p.picture.cols }));
    const fitIn = (w: number) => tableLayout(shapes, { width: Math.max(40, w), height: LIMITS.maxHeight, gap: GAP, ...LIMITS });
    const widen = (l: TableLayout) => l.colWidths.reduce((a, w) => a + Math.max(0, MIN_COL - w), 0);
    let layout = fitIn(width - heads);
    for (let i = 0; i < 3 && widen(layout) > 0; i++) layout = fitIn(width - heads - widen(layout));
    this.layout = layout;
    const cols = layout.colWidths.map((w) => `${Math.max(w, MIN_COL)}px`).join(" ");
    this.el.style.gridTemplateColumns = this.hasRowHeads ? `${ROW_HEAD}px ${cols}` : cols;
    this.el.style.gridTemplateRows = `auto ${layout.rowHeights.map((v) => `${v}px`).join(" ")}`;
    for (const p of this.panels) p.draw(layout, this.table.m, this.lut);
    this.rowHeads.forEach((head, r) => (head.style.maxHeight = `${layout.rowHeights[r]}px`));
    return layout;
  }

  /** The largest number of block cells one displayed cell stands for, e.g. [2, 4]. */
  downsampling(): [number, number] {
    return this.panels.reduce<[number, number]>((acc, p) => {
      const [fr, fc] = p.factor;
      return fr * fc > acc[0] * acc[1] ? [fr, fc] : acc;
    }, [1, 1]);
  }
}

/** Makes the blank separator cells (index -1) of a drawn canvas transparent, so they follow the theme. */
export function clearBlanks(canvas: HTMLCanvasElement, index: Int32Array): void {
  if (!index.some((k) => k < 0)) return;
  const ctx = canvas.getContext("2d") as CanvasRenderingContext2D;
  const image = ctx.getImageData(0, 0, canvas.width, canvas.height);
  index.forEach((k, i) => {
    if (k < 0) image.data[4 * i + 3] = 0;
  });
  ctx.putImageData(image, 0, 0);
}
