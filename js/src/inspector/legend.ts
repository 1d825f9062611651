/** The layer's colour scale (shared by all its blocks), value histogram and summary statistics. */
import { ColorBar } from "../colorbar";
import { h } from "../dom";
import { formatValue } from "../format";
import { histogramBars } from "../weight_format";
import type { TableWire } from "./wire";

export class Legend {
  readonly el = h("div", {});
  private bar = new ColorBar();
  private hist = h("canvas", { class: "sw-wi-hist", width: 240, height: 60, "data-sw-role": "histogram", role: "img" });
  private stats = h("div", { class: "sw-wi-caption" });

  constructor() {
    this.el.append(h("div", { class: "sw-wi-legend" }, [this.bar.el, this.hist]), this.stats);
  }

  update(table: TableWire, lut: Uint8Array): void {
    this.bar.update({ lut, sign: "all", m: table.m, outlierPerc: 0, locked: false });
    const s = table.stats;
    this.stats.textContent = `one scale for the layer: ±max |w| of its kernels (larger biases saturate) · min ${formatValue(s.min)} · max ${formatValue(s.max)} · mean ${formatValue(s.mean)} · std ${formatValue(s.std)}`;
    this.hist.setAttribute("aria-label", `histogram of the layer's weights from ${formatValue(s.min)} to ${formatValue(s.max)}`);
    this.drawHistogram(table.hist, s.min, s.max);
  }

  private drawHistogram(counts: number[], lo: number, hi: number): void {
    const canvas = this.hist;
    const ctx = canvas.getContext("2d") as CanvasRenderingContext2D;
    const style = getComputedStyle(this.el);
    const { heights, zeroAt } = histogramBars(counts, lo, hi);
    const w = canvas.width / Math.max(1, heights.length);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = style.getPropertyValue("--sw-accent").trim() || "#3b6fd8";
    ctx.globalAlpha = 0.55;
    heights.forEach((v, i) => ctx.fillRect(i * w + 1, canvas.height * (1 - v), w - 2, canvas.height * v));
    ctx.globalAlpha = 1;
    if (zeroAt !== null) {
      ctx.fillStyle = style.getPropertyValue("--sw-fg").trim() || "#1f2430";
      ctx.fillRect(Math.round(zeroAt * canvas.width) - 1, 0, 2, canvas.height);
    }
  }
}
