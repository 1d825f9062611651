/** A canvas that shows a rows×cols map one pixel per cell through a 256-entry LUT. */
import { colorize, type Sign } from "./colors";
import { h } from "./dom";
import { cellAt } from "./layout";

export interface DrawOptions {
  /** Alpha from the value's strength (for drawing over an image). */
  overlay?: boolean;
  /** Maps pixel k (row-major over rows×cols) to its index in `values`. */
  at?: (k: number) => number;
}

export class Heatmap {
  readonly canvas: HTMLCanvasElement;
  rows = 0;
  cols = 0;
  private image: ImageData | null = null;

  constructor(attrs: Record<string, string> = {}) {
    this.canvas = h("canvas", { "data-sw-role": "heatmap", ...attrs });
  }

  /** Colour-maps `values` (rows×cols, row-major) at scale m and paints them. */
  draw(values: ArrayLike<number>, rows: number, cols: number, sign: Sign, m: number, lut: Uint8Array, opts: DrawOptions = {}): void {
    const ctx = this.context(rows, cols);
    const image = this.image as ImageData;
    colorize(values, sign, m, lut, image.data, opts.overlay, opts.at);
    ctx.putImageData(image, 0, 0);
  }

  /** Paints an RGB(A) uint8 picture (rows×cols×channels). */
  paintRGB(pixels: Uint8Array, rows: number, cols: number, channels: number): void {
    const ctx = this.context(rows, cols);
    const data = (this.image as ImageData).data;
    for (let k = 0, n = rows * cols; k < n; k++) {
      data[4 * k] = pixels[channels * k];
      data[4 * k + 1] = pixels[channels * k + (channels > 1 ? 1 : 0)];
      data[4 * k + 2] = pixels[channels * k + (channels > 2 ? 2 : 0)];
      data[4 * k + 3] = channels > 3 ? pixels[channels * k + 3] : 255;
    }
    ctx.putImageData(this.image as ImageData, 0, 0);
  }

  /** CSS size of the drawn map. */
  setDisplaySize(width: number, height: number): void {
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
  }

  /** The cell under a mouse event, or null. */
  cellFromEvent(ev: MouseEvent): { row: number; col: number } | null {
    const r = this.canvas.getBoundingClientRect();
    return cellAt(ev.clientX - r.left, ev.clientY - r.top, r.width, r.height, this.rows, this.cols);
  }

  private context(rows: number, cols: number): CanvasRenderingContext2D {
    if (rows !== this.rows || cols !== this.cols || !this.image) {
      this.canvas.width = cols;
      this.canvas.height = rows;
      this.rows = rows;
      this.cols = cols;
      this.image = new ImageData(cols, rows);
    }
    const ctx = this.canvas.getContext("2d") as CanvasRenderingContext2D;
    ctx.imageSmoothingEnabled = false;
    return ctx;
  }
}

/** A floating tooltip inside `root` (which must be position: relative). */
export class Tooltip {
  readonly el = h("div", { class: "sw-tooltip", role: "tooltip" });

  constructor(private root: HTMLElement) {
    root.append(this.el);
  }

  show(text: string, ev: MouseEvent): void {
    const r = this.root.getBoundingClientRect();
    this.el.textContent = text;
    this.el.style.display = "block";
    this.el.style.left = `${ev.clientX - r.left + 14}px`;
    this.el.style.top = `${ev.clientY - r.top + 14}px`;
  }

  hide(): void {
    this.el.style.display = "none";
  }
}
