/** The colour bar: LUT gradient, value range and the sign/outlier setting in use. */
import { valueRange, type Sign } from "./colors";
import { h } from "./dom";
import { formatValue } from "./format";
import { RELATIVE_TEXT, RELATIVE_TICKS } from "./words";

export interface ColorBarState {
  lut: Uint8Array;
  sign: Sign;
  m: number;
  outlierPerc: number;
  locked: boolean;
  /** The map is ≥ 0 by construction and drawn one-sided for it (`sign` is then shownSign's "positive"). */
  nonnegative?: boolean;
  /** What the bar reads for the explained output, e.g. "“cat”: red raises it, blue lowers it" (words.ts). */
  target?: string;
  /** Maps drawn each on its own scale (a methods row): the ticks read −max … max, `m` is not shown. */
  relative?: boolean;
}

const SIGN_TEXT: Record<Sign, string> = {
  all: "signed (red +, blue −)",
  positive: "positive part",
  negative: "negative part",
  absolute_value: "absolute value",
};
/** The caption of a map drawn one-sided because it is ≥ 0 by construction (_NONNEGATIVE_TEXT in export.py). */
const NONNEGATIVE_TEXT = "one-sided: ≥ 0 by construction";

/** Tick labels (fraction along the bar, text) in the attribution's own units; `relative`: "−max", "0", "max". */
export function colorbarTicks(sign: Sign, m: number, relative = false): { at: number; text: string }[] {
  if (relative) return RELATIVE_TICKS[sign].map((text, i, all) => ({ at: i / (all.length - 1), text }));
  const [lo, hi] = valueRange(m, sign);
  if (sign === "all") return [{ at: 0, text: formatValue(lo) }, { at: 0.5, text: "0" }, { at: 1, text: formatValue(hi) }];
  const end = sign === "negative" ? -hi : hi;
  return [{ at: 0, text: "0" }, { at: 1, text: formatValue(end) }];
}

/** One-line description of the scale, e.g. "signed (red +, blue −) · top 2% clipped", after what it reads
 *  for the explained output (`target`) and whether each map has its own scale (the colour bar's label in export.py). */
export function scaleCaption(s: Pick<ColorBarState, "sign" | "outlierPerc" | "locked" | "nonnegative" | "target" | "relative">): string {
  const clip = s.locked ? "scale locked" : s.outlierPerc > 0 ? `top ${formatValue(s.outlierPerc)}% clipped` : "no clipping";
  return [s.target, s.relative ? RELATIVE_TEXT : "", s.nonnegative ? NONNEGATIVE_TEXT : SIGN_TEXT[s.sign], clip].filter(Boolean).join(" · ");
}

export class ColorBar {
  readonly el = h("div", { class: "sw-colorbar", "data-sw-role": "colorbar" });
  private target = h("div", { class: "sw-colorbar-target", "data-sw-role": "legend-target", hidden: true });
  private canvas = h("canvas", { width: 256, height: 1, role: "img" });
  private ticks = h("div", { class: "sw-ticks" });
  private caption = h("div", { class: "sw-note" });

  constructor() {
    this.el.append(this.target, this.canvas, this.ticks, this.caption);
  }

  /** The state last drawn (what exports draw). */
  state: ColorBarState | null = null;

  update(s: ColorBarState): void {
    this.state = s;
    const ctx = this.canvas.getContext("2d") as CanvasRenderingContext2D;
    const img = new ImageData(256, 1);
    img.data.set(s.lut.subarray(0, 1024));
    ctx.putImageData(img, 0, 0);
    const ticks = colorbarTicks(s.sign, s.m, s.relative);
    this.ticks.replaceChildren(
      ...ticks.map((t) => {
        const span = h("span", {}, t.text);
        span.style.left = `${t.at * 100}%`;
        return span;
      }),
    );
    this.target.hidden = !s.target;
    this.target.textContent = s.target ?? "";
    this.caption.textContent = scaleCaption({ ...s, target: undefined });
    this.canvas.setAttribute("aria-label", `colour scale from ${ticks[0].text} to ${ticks[ticks.length - 1].text}, ${scaleCaption(s)}`);
  }
}
