/**
 * A sequence's input drawn above its time × feature map (the SaliencyMap's side-by-side layout): one line per
 * feature over the time steps, each at the centre of its map column, with the features named in a key; with
 * more than SIGNAL_LINES features, a grey features × time map instead (stretched min–max). `_draw_signal` in
 * saliency_widgets/export.py draws the same.
 */
import { h } from "./dom";
import { Heatmap } from "./heatmap";

/** Most features drawn as lines (SIGNAL_LINES in export.py). */
export const SIGNAL_LINES = 8;
/** The lines' colours (SIGNAL_COLORS in export.py). */
export const SIGNAL_COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"];
const SVG_NS = "http://www.w3.org/2000/svg";
const HEIGHT = 84;

/** SVG polyline points of feature `f` of a time-first (T, F) signal in a width × height box: x at each
 *  time step's column centre, y from `lo` (bottom) to `hi` (top). */
export function signalPoints(signal: ArrayLike<number>, steps: number, features: number, f: number, width: number, height: number, lo: number, hi: number): string {
  const span = hi - lo || 1;
  const out: string[] = [];
  for (let t = 0; t < steps; t++) {
    const x = ((t + 0.5) / steps) * width;
    const y = height - 3 - ((signal[t * features + f] - lo) / span) * (height - 6);
    out.push(`${x.toFixed(1)},${y.toFixed(1)}`);
  }
  return out.join(" ");
}

export class SignalChart {
  readonly el = h("div", { class: "sw-signal", "data-sw-role": "signal" });
  private svg = document.createElementNS(SVG_NS, "svg");
  private grey = new Heatmap({ "data-sw-role": "signal-map", role: "img", "aria-label": "input signal" });
  private key = h("div", { class: "sw-signal-key" });
  private width = 0;
  private signal: ArrayLike<number> = [];

  constructor(private steps: number, private features: number, names: string[]) {
    const lines = features <= SIGNAL_LINES;
    this.svg.setAttribute("role", "img");
    this.svg.setAttribute("aria-label", `input signal: ${features} feature${features === 1 ? "" : "s"} over ${steps} time steps`);
    this.el.append(lines ? this.svg : this.grey.canvas);
    if (lines) {
      this.key.append(...names.slice(0, features).map((name, f) => h("span", {}, [h("i", { style: `background:${SIGNAL_COLORS[f % SIGNAL_COLORS.length]}` }), name])));
      this.el.append(this.key);
    }
  }

  /** Draws the (T, F) time-first input `signal`. */
  draw(signal: ArrayLike<number>): void {
    this.signal = signal;
    if (this.features > SIGNAL_LINES) {
      const { lo, hi } = range(signal);
      const n = this.steps * this.features;
      const grey = new Uint8Array(n);
      for (let f = 0; f < this.features; f++) {
        for (let t = 0; t < this.steps; t++) grey[f * this.steps + t] = Math.round((255 * (signal[t * this.features + f] - lo)) / (hi - lo || 1));
      }
      this.grey.paintRGB(grey, this.features, this.steps, 1);
      return;
    }
    this.paint();
  }

  /** Lays the chart over a map `width` px wide (its columns are the time steps). */
  resize(width: number, mapHeight: number): void {
    this.width = width;
    this.el.style.width = `${width}px`;
    this.grey.setDisplaySize(width, Math.min(HEIGHT, mapHeight));
    this.paint();
  }

  private paint(): void {
    if (this.features > SIGNAL_LINES || !this.width || !this.signal.length) return;
    const { lo, hi } = range(this.signal);
    this.svg.setAttribute("width", String(this.width));
    this.svg.setAttribute("height", String(HEIGHT));
    const lines = Array.from({ length: this.features }, (_, f) => {
      const line = document.createElementNS(SVG_NS, "polyline");
      line.setAttribute("points", signalPoints(this.signal, this.steps, this.features, f, this.width, HEIGHT, lo, hi));
      line.setAttribute("fill", "none");
      line.setAttribute("stroke", SIGNAL_COLORS[f % SIGNAL_COLORS.length]);
      line.setAttribute("stroke-width", "1.5");
      line.setAttribute("data-sw-feature", String(f));
      return line;
    });
    this.svg.replaceChildren(...lines);
  }
}

function range(values: ArrayLike<number>): { lo: number; hi: number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i] < lo) lo = values[i];
    if (values[i] > hi) hi = values[i];
  }
  return Number.isFinite(lo) ? { lo, hi } : { lo: 0, hi: 1 };
}
