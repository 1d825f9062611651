/** Pure helpers of the WeightInspector: positions, shapes and captions (no DOM). */
import { formatValue } from "./format";

/** The multi-index of flat (row-major) position `flat` in an array of `shape`. */
export function unravel(flat: number, shape: number[]): number[] {
  const out = new Array<number>(shape.length).fill(0);
  let rest = flat;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = rest % shape[i];
    rest = Math.floor(rest / shape[i]);
  }
  return out;
}

/** "1×3" (matches saliency_widgets.weights.shape_text). */
export function shapeText(shape: (number | null)[] | null): string {
  if (shape === null) return "?";
  if (shape.length === 0) return "scalar";
  return shape.map((n) => (n === null ? "?" : String(n))).join("×");
}

/** Hover text of one weight: where it sits (named axes) and its exact value. */
export function weightTooltip(name: string, value: number, flat: number, shape: number[], axes: string[]): string {
  const pos = unravel(flat, shape);
  const where = pos.map((p, i) => `${axes[i] ?? `axis ${i}`} ${p}`).join("\n");
  return `${name} [${pos.join(", ")}]\n= ${formatValue(value)}\n${where}`;
}

/** "1,234" style parameter counts. */
export function paramsText(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Bar heights (0..1) of a histogram, and the fraction along its x axis where 0 lies (or null). */
export function histogramBars(counts: number[], lo: number, hi: number): { heights: number[]; zeroAt: number | null } {
  const top = Math.max(1, ...counts);
  const zeroAt = hi > lo && lo <= 0 && hi >= 0 ? (0 - lo) / (hi - lo) : null;
  return { heights: counts.map((c) => c / top), zeroAt };
}

/** What a block's picture shows, for its column head: "16 filters × 3 channels · 3×3 tiles", "64×8 · input features", "64". */
export function pictureCaption(layout: string, shape: number[], axes: string[], rows: number, cols: number, colLabel: string): string {
  if (layout === "filters") {
    const f = axes.indexOf("filters");
    const c = axes.findIndex((a) => a.startsWith("input channels"));
    const window = shape.filter((_, i) => i !== f && i !== c);
    return `${shape[f]} filters × ${shape[c]} channels · ${shapeText(window)} tiles`;
  }
  if (layout === "column") return shapeText(shape);
  return `${rows}×${cols}${colLabel ? ` · ${colLabel}` : ""}`;
}
