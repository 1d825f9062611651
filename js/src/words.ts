/**
 * Words beside the colours of a SaliencyMap: what pushes the explained score up and down most (vector and
 * text maps), what the colour bar reads for the explained output, and a map's own range in a methods row.
 * Each mirrors a function of saliency_widgets/export.py, so the screen and the figures say the same.
 */
import type { Sign } from "./colors";
import { formatValue } from "./format";

/** Entries named on each side of a top-k list (TOP_K in export.py). */
export const TOP_K = 5;

/** `+0.84` or `−0.52`, with a true minus sign (signed_value). */
export function signedValue(v: number): string {
  return (v < 0 ? "−" : "+") + formatValue(Math.abs(v));
}

/** Indices of the k largest positive values, largest first, and of the k most negative ones, most negative
 *  first; ties in index order, NaN as 0 (pushes). */
export function pushes(values: ArrayLike<number>, k = TOP_K): { up: number[]; down: number[] } {
  const v = Array.from(values, (x) => (Number.isNaN(x) ? 0 : x));
  const keys = v.map((_, i) => i);
  const up = keys.filter((i) => v[i] > 0).sort((a, b) => v[b] - v[a] || a - b).slice(0, k);
  const down = keys.filter((i) => v[i] < 0).sort((a, b) => v[a] - v[b] || a - b).slice(0, k);
  return { up, down };
}

/** Two lines naming what pushes the explained score most: `pushes “cat” up: proline +0.84, …` and
 *  `down: hue −0.52, …` (`…` when more entries push that way; pushes_text). */
export function pushesText(values: ArrayLike<number>, names: string[], explained: string, k = TOP_K): [string, string] {
  const v = Array.from(values, (x) => (Number.isNaN(x) ? 0 : x));
  const { up, down } = pushes(v, k);
  const listed = (keys: number[], more: number) =>
    (keys.map((i) => `${names[i] ?? `feature ${i}`} ${signedValue(v[i])}`).join(", ") || "nothing") + (more > keys.length ? ", …" : "");
  return [`pushes ${explained} up: ${listed(up, v.filter((x) => x > 0).length)}`, `down: ${listed(down, v.filter((x) => x < 0).length)}`];
}

/** What the colour bar reads for the explained output, by sign (_TARGET_LEGEND in export.py). */
export const TARGET_LEGEND: Record<Sign, string> = {
  all: "red raises it, blue lowers it",
  positive: "what raises it",
  negative: "what lowers it",
  absolute_value: "what moves it either way",
};

/** E.g. "“cat”: red raises it, blue lowers it" (target_legend). */
export function targetLegend(sign: Sign, explained: string): string {
  return `${explained}: ${TARGET_LEGEND[sign]}`;
}

/** A map's own colour range in its caption: `±0.52`, or `0 … 0.52` one-sided (scale_range). */
export function scaleRange(sign: Sign, m: number): string {
  return sign === "all" ? `±${formatValue(m)}` : `0 … ${formatValue(sign === "negative" ? -m : m)}`;
}

/** The colour bar of maps each on its own scale: its ticks and what it says (RELATIVE_* in export.py). */
export const RELATIVE_TICKS: Record<Sign, string[]> = { all: ["−max", "0", "max"], positive: ["0", "max"], negative: ["0", "−max"], absolute_value: ["0", "max"] };
export const RELATIVE_TEXT = "each map on its own scale (its range in its caption)";
