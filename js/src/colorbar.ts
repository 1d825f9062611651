/** The colour bar: LUT gradient, value range and the sign/outlier setting in use. */
import { valueRange, type Sign } from "./colors";
import { h } from "./dom";
import { formatValue } from "./format";

export interface ColorBarState {
  lut: Uint8Array;
  sign: Sign;
  m: number;
  outlierPerc: number;
  locked: boolean;
  /** The map is ≥ 0 by construction and drawn one-sided for it (`sign` is then shownSign's "positive"). */
  nonnegative?: boolean;
}

const SIGN_TEXT: Record<Sign, string> = {
  all: "signed (red +, blue −)",
  positive: "positive part",
  negative: "negative part",
  absolute_value: "absolute value",
};
/** The caption of a map drawn one-sided because it is ≥ 0 by construction (_NONNEGATIVE_TEXT in export.py). */
const NONNEGATIVE_TEXT = "one-sided: ≥ 0 by construction";

/** Tick labels (fraction along the bar, text) in the attribution's own units. */
export function colorbarTicks(sign: Sign, m: number): { at: number; text: string }[] {
  const [lo, hi] = valueRange(m, sign);
  if (sign === "all") return [{ at: 0, text: formatValue(lo) }, { at: 0.5, text: "0" }, { at: 1, text: formatValue(hi) }];
  const end = sign === "negative" ? -hi : hi;
  return [{ at: 0, text: "0" }, { at: 1, text: formatValue(end) }];
}

/** One-line description of the scale, e.g. "signed (red +, blue −) · top 2% clipped". */
export function scaleCaption(s: Pick<ColorBarState, "sign" | "outlierPerc" | "locked" | "nonnegative">): string {
  const clip = s.locked ? "scale locked" : s.outlierPerc > 0 ? `top ${formatValue(s.outlierPerc)}% clipped` : "no clipping";
  return `${s.nonnegative ? NONNEGATIVE_TEXT : SIGN_TEXT[s.sign]} · ${clip}`;
}

export class ColorBar {
  readonly el = h("div", { class: "sw-colorbar", "data-sw-role": "colorbar" });
  private canvas = h("canvas", { width: 256, height: 1, role: "img" });
  private ticks = h("div", { class: "sw-ticks" });
  private caption = h("div", { class: "sw-note" });

  constructor() {
    this.el.append(this.canvas, this.ticks, this.caption);
  }

  /** The state last drawn (what exports draw). */
  state: ColorBarState | null = null;

  update(s: ColorBarState): void {
    this.state = s;
    const ctx = this.canvas.getContext("2d") as CanvasRenderingContext2D;
    const img = new ImageData(256, 1);
    img.data.set(s.lut.subarray(0, 1024));
    ctx.putImageData(img, 0, 0);
    this.ticks.replaceChildren(
      ...colorbarTicks(s.sign, s.m).map((t) => {
        const span = h("span", {}, t.text);
        span.style.left = `${t.at * 100}%`;
        return span;
      }),
    );
    this.caption.textContent = scaleCaption(s);
    const ticks = colorbarTicks(s.sign, s.m);
    this.canvas.setAttribute("aria-label", `colour scale from ${ticks[0].text} to ${ticks[ticks.length - 1].text}, ${scaleCaption(s)}`);
  }
}
