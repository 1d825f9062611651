/** The zoom pane: a full-resolution region of one block, large enough to read every weight. */
import { button } from "../controls";
import { h, throttleFrame } from "../dom";
import { Heatmap, Tooltip } from "../heatmap";
import { weightTooltip } from "../weight_format";
import { crop, type Picture } from "./downsample";
import { clearBlanks, type BlockTable, type CellHit } from "./matrix";
import { zoomWindow } from "./table";
import { wirePicture, type BlockWire, type ZoomRequest, type ZoomWire } from "./wire";

/** Px per zoomed cell: twice the table's cell, within [MIN_CELL, MAX_CELL]; the zoom is at most HEIGHT px tall. */
const MIN_CELL = 14;
const MAX_CELL = 48;
const HEIGHT = 340;

/** The zoom's cell size and the most rows / columns it shows, for a table cell of cw×ch px in `width` px. */
export function zoomGeometry(cw: number, ch: number, width: number): { cell: number; rows: number; cols: number } {
  const cell = Math.max(MIN_CELL, Math.min(MAX_CELL, Math.round(2 * Math.max(cw, ch))));
  return { cell, rows: Math.max(1, Math.floor(HEIGHT / cell)), cols: Math.max(1, Math.floor(width / cell)) };
}

export class ZoomView {
  readonly el = h("div", { class: "sw-wi-zoom", "data-sw-role": "zoom", hidden: true });
  private title = h("span", {});
  private heat = new Heatmap({ "data-sw-role": "zoom-map", role: "img" });
  private block: BlockWire | null = null;
  private pic: Picture | null = null;

  constructor(tooltip: Tooltip, onClose: () => void) {
    const close = button("close zoom", "zoom-close", () => {
      this.hide();
      onClose();
    });
    this.el.append(h("div", { class: "sw-wi-zoom-head" }, [this.title, close]), h("div", { class: "sw-stage" }, [this.heat.canvas]));
    const hover = throttleFrame((ev: MouseEvent) => {
      const c = this.heat.cellFromEvent(ev);
      if (!c || !this.pic || !this.block) return tooltip.hide();
      const k = c.row * this.pic.cols + c.col;
      if (this.pic.index[k] < 0) return tooltip.hide();
      tooltip.show(weightTooltip(this.block.name, this.pic.values[k], this.pic.index[k], this.block.shape, this.block.axes), ev);
    });
    this.heat.canvas.addEventListener("mousemove", hover);
    this.heat.canvas.addEventListener("mouseleave", () => requestAnimationFrame(() => tooltip.hide()));
  }

  /** Shows `pic`, the cells [r0, r0+rows) × [c0, c0+cols) of a full picture of total rows×cols. */
  show(block: BlockWire, pic: Picture, at: { r0: number; c0: number }, total: { rows: number; cols: number }, cell: number, m: number, lut: Uint8Array): void {
    this.block = block;
    this.pic = pic;
    this.heat.draw(pic.values, pic.rows, pic.cols, "all", m, lut);
    clearBlanks(this.heat.canvas, pic.index);
    this.heat.setDisplaySize(pic.cols * cell, pic.rows * cell);
    this.heat.canvas.setAttribute("aria-label", `zoom into ${block.name}`);
    this.heat.canvas.dataset.swZoom = block.name;
    this.heat.canvas.dataset.swRegion = [at.r0, at.c0, pic.rows, pic.cols].join(",");
    const span = (a: number, n: number, of: number) => (n === of ? `all ${of}` : `${a}–${a + n - 1} of ${of}`);
    this.title.textContent = `${block.name}: rows ${span(at.r0, pic.rows, total.rows)}, columns ${span(at.c0, pic.cols, total.cols)} · every weight`;
    this.el.hidden = false;
  }

  /** Says that the region is on its way from the kernel (or cannot come). */
  wait(text: string): void {
    this.title.textContent = text;
    this.el.hidden = false;
  }

  hide(): void {
    this.el.hidden = true;
    this.block = null;
    this.pic = null;
  }
}

/** Opens zooms on clicks: from the picture a panel holds, or, when the kernel had downsampled the
 * block, by asking the kernel for the region (`ask`) and drawing its answer (the last request wins). */
export class Zoomer {
  readonly view: ZoomView;
  private pending: ZoomRequest | null = null;
  private cell = MIN_CELL;

  constructor(tooltip: Tooltip, private ask: (request: ZoomRequest) => void, onClose: () => void) {
    this.view = new ZoomView(tooltip, () => {
      this.pending = null;
      onClose();
    });
  }

  /** Zooms into the region around a clicked cell, `width` px wide at most. */
  open(hit: CellHit, table: BlockTable, width: number, m: number, lut: Uint8Array): void {
    const block = hit.panel.block;
    const [kr, kc] = block.factor;
    const [rows, cols] = block.full;
    const layout = table.layout;
    const geometry = zoomGeometry(layout?.cw ?? MIN_CELL, layout?.ch ?? MIN_CELL, width);
    this.cell = geometry.cell;
    const win = zoomWindow(hit.row * kr, hit.col * kc, rows, cols, geometry.rows, geometry.cols);
    table.panels.forEach((p) => p.showMark(null));
    hit.panel.showMark({ r0: win.r0 / kr, c0: win.c0 / kc, nr: win.nr / kr, nc: win.nc / kc });
    if (kr * kc === 1) {
      this.pending = null;
      this.view.show(block, crop(hit.panel.picture, win.r0, win.c0, win.nr, win.nc), win, { rows, cols }, this.cell, m, lut);
      return;
    }
    this.pending = { block: block.name, rows: [win.r0, win.r0 + win.nr], cols: [win.c0, win.c0 + win.nc] };
    this.view.wait(`${block.name}: loading the full-resolution region from the kernel…`);
    this.ask(this.pending);
  }

  /** Draws the kernel's answer if it is the region last asked for. */
  answer(z: ZoomWire | null, table: BlockTable, m: number, lut: Uint8Array): void {
    const want = this.pending;
    if (!z || !z.values || !want || z.block !== want.block || z.rows[0] !== want.rows[0] || z.cols[0] !== want.cols[0]) return;
    const panel = table.panels.find((p) => p.block.name === z.block);
    if (!panel) return;
    const [rows, cols] = panel.block.full;
    this.view.show(panel.block, wirePicture(z), { r0: z.rows[0], c0: z.cols[0] }, { rows, cols }, this.cell, m, lut);
  }

  /** Closes the zoom (a new layer was drawn). */
  reset(): void {
    this.pending = null;
    this.view.hide();
  }
}
